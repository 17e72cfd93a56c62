"""health_check.yml run as an operator would: two real hosts and one Ansible cannot reach.

The database host is broken (bmi-worker stopped, nightly-report failed), so
the play must fail, and only after it wrote the four reports. Each report is
read for what it says: the JSON's status and checks, every Prometheus line
against the exposition format, the Markdown table and the HTML page (in
headless Chromium) with the failing checks first. Then the healthy host alone
in check mode: every check runs, no file is written, and the play passes.
"""
import json
import os
import re

import pytest
import testinfra.utils.ansible_runner
import yaml
from harness.browser import rendered_page, screenshot
from harness.playbook import run_playbook
from harness.ports import free_ports

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = ["podman://" + name for name in RUNNER.get_hosts("all")]

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
PLAYBOOK = os.path.join(PROJECT, "playbooks", "health_check.yml")
OUTPUT_DIR = os.path.join(PROJECT, "tests", "output")
WEB = RUNNER.get_hosts("web_servers")[0]
DB = RUNNER.get_hosts("db_servers")[0]
GHOST = "ghost.example.internal"
STATUS_ORDER = ["fail", "warn", "pass"]

# Every sample line of the text exposition format: name, optional labels, value, optional timestamp.
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{' + LABEL + r'(?:,' + LABEL + r')*\})? '
                    r'(NaN|[+-]Inf|[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?: -?[0-9]+)?$')
COMMENT = re.compile(r"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
                     r"(counter|gauge|histogram|summary|untyped))$")


def podman(container, **variables):
    return dict({"ansible_connection": "containers.podman.podman", "ansible_host": container}, **variables)


def inventory(path, report_dir, hosts=(WEB, DB, GHOST)):
    """The scenario's fleet as an inventory file: the example inventory's thresholds, each host's checks."""
    with open(os.path.join(PROJECT, "inventories", "example", "group_vars", "all.yml")) as handle:
        thresholds = yaml.safe_load(handle)["runbook_thresholds"]
    ghost_port = free_ports(1)[0]  # nothing listens there: ssh is refused at once
    fleet = {
        "web_servers": {WEB: podman(
            WEB, health_check_services=["bmi-backend", "nginx"],
            health_check_endpoints=[{"url": "http://127.0.0.1/health", "name": "api"},
                                    {"url": "http://127.0.0.1:3000/health", "name": "backend"}],
            health_check_certificate_paths=["/etc/ssl/ops-runbook/*.pem"])},
        "db_servers": {DB: podman(DB, health_check_services=["postgresql", "redis-server", "bmi-worker"],
                                  pg_backup_databases=["bmidb"], postgres_become=True)},
        "redis_servers": {DB: {}},
        "unreachable": {GHOST: {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": ghost_port,
                                "ansible_user": "nobody"}},
    }
    document = {"all": {
        "vars": {
            "runbook_thresholds": thresholds,
            # The containers see the whole machine's CPU and load, which other
            # jobs drive: the scenario's verdict must not depend on them.
            "health_check_thresholds": "{{ runbook_thresholds | ops.runbook.thresholds_for('host_health') "
                                       "| combine({'cpu_used_percent': {'warn': 101, "
                                       "'fail': 101}, 'load_per_core': {'warn': 1000, 'fail': 1000}}) }}",
            "health_check_report_dir": str(report_dir),
        },
        "children": {group: {"hosts": {name: variables for name, variables in members.items() if name in hosts}}
                     for group, members in fleet.items()},
    }}
    path.write_text(json.dumps(document))
    return str(path)


def run(tmp_path, *args, hosts=(WEB, DB, GHOST)):
    report_dir = tmp_path / "reports"
    env = dict(os.environ, ANSIBLE_SHOW_CUSTOM_STATS="true")
    code, output = run_playbook(PLAYBOOK, {}, inventory(tmp_path / "inventory.json", report_dir, hosts), *args, env=env)
    return code, output, report_dir


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("fleet"))


def report_json(report_dir):
    return json.loads((report_dir / "health-check.json").read_text())


def test_the_play_fails_only_after_writing_all_four_reports(fleet_run):
    code, output, report_dir = fleet_run
    assert code == 2, output
    assert sorted(os.listdir(str(report_dir))) == ["health-check.html", "health-check.json", "health-check.md",
                                                   "health-check.prom"]
    assert "The health check found 2 failing and" in output
    assert "{0} service:bmi-worker.service: bmi-worker.service is inactive".format(DB) in output
    assert "The report is in {0}/health-check.html".format(report_dir) in output
    # set_stats for AWX: the summary and where the reports are.
    assert re.search(r'"health_check": \{ "counts": \{ "fail": 2, "pass": [0-9]+, "warn": [0-9]+ \}, '
                     r'"failed_hosts": \[ "' + re.escape(GHOST) + '", "' + re.escape(DB) + r'" \], "hosts": 3, '
                     r'"reports": \{ "html": "' + re.escape(str(report_dir)) + r'/health-check.html", ', output)


def test_the_json_report_names_every_failing_check(fleet_run):
    document = report_json(fleet_run[2])
    assert document["status"] == "fail"
    checks = document["checks"]
    failing = sorted(key for key, entries in checks.items() for entry in entries if entry["status"] == "fail")
    assert failing == sorted(["{0}:service:bmi-worker.service".format(DB), "{0}:host_reachable".format(GHOST)])
    failed_units = checks["{0}:failed_units".format(DB)][0]
    assert failed_units["status"] == "warn" and "nightly-report.service" in failed_units["output"]
    assert checks["{0}:host_reachable".format(GHOST)][0]["output"].startswith(
        "Ansible could not reach {0}: Failed to connect to the host via ssh".format(GHOST))
    assert checks["{0}:service:redis-server.service".format(DB)][0]["status"] == "pass"
    assert checks["{0}:redis_memory".format(DB)][0]["status"] in ("pass", "warn")
    assert checks["{0}:reachable".format(DB)][0]["status"] == "pass"  # pg_health, connected as postgres
    assert checks["{0}:connections".format(DB)][0]["status"] == "pass"
    assert checks["{0}:api:dependency:database".format(WEB)][0]["status"] == "pass"
    assert checks["{0}:backend:status".format(WEB)][0]["observedValue"] == 200
    certificate = checks["{0}:/etc/ssl/ops-runbook/bmi.pem:certificate".format(WEB)][0]
    assert certificate["status"] == "warn" and 19 < certificate["observedValue"] <= 20
    assert {entry["componentId"] for entries in checks.values() for entry in entries} == {WEB, DB, GHOST}


def test_every_prometheus_line_is_in_the_exposition_format(fleet_run):
    text = (fleet_run[2] / "health-check.prom").read_text()
    assert text.endswith("\n")
    typed = set()
    samples = []
    for line in text.splitlines():
        if line.startswith("#"):
            assert COMMENT.match(line), line
            if line.startswith("# TYPE "):
                typed.add(line.split()[2])
            continue
        match = SAMPLE.match(line)
        assert match, line
        assert match.group(1) in typed, "sample before its TYPE line: " + line
        samples.append(line)
    assert 'ops_runbook_check_status{{check="service:bmi-worker.service",host="{0}"}} 2'.format(DB) in samples
    assert 'ops_runbook_check_status{{check="failed_units",host="{0}",unit="units"}} 1'.format(DB) in samples
    assert 'ops_runbook_check_status{{check="host_reachable",host="{0}"}} 2'.format(GHOST) in samples
    assert 'ops_runbook_check_status{{check="host_reachable",host="{0}"}} 0'.format(WEB) in samples
    assert len(samples) == len(set(line.rsplit(" ", 1)[0] for line in samples)), "duplicate series"


def test_the_markdown_summary_lists_the_failing_checks_first(fleet_run):
    lines = (fleet_run[2] / "health-check.md").read_text().splitlines()
    assert lines[0] == "# Morning health check: FAIL"
    rows = [line for line in lines if line.startswith("| ") and not line.startswith(("| Status", "| ---"))]
    statuses = [row.split("|")[1].strip(" *").lower() for row in rows]
    assert statuses[:3] == ["fail", "fail", "warn"]
    assert statuses == sorted(statuses, key=STATUS_ORDER.index)
    assert {tuple(cell.strip() for cell in row.split("|")[2:4]) for row in rows[:2]} == {
        (DB, "service:bmi-worker.service"), (GHOST, "host_reachable")}


def test_the_html_page_in_a_real_browser_shows_the_failing_checks_first(fleet_run):
    url = "file://" + str(fleet_run[2] / "health-check.html")
    page = rendered_page(url)
    assert page.badge == "FAIL"
    classes = [row["class"] for row in page.rows]
    # Failing and warning checks first, grouped by host (the worst host first, its failures before its
    # warnings), then the passing ones (folded).
    problems = len([c for c in classes if c != "pass"])
    assert classes[0] == "fail" and "pass" in classes
    assert "pass" not in classes[:problems] and set(classes[problems:]) == {"pass"}
    hosts = [row["cells"][1] for row in page.rows[:problems]]
    assert hosts == sorted(hosts, key=hosts.index), "the problems of one host are not together: {0}".format(hosts)
    for host in set(hosts):
        mine = [row["class"] for row in page.rows[:problems] if row["cells"][1] == host]
        assert mine == sorted(mine, key=STATUS_ORDER.index), (host, mine)
    assert {(row["cells"][1], row["cells"][2]) for row in page.rows if row["class"] == "fail"} == {
        (DB, "service:bmi-worker.service"), (GHOST, "host_reachable")}
    assert screenshot(url, os.path.join(OUTPUT_DIR, "health_check.png")) == (1280, 900)


def test_check_mode_runs_every_check_writes_no_file_and_a_healthy_host_passes(tmp_path):
    code, output, report_dir = run(tmp_path, "--check", hosts=(WEB,))
    assert code == 0, output
    # Warnings only: the certificate that expires in 20 days, and pending security updates if any.
    assert re.search(r"WARN: 0 fail, [0-9]+ warn, [0-9]+ pass on 1 host\.", output), output
    assert "{0} /etc/ssl/ops-runbook/bmi.pem:certificate: The certificate for bmi.example.com expires in".format(
        WEB) in output
    assert "Check mode: no report written." in output
    assert not report_dir.exists()
