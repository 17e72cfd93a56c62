"""Every rendering of a report comes from one list of checks and agrees with it."""
import datetime
import json
import os

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import health, health_report as report
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

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


def test_a_check_that_could_not_be_made_is_a_failure_marked_in_the_json_report():
    checks = sample() + [health.unchecked("slow_statements", "Could not check slow statements: pg_stat_statements is "
                                          "not installed in database bmidb.", host="db1")]
    document = report.build_report(checks, now=NOW)
    entry = document["checks"]["db1:slow_statements"][0]
    assert (entry["status"], entry["unchecked"]) == ("fail", True)
    assert "unchecked" not in document["checks"]["web1:disk:/"][0]
    assert document["counts"]["fail"] == 2 and health.not_checked(checks) == checks[-1:]


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


LATER = NOW + datetime.timedelta(hours=6)


@pytest.mark.parametrize("fmt", sorted(report.RENDERERS))
def test_each_rendering_gives_back_its_findings(fmt):
    """Every format yields the same four (check, status) findings, whatever it looks like."""
    found = report.findings(fmt, report.render(fmt, sample(), now=NOW))
    assert len(found) == 4
    assert sorted(item for row in found for item in row if item in ("pass", "warn", "fail", "0", "1", "2")) in (
        ["fail", "pass", "pass", "warn"], ["0", "0", "1", "2"])
    assert report.findings(fmt, "not a report of ours") is None


def test_findings_read_escaped_markdown_and_html_cells():
    checks = [health.check("a | b <c>", health.WARN, 1, None, "x", host="h|1")]
    assert report.findings("markdown", report.render("markdown", checks)) == [("warn", "h\\|1", "a \\| b <c>")]
    assert report.findings("html", report.render("html", checks)) == [("warn", "h|1", "a | b &lt;c&gt;")]


def test_render_passes_each_format_only_its_own_options():
    assert report.render("markdown", sample(), now=NOW, title="Morning", prefix="x").startswith("# Morning: FAIL")
    assert "x_check_status" in report.render("prometheus", sample(), now=NOW, title="Morning", prefix="x")
    with pytest.raises(ValueError):
        report.render("pdf", sample())


@pytest.mark.parametrize("fmt", sorted(report.RENDERERS))
def test_write_report_changes_only_when_findings_change(tmp_path, fmt):
    path = str(tmp_path / ("report." + fmt))
    first = report.write_report(path, fmt, sample(), now=NOW)
    assert first == {"path": path, "format": fmt, "changed": True, "written": True}
    # Same findings six hours later: rewritten with the new time, but not a change.
    again = report.write_report(path, fmt, sample(), now=LATER)
    assert (again["changed"], again["written"]) == (False, True)
    with open(path) as handle:
        text = handle.read()
    assert "2026-02-24T08:00:00Z" in text or " {0}\n".format(int(LATER.timestamp())) in text
    # A value that moved (a latency, days left) is not a change either ...
    moved = sample()
    moved[0] = dict(moved[0], observed_value=86.5, output="86.5% of max_connections in use.")
    assert report.write_report(path, fmt, moved, now=LATER)["changed"] is False
    # ... but a check that changes status is, and so is one that appears.
    worse = sample()
    worse[1] = dict(worse[1], status=health.FAIL)
    assert report.write_report(path, fmt, worse, now=LATER)["changed"] is True
    more = worse + [health.check("new", health.PASS, 1, None, "new check")]
    assert report.write_report(path, fmt, more, now=LATER)["changed"] is True


def test_write_report_check_mode_writes_nothing_and_says_what_would_change(tmp_path):
    path = str(tmp_path / "health.json")
    assert report.write_report(path, "json", sample(), now=NOW, check_mode=True) == \
        {"path": path, "format": "json", "changed": True, "written": False}
    assert not os.path.exists(path)
    report.write_report(path, "json", sample(), now=NOW)
    assert report.write_report(path, "json", sample(), now=LATER, check_mode=True)["changed"] is False
    with open(path) as handle:
        assert json.load(handle)["time"] == "2026-02-24T02:00:00Z"


def test_write_report_fixes_the_mode_as_a_change(tmp_path):
    path = str(tmp_path / "health.md")
    report.write_report(path, "markdown", sample(), now=NOW)
    result = report.write_report(path, "markdown", sample(), now=NOW, mode=0o600)
    assert (result["changed"], result["written"]) == (True, False)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_a_foreign_file_at_the_path_is_replaced_as_a_change(tmp_path):
    path = tmp_path / "health.prom"
    path.write_text("# somebody else's metrics\n")
    assert report.write_report(str(path), "prometheus", sample(), now=NOW)["changed"] is True
    assert "ops_runbook_check_status" in path.read_text()


def test_publish_writes_every_format_given_and_returns_the_nagios_line(tmp_path):
    paths = {"json": str(tmp_path / "h.json"), "html": str(tmp_path / "h.html"), "markdown": None}
    result = report.publish(sample(), paths, now="2026-02-24T02:00:00Z", mode="0640", nagios_service="WEB",
                            title="Morning")
    assert result["status"] == "fail" and result["nagios_exit_code"] == 2
    assert result["nagios"].startswith("WEB CRITICAL - web1 disk:/")
    assert [item["format"] for item in result["files"]] == ["html", "json"]
    assert result["changed"] is True and result["time"] == "2026-02-24T02:00:00Z"
    assert oct(os.stat(paths["html"]).st_mode & 0o777) == "0o640"
    assert report.publish(sample(), paths, now=LATER, mode="0640", title="Morning")["changed"] is False


@pytest.mark.parametrize("checks, words", [
    ([{"name": "x", "status": "bad"}], "Item 0 of checks is not a health check"),
    ([{"status": "pass"}], "Item 0 of checks"),
    (["pass"], "Item 0 of checks"),
])
def test_publish_refuses_what_is_not_a_check(tmp_path, checks, words):
    with pytest.raises(RunbookError, match=words):
        report.publish(checks, {"json": str(tmp_path / "h.json")})


def test_publish_names_a_missing_directory_and_a_bad_time(tmp_path):
    with pytest.raises(RunbookError, match="does not exist"):
        report.publish(sample(), {"json": str(tmp_path / "missing" / "h.json")})
    with pytest.raises(RunbookError, match="ISO 8601"):
        report.publish(sample(), {"json": str(tmp_path / "h.json")}, now="yesterday")
    with pytest.raises(RunbookError, match="octal"):
        report.publish(sample(), {"json": str(tmp_path / "h.json")}, mode="rw-r--r--")
