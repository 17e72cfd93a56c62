"""The disk_cleanup role's host after converge, then its installed command and unit run for real.

Converge already proved that the role's run deleted exactly what check mode
predicted. Here: what it deleted and what it kept, the schedule, and the
scheduled job's engine on fresh rotated logs and journal archives, whose check
mode prediction must equal what the run then frees.
"""
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

COMMAND = "/usr/local/bin/ops-runbook-disk-cleanup"
CONFIG = "/etc/ops-runbook/disk_cleanup.json"
SERVICE = "ops-runbook-disk-cleanup.service"
TIMER = "ops-runbook-disk-cleanup.timer"


@pytest.mark.parametrize("path", [
    "/var/log/app/app.log.1", "/var/log/app/app.log.2.gz", "/var/log/app/app.log.5.gz",
    "/var/backups/app/bmidb-60.sql.gz", "/var/backups/app/bmidb-50.sql.gz",
])
def test_old_rotated_logs_and_backups_are_gone(host, path):
    assert not host.file(path).exists


@pytest.mark.parametrize("path", [
    "/var/log/app/app.log",              # the live log
    "/var/log/app/app.log.6.gz",         # rotated 2 days ago, younger than the rule's 7 days
    "/var/backups/app/bmidb-1.sql.gz",   # keep_newest 2 keeps the newest two backups ...
    "/var/backups/app/bmidb-40.sql.gz",  # ... even the one older than 30 days
])
def test_young_files_and_kept_backups_remain(host, path):
    assert host.file(path).is_file


def test_data_directory_and_the_symlinks_into_it_are_untouched(host):
    for path in ("/var/lib/postgresql/15/main/base/16384.1", "/var/lib/postgresql/15/main/base/pg_wal.1.gz"):
        assert host.file(path).is_file, path
    assert host.file("/var/log/app/escape.1.gz").is_symlink
    assert host.file("/var/log/app/pgdata").is_symlink


def test_the_journal_was_vacuumed_to_its_limit(host):
    """At most 20M remain, unless the active file alone is bigger: then no archive is left."""
    directory = host.check_output("ls -d /var/log/journal/$(cat /etc/machine-id)")
    names = host.check_output("ls %s", directory).split()
    total = int(host.check_output("du -B1 -c %s/*.journal | tail -1", directory).split()[0])
    archived = [name for name in names if "@" in name]
    assert total <= 20 * 1024 * 1024 or archived == [], (total, names)


def test_rules_file_holds_the_rules(host):
    config = json.loads(host.file(CONFIG).content_string)
    assert [rule["name"] for rule in config["rules"]] == ["journal", "rotated logs", "old backups"]
    assert config["protected_paths"] == []


def test_timer_is_enabled_and_units_verify(host):
    timer = host.service(TIMER)
    assert timer.is_enabled and timer.is_running
    assert "03:30:00" in host.check_output("systemctl show -p TimersCalendar --value %s", TIMER)
    host.run_expect([0], "systemd-analyze verify /etc/systemd/system/%s /etc/systemd/system/%s", SERVICE, TIMER)


def _fresh_mess(host):
    """New rotated logs and journal archives for one more run."""
    host.run_expect([0], "set -e; for n in 7 8 9; do head -c 300000 /dev/urandom > /var/log/app/old.log.$n.gz;"
                         " touch -d '20 days ago' /var/log/app/old.log.$n.gz; done")
    host.run_expect([0], "/usr/local/sbin/ops-test-fill-journal 4")


def test_the_installed_command_frees_what_its_check_mode_predicts(host):
    _fresh_mess(host)
    predicted = json.loads(host.check_output("%s --check", COMMAND))
    done = json.loads(host.check_output(COMMAND))
    by_rule = dict((rule["name"], rule) for rule in done["rules"])
    for rule in predicted["rules"]:
        assert rule["action"] == "would delete"
        assert by_rule[rule["name"]]["bytes"] == rule["bytes"], (rule, by_rule[rule["name"]])
        assert by_rule[rule["name"]]["paths"] == rule["paths"]
    assert by_rule["journal"]["files"] > 0 and by_rule["journal"]["unplanned"] == []
    assert by_rule["rotated logs"]["files"] == 3
    assert done["bytes"] == predicted["bytes"] > 2 * 1024 * 1024
    assert not host.file("/var/log/app/old.log.7.gz").exists
    assert host.file("/var/lib/postgresql/15/main/base/pg_wal.1.gz").is_file


def test_the_scheduled_unit_runs_the_cleanup(host):
    host.run_expect([0], "head -c 100000 /dev/urandom > /var/log/app/late.log.1; touch -d '9 days ago' /var/log/app/late.log.1")
    host.run_expect([0], "systemctl start %s", SERVICE)
    show = host.check_output("systemctl show -p Result -p ExecMainStatus %s", SERVICE)
    assert "Result=success" in show and "ExecMainStatus=0" in show
    assert not host.file("/var/log/app/late.log.1").exists
    log = host.check_output("journalctl -u %s -o cat --no-pager", SERVICE)
    assert "disk cleanup: Freed" in log


def test_a_bad_config_fails_the_command_with_the_reason(host):
    bad = '{"rules": [{"type": "files", "paths": ["/"], "patterns": ["*.gz"], "older_than_days": 1}]}'
    host.run_expect([0], "printf '%%s' %s > /tmp/bad-cleanup.json", bad)
    result = host.run("%s --config /tmp/bad-cleanup.json", COMMAND)
    assert result.rc == 1
    assert "Refusing to clean /: it is a system directory" in result.stderr
