"""Every rendering of a report comes from one list of checks and agrees with it."""
import datetime
import json
import os

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import health, report

NOW = datetime.datetime(2026, 2, 24, 2, 0, tzinfo=datetime.timezone.utc)


def sample():
    return [
        health.check("connections", health.WARN, 85.0, {"warn": 80, "fail": 90},
                     "85% of max_connections in use.", unit="percent", host="db1"),
        health.check("reachable", health.PASS, True, None, "PostgreSQL 15.18 answers.", host="db1"),
        health.check("disk:/", health.FAIL, 97, {"warn": 80, "fail": 90}, "/ is 97% full.", unit="percent",
                     host="web1"),
        health.check("integrity", health.PASS, "lists", "decompresses and lists", "The dump lists."),
    ]


def test_report_status_is_the_worst_and_every_check_is_kept():
    document = report.build_report(sample(), now=NOW)
    assert document["status"] == "fail"
    assert document["counts"] == {"pass": 2, "warn": 1, "fail": 1}
    assert document["checks"]["db1:connections"][0]["observedValue"] == 85.0
    assert document["checks"]["db1:connections"][0]["observedUnit"] == "percent"
    assert document["checks"]["integrity"][0]["status"] == "pass"
    assert document["time"] == "2026-02-24T02:00:00Z"
    json.loads(report.render_json(sample(), now=NOW))


def test_worst_first_orders_fail_warn_pass_and_keeps_order_within():
    names = [item["name"] for item in report.worst_first(sample())]
    assert names == ["disk:/", "connections", "reachable", "integrity"]


def test_prometheus_text_has_status_values_and_thresholds():
    text = report.render_prometheus(sample(), now=NOW)
    assert 'ops_runbook_check_status{check="disk:/",host="web1",unit="percent"} 2' in text
    assert 'ops_runbook_check_status{check="connections",host="db1",unit="percent"} 1' in text
    assert 'ops_runbook_check_observed_value{check="connections",host="db1",unit="percent"} 85' in text
    assert 'ops_runbook_check_threshold{check="connections",host="db1",unit="percent",level="warn"} 80' in text
    # A bool is not a measurement, a string threshold has no number.
    assert 'ops_runbook_check_observed_value{check="reachable"' not in text
    assert 'check_threshold{check="integrity"' not in text
    assert text.count("# TYPE ops_runbook_check_status gauge") == 1
    assert text.endswith("ops_runbook_report_timestamp_seconds {0}\n".format(int(NOW.timestamp())))


def test_prometheus_escapes_label_values():
    checks = [health.check('a"b\\c', health.PASS, 1, None, "fine")]
    assert 'check="a\\"b\\\\c"' in report.render_prometheus(checks, now=NOW)


def test_prometheus_drops_duplicate_series():
    checks = sample() + sample()
    text = report.render_prometheus(checks, now=NOW)
    assert text.count('ops_runbook_check_status{check="disk:/"') == 1


@pytest.mark.parametrize("statuses, word, code", [
    ([health.PASS], "OK", 0), ([health.PASS, health.WARN], "WARNING", 1),
    ([health.WARN, health.FAIL], "CRITICAL", 2), ([], "OK", 0)])
def test_nagios_exit_code_follows_the_worst_check(statuses, word, code):
    checks = [health.check("c{0}".format(i), s, i, None, "check {0}".format(i)) for i, s in enumerate(statuses)]
    line, exit_code = report.render_nagios(checks, service="PG")
    assert exit_code == code
    assert line.startswith("PG {0} - ".format(word))


def test_nagios_names_problems_worst_first_with_perfdata():
    line, code = report.render_nagios(sample(), service="PG")
    assert code == 2
    summary, perf = line.split(" | ")
    assert summary.index("web1 disk:/") < summary.index("db1 connections")
    assert "reachable" not in summary
    assert "db1_connections=85;80;90" in perf.split()
    assert "web1_disk:_=97;80;90" in perf.split()


def test_markdown_and_html_list_worst_first_and_escape():
    checks = sample() + [health.check("x", health.WARN, "<b>", None, "a | b & <script>")]
    markdown = report.render_markdown(checks, title="Morning check", now=NOW)
    assert markdown.startswith("# Morning check: FAIL")
    lines = [line for line in markdown.splitlines() if line.startswith("| ")][2:]
    assert lines[0].startswith("| **FAIL** | web1 | disk:/")
    assert "a \\| b" in markdown
    page = report.render_html(checks, title="Morning check", now=NOW)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.index("disk:/") < page.index("connections") < page.index("reachable")
    assert 'id="overall-status">FAIL<' in page
    assert "http" not in page.split("<body>")[1]  # self-contained


def test_write_atomic_replaces_and_reports_change(tmp_path):
    path = str(tmp_path / "health.prom")
    assert report.write_atomic(path, "a 1\n") is True
    assert report.write_atomic(path, "a 1\n") is False
    assert report.write_atomic(path, "a 2\n", mode=0o640) is True
    with open(path) as handle:
        assert handle.read() == "a 2\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    assert sorted(os.listdir(str(tmp_path))) == ["health.prom"]
