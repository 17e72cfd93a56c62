"""The application host after converge, and the playbooks run again as an operator would.

Converge already asserted each module failure path. Here: the host's state
afterwards (nginx still the process that refused the broken config, the
backend brought back and the full disk cleaned by the incident playbook, the
data untouched), the incident timeline it wrote, then the incident playbook in
check mode (plans, changes nothing) and service_restart.yml as a two-host
rollout that must stop at the first host that does not come back healthy.
"""
import glob
import json
import os
import subprocess
import sys

import pytest
import testinfra.utils.ansible_runner

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
CONTAINERS = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
testinfra_hosts = ["podman://" + name for name in CONTAINERS]

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def health(host, port):
    script = ("import urllib.request, urllib.error\n"
              "try:\n"
              "    r = urllib.request.urlopen('http://127.0.0.1:{0}/health', timeout=5)\n"
              "    print(r.status, r.read().decode())\n"
              "except urllib.error.HTTPError as e:\n"
              "    print(e.code, e.read().decode())\n").format(port)
    status, body = host.check_output("python3 -c %s", script).split(" ", 1)
    return int(status), json.loads(body)


def show(host, unit, prop):
    return host.check_output("systemctl show -p %s --value %s", prop, unit)


def playbook(name, inventory, tmp_path, *args):
    """Run one of the collection's playbooks against the scenario's container, as an operator would."""
    path = tmp_path / "inventory.yml"
    path.write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".build", "collections"),
               CONTAINERS_CONF=os.path.join(PROJECT, "molecule", "containers.conf"), ANSIBLE_NOCOLOR="1")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(path),
               os.path.join(PROJECT, "playbooks", name)] + list(args)
    return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300, check=False)


def alias(container, **variables):
    return dict({"ansible_connection": "containers.podman.podman", "ansible_host": container}, **variables)


# -- after converge ------------------------------------------------------------------

def test_nginx_is_still_the_process_that_refused_the_broken_config(host):
    before = host.file("/var/tmp/nginx-mainpid-before-broken-config").content_string.strip()
    assert show(host, "nginx", "ActiveState") == "active"
    assert show(host, "nginx", "MainPID") == before
    host.run_expect([0], "nginx -t")


def test_the_backend_is_back_and_healthy(host):
    assert show(host, "bmi-backend", "ActiveState") == "active"
    status, body = health(host, 3000)
    assert status == 200 and body["dependencies"]["database"]["status"] == "healthy"


def test_the_full_disk_was_cleaned_of_rotated_logs_only(host):
    used = int(host.check_output("df --output=pcent /srv/fill | tail -1").strip().rstrip("%"))
    assert used < 80
    assert host.file("/srv/fill/log/app.log").is_file          # the live log
    assert host.check_output("ls /srv/fill/log") .split() == ["app.log", "escape.1.gz"]
    assert host.file("/srv/fill/log/escape.1.gz").is_symlink   # never deleted ...
    assert host.file("/srv/fill/data/base.1.gz").is_file       # ... nor followed
    assert host.file("/srv/fill/data/16384").is_file


@pytest.fixture(scope="module")
def incident():
    records = sorted(glob.glob(os.path.join(EPHEMERAL, "incidents", "incident-*.json")))
    assert len(records) == 1, records
    with open(records[0]) as handle:
        record = json.load(handle)
    with open(records[0][:-len(".json")] + ".md") as handle:
        return record, handle.read()


def test_the_incident_timeline_records_what_was_found_done_and_the_result(incident):
    record, markdown = incident
    assert record["outcome"] == "resolved", record["summary"]
    phases = [event["phase"] for event in record["events"]]
    assert phases.index("diagnose") < phases.index("plan") < phases.index("remediate") < phases.index("verify")
    whats = dict((event["what"], event) for event in record["events"])
    assert whats["Found: service:bmi-backend.service"]["status"] == "fail"
    assert whats["Found: disk:/srv/fill"]["status"] == "fail"
    assert whats["Restart bmi-backend.service"]["detail"].startswith("it is failed (failed), result signal")
    restart = whats["Restart bmi-backend.service with verification"]
    assert restart["status"] == "pass" and "Downtime" in restart["detail"]
    cleaned = whats["Cleanup rule rotated logs"]
    assert cleaned["status"] == "done" and cleaned["detail"].startswith("deleted ")
    assert whats["Disk use of /srv/fill/log"]["detail"].endswith("after")
    assert all(event["time"] for event in record["events"])
    assert record["plan"]["restart"][0]["unit"] == "bmi-backend.service"
    assert [disk["mount"] for disk in record["plan"]["full_disks"]] == ["/srv/fill"]
    assert markdown.startswith("# Incident on {0}: RESOLVED".format(CONTAINERS[0]))
    assert "| Time (UTC) | Phase | What | Result | Detail |" in markdown


# -- the playbooks again, as an operator runs them -------------------------------------

def test_incident_check_mode_diagnoses_and_plans_but_changes_nothing(host, tmp_path):
    pid = show(host, "bmi-backend", "MainPID")
    host.run_expect([0], "kill -KILL %s", pid)
    try:
        report_dir = tmp_path / "reports"
        inventory = {"all": {"hosts": {CONTAINERS[0]: alias(CONTAINERS[0])}}}
        result = playbook("incident_service_down.yml", inventory, tmp_path, "--check",
                          "-e", json.dumps({"incident_hosts": "all", "incident_services": ["bmi-backend", "nginx"],
                                            "incident_remediate": True, "incident_report_dir": str(report_dir)}))
        assert result.returncode == 0, result.stdout
        assert show(host, "bmi-backend", "ActiveState") == "failed"
        records = list(report_dir.glob("incident-*.json"))
        assert len(records) == 1
        record = json.loads(records[0].read_text())
        assert record["outcome"] == "planned" and record["check_mode"] is True
        assert record["summary"].startswith("Diagnosed only (check mode). The plan: restart bmi-backend.service")
        assert "remediate" not in [event["phase"] for event in record["events"]]
        assert "Incident on {0}: PLANNED".format(CONTAINERS[0]) in result.stdout
    finally:
        host.run_expect([0], "systemctl restart bmi-backend")


def test_incident_without_opt_in_only_diagnoses(host, tmp_path):
    pid = show(host, "bmi-backend", "MainPID")
    host.run_expect([0], "kill -KILL %s", pid)
    try:
        inventory = {"all": {"hosts": {CONTAINERS[0]: alias(CONTAINERS[0])}}}
        result = playbook("incident_service_down.yml", inventory, tmp_path,
                          "-e", json.dumps({"incident_hosts": "all", "incident_services": ["bmi-backend"],
                                            "incident_report_dir": str(tmp_path / "reports")}))
        assert result.returncode == 0, result.stdout
        assert show(host, "bmi-backend", "ActiveState") == "failed"
        assert "remediation was not enabled (incident_remediate=true)" in result.stdout
    finally:
        host.run_expect([0], "systemctl restart bmi-backend")


def test_the_rollout_stops_at_the_first_host_that_does_not_come_back(host, tmp_path):
    """Two inventory hosts on one container: the first restarts flaky-app and fails, the second is never touched."""
    before = show(host, "canary-app", "InvocationID")
    container = CONTAINERS[0]
    inventory = {"all": {"hosts": {
        "app1": alias(container, service_restart_services=[{"name": "flaky-app", "port": 3001}]),
        "app2": alias(container, service_restart_services=[{"name": "canary-app", "port": 3002}]),
    }}}
    try:
        result = playbook("service_restart.yml", inventory, tmp_path,
                          "-e", json.dumps({"service_restart_hosts": "all", "service_restart_settle_seconds": 4,
                                            "service_restart_timeout": 20}))
    finally:
        host.run_expect([0], "systemctl stop flaky-app")
    assert result.returncode != 0
    assert "flaky-app.service did not stay up" in result.stdout
    assert "[app2]" not in result.stdout, result.stdout
    assert show(host, "canary-app", "InvocationID") == before


def test_the_playbooks_refuse_missing_inputs(tmp_path):
    inventory = {"all": {"hosts": {CONTAINERS[0]: alias(CONTAINERS[0])}}}
    result = playbook("service_restart.yml", inventory, tmp_path, "-e", "service_restart_hosts=all")
    assert result.returncode != 0
    assert "missing required arguments: service_restart_services" in result.stdout
    result = playbook("incident_service_down.yml", inventory, tmp_path, "-e", "incident_hosts=all")
    assert result.returncode != 0
    # Since container hosts, incident_services may be empty: one of it, incident_containers and
    # incident_compose_services must name something.
    assert "incident_compose_services are all empty" in result.stdout
