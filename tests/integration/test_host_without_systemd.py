"""A host without systemd as PID 1 and without a journal: what could not be checked is never a pass.

This machine is such a host (a container or VM whose PID 1 is not systemd,
whose journalctl finds no journal files), so host_health, the P1 incident
playbook and the morning health check run here for real, through Ansible.
"""
import glob
import json
import os
import subprocess

import pytest
from conftest import ansible_module, ansible_playbook, module_result

pytestmark = pytest.mark.skipif(
    os.path.isdir("/run/systemd/system"),
    reason="needs a host where systemd is not PID 1 (this one boots with systemd)")

SERVICES = ["nginx", "bmi-backend"]


def journal_files():
    found = subprocess.run(["journalctl", "--no-pager", "--disk-usage"], capture_output=True, text=True, check=False)
    return "No journal files were found" not in found.stdout + found.stderr


def test_host_health_on_a_host_without_systemd_or_journal_passes_nothing_it_could_not_check():
    if journal_files():
        pytest.skip("this host keeps journal files")
    run = ansible_module("ops.runbook.host_health", {
        "services": SERVICES, "categories": ["services", "failed_units", "journal", "oom", "disk", "memory"],
        "journal_since": "1 hour ago", "fail_on": "never"})
    result = module_result(run)
    assert run.returncode == 0, run.stdout[-2000:]  # fail_on: never; it reports
    by_name = dict((check["name"], check) for check in result["checks"])
    expected = ["service:nginx.service", "service:bmi-backend.service", "failed_units",
                "journal_errors:nginx.service", "journal_errors:bmi-backend.service", "oom_kills"]
    assert result["unchecked"] == expected
    for name in expected:
        assert (by_name[name]["status"], by_name[name]["unchecked"]) == ("fail", True), by_name[name]
    assert by_name["service:nginx.service"]["output"].startswith(
        "Could not check nginx.service: systemd is not running this host as PID 1")
    journal = by_name["journal_errors:nginx.service"]["output"]
    assert journal.startswith("Could not read the journal of nginx.service since 1 hour ago: this host keeps no "
                              "journal files")
    assert "No error lines" not in json.dumps(result["checks"])
    assert "No OOM kills" not in json.dumps(result["checks"])
    # What could be read still is: the disks and the memory are measured and pass or not on their own.
    assert by_name["memory"].get("unchecked") is None and by_name["memory"]["observed_value"] > 0
    assert result["status"] == "fail"
    assert result["msg"].startswith("HOST_HEALTH CRITICAL - ")


def incident(tmp_path, *args, **extra):
    extra_vars = {"incident_hosts": "localhost", "incident_services": SERVICES,
                  "incident_report_dir": str(tmp_path / "incidents")}
    extra_vars.update(extra)
    run = ansible_playbook("incident_service_down.yml", extra_vars, *args)
    records = glob.glob(str(tmp_path / "incidents" / "incident-localhost-*.json"))
    assert len(records) == 1, run.stdout[-3000:]
    with open(records[0]) as handle:
        return run, json.load(handle), open(records[0][:-len(".json")] + ".md").read()


def test_the_p1_playbook_on_a_host_where_no_service_could_be_checked_fails_and_says_why(tmp_path):
    run, record, markdown = incident(tmp_path)
    assert run.returncode != 0, run.stdout[-3000:]
    assert "NO ACTION NEEDED" not in run.stdout and "every service is active" not in run.stdout
    assert record["outcome"] == "could not check"
    assert record["summary"].startswith(
        "Could not decide: no service could be checked (nginx.service, bmi-backend.service): systemd is not running "
        "this host as PID 1")
    assert [item["unit"] for item in record["plan"]["services_unchecked"]] == ["nginx.service", "bmi-backend.service"]
    names = [item["name"] for item in record["unchecked"]]
    assert names[:3] == ["service:nginx.service", "service:bmi-backend.service", "failed_units"]
    whats = [event["what"] for event in record["events"]]
    assert "Could not check: service:nginx.service" in whats
    assert markdown.startswith("# Incident on localhost: COULD NOT CHECK\n")
    assert "Could not decide: no service could be checked" in run.stdout  # the failed task's message
    assert "Could not check: service:nginx.service, service:bmi-backend.service" in run.stdout  # the plan shown


def test_leaving_the_journal_out_knowingly_still_checks_and_fails_the_services(tmp_path):
    run, record, _markdown = incident(tmp_path, "--check", incident_categories=["disk", "inodes", "memory"],
                                      incident_remediate=True)
    assert run.returncode != 0, run.stdout[-3000:]
    assert record["outcome"] == "could not check" and record["check_mode"] is True
    assert [item["name"] for item in record["unchecked"]] == ["service:nginx.service", "service:bmi-backend.service"]
    assert not [check for check in record["checks"] if check["name"].startswith("journal_errors:")]


def test_the_morning_health_check_reports_what_it_could_not_check_and_fails(tmp_path):
    run = ansible_playbook("health_check.yml", {
        "health_check_hosts": "localhost", "health_check_services": SERVICES, "health_check_postgres": False,
        "health_check_report_dir": str(tmp_path), "health_check_categories": ["services", "journal", "disk"]})
    assert run.returncode != 0, run.stdout[-3000:]
    with open(str(tmp_path / "health-check.json")) as handle:
        document = json.load(handle)
    service = document["checks"]["localhost:service:nginx.service"][0]
    assert (service["status"], service["unchecked"]) == ("fail", True)
    assert document["checks"]["localhost:journal_errors:nginx.service"][0]["unchecked"] is True
    assert "could not be checked" in run.stdout


def test_patching_refuses_to_start_when_it_could_not_note_the_failed_units(tmp_path):
    # Check mode: the role stops at its own refusal, before the patching module would even simulate.
    run = ansible_playbook("security_patching.yml", {
        "security_patching_hosts": "localhost", "security_patching_services": [], "security_patching_backup": False},
        "--check")
    assert run.returncode != 0, run.stdout[-3000:]
    assert "Refuse to patch when the failed units cannot be noted" in run.stdout
    assert "Could not check failed_units: `systemctl list-units --state=failed` failed" in run.stdout
    assert "nothing was changed" in run.stdout
    assert "No systemd unit failed during patching" not in run.stdout
