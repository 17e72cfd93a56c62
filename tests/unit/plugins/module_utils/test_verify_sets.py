"""s3_backup_verify.py's identity, files and tables checks on sets laid out in a temporary directory (no server needed)."""
import datetime
import hashlib
import json
import os

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import manifest as manifest_lib
from ansible_collections.ops.runbook.plugins.module_utils.manifest import problems as manifest_problems
from ansible_collections.ops.runbook.plugins.module_utils.s3_backup_verify import verify_backup

NOW = datetime.datetime(2026, 2, 24, 2, 0, tzinfo=datetime.timezone.utc)


def write_set(root, prefix, hours_ago, tables, method="exact", host="db1.example.org", finished=None, **changes):
    """A set under <root>/<prefix>/; `changes` overwrite its manifest's fields."""
    database = prefix
    started = NOW - datetime.timedelta(hours=hours_ago)
    set_id = manifest_lib.backup_id(database, started)
    path = os.path.join(str(root), database, set_id)
    os.makedirs(path)
    payload = b"x" * 2048
    with open(os.path.join(path, "db.dump"), "wb") as handle:
        handle.write(payload)
    files = [{"name": "db.dump", "role": "dump", "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}]
    end = finished or started + datetime.timedelta(minutes=1)
    document = manifest_lib.build(set_id, database, started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  end.strftime("%Y-%m-%dT%H:%M:%SZ"), files, format="custom", compression="none",
                                  tables=tables, row_count_method=method, host=host)
    document.update(changes)
    with open(os.path.join(path, "manifest.json"), "w") as handle:
        handle.write(json.dumps(document))
    return set_id


def verify(root, **options):
    opts = dict(database="app", backup_dir=str(root), checksum=False, integrity=False, max_age_hours=1000)
    opts.update(options)
    result = verify_backup(opts, now=NOW)
    return result, {c["name"]: c for c in result["checks"]}


def test_tables_compare_with_the_previous_set_by_end_time_not_by_name(tmp_path):
    write_set(tmp_path, "app", 48, {"public.a": 3000, "public.b": 10})
    previous = write_set(tmp_path, "app", 24, {"public.a": 3000, "public.b": 10, "public.c": 5})
    newest = write_set(tmp_path, "app", 1, {"public.a": 0, "public.b": 4})
    result, checks = verify(tmp_path)
    assert result["backup_id"] == newest
    tables = checks["tables"]
    assert tables["status"] == "warn" and tables["previous_backup_id"] == previous
    assert tables["changes"] == {"public.a": {"before": 3000, "after": 0}, "public.b": {"before": 10, "after": 4},
                                 "public.c": {"before": 5, "after": None}}


def test_a_set_that_finished_later_is_never_the_previous_one(tmp_path):
    # Named an hour earlier (a host with a slow clock) but finished after the verified set.
    write_set(tmp_path, "app", 2, {"public.a": 3000, "public.z": 9}, finished=NOW + datetime.timedelta(hours=1))
    write_set(tmp_path, "app", 24, {"public.a": 3000})
    newest = write_set(tmp_path, "app", 0, {"public.a": 3000})
    _result, checks = verify(tmp_path, backup_id=newest)
    assert checks["tables"]["status"] == "pass"


def test_foreign_damaged_or_incomplete_sets_are_never_the_previous_one(tmp_path):
    write_set(tmp_path, "app", 30, {"public.a": 3000})
    foreign = write_set(tmp_path, "app", 20, {"public.other": 1}, database="other")
    broken = write_set(tmp_path, "app", 10, {"public.a": 3000, "public.gone": 2}, size_bytes="big")
    missing = write_set(tmp_path, "app", 5, {"public.a": 3000, "public.gone": 2})
    os.unlink(os.path.join(str(tmp_path), "app", missing, "db.dump"))
    write_set(tmp_path, "app", 1, {"public.a": 3000})
    _result, checks = verify(tmp_path)
    assert checks["tables"]["status"] == "pass"
    assert checks["tables"]["previous_backup_id"] not in (foreign, broken, missing)
    assert checks["identity"]["status"] == "pass"


def test_estimated_counts_compare_only_which_tables_exist(tmp_path):
    write_set(tmp_path, "app", 24, {"public.a": 3000, "public.gone": 7}, method="estimate")
    write_set(tmp_path, "app", 1, {"public.a": 0}, method="estimate")
    _result, checks = verify(tmp_path)
    assert checks["tables"]["status"] == "warn"
    assert "public.gone" in checks["tables"]["output"] and "public.a" not in checks["tables"]["output"]


def test_sets_without_row_counts_are_not_compared(tmp_path):
    write_set(tmp_path, "app", 24, {"public.a": 3000})
    write_set(tmp_path, "app", 1, {}, method="none")
    _result, checks = verify(tmp_path)
    assert checks["tables"]["status"] == "pass" and "not recorded" in checks["tables"]["output"]


def test_many_tables_are_counted_not_all_named(tmp_path):
    write_set(tmp_path, "app", 24, dict(("public.t{0:02d}".format(i), 5) for i in range(25)))
    write_set(tmp_path, "app", 1, {})
    _result, checks = verify(tmp_path)
    assert checks["tables"]["observed_value"] == 25 and "and 15 more" in checks["tables"]["output"]


def test_a_host_change_warns_and_a_short_expected_host_matches(tmp_path):
    write_set(tmp_path, "app", 24, {}, host="db1.example.org")
    write_set(tmp_path, "app", 1, {}, host="db2.example.org")
    _result, checks = verify(tmp_path)
    assert checks["identity"]["status"] == "warn" and "db1.example.org" in checks["identity"]["output"]
    assert verify(tmp_path, expected_host="DB2")[1]["identity"]["status"] == "pass"
    assert verify(tmp_path, expected_host="db1")[1]["identity"]["status"] == "fail"


def test_a_name_that_is_not_printable_is_shown_escaped(tmp_path):
    write_set(tmp_path, "app", 1, {}, database="evil\nname")
    identity = verify(tmp_path)[1]["identity"]
    assert identity["status"] == "fail" and "the manifest says database 'evil\\nname'" in identity["output"]


@pytest.mark.parametrize("change,problem", [
    ({"size_bytes": -1}, "size_bytes is not a size"),
    ({"format": "tar"}, "format 'tar' is unknown"),
    ({"compression": "lz4"}, "compression 'lz4' is unknown"),
    ({"dump_file": "other.dump"}, "not among its files"),
    ({"files": [{"name": "/etc/passwd", "size": 1}]}, "file list is damaged"),
    ({"files": [{"name": "a/../../x", "size": 1}]}, "file list is damaged"),
    ({"tables": {"public.a": "many"}}, "row counts are damaged"),
])
def test_manifest_problems(change, problem):
    document = {"backup_id": "app-20260224T010000Z", "database": "app", "dump_file": "db.dump", "size_bytes": 1,
                "sha256": "0" * 64, "format": "custom", "compression": "none",
                "files": [{"name": "db.dump", "size": 1}], "tables": {}}
    assert manifest_problems(document) == []
    document.update(change)
    assert any(problem in sentence for sentence in manifest_problems(document)), manifest_problems(document)
    assert manifest_problems(["not", "a", "dict"]) == ["it is not a JSON object"]
    assert manifest_problems({"backup_id": "x", "files": []})[0] == "it has no database"


def test_a_manifest_without_a_table_list_is_not_compared(tmp_path):
    write_set(tmp_path, "app", 24, {"public.a": 3000})
    write_set(tmp_path, "app", 1, None)
    _result, checks = verify(tmp_path)
    assert checks["tables"]["status"] == "pass" and "not recorded in this backup" in checks["tables"]["output"]


def test_a_manifest_nested_too_deeply_is_a_failed_manifest_check(tmp_path):
    set_id = write_set(tmp_path, "app", 1, {})
    with open(os.path.join(str(tmp_path), "app", set_id, "manifest.json"), "w") as handle:
        handle.write("[" * 100000 + "]" * 100000)
    result, checks = verify(tmp_path)
    assert result["failed_checks"] == ["manifest"]
