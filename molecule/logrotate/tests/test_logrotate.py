"""The logrotate role's effect on a real host: logs really rotate, the postrotate reload really runs once,
files leave with their rules, and the role refuses what would break the daily run.

Tests run in file order: the rotations first, then runs of the role that must fail.
"""
import os

import pytest
import testinfra.utils.ansible_runner
from harness.playbook import run_playbook

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = "/etc/logrotate.d"
MARKER = "# Managed by ops.runbook.logrotate (scope: default, rule: "
BACKEND_LOG = "/var/log/bmi-backend.log"
ACCESS_LOG = "/var/log/bmi-backend/access.log"
WORKER_LOG = "/var/log/bmi-worker/jobs.log"
RELOADS = "/var/lib/bmi-backend/reloads"


def run_role(extra_vars):
    """Apply the role to the scenario's host with these variables: (exit status, output on one line)."""
    return run_playbook(os.path.join(SCENARIO_DIR, "apply_role.yml"), extra_vars, os.environ["MOLECULE_INVENTORY_FILE"])


def reload_count(host):
    reloads = host.file(RELOADS)
    return len(reloads.content_string.splitlines()) if reloads.exists else 0


def write_log(host, path, text):
    host.run_expect([0], "printf '%%s\\n' %s >> %s", text, path)


def test_runbook_file_replaced_with_the_rendered_one(host):
    config = host.file(CONFIG_DIR + "/bmi-backend")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o644)
    lines = [line.strip() for line in config.content_string.splitlines()]
    assert lines[0] == MARKER + "bmi-backend)."
    assert lines[2:4] == [BACKEND_LOG, ACCESS_LOG + " {"]
    for directive in ("daily", "rotate 14", "missingok", "notifempty", "compress", "delaycompress",
                      "create 0640 ubuntu ubuntu", "sharedscripts", "postrotate",
                      "systemctl reload bmi-backend > /dev/null 2>&1 || true", "endscript"):
        assert directive in lines


def test_taken_over_file_is_kept_outside_logrotate_d(host):
    kept = host.file("/var/backups/ops-runbook/logrotate.d/bmi-backend")
    assert kept.exists
    assert "create 0640 ubuntu ubuntu" in kept.content_string
    assert MARKER not in kept.content_string


def test_dropped_and_absent_rules_lose_their_files_others_stay(host):
    assert not host.file(CONFIG_DIR + "/legacy-worker").exists
    assert not host.file(CONFIG_DIR + "/retired-app").exists
    assert host.file(CONFIG_DIR + "/handmade-app").exists
    other = host.file(CONFIG_DIR + "/other-team-app")
    assert other.content_string.startswith("# Managed by ops.runbook.logrotate (scope: other-team, rule: other-team-app)")


def test_whole_configuration_passes_logrotate(host):
    result = host.run("logrotate --debug /etc/logrotate.conf")
    assert result.rc == 0, result.stderr
    assert "error:" not in result.stderr


def test_daily_timer_enabled(host):
    assert host.service("logrotate.timer").is_enabled


def test_forced_rotation_rotates_both_logs_and_reloads_once(host):
    write_log(host, BACKEND_LOG, "first-backend-line")
    write_log(host, ACCESS_LOG, "first-access-line")
    before = reload_count(host)

    host.run_expect([0], "logrotate --force %s/bmi-backend", CONFIG_DIR)

    # sharedscripts: one reload for the two logs.
    assert reload_count(host) == before + 1
    for log, line in ((BACKEND_LOG, "first-backend-line"), (ACCESS_LOG, "first-access-line")):
        assert host.file(log + ".1").content_string.strip() == line
        fresh = host.file(log)
        assert (fresh.user, fresh.group, fresh.mode, fresh.size) == ("ubuntu", "ubuntu", 0o640, 0)


def test_second_rotation_compresses_the_older_log(host):
    write_log(host, BACKEND_LOG, "second-backend-line")
    write_log(host, ACCESS_LOG, "second-access-line")
    host.run_expect([0], "logrotate --force %s/bmi-backend", CONFIG_DIR)

    # delaycompress: .1 stays plain for a writer that still has it open, .2 is gzipped.
    assert host.file(BACKEND_LOG + ".1").content_string.strip() == "second-backend-line"
    assert host.check_output("gzip -dc %s.2.gz", BACKEND_LOG) == "first-backend-line"
    assert not host.file(BACKEND_LOG + ".2").exists


def test_size_rule_waits_for_the_size_then_copies_and_truncates(host):
    host.run_expect([0], "rm -f /var/log/bmi-worker/*")
    write_log(host, WORKER_LOG, "small")
    host.run_expect([0], "chown ubuntu:ubuntu %s", WORKER_LOG)
    inode = host.check_output("stat -c %%i %s", WORKER_LOG)

    host.run_expect([0], "logrotate %s/bmi-worker", CONFIG_DIR)
    assert host.check_output("ls /var/log/bmi-worker") == "jobs.log"

    host.run_expect([0], "head -c 2048 /dev/zero | tr '\\0' x >> %s", WORKER_LOG)
    host.run_expect([0], "logrotate %s/bmi-worker", CONFIG_DIR)
    rotated = [name for name in host.check_output("ls /var/log/bmi-worker").split() if name != "jobs.log"]
    assert len(rotated) == 1 and rotated[0].startswith("jobs.log-2"), rotated
    assert host.file("/var/log/bmi-worker/" + rotated[0]).size > 2048
    # copytruncate: the writer's file is the same inode, now empty.
    assert host.check_output("stat -c %%i %s", WORKER_LOG) == inode
    assert host.file(WORKER_LOG).size == 0


def test_hand_made_file_is_never_replaced_without_takeover(host):
    before = host.file(CONFIG_DIR + "/handmade-app").content_string
    status, output = run_role({"logrotate_rules": [{"name": "handmade-app", "paths": ["/var/log/handmade-app.log"]}]})
    assert status != 0
    assert "/etc/logrotate.d/handmade-app exists and was not written by this role" in output
    assert "Set takeover: true on rule 'handmade-app' to replace it" in output
    assert host.file(CONFIG_DIR + "/handmade-app").content_string == before


def test_a_file_of_another_scope_is_never_touched(host):
    status, output = run_role({"logrotate_rules": [{"name": "other-team-app", "paths": ["/var/log/x.log"], "state": "absent"}]})
    assert status != 0
    assert "was written by ops.runbook.logrotate under another logrotate_scope" in output
    assert host.file(CONFIG_DIR + "/other-team-app").exists


def test_a_log_another_file_rotates_fails_the_run(host):
    status, output = run_role({
        "logrotate_prune": False,
        "logrotate_rules": [{"name": "handmade-copy", "paths": ["/var/log/handmade-app.log"]}],
    })
    assert status != 0
    assert "reports errors about these rules" in output
    assert "duplicate log entry for /var/log/handmade-app.log" in output


@pytest.mark.parametrize("rule, message", [
    ({"name": "bad", "paths": ["/var/log/bad.log"], "postrotate": "true\nendscript\nrm -rf /"},
     "may not contain an 'endscript' line"),
    ({"name": "bad", "paths": ["/var/log/bad.log"], "create_owner": "nobody-here"},
     "unknown user 'nobody-here'"),
])
def test_invalid_rules_fail_before_a_file_is_written(host, rule, message):
    status, output = run_role({"logrotate_rules": [rule]})
    assert status != 0
    assert message in output
    assert not host.file(CONFIG_DIR + "/bad").exists
