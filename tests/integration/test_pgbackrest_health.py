"""ops.runbook.pgbackrest_health on real parts: PostgreSQL 15 archiving through pgBackRest 2.45 into SeaweedFS
over TLS.

The module's stack is its own (its own store, bucket and stanza), since these tests break it on purpose: a WAL
segment deleted from S3 (and put back), archive_command made to fail (and mended), wrong S3 credentials (in a
second configuration file) and the store stopped (and started again, last).
"""
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import ROOT, ansible_playbook
from harness.pgbackrest import PgBackRestStack, tls_store

STANZA = "health"
NAMES = ["pgbackrest_{0}:{1}".format(name, STANZA)
         for name in ("stanza", "full_backup", "backup", "archive_continuity", "archive_age", "archive_push")]


@pytest.fixture(scope="module")
def store():
    base = tempfile.mkdtemp(prefix="ops-runbook-it-pgbr-health-")
    os.chmod(base, 0o755)
    # Its own store, not the session's tls_s3: a test here stops and restarts it.
    s3 = tls_store(base).start()
    yield s3
    s3.destroy()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(store):
    bucket = store.create_bucket("pgbr-health-" + uuid.uuid4().hex[:8])
    made = PgBackRestStack(tempfile.mkdtemp(prefix="ops-runbook-it-pgbr-health-stack-"), store, bucket,
                           stanza=STANZA).start()
    try:
        made.backup("full")
        # Segments after the backup's, so that one in the middle of the archive can go missing.
        for label in ("one", "two", "three"):
            made.write_marker(label)
            made.switch_wal()
        yield made
    finally:
        made.destroy()


def module_args(stack, **overrides):
    args = stack.module_params(pgbackrest_timeout=120)
    args.update(stack.pg.conn_params())
    args.update(overrides)
    return args


def run_module(args, check=False):
    """Run the module of this checkout on localhost, as `ansible` does: (rc, result, everything it printed)."""
    command = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m", "ops.runbook.pgbackrest_health",
               "-a", json.dumps(args)]
    if check:
        command.append("--check")
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json",
                       AWS_EC2_METADATA_DISABLED="true")
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
    output = json.loads(done.stdout)
    return done.returncode, output["plays"][0]["tasks"][0]["hosts"]["localhost"], done.stdout + done.stderr


def by_name(result):
    return dict((item["name"], item) for item in result["checks"])


def assert_no_secret(stack, printed):
    for secret in (stack.s3.secret_key, stack.s3.access_key, stack.pg.password):
        assert secret not in printed


def test_a_healthy_stack_with_a_full_backup_passes(stack):
    rc, result, printed = run_module(module_args(stack))
    assert rc == 0, result["msg"]
    assert [item["name"] for item in result["checks"]] == NAMES
    assert result["status"] == "pass", result["msg"]
    checks = by_name(result)
    assert checks["pgbackrest_full_backup:health"]["type"] == "full"
    # From the full backup's start segment to the last switched one, none missing.
    assert checks["pgbackrest_archive_continuity:health"]["checked_segments"] >= 4
    assert result["facts"]["cluster"]["archive_mode"] == "on"
    assert_no_secret(stack, printed)

    rc, checked, _printed = run_module(module_args(stack), check=True)
    assert rc == 0 and checked["changed"] is False and checked["status"] == "pass"


def test_the_morning_health_check_reports_the_stanza_when_asked(stack, tmp_path):
    extra_vars = {
        "health_check_hosts": "localhost", "health_check_categories": ["disk"], "health_check_postgres": False,
        "health_check_redis": False, "health_check_report_dir": str(tmp_path),
        "health_check_pgbackrest_stanza": STANZA, "health_check_pgbackrest_config": stack.config_path,
        "postgres_login_host": stack.pg.host, "postgres_login_port": stack.pg.port,
        "postgres_login_user": "postgres", "postgres_login_password": stack.pg.password, "postgres_become": False,
    }
    run = ansible_playbook("health_check.yml", extra_vars)
    with open(str(tmp_path / "health-check.json")) as handle:
        checks = json.load(handle)["checks"]
    for name in NAMES:
        assert checks["localhost:" + name][0]["status"] == "pass", run.stdout[-3000:]
    with open(str(tmp_path / "health-check.md")) as handle:
        assert "pgbackrest_archive_continuity:health" in handle.read()
    assert_no_secret(stack, run.stdout + run.stderr)


def test_a_failing_archive_command_fails_naming_the_wal_and_its_time(stack):
    stack.pg.execute("ALTER SYSTEM SET archive_command = '/bin/false'")
    stack.pg.execute("SELECT pg_reload_conf()")
    try:
        stack.write_marker("unarchived")
        segment = stack.pg.execute("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        for _attempt in range(300):
            if stack.pg.execute("SELECT last_failed_wal FROM pg_stat_archiver")[0][0] == segment:
                break
            stack.pg.execute("SELECT pg_sleep(0.1)")
        rc, result, _printed = run_module(module_args(stack, fail_on="never"))
        assert rc == 0
        push = by_name(result)["pgbackrest_archive_push:health"]
        assert push["status"] == "fail", push
        assert segment in push["output"]
        assert push["last_failed_time"] in push["output"]
    finally:
        stack.pg.execute("ALTER SYSTEM RESET archive_command")
        stack.pg.execute("SELECT pg_reload_conf()")
    stack.switch_wal()
    rc, result, _printed = run_module(module_args(stack))
    push = by_name(result)["pgbackrest_archive_push:health"]
    assert push["status"] == "pass" and "worked again" in push["output"]


def test_a_segment_deleted_from_the_middle_of_the_archive_fails_naming_it(stack):
    keys = stack.wal_keys()
    backup_start = stack.run("info", "--output=json").stdout
    start = json.loads(backup_start)[0]["backup"][0]["archive"]["start"]
    after = [key for key in keys if os.path.basename(key)[:24] > start]
    victim = after[len(after) // 2]
    segment = os.path.basename(victim)[:24]
    assert victim != after[-1]
    client = stack.s3.client()
    body = client.get_object(Bucket=stack.bucket, Key=victim)["Body"].read()
    stack.delete_wal(segment)
    try:
        rc, result, printed = run_module(module_args(stack))
        assert rc != 0 and result["failed"] is True
        continuity = by_name(result)["pgbackrest_archive_continuity:health"]
        assert continuity["status"] == "fail"
        assert continuity["missing"] == [segment]
        assert segment in continuity["output"]
        assert segment in result["msg"]
        assert by_name(result)["pgbackrest_full_backup:health"]["status"] == "pass"
        assert_no_secret(stack, printed)
    finally:
        client.put_object(Bucket=stack.bucket, Key=victim, Body=body)
    assert run_module(module_args(stack))[1]["status"] == "pass"


def test_wrong_s3_credentials_fail_every_repository_check_saying_what_to_fix(stack):
    postmaster = stack.pg.pid()
    config = stack.write_config(os.path.join(stack.base_dir, "wrong-secret.conf"),
                                **{"repo1-s3-key-secret": "a-wrong-secret-value"})
    rc, result, printed = run_module(module_args(stack, pgbackrest_config=config))
    assert rc != 0 and result["failed"] is True
    checks = by_name(result)
    for name in NAMES[:4]:
        assert checks[name]["status"] == "fail" and checks[name]["unchecked"] is True
        assert "refused pgBackRest's credentials" in checks[name]["output"]
        assert "repo1-s3-key-secret" in checks[name]["output"]
    # The cluster's own checks are still made.
    assert checks["pgbackrest_archive_push:health"].get("unchecked") is None
    assert "a-wrong-secret-value" not in printed
    assert_no_secret(stack, printed)
    assert stack.pg.pid() == postmaster


def test_a_stopped_store_fails_the_module_quickly_and_postgresql_keeps_running(stack):
    postmaster = stack.pg.pid()
    stack.s3.stop()
    try:
        # pgBackRest retries a store that does not answer for about four io_timeouts (3 s here, to keep the test short).
        rc, result, printed = run_module(module_args(stack, io_timeout=3))
        assert rc != 0 and result["failed"] is True
        checks = by_name(result)
        for name in NAMES[:4]:
            assert checks[name]["status"] == "fail" and checks[name]["unchecked"] is True
            assert "does not answer" in checks[name]["output"]
            assert "repo1-s3-endpoint" in checks[name]["output"]
        assert_no_secret(stack, printed)
        assert stack.pg.pid() == postmaster
        assert stack.pg.execute("SELECT 1")[0][0] == 1
    finally:
        stack.s3.start()
