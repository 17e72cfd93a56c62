"""Every PostgreSQL-facing engine, module and playbook on each supported major version, 14 to 18.

The rest of the suite runs once, on the system's PostgreSQL (Debian 12: 15).
Here one cluster per version (binaries from tests/harness/pg_binaries.py,
fetched once into a cache outside the repository) is started on first use and
shared by the tests of that version: health with a streaming standby and
pg_stat_statements, ending sessions, maintenance, passwords, and backup ->
verify with a restore test -> restore. Then the upgrade path users take with
logical backups (14 -> 17 and 14 -> 18 through restore.yml), and the refusal
of client programs older than the server.
"""
import json
import os
import tempfile
import uuid

import pytest
from conftest import ansible_module, ansible_playbook, eventually, module_result, playbook_vars

from ansible_collections.ops.runbook.plugins.module_utils import dumpfile, pg_health
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_health import run_health
from ansible_collections.ops.runbook.plugins.module_utils.pg_maintenance import run_maintenance
from ansible_collections.ops.runbook.plugins.module_utils.pg_password import run_pg_password
from ansible_collections.ops.runbook.plugins.module_utils.pg_terminate import end_sessions
from harness import pg_binaries
from harness.postgres import PostgresServer

VERSIONS = pg_binaries.SUPPORTED
DATABASE = "bmidb"
APP_ROLE = "bmi_user"
APP_PASSWORD = "App-" + uuid.uuid4().hex
ADMIN_ROLE = "backup_operator"
ADMIN_PASSWORD = "Adm-" + uuid.uuid4().hex
SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "archive_mode": "on",
    "max_connections": "30",
    "shared_buffers": "16MB",
    "autovacuum": "off",
}


class Cluster:
    """One major version's primary, with its standby started on first use."""

    def __init__(self, version):
        self.version = version
        self.server = PostgresServer(tempfile.mkdtemp(prefix="ops-rb-v{}-".format(version)), settings=SETTINGS,
                                     version=version).start()
        self.bindir = self.server.bindir
        self._standby = None
        server = self.server
        server.execute("ALTER SYSTEM SET archive_command = '/bin/true'")
        server.execute("SELECT pg_reload_conf()")
        server.create_role(APP_ROLE, APP_PASSWORD)
        server.create_role(ADMIN_ROLE, ADMIN_PASSWORD, superuser=True)
        server.create_database(DATABASE, owner=APP_ROLE)
        server.load_sample_data(DATABASE, scale=1)
        server.execute("ALTER TABLE measurements OWNER TO {}".format(APP_ROLE), database=DATABASE)
        server.execute("CREATE EXTENSION pg_stat_statements", database=DATABASE)

    def params(self, database=DATABASE):
        return self.server.conn_params(database, user=ADMIN_ROLE, password=ADMIN_PASSWORD)

    def standby(self):
        if self._standby is None:
            self._standby = self.server.start_standby(tempfile.mkdtemp(prefix="ops-rb-v{}-sb-".format(self.version)))
        return self._standby

    def destroy(self):
        if self._standby is not None:
            self._standby.destroy()
        self.server.destroy()


@pytest.fixture(scope="module")
def clusters():
    """clusters(version): that version's running Cluster, started on first use, stopped after this module."""
    from concurrent.futures import ThreadPoolExecutor

    started = {}

    def get(version):
        if version not in started:
            started[version] = Cluster(version)
        return started[version]

    yield get
    with ThreadPoolExecutor(max_workers=len(started) or 1) as pool:
        list(pool.map(lambda cluster: cluster.destroy(), started.values()))


def major(server):
    return int(server.execute("SELECT current_setting('server_version_num')::int")[0][0]) // 10000


def by_name(checks):
    return {c["name"]: c for c in checks}


# -- health, sessions, maintenance, passwords -------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_every_health_check_runs_on_primary_and_standby(clusters, version):
    cluster = clusters(version)
    standby = cluster.standby()
    assert major(cluster.server) == version and major(standby) == version
    for _call in range(6):
        cluster.server.execute("SELECT count(*) FROM measurements WHERE user_id < 10", database=DATABASE)
    assert eventually(lambda: cluster.server.execute("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"))

    # Every check, slow_statements (not a default: it needs pg_stat_statements) included.
    result = run_health(dict(cluster.params(), database=DATABASE, expected_standbys=1, min_table_size_mb=0,
                             checks=list(pg_health.CHECKS)))
    checks = by_name(result["checks"])
    assert not [c for c in result["checks"] if "could not run" in c["output"] or c.get("unchecked")], \
        result["checks"]
    assert result["server"]["version_num"] // 10000 == version
    assert checks["reachable"]["status"] == "pass"
    assert checks["standbys"]["status"] == "pass" and checks["standbys"]["observed_value"] == 1
    assert "replication_lag" in checks and "replication_lag_bytes" in checks
    assert [s["name"] for s in checks["replication_slots"]["slots"]] == ["standby1"]
    assert checks["replication_slots"]["slots"][0]["active"] is True
    assert checks["replication_slots"]["slots"][0]["wal_status"] in ("reserved", "extended")
    assert checks["archiver"]["archive_mode"] == "on"
    slow = checks["slow_statements"]
    assert slow["available"] is True and slow["mean_column"] == "mean_exec_time"
    assert any("measurements" in s["query"] for s in slow["statements"]), slow
    assert checks["dead_tuples"]["status"] in ("pass", "warn")
    assert checks["wraparound"]["status"] == "pass"

    on_standby = run_health(dict(standby.conn_params(DATABASE), database=DATABASE))
    standby_checks = by_name(on_standby["checks"])
    assert not [c for c in on_standby["checks"] if "could not run" in c["output"] or c.get("unchecked")], \
        on_standby["checks"]
    assert on_standby["server"]["role"] == "standby"
    assert standby_checks["wal_receiver"]["status"] == "pass", standby_checks["wal_receiver"]
    assert standby_checks["replication_lag_bytes"]["status"] == "pass"


@pytest.mark.parametrize("version", VERSIONS)
def test_idle_sessions_are_terminated_and_others_left_alone(clusters, version):
    import psycopg2

    server = clusters(version).server
    application = "it-versions-{}".format(uuid.uuid4().hex[:8])
    victim = psycopg2.connect(host=server.host, port=server.port, user=APP_ROLE, password=APP_PASSWORD,
                              dbname=DATABASE, application_name=application)
    bystander = psycopg2.connect(host=server.host, port=server.port, user=APP_ROLE, password=APP_PASSWORD,
                                 dbname=DATABASE, application_name="bystander")
    try:
        pid = victim.get_backend_pid()
        result = end_sessions(dict(clusters(version).params(), database=DATABASE, states=["idle"],
                                   application_names=[application]))
        assert [s["pid"] for s in result["sessions"]] == [pid] and result["lingering"] == []
        assert not server.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", params=(pid,))
        with bystander.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        victim.close()
        bystander.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_vacuum_analyze_reindex_and_slow_query_report(clusters, version):
    cluster = clusters(version)
    cluster.server.execute("DELETE FROM pgbench_accounts WHERE aid % 10 = 0", database=DATABASE)
    result = run_maintenance(dict(cluster.params(), databases=[DATABASE],
                                  operations=["vacuum", "analyze", "reindex"], slow_statements_min_calls=1))
    assert result["failed_steps"] == 0, result["msg"]
    assert [s["operation"] for s in result["steps"]] == ["vacuum_analyze", "reindex"]
    assert "CONCURRENTLY" in result["steps"][1]["statement"]
    assert result["dead_tuples_removed"] >= 10000, result["steps"]
    assert result["slow_statements"]["available"] is True and result["slow_statements"]["statements"]
    assert cluster.server.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid")[0][0] == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_password_is_stored_as_scram_and_proven(clusters, version):
    cluster = clusters(version)
    server = cluster.server
    role = "rotated_{}".format(uuid.uuid4().hex[:8])
    old, new = "Old-" + uuid.uuid4().hex, "New-" + uuid.uuid4().hex
    server.create_role(role, old)
    base = dict(cluster.params(), role=role)

    changed = run_pg_password(dict(base, password=new))
    assert changed["changed"] is True and changed["compared"] is True
    stored = server.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", params=(role,))[0][0]
    assert stored.startswith("SCRAM-SHA-256$4096:")
    assert run_pg_password(dict(base, password=new))["changed"] is False
    assert run_pg_password(dict(base, password=new, state="accepted"))["login"] == "accepted"
    assert run_pg_password(dict(base, password=old, state="rejected"))["login"] == "refused"

    unusual = "pässwörd-ß-日本 'quoted' " + uuid.uuid4().hex[:6]
    assert run_pg_password(dict(base, password=unusual))["changed"] is True
    assert run_pg_password(dict(base, password=unusual, state="accepted"))["login"] == "accepted"
    # libpq 16 and later take the iteration count from the session, which a server of 16 or later reports.
    stronger = dict(base, password="Iter-" + uuid.uuid4().hex, scram_iterations=8192)
    if version >= 16:
        assert run_pg_password(stronger)["changed"] is True
        assert server.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                              params=(role,))[0][0].startswith("SCRAM-SHA-256$8192:")
        assert run_pg_password(dict(stronger, state="accepted"))["login"] == "accepted"
    else:
        with pytest.raises(RunbookError, match="computes verifiers with 4096 iterations"):
            run_pg_password(stronger)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_createrole_user_changes_the_roles_it_administers(clusters, version):
    """PostgreSQL 16 restricted CREATEROLE to roles the user has ADMIN OPTION on."""
    cluster = clusters(version)
    server = cluster.server
    tag = uuid.uuid4().hex[:8]
    manager, managed, foreign = "manager_" + tag, "managed_" + tag, "foreign_" + tag
    manager_password = "Mgr-" + uuid.uuid4().hex
    server.execute('CREATE ROLE "{}" LOGIN CREATEROLE PASSWORD %s'.format(manager), params=(manager_password,))
    server.create_role(foreign, "Foreign-" + uuid.uuid4().hex)
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute('SET ROLE "{}"'.format(manager))
        cur.execute('CREATE ROLE "{}" LOGIN'.format(managed))
    conn.close()
    login = server.conn_params("postgres", user=manager, password=manager_password)
    password = "Managed-" + uuid.uuid4().hex

    result = run_pg_password(dict(login, role=managed, password=password))
    assert result["changed"] is True and result["compared"] is False
    assert run_pg_password(dict(login, role=managed, password=password, state="accepted"))["login"] == "accepted"

    before = server.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", params=(foreign,))[0][0]
    if version >= 16:
        with pytest.raises(RunbookError) as caught:
            run_pg_password(dict(login, role=foreign, password="Other-" + uuid.uuid4().hex))
        assert caught.value.details["cause"] == "permission", caught.value
        assert "ADMIN OPTION" in str(caught.value)
        assert server.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                              params=(foreign,))[0][0] == before
    else:
        assert run_pg_password(dict(login, role=foreign, password="Other-" + uuid.uuid4().hex))["changed"] is True


# -- backup, verify, restore ------------------------------------------------------------------

def module_args(cluster, s3, bucket, backup_dir, **extra):
    args = cluster.params()
    args.pop("login_db")
    args.update(s3.s3_params(bucket, "v{}".format(cluster.version)))
    args.update(database=DATABASE, backup_dir=backup_dir)
    args.update(extra)
    return args


@pytest.mark.parametrize("version", VERSIONS)
def test_backup_verify_with_restore_test_and_restore_through_the_modules(clusters, s3, bucket, tmp_path, version):
    cluster = clusters(version)
    server = cluster.server
    args = module_args(cluster, s3, bucket, str(tmp_path / "backups"), pg_bin_dir=cluster.bindir)
    expected = server.row_counts(DATABASE)

    backup = module_result(ansible_module("ops.runbook.pg_backup", dict(args, globals=True)))
    assert backup.get("failed") is not True, backup.get("msg")
    assert backup["server_version"].split(".")[0] == str(version)
    release = ".".join(pg_binaries.RELEASES[version].split(".")[:2])
    pg_dump_version = backup["manifest"]["pg_dump_version"]
    assert pg_dump_version == dumpfile.tool_version(os.path.join(cluster.bindir, "pg_dump")) == release
    assert backup["tables"] == expected

    verify_args = dict(args, restore_test=True, smoke_sql=["SELECT count(*) = 5000 FROM measurements"])
    verify_args.pop("keep_days", None)
    verified = module_result(ansible_module("ops.runbook.s3_backup_verify", verify_args))
    assert verified.get("failed") is not True, verified.get("msg")
    assert {c["name"]: c["status"] for c in verified["checks"]} == {
        "manifests": "pass", "freshness": "pass", "identity": "pass", "files": "pass", "size": "pass",
        "tables": "pass", "checksum": "pass", "integrity": "pass", "restore": "pass"}, verified["checks"]

    target = "restored_{}".format(uuid.uuid4().hex[:8])
    restored = module_result(ansible_module("ops.runbook.pg_restore", dict(args, target=target)))
    try:
        assert restored.get("failed") is not True, restored.get("msg")
        assert restored["backup_id"] == backup["backup_id"]
        assert server.row_counts(target) == expected == restored["tables"]
        assert server.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'measurements'",
                              database=target)[0][0] == APP_ROLE
    finally:
        server.execute('DROP DATABASE IF EXISTS "{}"'.format(target))


@pytest.mark.parametrize("newer", [17, 18])
def test_a_backup_of_14_restores_into_a_newer_server_through_restore_yml(clusters, s3, bucket, tmp_path, monkeypatch,
                                                                         newer):
    """The upgrade path with logical backups: pg_dump 14 on the old server, restore.yml on the new one,
    with the newer version's pg_restore found on PATH."""
    old, new = clusters(14), clusters(newer)
    source_counts = old.server.row_counts(DATABASE)
    options = module_args(old, s3, bucket, str(tmp_path / "backups"))
    # The old host: backup.yml with PostgreSQL 14's programs on PATH.
    with monkeypatch.context() as env:
        env.setenv("PATH", old.bindir + os.pathsep + os.environ["PATH"])
        backed_up = ansible_playbook("backup.yml", playbook_vars(options))
    assert backed_up.returncode == 0, (backed_up.stdout + backed_up.stderr)[-3000:]
    sets = s3.client().list_objects_v2(Bucket=bucket, Prefix=options["s3_prefix"])["Contents"]
    manifest_key = [item["Key"] for item in sets if item["Key"].endswith("/manifest.json")][0]
    manifest = json.loads(s3.client().get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["server"]["version_num"] // 10000 == 14
    assert manifest["pg_dump_version"].startswith("14.")

    # The new host: restore.yml with the newer version's programs on PATH.
    target = "upgraded_from_14_{}".format(uuid.uuid4().hex[:6])
    extra = playbook_vars(dict(new.params(), **{k: v for k, v in options.items() if k.startswith(("s3_", "aws_"))},
                               database=DATABASE, backup_dir=str(tmp_path / "new-host")))
    extra.update(pg_restore_database=DATABASE, pg_restore_target=target)
    monkeypatch.setenv("PATH", new.bindir + os.pathsep + os.environ["PATH"])
    run = ansible_playbook("restore.yml", extra)
    try:
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        assert "Restored {} (a manual backup) into {}".format(manifest["backup_id"], target) in run.stdout
        assert new.server.row_counts(target) == source_counts == manifest["tables"]
        assert major(new.server) == newer
    finally:
        new.server.execute('DROP DATABASE IF EXISTS "{}"'.format(target))


def test_restore_yml_refuses_a_pg_restore_older_than_the_server_and_changes_nothing(clusters, s3, bucket, tmp_path,
                                                                                    monkeypatch):
    old, new = clusters(14), clusters(17)
    options = module_args(old, s3, bucket, str(tmp_path / "backups"), pg_bin_dir=old.bindir)
    run_backup(options)
    target = "refused_{}".format(uuid.uuid4().hex[:6])
    extra = playbook_vars(dict(new.params(), **{k: v for k, v in options.items() if k.startswith(("s3_", "aws_"))},
                               database=DATABASE, backup_dir=options["backup_dir"]))
    extra.update(pg_restore_database=DATABASE, pg_restore_target=target)
    # Only PostgreSQL 14's programs on PATH, and whatever the system installed (Debian 12: 15).
    monkeypatch.setenv("PATH", old.bindir + os.pathsep + os.environ["PATH"])
    run = ansible_playbook("restore.yml", extra)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "pg_restore 17 or newer is needed" in output, output[-3000:]
    assert "14.22" in output and "postgresql-client-17" in output
    assert new.server.execute("SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE "
                              "'ops_runbook_restore_%%'", params=(target,)) == []


# -- choosing the client programs ---------------------------------------------------------------

def test_pg_dump_older_than_the_server_is_refused_naming_both_versions(clusters, tmp_path):
    cluster = clusters(17)
    old_bin = clusters(14).bindir
    options = dict(cluster.params(), database=DATABASE, backup_dir=str(tmp_path / "backups"), pg_bin_dir=old_bin)
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    error = caught.value
    assert error.details["cause"] == "old_tool"
    assert "pg_dump in pg_bin_dir {} is version 14.22".format(old_bin) in error.message
    assert "PostgreSQL 17." in error.message and "pg_dump 17 or newer" in error.message
    assert "postgresql-client-17" in error.hint
    assert not os.path.exists(os.path.join(options["backup_dir"], DATABASE)) or \
        not os.listdir(os.path.join(options["backup_dir"], DATABASE))


def test_the_search_takes_path_if_new_enough_else_the_newest_installed_that_is(clusters):
    dirs = {version: pg_binaries.bindir(version) for version in VERSIONS}
    # PATH's program is taken when it is new enough, even if newer ones are installed.
    path, version = dumpfile.find_tool("pg_dump", 15, search_path=dirs[16], candidates=[dirs[18], dirs[17]])
    assert path == os.path.join(dirs[16], "pg_dump") and version.startswith("16.")
    # Too old on PATH: the newest installed one that is new enough.
    path, version = dumpfile.find_tool("pg_restore", 17, search_path=dirs[14],
                                       candidates=[dirs[17], dirs[18], dirs[15]])
    assert path == os.path.join(dirs[18], "pg_restore") and version.startswith("18.")
    # None new enough: refused, listing what was found and what to install.
    with pytest.raises(RunbookError) as caught:
        dumpfile.find_tool("pg_dump", 18, search_path=dirs[14], candidates=[dirs[15], dirs[17]])
    assert caught.value.details["cause"] == "old_tool"
    for found in ("14.22", "15.19", "17.11"):
        assert found in caught.value.message
    assert "pg_dump 18 or newer" in caught.value.message and "postgresql-client-18" in caught.value.hint
    with pytest.raises(RunbookError) as caught:
        dumpfile.find_tool("pg_dump", 16, search_path="", candidates=[])
    assert caught.value.details["cause"] == "missing_tool"


def test_debians_pg_wrapper_on_path_is_passed_over_for_the_real_programs(tmp_path):
    """pg_wrapper runs whichever version the environment picks per call, whatever it reported before."""
    wrapper = tmp_path / "pg_wrapper"
    wrapper.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 99.1'\n")
    wrapper.chmod(0o755)
    (tmp_path / "pg_dump").symlink_to(wrapper)
    real = pg_binaries.bindir(17)
    path, version = dumpfile.find_tool("pg_dump", 17, search_path=str(tmp_path), candidates=[real])
    assert path == os.path.join(real, "pg_dump") and version.startswith("17.")


def test_a_dump_of_a_newer_pg_dump_needs_a_pg_restore_as_new(clusters):
    manifest = {"pg_dump_version": "18.6"}
    server = {"version": "16.15", "version_num": 160015}
    assert dumpfile.reader_needs(manifest, server, "db:5432")[0] == 18
    assert dumpfile.reader_needs({"pg_dump_version": "15.18-0+deb12u1)"}, server, "db:5432") == (
        16, "the PostgreSQL 16.15 server at db:5432")
    assert dumpfile.reader_needs({}) == (None, None)
