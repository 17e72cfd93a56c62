"""The pg_maintenance role's host, checked from outside, then its scheduled job run once for real."""
import json
import os

import pytest
import testinfra.utils.ansible_runner

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

CONFIG = "/etc/ops-runbook/pg_maintenance.json"
CREDENTIALS = "/etc/ops-runbook/pg_maintenance.credentials.json"
LOG = "/var/log/ops-runbook/pg_maintenance.log"
SERVICE = "ops-runbook-pg-maintenance.service"
TIMER = "ops-runbook-pg-maintenance.timer"


def psql(host, sql):
    return host.check_output("runuser -u postgres -- psql -XtA -d bmidb -c %s", sql)


def test_timer_is_monthly_enabled_and_active(host):
    timer = host.service(TIMER)
    assert timer.is_enabled and timer.is_running
    assert "*-*-01 03:30:00" in host.check_output("systemctl show -p TimersCalendar --value %s", TIMER)


def test_service_runs_the_engine_as_postgres_into_the_log(host):
    show = host.check_output("systemctl show -p Type -p User %s", SERVICE)
    assert "Type=oneshot" in show and "User=postgres" in show
    unit = host.file("/etc/systemd/system/" + SERVICE).content_string.splitlines()
    assert "StandardOutput=append:" + LOG in unit
    engine = host.file("/usr/local/lib/ops-runbook/ops_runbook_utils")
    assert {"__init__.py", "pg_maintenance_cli.py", "pg_maintenance.py", "pg_health.py"} <= set(engine.listdir())


def test_config_and_credentials(host):
    config = host.file(CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "postgres", 0o640)
    job = json.loads(config.content_string)
    assert job["databases"] == ["bmidb"]
    assert job["operations"] == ["vacuum", "analyze", "reindex"]
    assert (job["lock_timeout"], job["statement_timeout"]) == (5, 3600)
    assert "login_password" not in job
    credentials = host.file(CREDENTIALS)
    assert (credentials.user, credentials.mode) == ("postgres", 0o600)


def test_log_is_readable_by_root_and_the_group_only(host):
    log = host.file(LOG)
    assert (log.user, log.group, log.mode) == ("root", "postgres", 0o640)
    log_dir = host.file(os.path.dirname(LOG))
    assert (log_dir.group, log_dir.mode) == ("postgres", 0o750)


def test_logrotate_rule_is_valid(host):
    rule = host.file("/etc/logrotate.d/ops-runbook-pg-maintenance")
    assert rule.contains("monthly") and rule.contains(LOG)
    assert rule.contains("create 0640 root postgres")
    host.run_expect([0], "logrotate --debug /etc/logrotate.d/ops-runbook-pg-maintenance")


def test_health_command_checks_the_local_server(host):
    """The pg_health engine on the host: a Nagios line and exit status, and a textfile for node_exporter."""
    checked = host.run("runuser -u postgres -- /usr/local/bin/ops-runbook-pg-health")
    assert checked.rc in (0, 1), checked.stdout + checked.stderr
    assert checked.stdout.startswith(("POSTGRES OK - ", "POSTGRES WARNING - "))
    assert "connections=" in checked.stdout
    host.run_expect([0], "runuser -u postgres -- /usr/local/bin/ops-runbook-pg-health --report-only "
                         "--prometheus-file /tmp/postgres.prom")
    metrics = host.file("/tmp/postgres.prom").content_string
    assert 'ops_runbook_pg_check_status{check="reachable"} 0' in metrics
    missing = host.run("runuser -u postgres -- /usr/local/bin/ops-runbook-pg-health --config /nonexistent.json")
    assert missing.rc == 3 and missing.stdout.startswith("POSTGRES UNKNOWN - Cannot read the config file")


def test_check_mode_runs_nothing(host):
    output = host.run_expect([0], "runuser -u postgres -- /usr/local/bin/ops-runbook-pg-maintenance --check")
    assert "would run VACUUM (ANALYZE, SKIP_LOCKED)" in output.stderr
    assert psql(host, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'measurements'") == "3000"


@pytest.fixture(scope="module")
def scheduled_run(host):
    """Start the schedule's service once, as the timer would; return the lines it logged."""
    before = len(host.file(LOG).content_string.splitlines()) if host.file(LOG).exists else 0
    started = host.run("systemctl start %s", SERVICE)
    lines = host.file(LOG).content_string.splitlines()[before:]
    assert started.rc == 0, "{} failed: {}{}\nlog:\n{}".format(SERVICE, started.stdout, started.stderr,
                                                               "\n".join(lines))
    return lines


def test_service_succeeded(host, scheduled_run):
    show = host.check_output("systemctl show -p Result -p ExecMainStatus %s", SERVICE)
    assert "Result=success" in show and "ExecMainStatus=0" in show


def test_log_has_each_step_and_the_slow_query_report(scheduled_run):
    text = "\n".join(scheduled_run)
    assert "VACUUM (ANALYZE, SKIP_LOCKED) took" in text
    assert "removed 3000 dead tuples" in text
    assert 'REINDEX DATABASE CONCURRENTLY "bmidb" took' in text
    assert "slow-query report: pg_stat_statements is not installed" in text
    result = json.loads([line for line in scheduled_run if line.startswith("{")][-1])
    assert result["dead_tuples_removed"] == 3000 and result["failed_steps"] == 0


def test_the_table_was_vacuumed_and_analyzed(host, scheduled_run):
    row = psql(host, "SELECT n_dead_tup, last_vacuum IS NOT NULL, last_analyze IS NOT NULL "
                     "FROM pg_stat_user_tables WHERE relname = 'measurements'")
    assert row == "0|t|t"
