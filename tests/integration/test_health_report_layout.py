"""The HTML health report as a person reads it at 3 a.m., in a real headless Chromium: at 1280 px (a laptop)
and 412 px (a phone) the page never scrolls sideways, whatever the length of a value, and the failing checks
come before the passing ones, which are folded. Screenshots are kept in tests/output for a person to look at.
"""
import os

import pytest
from conftest import ROOT

from ansible_collections.ops.runbook.plugins.module_utils import health, health_report
from harness.browser import framed_screenshot, layout

OUTPUT_DIR = os.path.join(ROOT, "tests", "output")
LONG_WORD = "public.averyveryveryveryveryverylongtablenamewithoutanyspaceinit_" * 3
LONG_URL = "postgresql://app@db1.internal.example.com:5432/bmidb?sslmode=verify-full&application_name=bmi-worker"


def fleet_checks():
    """Three hosts with long names and values: passes, warnings and one failure on the last host."""
    checks = []
    for host in ("db1.internal.example.com", "web-frontend-02.eu-central-1.compute.internal", "cache1"):
        checks.append(health.check("disk:/var/lib/postgresql/15/main/pg_wal/archive_status", health.PASS,
                                   2 * 1024 ** 3, {"warn": 80 * 1024 ** 3, "fail": 90 * 1024 ** 3},
                                   "2.0 GiB used. " + "x" * 200, unit="bytes", host=host))
        checks.append(health.check("last_vacuum", health.WARN, 200000, {"warn": 86400, "fail": 604800},
                                   "Table {0} was last vacuumed long ago.".format(LONG_WORD), unit="seconds",
                                   host=host))
    checks.append(health.check("service:bmi-backend.service", health.FAIL, "inactive", "active",
                               "bmi-backend.service is inactive; journal: connection refused to " + LONG_URL * 3,
                               host="cache1"))
    return checks


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("layout") / "health-check.html")
    health_report.write_atomic(path, health_report.render_html(fleet_checks(), title="Morning health check"))
    return path


@pytest.mark.parametrize("width", [1280, 412])
def test_report_fits_the_screen_with_failing_checks_first_and_passing_ones_folded(page, width):
    measured = layout(page, width)
    assert measured["innerWidth"] == width
    assert measured["scrollWidth"] <= width, "the page scrolls sideways at {0} px".format(width)
    rows = measured["rows"]
    classes = [row["class"] for row in rows]
    assert classes[0] == "fail" and classes.count("pass") == 3
    last_problem = max(row["top"] for row in rows if row["class"] != "pass")
    assert all(row["top"] > last_problem and row["folded"] for row in rows if row["class"] == "pass")
    assert not any(row["folded"] for row in rows if row["class"] != "pass")
    assert framed_screenshot(page, os.path.join(OUTPUT_DIR, "health_report_{0}px.png".format(width)), width)[0] \
        == max(width, 500)


def test_report_shows_human_units():
    text = health_report.render_html(fleet_checks())
    assert "2.0 GiB" in text and "warn 80.0 GiB" in text
    assert "2 d 7 h" in text and "warn 1 d" in text
