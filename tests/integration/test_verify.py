"""s3_backup_verify against real backups in a real S3 store and a local directory."""
import datetime
import gzip
import hashlib
import json
import os
import subprocess

import pytest
from conftest import DATABASE

from ansible_collections.ops.runbook.plugins.module_utils import manifest as manifest_lib
from ansible_collections.ops.runbook.plugins.module_utils.backup import run_backup
from ansible_collections.ops.runbook.plugins.module_utils.verify import verify_backup


def by_name(result):
    return {c["name"]: c for c in result["checks"]}


def statuses(result):
    return {c["name"]: c["status"] for c in result["checks"]}


@pytest.mark.parametrize("dump_format,compression", [("custom", "zstd"), ("plain", "gzip")])
def test_good_backup_passes_every_check_with_a_restore_test(pg, options, dump_format, compression):
    options.update(format=dump_format, compression=compression)
    backup = run_backup(options)
    result = verify_backup(dict(options, restore_test=True,
                                smoke_sql=["SELECT count(*) > 0 FROM measurements"]))
    assert statuses(result) == {"manifests": "pass", "freshness": "pass", "size": "pass", "checksum": "pass",
                                "integrity": "pass", "restore": "pass"}, result["checks"]
    assert result["status"] == "pass" and result["backup_id"] == backup["backup_id"]
    assert by_name(result)["restore"]["seconds"] > 0
    leftovers = pg.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ops_runbook_verify_%'")
    assert leftovers == []


def test_local_backups_are_verified_too(options):
    backup = run_backup(dict(options, s3_bucket=None))
    result = verify_backup({"database": DATABASE, "backup_dir": options["backup_dir"]})
    assert result["status"] == "pass", result["checks"]
    assert result["location"] == os.path.join(options["backup_dir"], DATABASE, backup["backup_id"])


def test_altered_bytes_fail_the_checksum(s3, options):
    backup = run_backup(dict(options, compression="none"))
    key = backup["s3_keys"][0]
    body = bytearray(s3.client().get_object(Bucket=options["s3_bucket"], Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    s3.client().put_object(Bucket=options["s3_bucket"], Key=key, Body=bytes(body))
    result = verify_backup(options)
    assert by_name(result)["checksum"]["status"] == "fail"
    assert "altered or truncated" in by_name(result)["checksum"]["output"]
    assert result["status"] == "fail"


def test_truncated_object_fails_checksum_and_integrity(s3, options):
    backup = run_backup(options)
    key = backup["s3_keys"][0]
    body = s3.client().get_object(Bucket=options["s3_bucket"], Key=key)["Body"].read()
    s3.client().put_object(Bucket=options["s3_bucket"], Key=key, Body=body[: len(body) // 2])
    result = verify_backup(options)
    assert statuses(result)["checksum"] == "fail"
    assert statuses(result)["integrity"] == "fail"
    assert "cannot be read back" in by_name(result)["integrity"]["output"]


def test_missing_manifest_is_named(s3, options):
    older = run_backup(options)
    newer = run_backup(dict(options, backup_dir=options["backup_dir"] + "-2"))
    s3.client().delete_object(Bucket=options["s3_bucket"],
                              Key="it/{}/{}/manifest.json".format(DATABASE, newer["backup_id"]))
    result = verify_backup(dict(options, incomplete_grace_minutes=0))
    manifests = by_name(result)["manifests"]
    assert manifests["status"] == "fail" and manifests["sets"] == [newer["backup_id"]]
    assert newer["backup_id"] in manifests["output"]
    assert result["backup_id"] == older["backup_id"]


def test_backup_older_than_max_age_fails_freshness(options):
    backup = run_backup(options)
    later = manifest_lib.parse_backup_id(backup["backup_id"])[1] + datetime.timedelta(hours=30)
    result = verify_backup(options, now=later)
    freshness = by_name(result)["freshness"]
    assert freshness["status"] == "fail"
    assert freshness["observed_value"] >= 30 and freshness["threshold"] == 26


def test_no_backup_at_all_fails_presence(options):
    result = verify_backup(options)
    assert statuses(result) == {"manifests": "pass", "presence": "fail"}


def write_set(backup_dir, set_id, dump_name, payload, fmt, compression, tables=None):
    """A set as pg_backup lays it out, around bytes of the test's choosing."""
    path = os.path.join(backup_dir, DATABASE, set_id)
    os.makedirs(path)
    with open(os.path.join(path, dump_name), "wb") as handle:
        handle.write(payload)
    files = [{"name": dump_name, "role": "dump", "size": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest()}]
    document = manifest_lib.build(set_id, DATABASE, "", "", files, format=fmt, compression=compression,
                                  tables=tables or {}, row_count_method="exact")
    with open(os.path.join(path, "manifest.json"), "w") as handle:
        handle.write(manifest_lib.dumps(document))


def test_empty_dump_of_the_runbook_script_fails_size_and_integrity(tmp_path):
    # What `pg_dump ... | gzip > file` leaves when pg_dump dies at once: a valid, empty gzip.
    now = datetime.datetime.now(datetime.timezone.utc)
    set_id = manifest_lib.backup_id(DATABASE, now)
    write_set(str(tmp_path), set_id, "bmidb.sql.gz", gzip.compress(b""), "plain", "gzip")
    result = verify_backup({"database": DATABASE, "backup_dir": str(tmp_path)}, now=now)
    assert statuses(result)["size"] == "fail"
    assert "probably empty" in by_name(result)["size"]["output"]
    assert statuses(result)["checksum"] == "pass"
    assert statuses(result)["integrity"] == "fail"


def test_sharp_drop_in_size_fails(pg, options):
    first = run_backup(dict(options, s3_bucket=None, compression="none"))
    pg.execute("CREATE DATABASE shrunk TEMPLATE bmidb")
    try:
        shrunk = dict(options, s3_bucket=None, compression="none", database="shrunk")
        first_dir = os.path.join(options["backup_dir"], DATABASE)
        os.makedirs(os.path.join(options["backup_dir"], "shrunk"))
        os.rename(os.path.join(first_dir, first["backup_id"]),
                  os.path.join(options["backup_dir"], "shrunk", first["backup_id"].replace(DATABASE, "shrunk")))
        pg.execute("TRUNCATE blobs, pgbench_accounts", database="shrunk")
        run_backup(shrunk)
        result = verify_backup({"database": "shrunk", "backup_dir": options["backup_dir"]})
    finally:
        pg.execute("DROP DATABASE shrunk")
    size = by_name(result)["size"]
    assert size["status"] == "fail" and "smaller than the previous backup" in size["output"]


def test_dump_that_does_not_restore_fails_the_restore_test(pg, options, tmp_path):
    sql = (b"CREATE TABLE survivors (id int);\n"
           b"INSERT INTO no_such_table VALUES (1);\n"
           b"--\n-- PostgreSQL database dump complete\n--\n")
    payload = subprocess.run(["zstd", "-q", "-c"], input=sql, capture_output=True, check=True).stdout
    now = datetime.datetime.now(datetime.timezone.utc)
    write_set(str(tmp_path), manifest_lib.backup_id(DATABASE, now), "bmidb.sql.zst", payload + b"", "plain", "zstd",
              tables={"public.survivors": 0})
    verify_options = pg.conn_params("postgres")
    verify_options.update(database=DATABASE, backup_dir=str(tmp_path), restore_test=True, min_size_bytes=10)
    result = verify_backup(verify_options, now=now)
    assert statuses(result)["integrity"] == "pass"
    restore = by_name(result)["restore"]
    assert restore["status"] == "fail"
    assert "no_such_table" in restore["output"]
    assert pg.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ops_runbook_verify_%'") == []


def test_check_mode_runs_read_only_checks_and_creates_no_scratch_database(pg, options):
    run_backup(options)
    result = verify_backup(dict(options, restore_test=True), check_mode=True)
    assert statuses(result)["checksum"] == "pass"
    assert "would restore" in by_name(result)["restore"]["output"]
    assert json.dumps(result)  # the whole report is JSON-serialisable


def test_playbook_writes_the_report_and_fails_the_job_on_a_failed_check(s3, options, tmp_path):
    from conftest import ansible_playbook, playbook_vars

    run_backup(options)
    extra = playbook_vars(options)
    extra["pg_verify_report_dir"] = str(tmp_path / "reports")
    passed = ansible_playbook("verify_backups.yml", extra)
    assert passed.returncode == 0, passed.stdout[-3000:]
    report = json.loads((tmp_path / "reports" / "backup-verification-localhost.json").read_text())
    assert report[0]["status"] == "pass" and report[0]["database"] == DATABASE

    extra["pg_verify_max_age_hours"] = 0.0001
    failed = ansible_playbook("verify_backups.yml", extra)
    assert failed.returncode != 0
    assert "Backup verification failed" in failed.stdout and "freshness failed" in failed.stdout
    report = json.loads((tmp_path / "reports" / "backup-verification-localhost.json").read_text())
    assert {c["name"]: c["status"] for c in report[0]["checks"]}["freshness"] == "fail"


def test_host_job_verifies_with_the_same_engine_and_fails_on_a_bad_backup(s3, options, tmp_path, capsys):
    from ansible_collections.ops.runbook.plugins.module_utils import backup_job

    backup = run_backup(options)
    secrets = {k: options.pop(k) for k in ("login_password", "aws_secret_key")}
    config = tmp_path / "pg_backup.json"
    config.write_text(json.dumps({"jobs": [options], "verify": {"max_age_hours": 1}}))
    credentials = tmp_path / "pg_backup.credentials.json"
    credentials.write_text(json.dumps(secrets))
    argv = ["--verify", "--config", str(config), "--credentials", str(credentials)]

    assert backup_job.main(argv) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["backup_id"] == backup["backup_id"] and line["status"] == "pass" and not line["failed"]
    assert "verification of bmidb passed" in captured.err
    assert secrets["aws_secret_key"] not in captured.out + captured.err

    key = backup["s3_keys"][0]
    body = s3.client().get_object(Bucket=options["s3_bucket"], Key=key)["Body"].read()
    s3.client().put_object(Bucket=options["s3_bucket"], Key=key, Body=body[: len(body) // 2])
    assert backup_job.main(argv) == 1
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["failed"] and line["status"] == "fail"
    assert any("altered or truncated" in problem for problem in line["problems"])
    assert "verification of bmidb failed" in captured.err
