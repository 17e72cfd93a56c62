"""pg_health against a real primary and a real streaming standby.

Every check is driven to pass, warn and fail by creating its condition on the
server: connections opened, sessions held idle in a transaction, a lock
wait, dead tuples, consumed transaction IDs, a paused and a stopped standby,
a failing archive_command, slow statements with and without pg_stat_statements.
"""
import json
import os
import re
import time

import pytest
from conftest import APP_PASSWORD, APP_ROLE, DATABASE, ansible_module, eventually, module_result

from ansible_collections.ops.runbook.plugins.module_utils import pg_health_cli
from ansible_collections.ops.runbook.plugins.module_utils.pg_health import run_health
from harness.ports import free_ports


def health(server, database=DATABASE, **options):
    opts = server.conn_params(database)
    opts.update(database=database, **options)
    result = run_health(opts)
    assert "error" not in result, result["msg"]
    return result


def fail_at(limit):
    """A threshold with a fail limit and no warning."""
    return {"warn": None, "fail": limit}


def checks_of(result):
    return {item["name"]: item for item in result["checks"]}


def one(server, name, **options):
    options.setdefault("checks", [name])
    return checks_of(health(server, **options))[name]


def client_backends(server):
    """Client sessions other than the one asking."""
    return -1 + server.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")[0][0]


# -- reachable -------------------------------------------------------------

def test_reachable_names_version_role_and_uptime(health_primary, health_standby):
    primary = one(health_primary, "reachable", checks=[])
    standby = one(health_standby, "reachable", checks=[])
    version_num = int(health_primary.execute("SHOW server_version_num")[0][0])
    assert (primary["status"], primary["role"], primary["version_num"]) == ("pass", "primary", version_num)
    assert (standby["status"], standby["role"]) == ("pass", "standby")
    assert primary["uptime_seconds"] > 0
    assert "as a primary" in primary["output"] and "as a standby" in standby["output"]


# -- connections -----------------------------------------------------------

def test_connections_pass_warn_fail_against_max_connections(health_primary, sessions):
    # max_connections is 20: above 80% (17 and 18 sessions) warns, above 90% (19, 20) fails.
    # The health check's own session is one of them.
    first = one(health_primary, "connections")
    assert first["status"] == "pass"
    assert first["max_connections"] == 20
    assert first["threshold"] == {"warn": 80, "fail": 90}

    while client_backends(health_primary) < 16:
        sessions.open()
    warned = one(health_primary, "connections")
    assert (warned["status"], warned["observed_value"], warned["connections"]) == ("warn", 85.0, 17)

    while client_backends(health_primary) < 18:
        sessions.open()
    failed = one(health_primary, "connections")
    assert (failed["status"], failed["observed_value"]) == ("fail", 95.0)
    assert "19 of max_connections 20" in failed["output"]


def test_connections_count_idle_sessions_past_the_runbook_limit(health_primary, sessions):
    sessions.open(application="idle-app")
    time.sleep(1.2)
    check = one(health_primary, "connections", idle_session_minutes=0.01)
    assert check["idle_over_limit"] >= 1
    assert "pg_terminate" in check["output"]


# -- sessions ----------------------------------------------------------------

def test_long_queries(health_primary, sessions):
    assert one(health_primary, "long_queries")["observed_value"] == 0.0
    busy = sessions.open(application="long-report")
    sessions.run_in_background(busy, "SELECT pg_sleep(600)")
    assert eventually(lambda: one(health_primary, "long_queries")["count"] == 1)

    passing = one(health_primary, "long_queries")
    assert passing["status"] == "pass" and "pg_sleep(600)" in passing["output"]
    time.sleep(1.2)
    warned = one(health_primary, "long_queries", thresholds={"long_query_minutes": {"warn": 0.01, "fail": 30}})
    assert warned["status"] == "warn"
    assert [s["pid"] for s in warned["sessions"]] == [sessions.pid(busy)]
    failed = one(health_primary, "long_queries", thresholds={"long_query_minutes": {"warn": 0.005, "fail": 0.01}})
    assert failed["status"] == "fail" and failed["observed_value"] > 0.01


def test_idle_in_transaction(health_primary, sessions):
    assert one(health_primary, "idle_in_transaction")["status"] == "pass"
    held = sessions.idle_in_transaction(application="forgot-commit")
    time.sleep(1.2)
    check = one(health_primary, "idle_in_transaction")
    assert (check["status"], check["count"]) == ("pass", 1)
    warned = one(health_primary, "idle_in_transaction",
                 thresholds={"idle_in_transaction_minutes": {"warn": 0.01, "fail": 10}})
    assert warned["status"] == "warn" and warned["sessions"][0]["pid"] == sessions.pid(held)
    failed = one(health_primary, "idle_in_transaction", thresholds={"idle_in_transaction_minutes": fail_at(0.01)})
    assert failed["status"] == "fail"


def test_blocked_queries(health_primary, sessions):
    health_primary.execute("CREATE TABLE IF NOT EXISTS lock_target (id int)", database=DATABASE)
    assert one(health_primary, "blocked_queries")["observed_value"] == 0.0

    holder = sessions.open(application="migration")
    holder.autocommit = False
    holder.cursor().execute("LOCK TABLE lock_target IN ACCESS EXCLUSIVE MODE")
    waiter = sessions.open(application="api")
    sessions.run_in_background(waiter, "SELECT count(*) FROM lock_target")
    assert eventually(lambda: one(health_primary, "blocked_queries")["count"] == 1)

    check = one(health_primary, "blocked_queries")
    assert check["status"] == "pass"  # a wait of a second is under the default 30 s
    blocked = check["sessions"][0]
    assert (blocked["pid"], blocked["blocked_by"]) == (sessions.pid(waiter), [sessions.pid(holder)])
    time.sleep(0.5)
    assert one(health_primary, "blocked_queries", thresholds={"lock_wait_seconds": {"warn": 0.1, "fail": 300}}
               )["status"] == "warn"
    assert one(health_primary, "blocked_queries", thresholds={"lock_wait_seconds": fail_at(0.1)})["status"] == "fail"
    holder.rollback()
    assert eventually(lambda: one(health_primary, "blocked_queries")["count"] == 0)


# -- storage and statistics ----------------------------------------------------

def _reset_statistics(server):
    for (name,) in server.execute("SELECT datname FROM pg_database WHERE datallowconn"):
        server.execute("SELECT pg_stat_reset()", database=name)


def test_cache_hit_ratio(health_primary, scratch_db):
    # shared_buffers is 16MB: a 40 MB table is read through a small ring
    # buffer on every scan, a 1 MB table stays cached.
    health_primary.execute("""
        CREATE TABLE big AS SELECT g, repeat('x', 400) AS pad FROM generate_series(1, 90000) g;
        CREATE TABLE small AS SELECT g FROM generate_series(1, 20000) g;""", database=scratch_db)
    _reset_statistics(health_primary)
    # pg_stat_reset() leaves the shared catalogs' row, whose hits grow with every connection of the
    # session: enough reads to outweigh them.
    for _attempt in range(8):
        health_primary.execute("SELECT count(*) FROM big", database=scratch_db)
    failed = one(health_primary, "cache_hit_ratio")
    assert failed["status"] == "fail", failed["output"]
    assert failed["blocks_read"] > 10000

    _reset_statistics(health_primary)
    conn = health_primary.connect(scratch_db)
    try:
        with conn.cursor() as cur:
            for _attempt in range(100):
                cur.execute("SELECT count(*) FROM small")
    finally:
        conn.close()
    passing = one(health_primary, "cache_hit_ratio")
    assert passing["status"] == "pass" and passing["observed_value"] > 90
    warned = one(health_primary, "cache_hit_ratio",
                 thresholds={"cache_hit_percent": {"warn": 100, "fail": 50}})
    assert warned["status"] == "warn"


def test_cache_hit_ratio_is_not_judged_on_too_few_reads(health_primary):
    check = one(health_primary, "cache_hit_ratio", cache_hit_min_blocks=10 ** 12)
    assert check["status"] == "pass" and check["observed_value"] is None
    assert "too few" in check["output"]


def _dead(server, database, table):
    rows = server.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
                          database=database, params=(table,))
    return rows[0][0] if rows else 0


def test_dead_tuples(health_primary, scratch_db):
    health_primary.execute("CREATE TABLE churn AS SELECT g AS id, repeat('y', 100) AS pad "
                           "FROM generate_series(1, 20000) g", database=scratch_db)
    table_checks = dict(checks=["dead_tuples"], min_table_size_mb=1)
    assert one(health_primary, "dead_tuples", database=scratch_db, **table_checks)["status"] == "pass"

    health_primary.execute("DELETE FROM churn WHERE id % 10 < 3", database=scratch_db)
    assert eventually(lambda: _dead(health_primary, scratch_db, "churn") == 6000)
    warned = one(health_primary, "dead_tuples", database=scratch_db, **table_checks)
    assert (warned["status"], warned["observed_value"]) == ("warn", 30.0)
    assert warned["tables"][0]["table"] == "public.churn"

    health_primary.execute("DELETE FROM churn WHERE id % 10 < 6", database=scratch_db)
    assert eventually(lambda: _dead(health_primary, scratch_db, "churn") == 12000)
    assert one(health_primary, "dead_tuples", database=scratch_db, **table_checks)["status"] == "fail"

    health_primary.execute("VACUUM churn", database=scratch_db)
    assert eventually(lambda: _dead(health_primary, scratch_db, "churn") == 0)
    assert one(health_primary, "dead_tuples", database=scratch_db, **table_checks)["status"] == "pass"

    small_floor = one(health_primary, "dead_tuples", database=scratch_db, checks=["dead_tuples"],
                      min_table_size_mb=100)
    assert "0 tables" in small_floor["output"]


def test_last_vacuum_and_analyze(health_primary, scratch_db):
    health_primary.execute("CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 50000) g",
                           database=scratch_db)
    opts = dict(database=scratch_db, checks=["last_vacuum", "last_analyze"], min_table_size_mb=1)
    never = checks_of(health(health_primary, **opts))
    assert never["last_vacuum"]["status"] == "warn"
    assert never["last_vacuum"]["never"] == ["public.orders"]
    assert "never vacuumed" in never["last_vacuum"]["output"]

    health_primary.execute("VACUUM ANALYZE orders", database=scratch_db)
    fresh = checks_of(health(health_primary, **opts))
    assert (fresh["last_vacuum"]["status"], fresh["last_analyze"]["status"]) == ("pass", "pass")
    time.sleep(1)
    tight = {"vacuum_age_days": {"warn": 0.000001, "fail": 1}, "analyze_age_days": fail_at(0.000001)}
    aged = checks_of(health(health_primary, thresholds=tight, **opts))
    assert (aged["last_vacuum"]["status"], aged["last_analyze"]["status"]) == ("warn", "fail")
    assert aged["last_analyze"]["tables"][0]["table"] == "public.orders"


def test_wraparound_counts_real_transaction_ids(health_primary):
    before = one(health_primary, "wraparound")
    assert before["status"] == "pass" and before["percent_to_wraparound"] < 1
    age = before["observed_value"]
    conn = health_primary.connect()
    try:
        with conn.cursor() as cur:
            for _attempt in range(60):
                cur.execute("SELECT txid_current()")
    finally:
        conn.close()
    limits = {"xid_age": {"warn": age + 10, "fail": age + 10000}}
    assert one(health_primary, "wraparound", thresholds=limits)["status"] == "warn"
    assert one(health_primary, "wraparound", thresholds={"xid_age": fail_at(age + 10)})["status"] == "fail"


def test_database_size(health_primary):
    check = one(health_primary, "database_size")
    assert check["status"] == "pass"
    sizes = {d["name"]: d["size_bytes"] for d in check["databases"]}
    assert sizes[DATABASE] == health_primary.execute("SELECT pg_database_size(%s)", params=(DATABASE,))[0][0]
    assert one(health_primary, "database_size", thresholds={"database_size_bytes": fail_at(1024)})["status"] == "fail"


# -- replication -------------------------------------------------------------

def _streaming(server):
    return server.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0] == 1


def test_replication_passes_from_both_sides_while_streaming(health_primary, health_standby):
    assert eventually(lambda: _streaming(health_primary))
    health_primary.execute("CREATE TABLE IF NOT EXISTS replicated (id int)", database=DATABASE)
    primary = checks_of(health(health_primary, checks=["replication", "replication_slots"]))
    assert primary["standbys"]["observed_value"] == 1
    assert primary["replication_lag"]["status"] == "pass"
    assert primary["replication_lag_bytes"]["side"] == "primary"
    assert primary["replication_slots"]["slots"][0]["name"] == health_standby.slot
    assert primary["replication_slots"]["status"] == "pass"
    standby = checks_of(health(health_standby, checks=["replication"]))
    assert standby["wal_receiver"]["status"] == "pass"
    assert standby["replication_lag"]["side"] == "standby"
    missing = checks_of(health(health_primary, checks=["replication"], expected_standbys=2))
    assert missing["standbys"]["status"] == "fail" and "2 expected" in missing["standbys"]["output"]


def test_replication_lag_grows_while_replay_is_paused(health_primary, health_standby):
    assert eventually(lambda: _streaming(health_primary))
    # A transaction replayed before the pause gives the standby a replay time to measure from.
    health_primary.execute("CREATE TABLE IF NOT EXISTS replicated (id int); INSERT INTO replicated VALUES (1)",
                           database=DATABASE)
    assert eventually(lambda: one(health_standby, "replication_lag_bytes", checks=["replication"])[
        "observed_value"] == 0 and health_standby.execute("SELECT pg_last_xact_replay_timestamp() IS NOT NULL")[0][0])
    health_standby.execute("SELECT pg_wal_replay_pause()")
    try:
        health_primary.execute("CREATE TABLE lagging AS SELECT g FROM generate_series(1, 200000) g",
                               database=DATABASE)
        assert eventually(lambda: one(health_standby, "replication_lag_bytes", checks=["replication"])[
            "observed_value"] > 1024 * 1024)
        time.sleep(1.2)
        limits = {"replication_lag_bytes": {"warn": 1024, "fail": 1024 ** 3},
                  "replication_lag_seconds": {"warn": 0.5, "fail": 3600}}
        on_standby = checks_of(health(health_standby, checks=["replication"], thresholds=limits))
        assert on_standby["replication_lag_bytes"]["status"] == "warn"
        assert on_standby["replication_lag"]["status"] == "warn"
        assert on_standby["replication_lag"]["replay_paused"] is True
        assert "paused" in on_standby["replication_lag"]["output"]
        on_primary = checks_of(health(health_primary, checks=["replication"],
                                      thresholds={"replication_lag_bytes": fail_at(1024)}))
        assert on_primary["replication_lag_bytes"]["status"] == "fail"
        assert on_primary["replication_lag_bytes"]["observed_value"] > 1024 * 1024
    finally:
        health_standby.execute("SELECT pg_wal_replay_resume()")
    assert eventually(lambda: one(health_standby, "replication_lag_bytes", checks=["replication"])[
        "observed_value"] == 0)
    assert one(health_standby, "replication_lag", checks=["replication"])["status"] == "pass"


def test_stopped_standby_leaves_an_inactive_slot_retaining_wal(health_primary, health_standby):
    health_standby.stop()
    try:
        assert eventually(lambda: not _streaming(health_primary))
        checks = checks_of(health(health_primary, checks=["replication", "replication_slots"],
                                  expected_standbys=1))
        assert checks["standbys"]["status"] == "fail"
        assert checks["replication_slots"]["status"] == "warn"
        assert "inactive" in checks["replication_slots"]["output"]

        health_primary.execute("CREATE TABLE wal_filler AS SELECT g, repeat('z', 200) AS pad "
                               "FROM generate_series(1, 100000) g; SELECT pg_switch_wal()", database=DATABASE)
        slots = one(health_primary, "replication_slots", thresholds={"slot_retained_bytes": {"warn": None,
                                                                                             "fail": 8 * 1024 ** 2}})
        assert slots["status"] == "fail"
        assert slots["observed_value"] > 8 * 1024 ** 2
        assert slots["slots"][0]["active"] is False
    finally:
        health_standby.start()
    assert eventually(lambda: _streaming(health_primary), timeout=30)
    assert one(health_standby, "wal_receiver", checks=["replication"])["status"] == "pass"


# -- WAL archiving -------------------------------------------------------------

def _archiver(server, sql):
    server.execute(sql)
    server.execute("SELECT pg_reload_conf()")


def test_archiver_fails_while_archive_command_fails(health_primary):
    assert one(health_primary, "archiver")["status"] == "pass"
    _archiver(health_primary, "ALTER SYSTEM SET archive_command = 'false'")
    try:
        health_primary.execute("CREATE TABLE IF NOT EXISTS archived (id int); INSERT INTO archived VALUES (1); "
                               "SELECT pg_switch_wal()", database=DATABASE)
        failed = eventually(lambda: one(health_primary, "archiver")["status"] == "fail" and
                            one(health_primary, "archiver"))
        assert failed and failed["failing"] is True
        assert "archive_command is failing" in failed["output"]
        assert failed["observed_value"] >= 1
    finally:
        _archiver(health_primary, "ALTER SYSTEM SET archive_command = '/bin/true'")
    health_primary.execute("INSERT INTO archived VALUES (2); SELECT pg_switch_wal()", database=DATABASE)
    assert eventually(lambda: one(health_primary, "archiver")["status"] == "pass", timeout=90)


def test_archiver_warns_on_a_backlog(health_primary):
    _archiver(health_primary, "ALTER SYSTEM SET archive_command = 'sleep 2'")
    try:
        for value in range(3):
            health_primary.execute("CREATE TABLE IF NOT EXISTS archived (id int); INSERT INTO archived VALUES (%s); "
                                   "SELECT pg_switch_wal()", database=DATABASE, params=(value,))
        check = one(health_primary, "archiver", thresholds={"archive_ready_files": {"warn": 1, "fail": 100}})
        assert check["status"] == "warn" and check["observed_value"] >= 2
        assert check["failing"] is False
    finally:
        _archiver(health_primary, "ALTER SYSTEM SET archive_command = '/bin/true'")


# -- pg_stat_statements ----------------------------------------------------------

def test_slow_statements_from_pg_stat_statements(health_primary):
    health_primary.execute("SELECT pg_stat_statements_reset()", database=DATABASE)
    conn = health_primary.connect(DATABASE)
    try:
        with conn.cursor() as cur:
            for _attempt in range(5):
                cur.execute("SELECT pg_sleep(0.15)")
    finally:
        conn.close()
    check = one(health_primary, "slow_statements")
    assert check["available"] is True and check["mean_column"] == "mean_exec_time"
    assert check["status"] == "warn", check["output"]
    slowest = check["statements"][0]
    assert "pg_sleep" in slowest["query"] and slowest["calls"] == 5 and slowest["mean_ms"] >= 150
    assert one(health_primary, "slow_statements", thresholds={"slow_statement_ms": fail_at(120)})["status"] == "fail"
    assert one(health_primary, "slow_statements", slow_statements_min_calls=6)["status"] == "pass"


def test_slow_statements_without_the_extension_fail_as_unchecked(health_primary, pg):
    not_installed = one(health_primary, "slow_statements", database="postgres")
    assert (not_installed["status"], not_installed["unchecked"], not_installed["available"]) == ("fail", True, False)
    assert not_installed["output"].startswith("Could not check slow statements: pg_stat_statements is not installed "
                                              "in database postgres")
    assert "CREATE EXTENSION pg_stat_statements" in not_installed["output"]
    assert not_installed["output"].endswith("Or leave slow_statements out of checks.")

    # The backup tests' server does not preload the library; a database of its own keeps their dumps as they were.
    if not pg.execute("SELECT 1 FROM pg_database WHERE datname = 'stats_not_loaded'"):
        pg.create_database("stats_not_loaded")
    pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database="stats_not_loaded")
    not_loaded = one(pg, "slow_statements", database="stats_not_loaded")
    assert (not_loaded["status"], not_loaded["unchecked"], not_loaded["available"]) == ("fail", True, False)
    assert "shared_preload_libraries" in not_loaded["output"]


def test_the_default_checks_leave_slow_statements_out_and_it_never_passes_unasked(pg):
    # The backup tests' server: no pg_stat_statements at all, as most servers.
    result = health(pg, database="postgres")
    names = [item["name"] for item in result["checks"]]
    assert "slow_statements" not in names and "wraparound" in names
    asked = health(pg, database=DATABASE, checks=["slow_statements"])
    check = checks_of(asked)["slow_statements"]
    assert (check["status"], check["unchecked"]) == ("fail", True)
    assert "pg_stat_statements is not installed in database {0}".format(DATABASE) in check["output"]
    assert asked["status"] == "fail" and asked["failed_checks"] == ["slow_statements"]


def app_health(server, checks, **options):
    """run_health as the application role: no superuser, no pg_monitor."""
    opts = server.conn_params(DATABASE, user=APP_ROLE, password=APP_PASSWORD)
    opts.update(database=DATABASE, checks=checks, **options)
    result = run_health(opts)
    assert "error" not in result, result["msg"]
    return checks_of(result)


def test_a_role_that_cannot_see_other_sessions_never_passes_the_session_checks(health_primary, sessions):
    busy = sessions.open(application="hidden-report")
    sessions.run_in_background(busy, "SELECT pg_sleep(600)")
    time.sleep(1.2)
    limits = {"long_query_minutes": {"warn": 0.01, "fail": 30}}
    # The superuser sees the long query; the application role would have seen "No active queries".
    assert one(health_primary, "long_queries", thresholds=limits)["status"] == "warn"
    seen = app_health(health_primary, ["long_queries", "idle_in_transaction", "blocked_queries", "connections",
                                       "archiver"], thresholds=limits)
    for name in ("long_queries", "idle_in_transaction", "blocked_queries"):
        assert (seen[name]["status"], seen[name]["unchecked"]) == ("fail", True), seen[name]
        assert "role {0} may not see other roles' sessions".format(APP_ROLE) in seen[name]["output"]
        assert "pg_monitor" in seen[name]["output"]
    # pg_ls_archive_statusdir() is refused to it: the check could not run, and says so.
    assert (seen["archiver"]["status"], seen["archiver"]["unchecked"]) == ("fail", True)
    assert "permission denied for function pg_ls_archive_statusdir" in seen["archiver"]["output"]
    # Connections are counted from pg_stat_database, which hides no one: the busy session is in the count.
    assert seen["connections"]["counted_from"] == "pg_stat_database"
    assert seen["connections"]["connections"] >= 2

    health_primary.execute("GRANT pg_monitor TO {0}".format(APP_ROLE))
    try:
        granted = app_health(health_primary, ["long_queries", "archiver"], thresholds=limits)
        assert granted["long_queries"]["status"] == "warn" and "unchecked" not in granted["long_queries"]
        assert granted["archiver"]["status"] == "pass"
    finally:
        health_primary.execute("REVOKE pg_monitor FROM {0}".format(APP_ROLE))


def test_a_role_that_cannot_read_the_standbys_positions_does_not_pass_replication(health_primary, health_standby):
    assert eventually(lambda: _streaming(health_primary), timeout=30)
    seen = app_health(health_primary, ["replication"])
    assert list(seen) == ["reachable", "standbys"]
    assert (seen["standbys"]["status"], seen["standbys"]["unchecked"]) == ("fail", True)
    assert "1 WAL sender connected to this primary, but role {0} may not read".format(APP_ROLE) in \
        seen["standbys"]["output"]


# -- renderings and entry points -------------------------------------------------------

def test_one_result_renders_as_nagios_and_prometheus(health_primary, tmp_path, sessions):
    path = str(tmp_path / "postgres.prom")
    held = sessions.idle_in_transaction(application="renders")
    time.sleep(1.2)
    result = health(health_primary, prometheus_file=path, thresholds={"idle_in_transaction_minutes": fail_at(0.01)})
    assert result["status"] == "fail" and result["changed"] is True
    assert result["nagios"]["exit_code"] == 2
    assert result["nagios"]["line"].startswith("POSTGRES CRITICAL - idle_in_transaction: ")
    assert str(sessions.pid(held)) in result["nagios"]["line"]
    text = open(path).read()
    statuses = dict(re.findall(r'^ops_runbook_pg_check_status\{check="([a-z_]+)"[^}]*\} (\d)$', text, re.M))
    assert statuses["idle_in_transaction"] == "2"
    assert set(statuses) == set(c["name"] for c in result["checks"])
    assert not [name for name in os.listdir(str(tmp_path)) if name != "postgres.prom"]


def test_host_command_is_a_nagios_plugin_and_textfile_writer(health_primary, tmp_path, capsys):
    options = health_primary.conn_params(DATABASE)
    password = options.pop("login_password")
    options.update(database=DATABASE, checks=["connections"], thresholds={"db_connections_percent": fail_at(1)})
    config = tmp_path / "pg_health.json"
    config.write_text(json.dumps(options))
    credentials = tmp_path / "pg_health.credentials.json"
    credentials.write_text(json.dumps({"login_password": password}))
    prom = tmp_path / "pg.prom"
    args = ["--config", str(config), "--credentials", str(credentials)]

    assert pg_health_cli.main(args + ["--prometheus-file", str(prom)]) == 2
    assert capsys.readouterr().out.startswith("POSTGRES CRITICAL - connections: ")
    assert 'ops_runbook_pg_check_status{check="connections",unit="percent"} 2' in prom.read_text()
    assert pg_health_cli.main(args + ["--report-only"]) == 0
    capsys.readouterr()

    credentials.write_text(json.dumps({"login_password": "wrong"}))
    assert pg_health_cli.main(args) == 2
    out = capsys.readouterr().out
    assert "rejected the login" in out and password not in out
    config.write_text("{not json")
    assert pg_health_cli.main(args) == 3
    assert "POSTGRES UNKNOWN - The config file" in capsys.readouterr().out


# -- through Ansible --------------------------------------------------------------------

def module_args(server, **extra):
    args = server.conn_params(DATABASE, user=APP_ROLE, password=APP_PASSWORD)
    args.pop("login_db")
    args.update(database=DATABASE, **extra)
    return args


def test_module_passes_in_check_mode_and_fails_on_a_failed_check(health_primary):
    run = ansible_module("ops.runbook.pg_health", module_args(health_primary, checks=["connections"]), "--check")
    result = module_result(run)
    assert run.returncode == 0, run.stdout[-2000:]
    assert result["status"] == "pass" and result["changed"] is False
    assert [c["name"] for c in result["checks"]] == ["reachable", "connections"]

    limits = {"db_connections_percent": fail_at(1)}
    failing = module_args(health_primary, checks=["connections"], thresholds=limits)
    run = ansible_module("ops.runbook.pg_health", failing)
    result = module_result(run)
    assert run.returncode != 0
    assert result["failed"] is True and result["failed_checks"] == ["connections"]
    assert result["msg"].startswith("PostgreSQL health FAIL: 1 fail, 0 warn, 1 pass. connections: ")
    assert "ignored_thresholds" not in result

    run = ansible_module("ops.runbook.pg_health", dict(failing, fail_on="never"))
    assert run.returncode == 0 and module_result(run)["status"] == "fail"

    # A threshold of another module is a misspelt one here: refused, with the names this module knows.
    limits = dict(limits, disk_used_percent={"warn": 80, "fail": 95})
    misspelt = module_args(health_primary, checks=["connections"], thresholds=limits)
    run = ansible_module("ops.runbook.pg_health", misspelt)
    result = module_result(run)
    assert run.returncode != 0 and result["cause"] == "invalid"
    assert result["msg"].startswith("Unknown threshold disk_used_percent in thresholds. Known thresholds: "
                                    "analyze_age_days, archive_ready_files, cache_hit_percent, ")


@pytest.mark.parametrize("change,cause,words", [
    ({"login_password": "not-the-password"}, "authentication",
     "rejected the login of user '{}'".format(APP_ROLE)),
    ({"login_port": None}, "unreachable", "Cannot reach PostgreSQL at 127.0.0.1:"),
    ({"database": "no_such_db"}, "missing_database", "Database 'no_such_db' does not exist"),
], ids=["wrong_password", "unreachable_host", "missing_database"])
def test_module_gives_one_clear_error_per_connection_failure(health_primary, change, cause, words):
    args = module_args(health_primary)
    args.update(change)
    if "login_port" in change:
        args["login_port"] = free_ports(1)[0]
    run = ansible_module("ops.runbook.pg_health", args, "-vvv")
    result = module_result(run)
    assert run.returncode != 0
    assert result["cause"] == cause
    assert words in result["msg"]
    assert [c["name"] for c in result["checks"]] == ["reachable"]
    assert result["checks"][0]["status"] == "fail"
    assert result["nagios"]["exit_code"] == 2
    assert APP_PASSWORD not in run.stdout + run.stderr


def test_slow_statements_read_the_column_names_of_the_installed_extension(health_primary, scratch_db):
    # pg_stat_statements 1.7 is the version PostgreSQL 12 ships: its view has
    # mean_time and total_time, which 1.8 (PostgreSQL 13) renamed.
    health_primary.execute("CREATE EXTENSION pg_stat_statements VERSION '1.7'", database=scratch_db)
    health_primary.execute("SELECT pg_stat_statements_reset()", database=scratch_db)
    conn = health_primary.connect(scratch_db)
    try:
        with conn.cursor() as cur:
            for _attempt in range(5):
                cur.execute("SELECT pg_sleep(0.12)")
    finally:
        conn.close()
    check = one(health_primary, "slow_statements", database=scratch_db)
    assert check["mean_column"] == "mean_time"
    assert check["status"] == "warn"
    assert "pg_sleep" in check["statements"][0]["query"] and check["statements"][0]["mean_ms"] >= 120
