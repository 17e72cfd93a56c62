"""The log report's pure parts: since, the time of a line, reading a file from its end, redaction, judging.

Commands (journalctl, systemctl, docker, compose) are answered by a fake runner; the real ones are
exercised by tests/integration/test_log_report_playbook.py.
"""
import datetime
import os
import time

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import log_report
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError, redact

NOW = datetime.datetime(2026, 12, 5, 15, 0, 0, tzinfo=datetime.timezone.utc)


class Runner:
    """Answers commands by their leading words; raises RunbookError for a program listed as missing."""

    def __init__(self, answers, missing=()):
        self.answers = answers
        self.missing = missing
        self.calls = []

    def __call__(self, argv, timeout=None, env=None):
        self.calls.append(argv)
        if argv[0] in self.missing:
            raise RunbookError("{0} is not installed on this host.".format(argv[0]), cause="missing_program")
        for prefix, (rc, out, err) in self.answers:
            if argv[:len(prefix)] == prefix:
                return Result(argv, rc, out, err)
        raise AssertionError("unexpected command {0}".format(argv))


def local(moment):
    """A line time as nginx writes it: the host's local time."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(moment))


# -- since -----------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("1h", 3600), ("2d", 172800), ("1h30m", 5400),
                                           ("90s", 90), ("1w", 604800), ("1H", 3600)])
def test_since_durations_count_back_from_now(text, seconds):
    assert log_report.parse_since(text, NOW) == NOW - datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text, expected", [
    ("2026-12-05T14:00:00Z", datetime.datetime(2026, 12, 5, 14, 0, tzinfo=datetime.timezone.utc)),
    ("2026-12-05 14:00", datetime.datetime(2026, 12, 5, 14, 0, tzinfo=datetime.timezone.utc)),
    ("2026-12-05T15:30:00+02:00", datetime.datetime(2026, 12, 5, 13, 30, tzinfo=datetime.timezone.utc)),
    ("2026-12-05T15:30:00+0200", datetime.datetime(2026, 12, 5, 13, 30, tzinfo=datetime.timezone.utc)),
    ("2026-12-04", datetime.datetime(2026, 12, 4, 0, 0, tzinfo=datetime.timezone.utc)),
])
def test_since_times_are_utc_unless_they_name_a_zone(text, expected):
    assert log_report.parse_since(text, NOW) == expected


@pytest.mark.parametrize("text, words", [("yesterday", "duration back from now"), ("1 hour", "ISO 8601"),
                                         ("2026-12-06T00:00:00Z", "in the future")])
def test_since_refuses_what_it_cannot_read(text, words):
    with pytest.raises(RunbookError) as caught:
        log_report.parse_since(text, NOW)
    assert words in str(caught.value)


# -- the time of a line ------------------------------------------------------

UTC_14 = datetime.datetime(2026, 12, 5, 14, 0, 1, tzinfo=datetime.timezone.utc).timestamp()


@pytest.mark.parametrize("line", [
    "2026-12-05 14:00:01.123 UTC [811] bmi@bmidb ERROR:  relation \"x\" does not exist",  # PostgreSQL
    "2026-12-05 15:00:01.123 +01 [811] LOG:  checkpoint starting: time",
    "2026-12-05T14:00:01+0000 web-01 nginx[811]: started",  # journalctl -o short-iso
    "2026-12-05T14:00:01.123456789Z hello from docker --timestamps",
    "2026-12-05T16:00:01+02:00 app: done",
    "10.0.0.1 - - [05/Dec/2026:14:00:01 +0000] \"GET /health HTTP/1.1\" 200 17",  # access log
    "10.0.0.1 - - [05/Dec/2026:09:00:01 -0500] \"GET / HTTP/1.1\" 500 0",
])
def test_lines_with_a_zone_are_read_in_it(line):
    assert log_report.line_time(line) == pytest.approx(UTC_14, abs=1)


def test_nginx_error_log_and_zoneless_iso_lines_are_local_time():
    moment = time.mktime((2026, 12, 5, 14, 0, 1, 0, 0, -1))
    assert log_report.line_time("2026/12/05 14:00:01 [error] 811#811: *9 connect() failed") == moment
    assert log_report.line_time("2026-12-05 14:00:01,331 ERROR app: boom") == moment


def test_syslog_lines_take_this_year_or_last():
    assert log_report.line_time("Dec  5 14:00:01 web-01 CRON[1]: x", NOW) == time.mktime(
        (2026, 12, 5, 14, 0, 1, 0, 0, -1))
    january = datetime.datetime(2027, 1, 2, tzinfo=datetime.timezone.utc)
    assert log_report.line_time("Dec 31 23:00:00 web-01 x", january) == time.mktime((2026, 12, 31, 23, 0, 0, 0, 0, -1))


@pytest.mark.parametrize("line", ["Traceback (most recent call last):", "  File \"app.py\", line 3", "",
                                  "2026-13-45 99:00:00 not a time", "DETAIL:  Key (id)=(1) already exists."])
def test_lines_without_a_time(line):
    assert log_report.line_time(line) is None


# -- reading a file from its end ---------------------------------------------

def write_timed_log(path, start, count, step, error_every=0, filler=""):
    with open(path, "w") as handle:
        for index in range(count):
            level = "error" if error_every and index % error_every == 0 else "notice"
            handle.write("{0} [{1}] 1#1: *{2} line {2}{3}\n".format(local(start + index * step), level, index, filler))


def test_a_big_file_is_read_only_from_the_end(tmp_path):
    path = str(tmp_path / "error.log")
    now = time.time()
    # 20,000 lines over about 5.5 hours, 200 bytes each: 4 MB; the last 10 minutes are 600 lines.
    write_timed_log(path, now - 20000, 20000, 1, filler="x" * 150)
    window = log_report.tail_file(path, now - 600, 10000, block_size=64 * 1024)
    assert window.timed and window.complete
    assert 595 <= len(window.lines) <= 601
    assert window.lines[-1].endswith("line 19999" + "x" * 150)
    assert window.bytes_read <= 3 * 64 * 1024 < os.path.getsize(path) / 10


def test_untimed_lines_go_with_the_timed_line_above_them(tmp_path):
    path = str(tmp_path / "app.log")
    now = time.time()
    with open(path, "w") as handle:
        handle.write("{0} [error] old failure\nTraceback (most recent call last):\n  old frame\n".format(
            local(now - 7200)))
        handle.write("{0} [error] new failure\nTraceback (most recent call last):\n  new frame\n".format(
            local(now - 60)))
    window = log_report.tail_file(path, now - 3600, 100)
    assert [line.split("] ")[-1] for line in window.lines] == [
        "new failure", "Traceback (most recent call last):", "  new frame"]
    assert window.complete


def test_a_file_without_times_gives_its_last_lines(tmp_path):
    path = str(tmp_path / "plain.log")
    with open(path, "w") as handle:
        handle.write("".join("plain line {0}\n".format(index) for index in range(500)))
    window = log_report.tail_file(path, time.time() - 60, 100, block_size=1024)
    assert not window.timed and not window.complete
    assert window.lines == ["plain line {0}".format(index) for index in range(400, 500)]
    short = log_report.tail_file(path, time.time() - 60, 1000)
    assert short.complete and len(short.lines) == 500


def test_the_scan_limit_marks_the_count_incomplete(tmp_path):
    path = str(tmp_path / "busy.log")
    now = time.time()
    write_timed_log(path, now - 300, 300, 1)
    window = log_report.tail_file(path, now - 3600, 50, block_size=512)
    assert len(window.lines) == 50 and not window.complete
    assert window.lines[-1].endswith("line 299")


def test_last_line_without_newline_and_empty_file(tmp_path):
    path = tmp_path / "x.log"
    path.write_text("first\nsecond")
    assert log_report.tail_file(str(path), None, 10).lines == ["first", "second"]
    path.write_text("")
    window = log_report.tail_file(str(path), None, 10)
    assert window.lines == [] and window.complete


# -- redaction ---------------------------------------------------------------

@pytest.mark.parametrize("line, secret", [
    ("connecting with PGPASSWORD=hunter2 to db", "hunter2"),
    ("db_password: 'hunter2'", "hunter2"),
    ('{"password": "hunter2", "user": "bmi"}', "hunter2"),
    ("DATABASE_URL=postgresql://bmi:hunter2@db:5432/bmidb", "hunter2"),
    ("url postgresql://bmi:hunter2@db:5432/bmidb", "hunter2"),
    ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
    ("api_key=k-123456 token=t-987654", "t-987654"),
])
def test_redact_masks_obvious_secrets(line, secret):
    masked = redact(line)
    assert secret not in masked and "********" in masked


@pytest.mark.parametrize("line", ['FATAL:  password authentication failed for user "bmi"',
                                  "2026/12/05 14:00:01 [error] 1#1: upstream timed out", "errors=0 tokens"])
def test_redact_leaves_ordinary_lines_alone(line):
    assert redact(line) == line


# -- sources and judgement ---------------------------------------------------

def report(runner=None, **options):
    return log_report.run_log_report(options, runner=runner or Runner([]), now=NOW)


JOURNAL = ("2026-12-05T14:10:00+0000 web-01 bmi-backend[5]: started\n"
           "2026-12-05T14:20:00+0000 web-01 bmi-backend[5]: ERROR db down password=hunter2\n"
           "2026-12-05T14:30:00+0000 web-01 bmi-backend[5]: ok\n")


def test_a_unit_is_read_with_journalctl_since_and_judged():
    runner = Runner([(["journalctl"], (0, JOURNAL, ""))])
    result = report(runner, units=["bmi-backend"], since="1h")
    check = result["checks"][0]
    assert runner.calls[0] == ["journalctl", "-u", "bmi-backend.service", "--since", "@{0}".format(
        int(NOW.timestamp()) - 3600), "-o", "short-iso", "--no-pager", "-n", "10000"]
    assert (check["name"], check["kind"], check["status"], check["error_count"]) == (
        "bmi-backend.service", "unit", "warn", 1)
    assert check["last_error"].endswith("password=********") and "hunter2" not in str(result)
    assert check["output"] == ("Unit bmi-backend.service: 1 error line in 3 lines since 2026-12-05T14:00:00Z "
                               "(above the warn limit of 0).")


@pytest.mark.parametrize("answers, missing, words", [
    ([], ("journalctl",), "journalctl is not installed"),
    ([(["journalctl"], (0, "-- No entries --\n", "No journal files were found.\n"))], (), "no journal files"),
    ([(["journalctl"], (0, "", "Hint: You are currently not seeing messages from other users and the system."))],
     (), "run the task with become"),
    ([(["journalctl"], (0, "-- No entries --\n", "")), (["systemctl"], (0, "LoadState=not-found\n", ""))], (),
     "No unit ghost.service on this host"),
    ([(["journalctl"], (0, "-- No entries --\n", "")),
      (["systemctl"], (1, "", "System has not been booted with systemd as init system (PID 1)."))], (),
     "is systemd running as PID 1"),
])
def test_a_unit_that_cannot_be_read_fails_with_the_reason(answers, missing, words):
    result = report(Runner(answers, missing), units=["ghost"])
    check = result["checks"][0]
    assert (check["status"], check["unchecked"], check["readable"]) == ("fail", True, False)
    assert check["output"].startswith("Could not read unit ghost.service: ")
    assert words in check["output"]


def test_a_quiet_unit_that_exists_passes():
    runner = Runner([(["journalctl"], (0, "-- No entries --\n", "")), (["systemctl"], (0, "LoadState=loaded\n", ""))])
    check = report(runner, units=["cron"])["checks"][0]
    assert (check["status"], check["line_count"], check["error_count"]) == ("pass", 0, 0)


def test_container_streams_are_merged_in_time_order():
    out = "2026-12-05T14:10:00.000000001Z GET /health 200\n2026-12-05T14:30:00.000000001Z GET /health 200\n"
    err = "2026-12-05T14:20:00.000000001Z Traceback (most recent call last):\n"
    runner = Runner([(["docker", "logs"], (0, out, err))])
    result = report(runner, containers=["web"], docker_host="unix:///x.sock", lines=2)
    check = result["checks"][0]
    assert runner.calls[0] == ["docker", "logs", "--since", str(int(NOW.timestamp()) - 3600), "--tail", "10000",
                               "--timestamps", "web"]
    assert check["lines"] == ["2026-12-05T14:20:00.000000001Z Traceback (most recent call last):",
                              "2026-12-05T14:30:00.000000001Z GET /health 200"]
    assert (check["kind"], check["error_count"], check["line_count"]) == ("container", 1, 3)


def test_a_missing_container_and_a_silent_engine_fail_with_advice():
    runner = Runner([(["docker", "logs", "--since"], (1, "", "Error: No such container: ghost"))])
    check = report(runner, containers=["ghost"])["checks"][0]
    assert check["status"] == "fail" and "No such container" in check["output"] and "docker ps --all" in check["output"]
    runner = Runner([(["docker"], (1, "", "Cannot connect to the Docker daemon at unix:///x.sock. "
                                          "Is the docker daemon running?"))])
    check = report(runner, containers=["web"])["checks"][0]
    assert check["output"].startswith("Could not read container web: The Docker engine does not answer")


COMPOSE = ["docker", "compose", "--project-directory", "/opt/app"]


def test_compose_service_logs_with_the_project_options():
    logs = ("backend-1  | 2026-12-05T14:40:00.000000000Z FATAL: db gone\n"
            "backend-1  | 2026-12-05T14:10:00.000000000Z started\n")
    runner = Runner([(COMPOSE[:2] + ["version"], (0, "2.40.3\n", "")), (COMPOSE + ["ps"], (0, "abc123\n", "")),
                     (COMPOSE + ["logs"], (0, logs, ""))])
    check = report(runner, compose_services=["backend"], compose_project_dir="/opt/app")["checks"][0]
    assert runner.calls[-1] == COMPOSE + ["logs", "--no-color", "--since", str(int(NOW.timestamp()) - 3600),
                                          "--tail", "10000", "--timestamps", "backend"]
    assert check["lines"][-1].endswith("FATAL: db gone") and check["error_count"] == 1
    assert check["kind"] == "compose_service"


@pytest.mark.parametrize("answers, words", [
    ([(["docker", "compose", "version"], (0, "1.29.2\n", ""))], "Docker Compose v1"),
    ([(["docker", "compose", "version"], (0, "2.40.3\n", "")), (COMPOSE + ["ps"], (0, "", ""))], "has no container"),
    ([(["docker", "compose", "version"], (0, "2.40.3\n", "")), (COMPOSE + ["ps"], (1, "", "no such service: db"))],
     "no such service"),
])
def test_compose_services_that_cannot_be_read(answers, words):
    check = report(Runner(answers), compose_services=["db"], compose_project_dir="/opt/app")["checks"][0]
    assert check["status"] == "fail" and check["unchecked"] and words in check["output"]


def test_files_patterns_each_match_is_a_source_and_no_match_fails(tmp_path):
    for name in ("a.log", "b.log"):
        (tmp_path / name).write_text("{0} [error] boom\n".format(local(NOW.timestamp() - 60)))
    result = report(files=[str(tmp_path / "*.log"), str(tmp_path / "none-*.log"), str(tmp_path)], since="1h")
    assert [(c["name"], c["status"]) for c in result["checks"]] == [
        (str(tmp_path / "a.log"), "warn"), (str(tmp_path / "b.log"), "warn"),
        (str(tmp_path / "none-*.log"), "fail"), (str(tmp_path), "fail")]
    assert "No file matches" in result["checks"][2]["output"]
    assert "is a directory" in result["checks"][3]["output"]


def test_thresholds_lines_pattern_and_cutting(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("".join("{0} [error] {1} {2}\n".format(local(NOW.timestamp() - 60), index, "y" * 100)
                            for index in range(5)))
    result = report(files=[str(path)], thresholds={"error_lines": {"fail": 4}}, lines=2, max_line_length=40)
    check = result["checks"][0]
    assert check["status"] == "fail" and check["threshold"] == {"warn": 0, "fail": 4}
    assert len(check["lines"]) == 2 and check["lines"][0].endswith("more characters]")
    assert "above the fail limit of 4" in check["output"]
    quiet = report(files=[str(path)], error_pattern="nothing-like-this", lines=0)["checks"][0]
    assert (quiet["status"], quiet["lines"], quiet["line_count"]) == ("pass", [], 5)


@pytest.mark.parametrize("options, words", [
    ({"files": ["/x"], "thresholds": {"errors": {"warn": 1}}}, "Known thresholds: error_lines"),
    ({"files": ["/x"], "error_pattern": "(unclosed"}, "not a regular expression"),
    ({}, "No log source given"),
    ({"files": ["/x"], "lines": -1}, "lines is -1"),
])
def test_invalid_options_are_refused_before_reading(options, words):
    with pytest.raises(RunbookError) as caught:
        report(**options)
    assert words in str(caught.value)


def test_the_text_report_puts_failing_sources_first(tmp_path):
    path = tmp_path / "ok.log"
    path.write_text("{0} [notice] fine\n".format(local(NOW.timestamp() - 60)))
    result = report(files=[str(path), str(tmp_path / "missing.log")], host_label="web-01")
    text = result["report"].splitlines()
    assert text[0] == "Logs of web-01: FAIL - 2 sources since 2026-12-05T14:00:00Z: 1 fail, 0 warn, 1 pass"
    assert text[2].startswith("[FAIL] Could not read file {0}".format(tmp_path / "missing.log"))
    assert text[4].startswith("[PASS] File {0}: 0 error lines".format(path))
    assert [check["host"] for check in result["checks"]] == ["web-01", "web-01"]
