import datetime

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import manifest, postgres
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


def test_backup_id_round_trips_in_utc():
    moment = datetime.datetime(2026, 2, 24, 2, 0, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=6)))
    value = manifest.backup_id("bmi-db", moment, "0a1b2c3d")
    assert value == "bmi-db-20260223T200005Z-0a1b2c3d"
    assert manifest.parse_backup_id(value) == ("bmi-db", moment)


def test_backup_ids_of_one_second_differ_by_writer_and_sort_by_time():
    moment = datetime.datetime(2026, 2, 24, 2, 0, 5, tzinfo=datetime.timezone.utc)
    ids = {manifest.backup_id("bmidb", moment) for _attempt in range(50)}
    assert len(ids) == 50
    assert all(manifest.parse_backup_id(i) == ("bmidb", moment) for i in ids)
    later = manifest.backup_id("bmidb", moment + datetime.timedelta(seconds=1), "00000000")
    assert all(i < later for i in ids)


def test_ids_of_older_releases_without_a_writer_part_still_parse():
    assert manifest.parse_backup_id("bmidb-20260224T020000Z") == (
        "bmidb", datetime.datetime(2026, 2, 24, 2, 0, 0, tzinfo=datetime.timezone.utc))
    old, new = "bmidb-20260224T020000Z", manifest.backup_id(
        "bmidb", datetime.datetime(2026, 2, 24, 2, 0, 1, tzinfo=datetime.timezone.utc))
    assert old < new


@pytest.mark.parametrize("name", ["bmidb", "bmidb-2026", ".bmidb-20260224T020000Z.partial", "manifest.json",
                                  "bmidb-20260224T020000Z-XYZ", "bmidb-20260224T020000Z-abc",
                                  "bmidb-20260224T020000Z-0123456789"])
def test_other_names_are_not_backup_ids(name):
    assert manifest.parse_backup_id(name) is None


@pytest.mark.parametrize("name,safe", [
    ("bmidb", "bmidb"), ("bmi-db_2.x", "bmi-db_2.x"), ("a/b", "a%2Fb"), ("../../escape", "%2E.%2F..%2Fescape"),
    (".", "%2E"), ("..", "%2E."), (".hidden", "%2Ehidden"), ("%41", "%2541"), ("A", "A"),
    ("dbname=bmidb", "dbname%3Dbmidb"), ("with space 'q' \"dq\"", "with%20space%20%27q%27%20%22dq%22"),
    ("\u00fcn-\u6570", "%C3%BCn-%E6%95%B0"), ("back\\slash", "back%5Cslash"), ("x\x1b[0m", "x%1B%5B0m"),
])
def test_safe_names_are_one_ascii_path_component(name, safe):
    assert manifest.safe_name(name) == safe
    assert safe.isascii() and "/" not in safe and safe not in ("", ".", "..") and not safe.startswith(".")


def test_safe_names_of_different_databases_differ():
    names = ["a/b", "a%2Fb", "a%252Fb", ".x", "%2Ex", "a b", "a%20b", "\u00e9", "%C3%A9"]
    assert len({manifest.safe_name(n) for n in names}) == len(names)


@pytest.mark.parametrize("name", ["", "x" * 64, "\u00e9" * 32, "a\x00b", None])
def test_names_no_database_can_have_are_refused(name):
    with pytest.raises(RunbookError) as caught:
        manifest.safe_name(name)
    assert caught.value.details["cause"] == "invalid"


def test_a_name_of_63_bytes_is_accepted():
    assert manifest.safe_name("\u00e9" * 31 + "x") == "%C3%A9" * 31 + "x"


@pytest.mark.parametrize("name,text", [
    ("bmidb", "bmidb"), ("a/b", "'a/b'"), ("x\n[ok] pass", "'x\\n[ok] pass'"), ("'", '"\'"'),
    ("\u202eevil", "'\\u202eevil'"),
])
def test_names_in_messages_cannot_fake_output(name, text):
    assert manifest.shown(name) == text


@pytest.mark.parametrize("name,info", [
    ("bmidb", "dbname='bmidb'"), ("dbname=other", "dbname='dbname=other'"),
    ("it's", "dbname='it\\'s'"), ("back\\slash", "dbname='back\\\\slash'"),
    ("postgresql://x/y", "dbname='postgresql://x/y'"),
])
def test_conninfo_names_exactly_the_database(name, info):
    assert postgres.conninfo(name) == info


@pytest.mark.parametrize("fmt,compression,name", [
    ("custom", "zstd", "db.dump.zst"), ("custom", "gzip", "db.dump.gz"), ("custom", "none", "db.dump"),
    ("plain", "zstd", "db.sql.zst"), ("plain", "gzip", "db.sql.gz"), ("plain", "none", "db.sql"),
])
def test_dump_file_names(fmt, compression, name):
    assert manifest.dump_file_name("db", fmt, compression) == name


def test_dump_file_names_use_the_safe_name():
    assert manifest.dump_file_name("../a b", "custom", "zstd") == "%2E.%2Fa%20b.dump.zst"


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


def test_labels_are_an_optional_manifest_field_old_manifests_stay_readable():
    files = [{"name": "bmidb.dump.zst", "role": "dump", "size": 10, "sha256": "0" * 64}]
    common = dict(format="custom", compression="zstd")
    old = manifest.build("bmidb-20260223T200005Z-0a1b2c3d", "bmidb", "s", "f", files, kind="manual", **common)
    labelled = manifest.build("bmidb-20260223T200006Z-0a1b2c3e", "bmidb", "s", "f", files, kind="pre-deploy",
                              labels={"application": "shop", "deploy_id": "a044338c", "release": "v2"}, **common)
    assert "labels" not in old
    for document in (old, labelled):
        assert manifest.problems(manifest.loads(manifest.dumps(document))) == []
    assert manifest.loads(manifest.dumps(labelled))["labels"]["deploy_id"] == "a044338c"
