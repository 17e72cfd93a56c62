"""maintenance_window.yml on this machine (the local inventory) against real PostgreSQL and S3.

The window must refuse to start when its backup gate fails (a wrong database
password) or another gate does (a free-space floor no disk has): then the
caller's steps never ran, no marker was put up and the status page was never
called. A window that opens runs the steps while the marker is up and takes it
down afterwards, also when a step fails; check mode shows the gates and the
plan and changes nothing.
"""
import http.server
import json
import threading

import pytest
from conftest import ansible_playbook, playbook_vars, s3_keys

STEPS = """
- name: Record the maintenance marker the steps ran under
  ansible.builtin.copy:
    content: "{{ lookup('ansible.builtin.file', maintenance_window_marker_path) }}"
    dest: "{{ it_steps_log }}"
    mode: "0644"
  # The marker is only put up for real; in check mode there is none to read.
  when: not ansible_check_mode

- name: Migrate the database
  ansible.builtin.fail:
    msg: the migration failed
  when: it_fail_step | default(false)
"""


class StatusPage:
    """A status-page webhook on loopback that records the JSON bodies it is sent."""

    def __init__(self):
        self.calls = []
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                page.calls.append(json.loads(self.rfile.read(length) or b"null"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, fmt, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{0}/maintenance".format(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def status_page():
    page = StatusPage()
    yield page
    page.stop()


@pytest.fixture
def window(options, status_page, tmp_path):
    """The playbook's variables for this machine: the harness's database and bucket, files under tmp_path."""
    steps = tmp_path / "steps.yml"
    steps.write_text(STEPS)
    extra = playbook_vars(options)
    extra.update(
        maintenance_window_tasks_file=str(steps),
        maintenance_window_reason="Upgrade bmi-backend to Node 20",
        maintenance_window_marker_path=str(tmp_path / "www" / "maintenance.flag"),
        maintenance_window_become=False,
        maintenance_window_min_free="10M",
        maintenance_window_webhook_url=status_page.url,
        it_steps_log=str(tmp_path / "steps.log"),
        # This machine is no systemd host and its CPU is shared with other jobs: check what it has. The
        # backup's full read moves PostgreSQL's cache hit ratio; pg_health has tests of its own.
        health_check_categories=["disk", "inodes", "memory"],
        health_check_postgres=False,
        health_check_become=False,
        health_check_report_dir=str(tmp_path / "reports"),
        pg_backup_verify_report_dir=str(tmp_path / "verify"),
    )
    return extra


def nothing_started(window, status_page, tmp_path):
    assert not (tmp_path / "steps.log").exists(), "the maintenance steps ran"
    assert not (tmp_path / "www" / "maintenance.flag").exists(), "a maintenance marker was left"
    assert status_page.calls == [], "the status page was told the maintenance started"


def test_refuses_to_start_when_the_backup_fails(window, status_page, tmp_path, s3, bucket):
    window["postgres_login_password"] = "not-the-password"
    run = ansible_playbook("maintenance_window.yml", window)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "rejected the login of user 'backup_operator'" in output
    nothing_started(window, status_page, tmp_path)
    assert s3_keys(s3, bucket) == []


def test_refuses_to_start_when_a_gate_after_the_backup_fails(window, status_page, tmp_path, s3, bucket):
    window["maintenance_window_min_free"] = "1000T"
    run = ansible_playbook("maintenance_window.yml", window)
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, output
    assert "Refusing to start the maintenance: Disk gate: localhost / has" in output
    assert "less than the 1000.0 TiB the maintenance needs." in output
    nothing_started(window, status_page, tmp_path)
    assert any(key.endswith("/manifest.json") for key in s3_keys(s3, bucket))  # the backup gate itself passed


def test_a_window_runs_the_steps_under_the_marker_and_takes_it_down(window, status_page, tmp_path, s3, bucket):
    run = ansible_playbook("maintenance_window.yml", window)
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 0, output
    marker = json.loads((tmp_path / "steps.log").read_text())
    assert marker["reason"] == "Upgrade bmi-backend to Node 20" and marker["by"] == "ops.runbook maintenance_window.yml"
    assert not (tmp_path / "www" / "maintenance.flag").exists()
    assert [call["event"] for call in status_page.calls] == ["start", "end"]
    assert status_page.calls[0]["reason"] == "Upgrade bmi-backend to Node 20"
    assert status_page.calls[1]["failed_hosts"] == []
    assert "Backed up bmidb on localhost as bmidb-" in output and "and verified it" in output
    assert sorted(path.name for path in (tmp_path / "reports").iterdir()) == sorted(
        "maintenance-{0}.{1}".format(when, ext) for when in ("before", "after") for ext in ("json", "prom", "md", "html"))

    # Check mode: the gates run on the backup just made, the plan is shown, nothing happens.
    (tmp_path / "steps.log").unlink()
    status_page.calls.clear()
    keys = s3_keys(s3, bucket)
    run = ansible_playbook("maintenance_window.yml", window, "--check")
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 0, output
    assert "Would back up bmidb on localhost and verify it; its newest backup bmidb-" in output
    assert "Plan: put up {0} on localhost, call {1}, run {2}".format(
        window["maintenance_window_marker_path"], status_page.url, window["maintenance_window_tasks_file"]) in output
    nothing_started(window, status_page, tmp_path)
    assert s3_keys(s3, bucket) == keys


def test_a_failing_step_still_takes_the_marker_down(window, status_page, tmp_path):
    window["it_fail_step"] = True
    run = ansible_playbook("maintenance_window.yml", window)
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, output
    assert ("The maintenance steps failed on localhost at 'Migrate the database': the migration failed. "
            "The maintenance marker was taken down; the health after the maintenance is PASS: 0 fail,") in output
    assert (tmp_path / "steps.log").exists()
    assert not (tmp_path / "www" / "maintenance.flag").exists()
    assert [call["event"] for call in status_page.calls] == ["start", "end"]
    assert status_page.calls[1]["failed_hosts"] == ["localhost"]
