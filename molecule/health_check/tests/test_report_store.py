"""The health check's reports copied to a report host of the inventory (role ops.runbook.report_store).

In AWX the controller's files vanish with the job; report_store_host keeps the newest run's reports on a
host that outlives it. The web host plays that part here: after a passing health check of it, its report
directory holds the same four files the controller wrote.
"""
import json
import os

import testinfra
from test_health_check import WEB, run

REPORT_DIR = "/var/www/ops-reports"


def test_the_reports_are_copied_to_the_report_host(tmp_path):
    store = json.dumps({"report_store_host": WEB, "report_store_dir": REPORT_DIR})
    code, output, report_dir = run(tmp_path, "-e", store, hosts=(WEB,))
    assert code == 0, output
    web = testinfra.get_host("podman://" + WEB)
    names = sorted(os.listdir(str(report_dir)))
    assert names == ["health-check.html", "health-check.json", "health-check.md", "health-check.prom"]
    copies = web.check_output("ls -1 %s", REPORT_DIR).split()
    assert len(copies) == 1, copies
    for name in names:
        copy = web.file("{0}/{1}/{2}".format(REPORT_DIR, copies[0], name))
        assert copy.exists and copy.mode == 0o644, name
        assert copy.content_string == (report_dir / name).read_text(), name
    assert "{0}:{1}/{2}/health-check.html".format(WEB, REPORT_DIR, copies[0]) in output
