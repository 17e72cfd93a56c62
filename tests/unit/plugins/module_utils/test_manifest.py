import datetime

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import manifest


def test_backup_id_round_trips_in_utc():
    moment = datetime.datetime(2026, 2, 24, 2, 0, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=6)))
    value = manifest.backup_id("bmi-db", moment)
    assert value == "bmi-db-20260223T200005Z"
    assert manifest.parse_backup_id(value) == ("bmi-db", moment)


@pytest.mark.parametrize("name", ["bmidb", "bmidb-2026", ".bmidb-20260224T020000Z.partial", "manifest.json"])
def test_other_names_are_not_backup_ids(name):
    assert manifest.parse_backup_id(name) is None


@pytest.mark.parametrize("fmt,compression,name", [
    ("custom", "zstd", "db.dump.zst"), ("custom", "gzip", "db.dump.gz"), ("custom", "none", "db.dump"),
    ("plain", "zstd", "db.sql.zst"), ("plain", "gzip", "db.sql.gz"), ("plain", "none", "db.sql"),
])
def test_dump_file_names(fmt, compression, name):
    assert manifest.dump_file_name("db", fmt, compression) == name


def test_config_file_names_are_flat_and_unique():
    assert manifest.config_file_name("/etc/nginx/sites-available/app") == "config/etc__nginx__sites-available__app"
    assert manifest.config_file_name("/etc/a/b") != manifest.config_file_name("/etc/a_b")


def test_manifest_document_points_at_the_dump():
    files = [{"name": "db.dump.zst", "role": "dump", "size": 10, "sha256": "ab"},
             {"name": "config/etc__x", "role": "config", "size": 5, "sha256": "cd", "source": "/etc/x"}]
    document = manifest.build("db-20260224T020000Z", "db", "s", "f", files, tables={"public.t": 3})
    assert document["dump_file"] == "db.dump.zst"
    assert document["sha256"] == "ab"
    assert document["size_bytes"] == 10
    assert document["total_size_bytes"] == 15
    assert manifest.loads(manifest.dumps(document)) == document


def test_loads_refuses_foreign_json():
    with pytest.raises(ValueError):
        manifest.loads('{"hello": 1}')
