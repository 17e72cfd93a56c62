"""maintenance_window.yml on the database host, as an operator runs it against a real systemd host.

tests/integration/test_maintenance_window.py proves every gate's refusal on this
machine; this proves the window where it runs: over the podman connection, with
become, the marker at its default path (/var/www/maintenance.flag, which nginx
answers 503 for), the backup gate making a real set with the pg_backup role's
configuration on the host, and the marker taken down also when a step fails.
"""
import json
import os

import pytest
import testinfra.utils.ansible_runner
from harness.playbook import run_playbook

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = ["podman://" + name for name in RUNNER.get_hosts("all")]

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
PLAYBOOK = os.path.join(PROJECT, "playbooks", "maintenance_window.yml")
HOST = RUNNER.get_hosts("all")[0]
MARKER = "/var/www/maintenance.flag"
STEPS_LOG = "/var/tmp/maintenance-steps.log"
# A directory of its own: the window hands it to the postgres user, and the scheduled job's must stay as it is.
WINDOW_BACKUP_DIR = "/var/backups/maintenance-window"
BACKUP_DIR = WINDOW_BACKUP_DIR + "/bmidb"
REASON = "Upgrade bmi-backend to Node 20"
STEPS = """
- name: Record the maintenance marker the steps ran under
  ansible.builtin.command:
    cmd: cp {{ maintenance_window_marker_path }} %s
  changed_when: true
  when: not ansible_check_mode

- name: Migrate the database
  ansible.builtin.fail:
    msg: the migration failed
  when: it_fail_step | default(false)
""" % STEPS_LOG


def window(tmp_path, **variables):
    steps = tmp_path / "steps.yml"
    steps.write_text(STEPS)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"db_servers": {"hosts": {HOST: {
        "ansible_connection": "containers.podman.podman", "ansible_host": HOST}}}}}}))
    extra = dict(
        maintenance_window_hosts=HOST, pg_backup_hosts=HOST, pg_backup_databases=["bmidb"],
        # Debian's PostgreSQL lets the postgres user in by peer authentication on the local socket.
        postgres_become=True, pg_backup_dir=WINDOW_BACKUP_DIR,
        maintenance_window_tasks_file=str(steps), maintenance_window_reason=REASON,
        maintenance_window_min_free="10M",
        # The containers share the machine's CPU with other jobs: the gate checks what the host has.
        health_check_categories=["disk", "inodes", "memory"], health_check_postgres=False,
        health_check_report_dir=str(tmp_path / "reports"),
        pg_backup_verify_report_dir=str(tmp_path / "verify"))
    extra.update(variables)
    return run_playbook(PLAYBOOK, extra, str(inventory))


def sets(host):
    return sorted(n for n in host.run("ls -1 %s", BACKUP_DIR).stdout.split() if not n.startswith("."))


@pytest.fixture
def clean(host):
    host.run("rm -f %s", STEPS_LOG)
    return host


def test_a_window_backs_up_runs_the_steps_under_the_marker_and_takes_it_down(clean, tmp_path):
    before = sets(clean)
    code, output = window(tmp_path)
    assert code == 0, output
    assert "and verified it" in output, output
    assert len(sets(clean)) == len(before) + 1
    marker = json.loads(clean.file(STEPS_LOG).content_string)
    assert marker["reason"] == REASON
    assert not clean.file(MARKER).exists


def test_a_failing_step_still_takes_the_marker_down(clean, tmp_path):
    code, output = window(tmp_path, it_fail_step=True)
    assert code != 0, output
    assert "The maintenance steps failed on {0} at 'Migrate the database': the migration failed.".format(
        HOST) in output, output
    assert clean.file(STEPS_LOG).exists
    assert not clean.file(MARKER).exists
