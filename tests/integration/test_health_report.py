"""health_report in a playbook with the checks of real endpoints and certificates, and its HTML
page in a real headless browser (Debian's Chromium, installed by scripts/bootstrap --hosts).

The screenshot is kept as tests/output/health_report.png for a person to look at.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from conftest import ROOT

from harness.browser import rendered_page, screenshot
from harness.tls import HealthServer, LocalCA

OUTPUT_DIR = os.path.join(ROOT, "tests", "output")

PLAYBOOK = """
- name: Check the web tier and write the report
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the health endpoints
      ops.runbook.http_health:
        endpoints:
          - url: "{{ it_url }}"
            name: api
            latency_warn_ms: 120000
            latency_fail_ms: 120000
        ca_path: "{{ it_ca }}"
        host: web1
        fail_on: never
      register: it_web

    - name: Check the certificate files
      ops.runbook.cert_check:
        paths: "{{ it_cert_paths }}"
        host: web1
        fail_on: never
      register: it_certs

    - name: Write the health report
      ops.runbook.health_report:
        checks: "{{ it_web.checks + it_certs.checks }}"
        json_path: "{{ it_dir }}/health.json"
        prometheus_path: "{{ it_dir }}/health.prom"
        markdown_path: "{{ it_dir }}/health.md"
        html_path: "{{ it_dir }}/index.html"
        title: Morning health check
        nagios_service: WEB
        fail_on: never
      register: it_report
"""


@pytest.fixture(scope="module")
def web():
    """An https health server whose certificate has 90 days, and a certificate file with 20."""
    ca = LocalCA(tempfile.mkdtemp(prefix="ops-runbook-it-report-ca-"))
    cert, key, _chain = ca.issue("web", 90)
    aging, _key, _chain = ca.issue("aging", 20)
    server = HealthServer(cert, key).start()
    yield {"server": server, "ca": ca, "cert_paths": [cert, aging]}
    server.stop()


def run_playbook(web, report_dir, check=False):
    """Run the playbook above; (return code, {task name: result})."""
    workdir = tempfile.mkdtemp(prefix="ops-runbook-it-report-")
    playbook = os.path.join(workdir, "report.yml")
    with open(playbook, "w") as handle:
        handle.write(PLAYBOOK)
    extra = {"it_url": web["server"].url(), "it_ca": web["ca"].cert, "it_cert_paths": web["cert_paths"],
             "it_dir": report_dir}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_NOCOLOR="1")
    command = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), playbook, "-e", json.dumps(extra)]
    if check:
        command.append("--check")
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(workdir)
    try:
        tasks = json.loads(done.stdout)["plays"][0]["tasks"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible-playbook printed no JSON: {0}\n{1}".format(done.stdout, done.stderr))
    return done.returncode, {task["task"]["name"]: task["hosts"]["localhost"] for task in tasks}


def test_report_of_real_checks_is_written_once_and_then_unchanged(web, tmp_path):
    web["server"].state.dependencies["database"] = "unhealthy"
    try:
        code, results = run_playbook(web, str(tmp_path), check=True)
        assert code == 0
        would = results["Write the health report"]
        assert would["changed"] is True and all(not item["written"] for item in would["files"])
        assert os.listdir(str(tmp_path)) == []

        code, results = run_playbook(web, str(tmp_path))
        assert code == 0
        written = results["Write the health report"]
        assert written["changed"] is True
        assert written["status"] == "fail" and written["nagios_exit_code"] == 2
        assert written["nagios"].startswith("WEB CRITICAL - web1 api:status: GET ")
        assert "web1 api:dependency:database: api: dependencies.database is 'unhealthy', expected one of " \
            "'healthy', 'pass', 'ok', 'up'." in written["nagios"]
        assert sorted(os.listdir(str(tmp_path))) == ["health.json", "health.md", "health.prom", "index.html"]

        document = json.loads((tmp_path / "health.json").read_text())
        assert document["status"] == "fail"
        assert document["checks"]["web1:api:dependency:database"][0]["status"] == "fail"
        aging = [key for key in document["checks"] if key.endswith("aging.pem:certificate")]
        assert document["checks"][aging[0]][0]["status"] == "warn"
        assert document["checks"][aging[0]][0]["observedUnit"] == "days"
        prometheus = (tmp_path / "health.prom").read_text()
        assert 'ops_runbook_check_status{check="api:dependency:database",host="web1",component="api"} 2' in prometheus

        # The same findings again: not a change, though the files carry the new time.
        code, results = run_playbook(web, str(tmp_path))
        assert code == 0 and results["Write the health report"]["changed"] is False

        # The dependency recovers: a change.
        web["server"].state.__init__()
        code, results = run_playbook(web, str(tmp_path))
        assert results["Write the health report"]["changed"] is True
        assert results["Write the health report"]["status"] == "warn"  # the 20-day certificate
    finally:
        web["server"].state.__init__()


def test_html_report_in_a_real_browser_shows_fail_first(web, tmp_path):
    web["server"].state.dependencies["database"] = "unhealthy"
    try:
        code, _results = run_playbook(web, str(tmp_path))
    finally:
        web["server"].state.__init__()
    assert code == 0
    url = "file://" + str(tmp_path / "index.html")

    page = rendered_page(url)
    assert page.badge == "FAIL"
    first = page.rows[0]
    assert first["class"] == "fail"
    assert first["cells"][0] == "FAIL" and first["cells"][1] == "web1"
    assert first["cells"][2] in ("api:status", "api:health", "api:dependency:database")
    classes = [row["class"] for row in page.rows]
    assert classes == sorted(classes, key=["fail", "warn", "pass"].index), classes
    assert "warn" in classes and "pass" in classes

    assert screenshot(url, os.path.join(OUTPUT_DIR, "health_report.png")) == (1280, 900)
