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
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup
from ansible_collections.ops.runbook.plugins.module_utils.s3_backup_verify import verify_backup


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
    assert statuses(result) == {"manifests": "pass", "freshness": "pass", "identity": "pass", "files": "pass",
                                "size": "pass", "tables": "pass", "checksum": "pass", "integrity": "pass",
                                "restore": "pass"}, result["checks"]
    assert "nothing to compare" in by_name(result)["tables"]["output"]
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
        moved = os.path.join(options["backup_dir"], "shrunk", first["backup_id"].replace(DATABASE, "shrunk"))
        os.rename(os.path.join(first_dir, first["backup_id"]), moved)
        # Make it the set shrunk's own backup would be: its manifest names the database and set it sits as.
        document = json.loads(open(os.path.join(moved, "manifest.json")).read())
        document.update(database="shrunk", backup_id=os.path.basename(moved))
        with open(os.path.join(moved, "manifest.json"), "w") as handle:
            handle.write(manifest_lib.dumps(document))
        pg.execute("TRUNCATE blobs, pgbench_accounts", database="shrunk")
        run_backup(shrunk)
        result = verify_backup({"database": "shrunk", "backup_dir": options["backup_dir"]})
    finally:
        pg.execute("DROP DATABASE shrunk")
    size = by_name(result)["size"]
    assert size["status"] == "fail" and "smaller than the previous backup" in size["output"]
    tables = by_name(result)["tables"]
    assert tables["status"] == "warn" and "public.pgbench_accounts (100000 -> 0 rows)" in tables["output"]


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
    extra["pg_backup_verify_report_dir"] = str(tmp_path / "reports")
    passed = ansible_playbook("verify_backups.yml", extra)
    assert passed.returncode == 0, passed.stdout[-3000:]
    report = json.loads((tmp_path / "reports" / "backup-verification-localhost.json").read_text())
    assert report[0]["status"] == "pass" and report[0]["database"] == DATABASE
    # What an AWX workflow gets from the job (ansible-runner's artifacts): the set_stats data.
    assert passed.status == "successful"
    assert passed.artifact_data["pg_verifications"] == {"localhost": ["pass"]}

    extra["pg_backup_verify_max_age_hours"] = 0.0001
    failed = ansible_playbook("verify_backups.yml", extra)
    assert failed.returncode != 0
    assert "Backup verification failed" in failed.stdout and "freshness failed" in failed.stdout
    assert failed.status == "failed" and failed.artifact_data["pg_verifications"] == {"localhost": ["fail"]}
    assert any("Backup verification failed" in message for message in failed.failed_messages())
    report = json.loads((tmp_path / "reports" / "backup-verification-localhost.json").read_text())
    assert {c["name"]: c["status"] for c in report[0]["checks"]}["freshness"] == "fail"


def test_host_job_verifies_with_the_same_engine_and_fails_on_a_bad_backup(s3, options, tmp_path, capsys):
    from ansible_collections.ops.runbook.plugins.module_utils import pg_backup_cli

    backup = run_backup(options)
    secrets = {k: options.pop(k) for k in ("login_password", "aws_secret_key")}
    config = tmp_path / "pg_backup.json"
    config.write_text(json.dumps({"jobs": [options], "verify": {"max_age_hours": 1}}))
    credentials = tmp_path / "pg_backup.credentials.json"
    credentials.write_text(json.dumps(secrets))
    argv = ["--verify", "--config", str(config), "--credentials", str(credentials)]

    assert pg_backup_cli.main(argv) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["backup_id"] == backup["backup_id"] and line["status"] == "pass" and not line["failed"]
    assert "verification of bmidb passed" in captured.err
    assert secrets["aws_secret_key"] not in captured.out + captured.err

    key = backup["s3_keys"][0]
    body = s3.client().get_object(Bucket=options["s3_bucket"], Key=key)["Body"].read()
    s3.client().put_object(Bucket=options["s3_bucket"], Key=key, Body=body[: len(body) // 2])
    assert pg_backup_cli.main(argv) == 1
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["failed"] and line["status"] == "fail"
    assert any("altered or truncated" in problem for problem in line["problems"])
    assert "verification of bmidb failed" in captured.err


# -- identity, content and failures that still report (issue 12, defect 5) --------------------------------------


def copy_set(s3, bucket, source_prefix, target_prefix):
    """Every object of a set, manifest included, copied byte for byte under another prefix."""
    client = s3.client()
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket, Prefix=source_prefix)["Contents"]]
    for key in keys:
        client.copy_object(Bucket=bucket, Key=target_prefix + key[len(source_prefix):],
                           CopySource={"Bucket": bucket, "Key": key})
    return keys


def test_a_set_of_another_database_under_this_prefix_fails_identity(s3, options):
    backup = run_backup(options)
    foreign_id = backup["backup_id"].replace(DATABASE, "payroll", 1)
    copy_set(s3, options["s3_bucket"], "it/{}/{}/".format(DATABASE, backup["backup_id"]),
             "it/payroll/{}/".format(foreign_id))

    result = verify_backup(dict(options, database="payroll"))
    identity = by_name(result)["identity"]
    assert result["backup_id"] == foreign_id and result["status"] == "fail"
    assert identity["status"] == "fail", result["checks"]
    assert "is not a backup of payroll: the manifest says database bmidb" in identity["output"]
    assert "the manifest says backup id {}".format(backup["backup_id"]) in identity["output"]
    assert "identity failed" in result["msg"] and "payroll" in result["msg"]
    assert result["failed_checks"] == ["identity"]
    # The bytes are intact: only the identity check tells that this is not payroll's backup.
    assert statuses(result)["checksum"] == "pass"
    # bmidb's own verification of the same bytes is unaffected.
    assert verify_backup(options)["status"] == "pass"


def test_expected_host_and_a_change_of_host(options):
    local = dict(options, s3_bucket=None)
    first = run_backup(local)
    second = run_backup(local)
    written_on = second["manifest"]["host"]
    checked = {"database": DATABASE, "backup_dir": options["backup_dir"]}

    assert statuses(verify_backup(dict(checked, expected_host=written_on.upper())))["identity"] == "pass"
    elsewhere = by_name(verify_backup(dict(checked, expected_host="backup-host.example.org")))["identity"]
    assert elsewhere["status"] == "fail"
    assert "written on {}, not on backup-host.example.org".format(written_on) in elsewhere["output"]

    # Without expected_host, a set written on another host than the previous valid set is a warn.
    path = os.path.join(options["backup_dir"], DATABASE, first["backup_id"], "manifest.json")
    document = json.loads(open(path).read())
    document["host"] = "old-db.example.org"
    with open(path, "w") as handle:
        handle.write(manifest_lib.dumps(document))
    changed = by_name(verify_backup(checked))["identity"]
    assert changed["status"] == "warn"
    assert "previous backup {} on old-db.example.org".format(first["backup_id"]) in changed["output"]


@pytest.fixture
def copy_of_bmidb(pg):
    name = "rowdrop"
    pg.execute("CREATE DATABASE {} TEMPLATE {}".format(name, DATABASE))
    yield name
    pg.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)".format(name))


def test_emptied_dropped_and_shrunk_tables_are_named_with_their_counts(pg, options, copy_of_bmidb):
    opts = dict(options, database=copy_of_bmidb)
    first = run_backup(opts)
    assert verify_backup(opts)["status"] == "pass"  # nothing earlier to compare with

    pg.execute("DELETE FROM pgbench_tellers", database=copy_of_bmidb)
    pg.execute("DROP TABLE pgbench_branches", database=copy_of_bmidb)
    pg.execute("DELETE FROM pgbench_accounts WHERE aid > 40000", database=copy_of_bmidb)
    run_backup(opts)

    result = verify_backup(opts)
    tables = by_name(result)["tables"]
    assert tables["status"] == "warn" and result["status"] == "warn", result["checks"]
    assert tables["previous_backup_id"] == first["backup_id"]
    assert "public.pgbench_branches (1 -> no table)" in tables["output"]
    assert "public.pgbench_tellers (10 -> 0 rows)" in tables["output"]
    assert "public.pgbench_accounts (100000 -> 40000 rows)" in tables["output"]
    assert tables["changes"]["public.pgbench_tellers"] == {"before": 10, "after": 0}
    assert "tables warned" in result["msg"]

    # A larger max_row_drop accepts the accounts' fall; a vanished or emptied table is always named.
    tolerant = by_name(verify_backup(dict(opts, max_row_drop=0.7)))["tables"]
    assert tolerant["status"] == "warn" and "pgbench_accounts" not in tolerant["output"]
    assert "pgbench_tellers" in tolerant["output"]


@pytest.mark.parametrize("value", [1.5, -0.1, "half"])
def test_max_row_drop_outside_0_to_1_is_refused(value):
    from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

    with pytest.raises(RunbookError, match="max_row_drop is .*; it must be "):
        verify_backup({"database": DATABASE, "max_row_drop": value})


def test_damaged_sets_still_produce_the_report_with_the_failed_check(options):
    local = dict(options, s3_bucket=None)
    checked = {"database": DATABASE, "backup_dir": options["backup_dir"]}
    older = run_backup(local)
    newer = run_backup(local)
    set_dir = os.path.join(options["backup_dir"], DATABASE, newer["backup_id"])

    with open(os.path.join(set_dir, "manifest.json"), "w") as handle:
        handle.write('{"backup_id": "' + newer["backup_id"] + '", "files": [')
    result = verify_backup(checked)
    assert result["backup_id"] == newer["backup_id"] and result["failed_checks"] == ["manifest"]
    assert "not valid" in by_name(result)["manifest"]["output"] and "manifest failed" in result["msg"]
    assert json.dumps(result["report"])

    # A manifest that parses but points outside its set is damaged too; nothing outside is read.
    document = dict(newer["manifest"], dump_file="../../../etc/passwd")
    document["files"] = [dict(f, name="../../../etc/passwd") if f["role"] == "dump" else f
                         for f in document["files"]]
    with open(os.path.join(set_dir, "manifest.json"), "w") as handle:
        handle.write(manifest_lib.dumps(document))
    assert "file list is damaged" in by_name(verify_backup(checked))["manifest"]["output"]

    with open(os.path.join(set_dir, "manifest.json"), "w") as handle:
        handle.write(manifest_lib.dumps(newer["manifest"]))
    os.unlink(newer["dump_path"])
    result = verify_backup(checked)
    files = by_name(result)["files"]
    assert files["status"] == "fail" and "{} is missing".format(newer["manifest"]["dump_file"]) in files["output"]
    assert "checksum" not in statuses(result)  # not made on a dump that is not there, and never a pass

    result = verify_backup(dict(checked, backup_id=DATABASE + "-20200101T000000Z"))
    assert result["failed_checks"] == ["presence"] and "does not exist" in result["msg"]
    # The older set is still whole and verifies.
    assert verify_backup(dict(checked, backup_id=older["backup_id"]))["status"] == "pass"


def test_unreachable_store_is_a_failed_access_check(options):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = verify_backup(dict(options, s3_endpoint_url="http://127.0.0.1:{}".format(port)))
    assert result["failed_checks"] == ["access"] and result["status"] == "fail"
    assert "127.0.0.1:{}".format(port) in by_name(result)["access"]["output"]
    assert "access failed" in result["msg"]


def test_playbook_writes_the_report_and_names_the_failed_check_on_damaged_sets(s3, options, tmp_path):
    from conftest import ansible_playbook, playbook_vars

    backup = run_backup(options)
    client = s3.client()
    set_key = "it/{}/{}/".format(DATABASE, backup["backup_id"])
    extra = playbook_vars(options)
    extra["pg_backup_verify_report_dir"] = str(tmp_path / "reports")
    report_path = tmp_path / "reports" / "backup-verification-localhost.json"

    good_manifest = client.get_object(Bucket=options["s3_bucket"], Key=set_key + "manifest.json")["Body"].read()
    client.put_object(Bucket=options["s3_bucket"], Key=set_key + "manifest.json", Body=b'{"backup_id": 3')
    run = ansible_playbook("verify_backups.yml", extra)
    assert run.returncode != 0
    assert "Backup verification failed" in run.stdout and "manifest failed" in run.stdout
    assert "of bmidb" in run.stdout
    report = json.loads(report_path.read_text())
    assert statuses(report[0]) == {"manifests": "pass", "freshness": "pass", "manifest": "fail"}

    client.put_object(Bucket=options["s3_bucket"], Key=set_key + "manifest.json", Body=good_manifest)
    client.delete_object(Bucket=options["s3_bucket"], Key=backup["s3_keys"][0])
    report_path.unlink()
    run = ansible_playbook("verify_backups.yml", extra)
    assert run.returncode != 0 and "files failed" in run.stdout
    report = json.loads(report_path.read_text())
    assert statuses(report[0])["files"] == "fail" and report[0]["status"] == "fail"

    # Options the engine refuses: the report is still written, with the reason.
    report_path.unlink()
    run = ansible_playbook("verify_backups.yml", dict(extra, pg_backup_verify_max_row_drop=2))
    assert run.returncode != 0 and "max_row_drop is 2" in run.stdout
    report = json.loads(report_path.read_text())
    assert report[0]["database"] == DATABASE and statuses(report[0]) == {"configuration": "fail"}


def test_host_job_names_the_failed_check_and_database(s3, options, tmp_path, capsys):
    from ansible_collections.ops.runbook.plugins.module_utils import pg_backup_cli

    backup = run_backup(options)
    s3.client().put_object(Bucket=options["s3_bucket"], Key="it/{}/{}/manifest.json".format(
        DATABASE, backup["backup_id"]), Body=b"not json")
    config = tmp_path / "pg_backup.json"
    config.write_text(json.dumps({"jobs": [options, dict(options, database="payroll")]}))
    argv = ["--verify", "--config", str(config), "--credentials", str(tmp_path / "none.json")]

    assert pg_backup_cli.main(argv) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert [(line["database"], line["failed_checks"]) for line in lines] == [
        (DATABASE, ["manifest"]), ("payroll", ["presence"])]
    assert "verification of bmidb failed: Backup {} of bmidb: fail (manifest failed: ".format(
        backup["backup_id"]) in captured.err
    assert "verification of payroll failed" in captured.err and "presence failed" in captured.err
