"""Point-in-time recovery (pg_pitr) on real parts: PostgreSQL 15 archiving through pgBackRest 2.45 into SeaweedFS
over TLS (tests/harness/pgbackrest.py).

Marker rows are written on both sides of a target time; the drill, a recovery into a new directory and the
replacement of the live cluster must each give exactly the markers before it. A stack of this module's own is
replaced and rolled back here, and a second one gets a gap in its archive, so the session's shared stack is never
broken.
"""
import datetime
import os
import shutil
import subprocess
import time

import pytest
from conftest import ansible_playbook, playbook_vars

from ansible_collections.ops.runbook.plugins.module_utils import pg_pitr
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup


def marker_checks():
    return [{"name": "before", "sql": "SELECT count(*) FROM markers WHERE label = 'before'", "expect": 1},
            {"name": "after", "sql": "SELECT count(*) FROM markers WHERE label = 'after'", "expect": 0}]


def write_markers_around_a_target(stack, before="before", after="after"):
    """A marker, a target time strictly after its commit, a marker strictly after the target; all archived."""
    first = stack.write_marker(before)
    time.sleep(0.5)
    target = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.5)
    second = stack.write_marker(after)
    assert first < target < second
    return target


@pytest.fixture(scope="module")
def stack(pgbackrest_stack_factory):
    """This module's own stack: a full backup, then `before`, the target, `after`, and the WAL archived."""
    stack = pgbackrest_stack_factory(stanza="pitr")
    stack.backup("full")
    stack.target = write_markers_around_a_target(stack)
    stack.switch_wal()
    return stack


def params(stack, **overrides):
    values = dict(pg_pitr.DEFAULTS)
    values.update(stack.module_params())
    values.update(login_host=stack.pg.host, login_port=stack.pg.port, login_user="postgres",
                  login_password=stack.pg.password, login_unix_socket="", ssl_mode="disable", connect_timeout=5)
    values.update(target_type="time", target=stack.target.isoformat(), scratch_dir=stack.base_dir,
                  checks=marker_checks(), recovery_timeout=120)
    values.update(overrides)
    return values


def leftovers(stack):
    return sorted(name for name in os.listdir(stack.base_dir) if name.startswith("pitr-drill-"))


def test_check_mode_returns_the_plan_and_changes_nothing(stack):
    pid = stack.pg.pid()
    result = pg_pitr.run_pitr(params(stack, mode="recover", replace_live=True, data_directory=stack.pg.data_dir),
                              True, lambda line: None)
    plan = result["plan"]
    label = stack.run("info").stdout.split("full backup: ")[1].split()[0]
    assert plan["backup"]["label"] == label
    assert plan["wal"]["first"] <= plan["wal"]["last"]
    assert "Expected data loss: every transaction committed after" in result["msg"]
    assert "aside to {0}.pre-pitr-".format(stack.pg.data_dir) in result["msg"]
    assert result["changed"] is False
    assert stack.pg.pid() == pid and not [name for name in os.listdir(stack.pg.base_dir) if "pitr" in name]
    assert stack.markers() == ["before", "after"]


def test_the_playbook_in_check_mode_prints_the_plan(stack):
    extra = {"pgbackrest_stanza": stack.stanza, "pgbackrest_config_path": stack.config_path,
             "postgres_login_host": stack.pg.host, "postgres_login_port": stack.pg.port,
             "postgres_login_password": stack.pg.password,
             "pg_pitr_target_type": "time", "pg_pitr_target": stack.target.isoformat(),
             "pg_pitr_replace_live": True, "pg_pitr_data_directory": stack.pg.data_dir}
    run = ansible_playbook("restore_pitr.yml", extra, "--check")
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 0, output[-3000:]
    assert "Backup set: " in output and "Expected data loss: every transaction committed after" in output
    assert "(kept, never deleted)" in output
    assert stack.markers() == ["before", "after"]


def test_the_drill_recovers_exactly_the_markers_before_the_target_and_leaves_nothing(stack):
    pid = stack.pg.pid()
    result = pg_pitr.run_pitr(params(stack, mode="drill", verify_repository=True), False, lambda line: None)
    checks = {check["name"]: check for check in result["checks"]}
    assert result["status"] == "pass", result["checks"]
    assert checks["pgbackrest_verify"]["status"] == "pass"
    assert (checks["pitr_check:before"]["observed_value"], checks["pitr_check:after"]["observed_value"]) == ("1", "0")
    assert checks["pitr_check:out_of_recovery"]["observed_value"] == "true"
    assert leftovers(stack) == [] and stack.pg.pid() == pid


def test_a_drill_whose_check_does_not_hold_fails(stack):
    wrong = [{"name": "after", "sql": "SELECT count(*) FROM markers WHERE label = 'after'", "expect": 1}]
    result = pg_pitr.run_pitr(params(stack, mode="drill", checks=wrong), False, lambda line: None)
    assert result["failed"] is True and result["status"] == "fail"
    assert "answered 0, expected 1" in result["checks"][-1]["output"]
    assert leftovers(stack) == []


def test_recovery_into_a_new_directory_leaves_the_live_cluster_untouched(stack):
    pid = stack.pg.pid()
    copy = os.path.join(stack.base_dir, "copy")
    result = pg_pitr.run_pitr(params(stack, mode="recover", restore_dir=copy), False, lambda line: None)
    try:
        assert result["status"] == "pass", result["checks"]
        import psycopg2

        conn = psycopg2.connect(host=copy, port=result["port"], user="postgres", dbname="postgres")
        with conn.cursor() as cur:
            cur.execute("SELECT label FROM markers ORDER BY id")
            assert [row[0] for row in cur.fetchall()] == ["before"]
            cur.execute("SHOW archive_mode")
            assert cur.fetchone()[0] == "off"
        conn.close()
        assert stack.pg.pid() == pid and stack.markers() == ["before", "after"]
    finally:
        subprocess.run(pg_pitr.as_user([os.path.join(stack.pg.bindir, "pg_ctl"), "-D", copy, "-m", "immediate",
                                        "-w", "stop"], "postgres"), capture_output=True, check=False)
        shutil.rmtree(copy, ignore_errors=True)


def test_verify_backups_runs_pgbackrest_verify_and_the_drill_when_asked(stack, options, tmp_path):
    run_backup(options)
    extra = playbook_vars(options)
    extra.update(pg_backup_verify_report_dir=str(tmp_path / "reports"), pgbackrest_stanza=stack.stanza,
                 pgbackrest_config_path=stack.config_path, pg_pitr_drill=True, pg_pitr_scratch_dir=stack.base_dir,
                 pg_pitr_target_type="time", pg_pitr_target=stack.target.isoformat(), pg_pitr_checks=marker_checks(),
                 pg_pitr_recovery_timeout=120)
    run = ansible_playbook("verify_backups.yml", extra)
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 0, output[-3000:]
    assert "pgbackrest verify of stanza pitr" in output and "Drill passed" in output
    assert "before: SELECT count(*) FROM markers WHERE label = 'before' answered 1, expected 1." in output
    assert leftovers(stack) == []


def test_a_failed_replacement_of_the_live_cluster_is_rolled_back(stack):
    failing = [{"name": "impossible", "sql": "SELECT count(*) FROM markers", "expect": 99}]
    with pytest.raises(RunbookError) as raised:
        pg_pitr.run_pitr(params(stack, mode="recover", replace_live=True, data_directory=stack.pg.data_dir,
                                checks=failing), False, lambda line: None)
    assert raised.value.details["rolled_back"] is True
    assert "Rolled back: the old data directory is back in {0}".format(stack.pg.data_dir) in str(raised.value)
    assert stack.markers() == ["before", "after"]
    assert stack.pg.execute("SELECT pg_is_in_recovery()")[0][0] is False
    assert not [name for name in os.listdir(stack.pg.base_dir) if "pitr-2" in name.replace("pre-pitr-", "pitr-")]


def test_replacing_the_live_cluster_keeps_the_old_directory_and_comes_back_at_the_target(stack):
    # Runs after the rollback above, whose promoted attempt archived a timeline of its own: the recovery follows
    # the backup's timeline (target_timeline=current), not that one.
    result = pg_pitr.run_pitr(params(stack, mode="recover", replace_live=True, data_directory=stack.pg.data_dir),
                              False, lambda line: None)
    assert result["status"] == "pass", result["checks"]
    aside = result["moved_aside"]
    assert aside.startswith(stack.pg.data_dir + ".pre-pitr-") and os.path.isfile(os.path.join(aside, "PG_VERSION"))
    assert stack.markers() == ["before"]
    assert stack.pg.execute("SELECT pg_is_in_recovery()")[0][0] is False
    # The recovered cluster is the primary now: it archives again.
    stack.write_marker("after recovery")
    stack.switch_wal()


def test_a_gap_in_the_archive_fails_the_drill_naming_the_missing_segment(pgbackrest_stack_factory):
    stack = pgbackrest_stack_factory(stanza="gap")
    stack.backup("full")
    stack.write_marker("a")
    stack.switch_wal()
    stack.write_marker("before")
    needed = stack.switch_wal()
    target = write_markers_around_a_target(stack, before="b", after="after")
    stack.switch_wal()
    stack.target = target
    stack.delete_wal(needed)
    with pytest.raises(RunbookError) as raised:
        pg_pitr.run_pitr(params(stack, mode="drill"), False, lambda line: None)
    assert raised.value.details["missing_segment"] == needed
    assert "WAL segment {0} is missing from the archive (a gap".format(needed) in str(raised.value)
    assert leftovers(stack) == []
