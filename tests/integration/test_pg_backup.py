"""pg_backup against a real PostgreSQL and a real S3 store."""
import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
from conftest import DATABASE, ansible_playbook, local_entries, playbook_vars, s3_keys

from ansible_collections.ops.runbook.plugins.module_utils import pg_backup_cli
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from harness.ports import free_ports
from harness.postgres import PostgresServer

DECOMPRESS = {"zstd": ["zstd", "-dc"], "gzip": ["gzip", "-dc"], "none": ["cat"]}


def restore(pg, dump_path, dump_format, compression, target):
    """Restore a dump with the stock client tools, as an operator would."""
    pg.create_database(target)
    loader = ([os.path.join(pg.bindir, "pg_restore"), "--no-owner", "--exit-on-error", "-d", target]
              if dump_format == "custom" else
              [os.path.join(pg.bindir, "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", target])
    with open(dump_path, "rb") as source:
        unpack = subprocess.Popen(DECOMPRESS[compression], stdin=source, stdout=subprocess.PIPE)
        load = pg.run_client(loader, stdin=unpack.stdout, check=False)
        unpack.stdout.close()
        assert unpack.wait() == 0
    assert load.returncode == 0, load.stderr


@pytest.mark.parametrize("dump_format,compression", [
    ("custom", "zstd"), ("custom", "gzip"), ("plain", "zstd"), ("plain", "gzip"), ("custom", "none"),
])
def test_backup_restores_to_identical_row_counts(pg, s3, options, dump_format, compression):
    options.update(format=dump_format, compression=compression)
    result = run_backup(options)

    source_counts = pg.row_counts(DATABASE)
    assert result["tables"] == source_counts
    assert source_counts["public.pgbench_accounts"] == 100000
    manifest = result["manifest"]
    assert manifest["snapshot_consistent"] is True
    assert manifest["format"] == dump_format and manifest["compression"] == compression
    # Debian's pg_dump prints "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the release alone is kept.
    printed = subprocess.run([os.path.join(pg.bindir, "pg_dump"), "--version"], capture_output=True, text=True,
                             check=True).stdout
    assert re.fullmatch(r"\d+\.\d+", manifest["pg_dump_version"]) and manifest["pg_dump_version"] == printed.split()[2]
    with open(result["dump_path"], "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == result["sha256"] == manifest["sha256"]

    target = "restored_{}_{}".format(dump_format, compression)
    restore(pg, result["dump_path"], dump_format, compression, target)
    assert pg.row_counts(target) == manifest["tables"]

    prefix = "it/{}/{}/".format(DATABASE, result["backup_id"])
    keys = s3_keys(s3, options["s3_bucket"], prefix)
    assert keys == sorted(prefix + name for name in [manifest["dump_file"], "manifest.json"])
    uploaded = json.loads(s3.client().get_object(Bucket=options["s3_bucket"], Key=prefix + "manifest.json")
                          ["Body"].read())
    assert uploaded == manifest
    body = s3.client().get_object(Bucket=options["s3_bucket"], Key=prefix + manifest["dump_file"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == manifest["sha256"]


def test_set_holds_globals_and_config_files(pg, options, tmp_path):
    site = tmp_path / "bmi-health-tracker"
    site.write_text("server { listen 80; }\n")
    options.update(globals=True, config_files=[str(site)])
    result = run_backup(options)
    names = {f["name"]: f for f in result["files"]}
    assert set(names) == {"bmidb.dump.zst", "globals.sql.zst", "config/" + str(site).strip("/").replace("/", "__")}
    globals_sql = subprocess.run(["zstd", "-dc", os.path.join(result["local_path"], "globals.sql.zst")],
                                 capture_output=True, text=True, check=True).stdout
    assert "CREATE ROLE backup_operator" in globals_sql
    config = names["config/" + str(site).strip("/").replace("/", "__")]
    assert config["source"] == str(site)
    with open(os.path.join(result["local_path"], config["name"])) as handle:
        assert handle.read() == "server { listen 80; }\n"


def test_multipart_upload_of_a_large_dump(pg, s3, options):
    # Uncompressed and 5 MiB parts: the ~5 MB of random bytes alone span several parts.
    options.update(compression="none", s3_part_size_mb=5)
    result = run_backup(options)
    assert result["size_bytes"] > 2 * 5 * 1024 * 1024
    client = s3.client()
    head = client.head_object(Bucket=options["s3_bucket"], Key=result["s3_keys"][0])
    assert "-" in head["ETag"], "expected a multipart ETag"
    # Streamed while pg_dump wrote it: the digest was not known yet, the manifest carries it.
    assert head["Metadata"] == {"backup-id": result["backup_id"], "writer": result["manifest"]["writer"]}
    body = client.get_object(Bucket=options["s3_bucket"], Key=result["s3_keys"][0])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == result["manifest"]["sha256"]


def sample_server(name, incompressible_mb):
    """A PostgreSQL server of a test's own with the sample data and `incompressible_mb` of random bytes."""
    server = PostgresServer(tempfile.mkdtemp(prefix="ops-runbook-it-{0}-".format(name))).start()
    server.create_database(DATABASE)
    server.load_sample_data(DATABASE, scale=1, incompressible_mb=incompressible_mb)
    return server


@pytest.fixture(scope="module")
def large_pg():
    """A server whose dump spans several 5 MiB parts and, compressed hard, takes a second or more."""
    server = sample_server("large", 20)
    yield server
    server.destroy()


# About 30 MB/s of pg_dump's hex text on an idle core, less on a busy one: the dump is still
# being written when its first part has been sent.
SLOW_ZSTD_LEVEL = 12


def slow_dump_options(large_pg, s3, bucket, tmp_path):
    options = large_pg.conn_params(DATABASE)
    options.update(s3.s3_params(bucket, "it"), database=DATABASE, backup_dir=str(tmp_path / "backups"),
                   s3_part_size_mb=5, compression_level=SLOW_ZSTD_LEVEL)
    return options


def partial_sets(backup_dir):
    return [d for d in local_entries(backup_dir) if d.endswith(".partial")]


def test_dump_streamed_to_s3_while_written_round_trips(large_pg, s3, bucket, tmp_path):
    options = slow_dump_options(large_pg, s3, bucket, tmp_path)
    seen = {}

    def note_stream_start(message):
        if message.endswith("while it is written"):
            dumps = [os.path.join(options["backup_dir"], DATABASE, d, "bmidb.dump.zst")
                     for d in partial_sets(options["backup_dir"])]
            seen["written_bytes"] = sum(os.path.getsize(p) for p in dumps if os.path.exists(p))

    result = run_backup(options, log=note_stream_start)

    assert result["size_bytes"] > 3 * 5 * 1024 * 1024
    assert 0 < seen["written_bytes"] < result["size_bytes"], "the upload did not start while pg_dump wrote"
    key = "it/{}/{}/bmidb.dump.zst".format(DATABASE, result["backup_id"])
    assert result["s3_keys"] == [key, "it/{}/{}/manifest.json".format(DATABASE, result["backup_id"])]
    client = s3.client()
    reply = client.get_object(Bucket=bucket, Key=key)
    assert reply["ETag"].strip('"').endswith("-{}".format(-(-result["size_bytes"] // (5 * 1024 * 1024))))
    body = reply["Body"].read()
    with open(result["dump_path"], "rb") as handle:
        assert body == handle.read()
    manifest = json.loads(client.get_object(Bucket=bucket, Key=result["s3_keys"][1])["Body"].read())
    assert hashlib.sha256(body).hexdigest() == manifest["sha256"] == result["sha256"]


def test_s3_failure_during_the_dump_keeps_the_local_set_and_no_object(large_pg, s3, bucket, tmp_path):
    options = slow_dump_options(large_pg, s3, bucket, tmp_path)
    seen = {}

    def crash_store_once_streaming(message):
        if message.endswith("while it is written"):
            # SIGKILL, as a crash would: stop() first waits 5 s for a graceful exit.
            os.killpg(s3.proc.pid, signal.SIGKILL)
            s3.proc.wait()
            seen["dump_still_running"] = bool(partial_sets(options["backup_dir"]))

    try:
        with pytest.raises(RunbookError) as caught:
            run_backup(options, log=crash_store_once_streaming)
    finally:
        s3.start()

    assert seen["dump_still_running"], "the dump finished before S3 went away; slow it down"
    message = str(caught.value)
    assert "S3" in message and "is complete and was kept" in message
    sets = local_entries(options["backup_dir"])
    assert len(sets) == 1 and not sets[0].endswith(".partial")
    set_dir = os.path.join(options["backup_dir"], DATABASE, sets[0])
    with open(os.path.join(set_dir, "manifest.json")) as handle:
        manifest = json.load(handle)
    with open(os.path.join(set_dir, "bmidb.dump.zst"), "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == manifest["sha256"]
    assert s3_keys(s3, bucket) == []


@pytest.fixture
def doomed_pg():
    """A server of its own, stopped halfway through a dump."""
    server = sample_server("doomed", 60)
    yield server
    server.destroy()


def test_dump_killed_halfway_leaves_no_backup(doomed_pg, s3, bucket, tmp_path):
    options = doomed_pg.conn_params(DATABASE)
    options.update(s3.s3_params(bucket, "it"), database=DATABASE, backup_dir=str(tmp_path / "backups"),
                   compression_level=12)  # about 30 MB/s: slow enough to stop the server mid-dump
    outcome = {}

    def backup():
        try:
            outcome["result"] = run_backup(options)
        except RunbookError as error:
            outcome["error"] = error

    worker = threading.Thread(target=backup)
    worker.start()
    partial = os.path.join(options["backup_dir"], DATABASE, ".{}-".format(DATABASE))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dumps = [os.path.join(os.path.dirname(partial), d, "bmidb.dump.zst")
                 for d in local_entries(options["backup_dir"]) if d.endswith(".partial")]
        if any(os.path.exists(p) and os.path.getsize(p) > 0 for p in dumps):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the dump never started writing")
    doomed_pg.stop("immediate")
    worker.join(120)

    assert "result" not in outcome, "a dump interrupted by a server stop was reported as a backup"
    error = outcome["error"]
    assert error.details.get("stage") == "pg_dump", str(error)
    assert "pg_dump" in str(error)
    assert local_entries(options["backup_dir"]) == []
    assert s3_keys(s3, bucket) == []


def test_wrong_password_fails_with_the_cause(options):
    options["login_password"] = "not-the-password"
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    assert caught.value.details["cause"] == "authentication"
    assert "rejected the login of user 'backup_operator'" in str(caught.value)
    assert local_entries(options["backup_dir"]) == []


def test_missing_database_fails_with_the_cause(options):
    options["database"] = "no_such_db"
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    assert caught.value.details["cause"] == "missing_database"
    assert "no_such_db" in str(caught.value)


def test_missing_bucket_fails_before_dumping(s3, options):
    options["s3_bucket"] = "no-such-bucket-" + uuid.uuid4().hex[:8]
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    assert caught.value.details["cause"] == "missing_bucket"
    assert options["s3_bucket"] in str(caught.value)
    assert local_entries(options["backup_dir"]) == []


def test_wrong_s3_credentials_fail_with_the_cause(options):
    options["aws_secret_key"] = "wrong-secret"
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    assert caught.value.details["cause"] == "credentials"
    assert "aws_secret_key" in str(caught.value)


def test_unreachable_endpoint_fails_with_the_cause(options):
    options["s3_endpoint_url"] = "http://127.0.0.1:{}".format(free_ports(1)[0])
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    assert caught.value.details["cause"] == "unreachable"
    assert "Cannot reach the S3 endpoint" in str(caught.value)


def test_failed_upload_keeps_local_set_and_leaves_nothing_in_s3(s3, options):
    def stop_store_at_upload(message):
        if message.startswith("uploading"):
            s3.stop()

    try:
        with pytest.raises(RunbookError) as caught:
            run_backup(options, log=stop_store_at_upload)
    finally:
        s3.start()
    assert "is complete and was kept" in str(caught.value)
    sets = local_entries(options["backup_dir"])
    assert len(sets) == 1 and not sets[0].endswith(".partial")
    assert s3_keys(s3, options["s3_bucket"]) == []


def test_retention_keep_zero_still_keeps_the_newest(s3, options):
    first = run_backup(options)
    time.sleep(1.1)  # backup ids have one-second resolution
    options.update(keep_days=0, keep_count=0, s3_keep_days=0, s3_keep_count=0)
    second = run_backup(options)

    assert second["retention"]["local_deleted"] == [first["backup_id"]]
    assert second["retention"]["s3_deleted"] == [first["backup_id"]]
    assert local_entries(options["backup_dir"]) == [second["backup_id"]]
    keys = s3_keys(s3, options["s3_bucket"])
    assert keys and all("/{}/".format(second["backup_id"]) in k for k in keys)


def test_retention_ignores_incomplete_sets_and_foreign_files(s3, options):
    s3.client().put_object(Bucket=options["s3_bucket"], Key="it/bmidb/bmidb-20200101T000000Z/bmidb.dump.zst",
                           Body=b"orphan of a crashed run")
    s3.client().put_object(Bucket=options["s3_bucket"], Key="it/bmidb/README", Body=b"not ours")
    options.update(s3_keep_count=1, s3_keep_days=0)
    result = run_backup(options)
    assert result["retention"]["s3_incomplete"] == ["bmidb-20200101T000000Z"]
    keys = s3_keys(s3, options["s3_bucket"])
    assert "it/bmidb/README" in keys and "it/bmidb/bmidb-20200101T000000Z/bmidb.dump.zst" in keys


def test_check_mode_reports_the_plan_and_writes_nothing(s3, options):
    options.update(keep_days=0)
    first = run_backup(options)
    time.sleep(1.1)
    plan = run_backup(options, check_mode=True)
    assert plan["changed"] is True
    assert plan["retention"]["local_would_delete"] == [first["backup_id"]]
    assert plan["s3_uri"].startswith("s3://{}/it/bmidb/".format(options["s3_bucket"]))
    assert local_entries(options["backup_dir"]) == [first["backup_id"]]
    assert all(first["backup_id"] in k for k in s3_keys(s3, options["s3_bucket"]))


def test_second_run_waits_for_the_lock_then_fails_clearly(options):
    from ansible_collections.ops.runbook.plugins.module_utils.locking import HostLock

    os.makedirs(options["backup_dir"])
    options["lock_timeout"] = 1
    with HostLock(os.path.join(options["backup_dir"], ".ops-runbook-pg-backup.lock")):
        started = time.monotonic()
        with pytest.raises(RunbookError) as caught:
            run_backup(options)
    assert time.monotonic() - started >= 1
    assert caught.value.details["cause"] == "locked"
    assert "pid {}".format(os.getpid()) in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
def test_full_disk_fails_clearly_and_removes_the_partial_set(options, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], check=True)
    try:
        options["backup_dir"] = str(small)
        with pytest.raises(RunbookError) as caught:
            run_backup(options)
        assert caught.value.details["cause"] == "disk_full"
        assert "No space left" in str(caught.value)
        assert local_entries(str(small)) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_unwritable_backup_dir_fails_clearly_before_dumping(s3, options, tmp_path):
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=256k", "tmpfs", str(readonly)], check=True)
    try:
        options["backup_dir"] = str(readonly)
        with pytest.raises(RunbookError) as caught:
            run_backup(options)
        assert caught.value.details["cause"] == "backup_dir"
        message = str(caught.value)
        assert "Cannot write backups to {}/bmidb as user root: Read-only file system".format(readonly) in message
        assert "postgres_become_user" in message
        assert s3_keys(s3, options["s3_bucket"]) == []
    finally:
        subprocess.run(["umount", str(readonly)], check=True)


def test_host_job_runs_the_same_engine(options, tmp_path, capsys):
    secrets = {k: options.pop(k) for k in ("login_password", "aws_secret_key")}
    config = tmp_path / "pg_backup.json"
    config.write_text(json.dumps({"jobs": [options]}))
    credentials = tmp_path / "pg_backup.credentials.json"
    credentials.write_text(json.dumps(secrets))

    assert pg_backup_cli.main(["--config", str(config), "--credentials", str(credentials)]) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["database"] == DATABASE and len(line["sha256"]) == 64
    assert local_entries(options["backup_dir"]) == [line["backup_id"]]
    assert secrets["login_password"] not in captured.out + captured.err

    credentials.write_text(json.dumps(dict(secrets, login_password="wrong")))
    assert pg_backup_cli.main(["--config", str(config), "--credentials", str(credentials)]) == 1
    assert "rejected the login" in capsys.readouterr().err


def test_playbook_backs_up_and_never_shows_secrets_at_vvv(s3, options):
    extra = playbook_vars(options)
    run = ansible_playbook("backup.yml", extra, "-vvv")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "Backed up database bmidb" in output
    assert options["login_password"] not in output
    assert options["aws_secret_key"] not in output
    assert len(local_entries(options["backup_dir"])) == 1
    # As AWX reads the job (ansible-runner's artifacts): its status, and the set_stats data a workflow's
    # next node gets as extra variables.
    assert run.status == "successful" and run.rc == 0
    published = run.artifact_data["pg_backups"]["localhost"]
    assert [entry["database"] for entry in published] == ["bmidb"]
    assert published[0]["backup_id"] == local_entries(options["backup_dir"])[0]
    assert published[0]["s3_uri"].startswith("s3://" + options["s3_bucket"] + "/")
    assert len(published[0]["sha256"]) == 64 and published[0]["size_bytes"] > 0
    events = json.dumps(run.events)
    assert options["login_password"] not in events and options["aws_secret_key"] not in events

    extra["s3_bucket"] = "no-such-bucket-" + uuid.uuid4().hex[:8]
    failed = ansible_playbook("backup.yml", extra, "-vvv")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "does not exist" in output
    assert options["login_password"] not in output
    assert options["aws_secret_key"] not in output
    assert failed.status == "failed" and failed.rc == 2
    assert any("does not exist" in message for message in failed.failed_messages()), failed.failed_messages()
    events = json.dumps(failed.events)
    assert options["login_password"] not in events and options["aws_secret_key"] not in events


def test_playbook_check_mode_changes_nothing(options):
    run = ansible_playbook("backup.yml", playbook_vars(options), "--check")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Would back up database bmidb" in run.stdout
    assert local_entries(options["backup_dir"]) == []


def test_two_backups_in_one_second_get_two_sets(options):
    # Set ids have one-second resolution; a run that waited for the lock can start in the
    # second the previous run started in. It must take the next second, not fail.
    started = datetime.datetime.now(datetime.timezone.utc)
    local = dict(options, s3_bucket=None, compression="none")
    first = run_backup(local, now=started)
    second = run_backup(local, now=started)
    assert first["backup_id"] != second["backup_id"]
    assert second["manifest"]["started_at"] > first["manifest"]["started_at"]
    assert sorted(local_entries(options["backup_dir"], DATABASE)) == sorted([first["backup_id"], second["backup_id"]])


def test_a_set_of_the_same_second_in_s3_is_never_overwritten(s3, options):
    # Two hosts (here: two backup directories) back up a database of the same name under the
    # same prefix in the same second: each set has its own writer part in its id.
    started = datetime.datetime.now(datetime.timezone.utc)
    first = run_backup(options, now=started)
    second = run_backup(dict(options, backup_dir=options["backup_dir"] + "-other-host"), now=started)
    assert first["backup_id"] != second["backup_id"]
    keys = s3_keys(s3, options["s3_bucket"])
    for result in (first, second):
        assert "it/{0}/{1}/manifest.json".format(DATABASE, result["backup_id"]) in keys
