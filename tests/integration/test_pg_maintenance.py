"""pg_maintenance and db_maintenance.yml on a real server: what they remove, and what they never wait for."""
import json
import re

import pytest
from conftest import APP_PASSWORD, APP_ROLE, ansible_playbook, eventually
from harness.ports import free_ports

from ansible_collections.ops.runbook.plugins.module_utils import pg_maintenance_cli
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_maintenance import run_maintenance


@pytest.fixture
def churned(health_primary, scratch_db):
    """scratch_db with a table of 10000 rows, 4000 of them deleted (dead tuples that no autovacuum removes)."""
    health_primary.execute("""
        CREATE TABLE measurements (id int PRIMARY KEY, weight numeric);
        INSERT INTO measurements SELECT g, 70 FROM generate_series(1, 10000) g;
        CREATE TABLE users (id int PRIMARY KEY);
        DELETE FROM measurements WHERE id % 5 < 2;""", database=scratch_db)
    assert eventually(lambda: table_stats(health_primary, scratch_db)["n_dead_tup"] == 4000)
    return scratch_db


def table_stats(server, database, table="measurements"):
    columns = ("n_dead_tup", "last_vacuum", "last_analyze", "vacuum_count")
    row = server.execute("SELECT {} FROM pg_stat_user_tables WHERE relname = %s".format(", ".join(columns)),
                         database=database, params=(table,))[0]
    return dict(zip(columns, row))


def maintain(server, check_mode=False, **options):
    opts = server.conn_params()
    opts.update(options)
    return run_maintenance(opts, check_mode=check_mode)


def test_vacuum_analyze_removes_the_dead_tuples_and_reports_them(health_primary, churned):
    result = maintain(health_primary, databases=[churned])
    step = result["steps"][0]
    assert result["statements"] == ["VACUUM (ANALYZE, SKIP_LOCKED)"]
    assert (step["status"], step["dead_tuples_before"], step["dead_tuples_removed"]) == ("ok", 4000, 4000)
    assert step["duration_seconds"] > 0 and step["skipped_locked"] == []
    assert result["dead_tuples_removed"] == 4000 and result["failed_steps"] == 0
    stats = table_stats(health_primary, churned)
    assert stats["n_dead_tup"] == 0 and stats["last_vacuum"] is not None and stats["last_analyze"] is not None


def test_check_mode_lists_the_statements_and_runs_none(health_primary, churned):
    result = maintain(health_primary, check_mode=True, databases=[churned],
                      operations=["vacuum", "analyze", "reindex"], tables=["public.measurements", "users"])
    assert result["statements"] == [
        'VACUUM (ANALYZE, SKIP_LOCKED) "public"."measurements"',
        'VACUUM (ANALYZE, SKIP_LOCKED) "users"',
        'REINDEX TABLE CONCURRENTLY "public"."measurements"',
        'REINDEX TABLE CONCURRENTLY "users"',
    ]
    assert [s["status"] for s in result["steps"]] == ["planned"] * 4
    assert result["steps"][0]["dead_tuples_before"] == 4000
    assert result["changed"] is False
    stats = table_stats(health_primary, churned)
    assert (stats["n_dead_tup"], stats["last_vacuum"]) == (4000, None)


def test_analyze_alone_and_reindex_concurrently_per_table(health_primary, churned):
    result = maintain(health_primary, databases=[churned], tables=["measurements"], operations=["analyze", "reindex"])
    assert result["statements"] == ['ANALYZE (SKIP_LOCKED) "measurements"',
                                    'REINDEX TABLE CONCURRENTLY "measurements"']
    assert [s["status"] for s in result["steps"]] == ["ok", "ok"]
    stats = table_stats(health_primary, churned)
    assert stats["last_analyze"] is not None and stats["last_vacuum"] is None
    invalid = health_primary.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid", database=churned)[0][0]
    assert invalid == 0


def test_a_locked_table_is_skipped_or_given_up_never_waited_for(health_primary, churned, sessions):
    holder = sessions.open(database=churned, application="long-migration")
    holder.autocommit = False
    holder.cursor().execute("LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE")

    skipped = maintain(health_primary, databases=[churned])
    step = skipped["steps"][0]
    assert step["status"] == "ok"
    assert step["skipped_locked"] == ["public.measurements"]
    assert table_stats(health_primary, churned)["n_dead_tup"] == 4000

    waited = maintain(health_primary, databases=[churned], tables=["measurements", "users"], skip_locked=False,
                      lock_timeout=1, operations=["vacuum", "reindex"])
    by_statement = dict((s["statement"], s) for s in waited["steps"])
    vacuum = by_statement['VACUUM "measurements"']
    assert vacuum["status"] == "failed"
    assert "could not take its lock within lock_timeout (1 s)" in vacuum["error"]
    assert vacuum["duration_seconds"] < 30
    assert by_statement['VACUUM "users"']["status"] == "ok"
    assert by_statement['REINDEX TABLE CONCURRENTLY "measurements"']["status"] == "failed"
    assert waited["failed_steps"] == 2
    assert "Failed:" in waited["msg"]

    holder.rollback()
    assert maintain(health_primary, databases=[churned], tables=["measurements"])["dead_tuples_removed"] == 4000


def test_a_missing_table_fails_its_step_only(health_primary, churned):
    result = maintain(health_primary, databases=[churned], tables=["no_such_table", "measurements"])
    assert [s["status"] for s in result["steps"]] == ["failed", "ok"]
    assert "Table no_such_table does not exist in database {}".format(churned) in result["steps"][0]["error"]


def test_the_slow_query_report_comes_with_the_maintenance(health_primary, churned):
    health_primary.execute("SELECT pg_stat_statements_reset()", database="bmidb")
    for _attempt in range(5):
        health_primary.execute("SELECT pg_sleep(0.05)", database="bmidb")
    result = maintain(health_primary, databases=[churned, "bmidb"])
    report = result["slow_statements"]
    assert report["available"] is True and report["database"] == "bmidb"
    assert any("pg_sleep" in s["query"] and s["calls"] == 5 for s in report["statements"])


def test_a_standby_is_refused(health_standby):
    with pytest.raises(RunbookError) as caught:
        maintain(health_standby, databases=["bmidb"])
    assert caught.value.details["cause"] == "standby"


def test_scheduled_job_runs_the_same_engine(health_primary, churned, tmp_path, capsys):
    options = health_primary.conn_params()
    password = options.pop("login_password")
    options.update(databases=[churned])
    config = tmp_path / "pg_maintenance.json"
    config.write_text(json.dumps(options))
    credentials = tmp_path / "pg_maintenance.credentials.json"
    credentials.write_text(json.dumps({"login_password": password}))
    args = ["--config", str(config), "--credentials", str(credentials)]

    assert pg_maintenance_cli.main(args + ["--check"]) == 0
    assert table_stats(health_primary, churned)["n_dead_tup"] == 4000
    capsys.readouterr()
    assert pg_maintenance_cli.main(args) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["dead_tuples_removed"] == 4000 and line["steps"][0]["status"] == "ok"
    assert "removed 4000 dead tuples" in captured.err
    assert password not in captured.out + captured.err

    credentials.write_text(json.dumps({"login_password": "wrong"}))
    assert pg_maintenance_cli.main(args) == 1
    assert "rejected the login" in capsys.readouterr().err


def playbook_vars(server, database, **extra):
    """db_maintenance.yml's variables: the databases, and the connection every PostgreSQL playbook takes."""
    variables = {"pg_maintenance_databases": [database], "postgres_login_host": server.host,
                 "postgres_login_port": server.port, "postgres_login_user": "postgres",
                 "postgres_login_password": server.password}
    variables.update(extra)
    return variables


def test_playbook_check_mode_lists_then_runs(health_primary, churned):
    variables = playbook_vars(health_primary, churned, pg_maintenance_operations=["vacuum", "analyze", "reindex"])
    planned = ansible_playbook("db_maintenance.yml", variables, "--check")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert "REINDEX DATABASE CONCURRENTLY" in planned.stdout
    assert table_stats(health_primary, churned)["n_dead_tup"] == 4000

    run = ansible_playbook("db_maintenance.yml", variables, "-v")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "VACUUM (ANALYZE, SKIP_LOCKED) | {} |".format(churned) in run.stdout
    assert "| 4000" in run.stdout
    assert "pg_stat_statements" in run.stdout
    assert health_primary.password not in run.stdout
    assert table_stats(health_primary, churned)["n_dead_tup"] == 0


def test_playbook_refuses_missing_databases_a_blocking_reindex_and_a_wrong_password(health_primary, churned):
    refused = ansible_playbook("db_maintenance.yml", {"pg_maintenance_databases": []})
    assert refused.returncode != 0 and "Set pg_maintenance_databases" in refused.stdout
    blocking = ansible_playbook("db_maintenance.yml", playbook_vars(
        health_primary, churned, pg_maintenance_operations=["reindex"], pg_maintenance_reindex_concurrently=False))
    assert blocking.returncode != 0 and "pg_maintenance_allow_blocking_reindex" in blocking.stdout
    wrong = ansible_playbook("db_maintenance.yml", playbook_vars(
        health_primary, churned, postgres_login_user=APP_ROLE, postgres_login_password="nope"))
    assert wrong.returncode != 0
    assert "rejected the login of user '{}'".format(APP_ROLE) in wrong.stdout
    assert APP_PASSWORD not in wrong.stdout


def test_playbook_connects_as_every_postgresql_playbook_does(health_primary, churned):
    """postgres_login_* alone reach the server: db_maintenance.yml once took connection variables of its own."""
    run = ansible_playbook("db_maintenance.yml", {
        "pg_maintenance_databases": [churned], "postgres_login_host": health_primary.host,
        "postgres_login_port": health_primary.port, "postgres_login_user": "postgres",
        "postgres_login_password": health_primary.password}, "--check")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "VACUUM (ANALYZE, SKIP_LOCKED) | {} |".format(churned) in run.stdout
    assert health_primary.password not in run.stdout


def test_playbook_names_the_connection_variables_when_the_server_cannot_be_reached(health_primary, churned):
    closed_port = free_ports(1)[0]
    run = ansible_playbook("db_maintenance.yml", playbook_vars(health_primary, churned, postgres_login_port=closed_port))
    assert run.returncode != 0
    # The task that fails the run, after the module's own failure.
    verdict = run.stdout.split("Say which variables set the connection]", 1)[1]
    verdict = " ".join(verdict.split())
    assert "Cannot reach PostgreSQL at {}:{}".format(health_primary.host, closed_port) in verdict
    assert "that postgres_login_host/postgres_login_port are right." in verdict
    assert ("PostgreSQL is reached as postgres_login_host, postgres_login_port, postgres_login_user and "
            "postgres_login_password say") in verdict
    assert not re.search(r"(?<!postgres_)login_(host|port|user|password)", verdict), verdict
    assert health_primary.password not in run.stdout
    assert table_stats(health_primary, churned)["n_dead_tup"] == 4000
