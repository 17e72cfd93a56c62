"""The logs role's report of the web host, written by converge: a real journal and a real nginx log."""
import json
import os

import testinfra.utils.ansible_runner

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
WEB = RUNNER.get_hosts("web_servers")[0]
REPORT = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "logs", "logs-{0}.json".format(WEB))


def test_logs_report_of_the_web_host():
    with open(REPORT) as handle:
        report = json.load(handle)
    checks = {check["name"]: check for check in report["checks"]}
    unit = checks["nginx.service"]
    assert unit["readable"] and unit["timed"] and unit["line_count"] > 0, unit
    error_log = checks["/var/log/nginx/error.log"]
    assert error_log["status"] == "warn" and error_log["error_count"] >= 1, error_log
    assert "password=********" in error_log["last_error"] and "molecule-secret" not in json.dumps(report)
    missing = checks["/var/log/nginx/bmi-missing.log"]
    assert missing["status"] == "fail" and missing["output"].startswith("Could not read file"), missing
    assert report["status"] == "fail"
    with open(REPORT[:-len(".json")] + ".txt") as handle:
        assert handle.readline().startswith("Logs of {0}: FAIL".format(WEB))
