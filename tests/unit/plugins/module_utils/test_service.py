"""The restart engine's judgement, on a simulated systemd and clock (the molecule scenario runs the real ones)."""
import json
import socket

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import http_health as http_check, service_restart as service
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def up(pid=100, restarts=0, since=1):
    return {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "MainPID": str(pid),
            "NRestarts": str(restarts), "ActiveEnterTimestampMonotonic": str(since), "Result": "success"}


def down(state="failed", result="exit-code", status=1, restarts=0):
    return {"LoadState": "loaded", "ActiveState": state, "SubState": "failed" if state == "failed" else "dead",
            "MainPID": "0", "NRestarts": str(restarts), "ActiveEnterTimestampMonotonic": "0", "Result": result,
            "ExecMainStatus": str(status)}


class FakeSystemd:
    """A unit whose properties follow `timeline(seconds since the restart)`; records every command."""

    def __init__(self, clock, timeline, before=None, config_test_rc=0):
        self.clock = clock
        self.timeline = timeline
        self.before = before or up(pid=50, since=1)
        self.restarted_at = None
        self.config_test_rc = config_test_rc
        self.commands = []

    def __call__(self, argv, timeout=None, env=None):
        self.commands.append(list(argv))
        if argv[:2] == ["systemctl", "show"]:
            if self.restarted_at is None:
                properties = self.before
            else:
                properties = self.timeline(self.clock() - self.restarted_at)
            return Result(argv, 0, "\n".join("{0}={1}".format(k, v) for k, v in properties.items()), "")
        if argv[:2] in (["systemctl", "restart"], ["systemctl", "reload"]):
            self.restarted_at = self.clock()
            return Result(argv, 0, "", "")
        if argv[0] == "journalctl":
            return Result(argv, 0, "2026-02-24T02:00:01+0000 host app[1]: boom\n", "")
        if argv[0] == "nginx":
            return Result(argv, self.config_test_rc, "", "nginx: [emerg] unexpected \"}\" in /etc/nginx/x.conf:3\n"
                          if self.config_test_rc else "nginx: configuration file /etc/nginx/nginx.conf test is "
                          "successful\n")
        raise AssertionError("unexpected command {0}".format(argv))

    @property
    def restarts(self):
        return [argv for argv in self.commands if argv[:2] in (["systemctl", "restart"], ["systemctl", "reload"])]


def answering(code, body, content_type="application/json"):
    """A health URL that always gives this answer; the requests it was asked are kept."""
    def fetch(request):
        fetch.requests.append(request)
        return http_check.Answer(code, body.encode() if isinstance(body, str) else json.dumps(body).encode(),
                                 content_type)
    fetch.requests = []
    return fetch


def run(clock, unit, fetch=None, tcp=None, check_mode=False, **options):
    opts = dict(name="app", settle_seconds=4, timeout=15, poll_interval=0.5)
    opts.update(options)
    return service.run_service(opts, check_mode=check_mode, runner=unit, clock=clock, sleep=clock.sleep,
                               tcp=tcp or (lambda host, port, timeout: None),
                               fetch=fetch or answering(200, {"status": "ok"}))


def names(result):
    return [(check["name"], check["status"]) for check in result["checks"]]


def test_a_service_that_starts_and_stays_up_passes():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200, since=2) if t >= 1 else down("activating", "success", 0))
    result = run(clock, unit, port=3000, health_url="http://127.0.0.1:3000/health")
    assert not result["failed"], result["msg"]
    assert names(result) == [("active", "pass"), ("stable", "pass"), ("port", "pass"), ("health", "pass")]
    assert result["changed"] is True
    assert result["downtime_seconds"] == pytest.approx(1.0)
    assert result["checks"][1]["observed_value"] >= 4
    assert result["msg"].startswith("app.service was restarted and verified (1.0 s from the restart")
    assert result["checks"][3]["output"] == "http://127.0.0.1:3000/health answered HTTP 200: status is 'ok'."


def test_a_unit_that_exits_two_seconds_after_start_fails_even_if_systemd_restarts_it():
    clock = Clock()

    def timeline(t):
        # Restart=on-failure, RestartSec=1: always "active" again soon, but a new PID and NRestarts + 1.
        cycle = int(t // 3)
        if t % 3 < 2:
            return up(pid=200 + cycle, restarts=cycle, since=10 + cycle)
        return down("activating", "exit-code", 1, restarts=cycle)
    unit = FakeSystemd(clock, timeline)
    result = run(clock, unit)
    assert result["failed"]
    assert ("stable", "fail") in names(result)
    assert "did not stay up" in result["msg"]
    assert "restart loop or crash" in result["msg"]
    assert result["journal"] == ["2026-02-24T02:00:01+0000 host app[1]: boom"]


def test_a_restart_loop_seen_only_through_the_counter_fails():
    clock = Clock()
    # Every poll sees "active" with the same PID reused; only NRestarts tells.
    unit = FakeSystemd(clock, lambda t: up(pid=200, restarts=0 if t < 2.2 else 1, since=5))
    result = run(clock, unit)
    assert result["failed"]
    assert "its restart counter went from 0 to 1" in result["msg"]


def test_a_unit_that_dies_and_stays_down_fails_at_once():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200) if t < 2 else down("failed", "exit-code", 3))
    result = run(clock, unit)
    assert result["failed"]
    assert "it is failed (failed), result exit-code, exit status 3" in result["msg"]
    assert clock.now - 1000.0 < 4


def test_a_unit_that_never_becomes_active_fails_at_the_timeout():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: down("activating", "", 0))
    result = run(clock, unit)
    assert result["failed"]
    assert result["msg"].endswith("did not become active within 15 s: it is activating (dead).")
    assert result["downtime_seconds"] is None


def test_a_health_endpoint_reporting_a_failed_dependency_fails_with_the_dependency():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    body = {"status": "degraded", "dependencies": {"database": {"status": "unhealthy"}}}
    result = run(clock, unit, health_url="http://127.0.0.1:3000/health", fetch=answering(503, body))
    assert result["failed"]
    assert ("health", "fail") in names(result)
    assert result["msg"] == (
        "app.service was restarted but is not healthy: http://127.0.0.1:3000/health did not report healthy within "
        "15 s: answered HTTP 503, expected a 2xx status; status is 'degraded' (degraded), expected one of "
        "'healthy', 'pass', 'ok', 'up'; dependencies.database.status is 'unhealthy', expected one of 'healthy', "
        "'pass', 'ok', 'up'.")
    health = [check for check in result["checks"] if check["name"] == "health"][0]
    assert health["observed_value"] == 503 and health["response"] == body


def test_a_degraded_dependency_is_not_healthy_after_a_restart():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    body = {"status": "healthy", "dependencies": {"database": "healthy", "cache": {"status": "degraded"}}}
    result = run(clock, unit, health_url="http://127.0.0.1:3000/health", fetch=answering(200, body))
    assert result["failed"]
    assert result["msg"].endswith("15 s: dependencies.cache.status is 'degraded' (degraded), expected one of "
                                  "'healthy', 'pass', 'ok', 'up'.")


@pytest.mark.parametrize("code, body, content_type, words", [
    (200, "<html>It works</html>", "text/html", "the answer is not JSON but 21 bytes of text/html: <html>It works"),
    (200, "", "", "the answer is empty, not JSON"),
    (200, {"uptime": 3}, "application/json", "the answer has no status"),
    (302, "", "", "answered HTTP 302, expected a 2xx status; the answer is empty, not JSON"),
])
def test_a_health_answer_without_a_healthy_json_status_fails(code, body, content_type, words):
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    result = run(clock, unit, health_url="http://127.0.0.1:3000/health", fetch=answering(code, body, content_type))
    assert result["failed"]
    assert "did not report healthy within 15 s: " + words in result["msg"]


def test_a_health_url_without_an_answer_says_why():
    def refused(request):
        raise http_check.request_error(ConnectionRefusedError(111, "Connection refused"), request)
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    result = run(clock, unit, health_url="http://127.0.0.1:3000/health", fetch=refused)
    assert result["msg"].endswith("did not report healthy within 15 s: got no answer: Connection to 127.0.0.1:3000 "
                                  "refused: nothing listens there.")


def test_the_callers_expectations_and_status_codes_replace_the_defaults():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    fetch = answering(204, {"state": "green", "version": "1.2.1"})
    result = run(clock, unit, health_url="http://127.0.0.1:3000/health", fetch=fetch, expect_status=[204],
                 expect_json={"state": "green", "version": ["1.2.0", "1.2.1"]})
    assert not result["failed"], result["msg"]
    assert result["checks"][-1]["threshold"] == "204 and the expected JSON"
    result = run(Clock(), FakeSystemd(clock, lambda t: up(pid=200)), health_url="http://127.0.0.1:3000/health",
                 fetch=answering(200, {"state": "red"}), expect_json={"state": "green"})
    assert result["msg"].endswith("within 15 s: state is 'red', expected 'green'.")


def test_the_health_url_is_asked_directly_unless_the_proxy_is_wanted():
    clock = Clock()
    fetch = answering(200, {"status": "ok"})
    run(clock, FakeSystemd(clock, lambda t: up(pid=200)), health_url="https://app.internal/health", fetch=fetch,
        health_ca_path="/etc/ssl/company.pem", health_request_timeout=2)
    request = fetch.requests[0]
    assert (request["use_proxy"], request["ca_path"], request["timeout"], request["follow_redirects"]) == \
        (False, "/etc/ssl/company.pem", 2.0, False)
    run(clock, FakeSystemd(clock, lambda t: up(pid=200)), health_url="https://app.internal/health", fetch=fetch,
        health_use_proxy=True)
    assert fetch.requests[-1]["use_proxy"] is True


def test_a_port_that_never_opens_fails():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    result = run(clock, unit, port=3000, tcp=lambda host, port, timeout: "Connection refused")
    assert result["failed"]
    assert "127.0.0.1:3000 did not accept connections within 15 s: Connection refused" in result["msg"]


def test_a_failing_config_test_refuses_the_restart_and_never_touches_the_unit():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200), config_test_rc=1)
    result = run(clock, unit, name="nginx", config_test="nginx -t")
    assert result["failed"]
    assert unit.restarts == []
    assert result["changed"] is False
    assert names(result) == [("config_test", "fail")]
    assert "nginx.service was not restarted" in result["msg"]
    assert "unexpected \"}\"" in result["msg"]


def test_check_mode_runs_the_config_test_and_only_reports_the_plan():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    result = run(clock, unit, check_mode=True, name="nginx", config_test=["nginx", "-t"], port=80)
    assert not result["failed"]
    assert unit.restarts == []
    assert result["changed"] is True
    assert result["msg"].startswith("`nginx -t` passed. Would systemctl restart nginx.service; then verify within 15 s")
    assert "is now active (running), PID 50" in result["msg"]


def test_verified_changes_nothing_and_still_watches_the_settle_period():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=200))
    unit.before = up(pid=50)
    result = run(clock, unit, state="verified")
    assert not result["failed"] and result["changed"] is False
    assert unit.restarts == []
    assert result["downtime_seconds"] is None
    assert clock.now - 1000.0 >= 4


def test_reload_keeps_the_pid_or_fails():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(pid=50 if t < 1 else 51))
    result = run(clock, unit, state="reloaded")
    assert result["failed"]
    assert "its main PID changed from 50 to 51" in result["msg"]


def test_reload_of_a_stopped_unit_says_to_restart():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(), before=down("inactive", "success", 0))
    result = run(clock, unit, state="reloaded")
    assert result["failed"] and unit.restarts == []
    assert "cannot be reloaded; restart it instead" in result["msg"]


def test_a_missing_unit_fails_clearly():
    clock = Clock()
    unit = FakeSystemd(clock, lambda t: up(), before={"LoadState": "not-found", "ActiveState": "inactive"})
    result = run(clock, unit, name="bmi-backend")
    assert result["failed"]
    assert result["msg"] == "bmi-backend.service does not exist on this host: check the name."


@pytest.mark.parametrize("options, message", [
    ({"name": "a", "compose_service": "b"}, "exactly one service"),
    ({}, "exactly one service"),
    ({"name": "a", "timeout": 5, "settle_seconds": 5}, "must be longer than settle_seconds"),
    ({"name": "a", "port": 70000}, "between 1 and 65535"),
    ({"name": "a", "poll_interval": 0}, "positive number"),
    ({"name": "a", "health_url": "http://x/health", "expect_json": ["healthy"]}, "must be a mapping"),
    ({"name": "a", "health_url": "http://x/health", "expect_json": {"dependencies": {"db": {"status": "ok"}}}},
     "its own dotted path"),
    ({"name": "a", "expect_json": {"status": "ok"}}, "expect_json without a health_url"),
    ({"name": "a", "health_url": "127.0.0.1:3000/health"}, "not an http:// or https:// URL"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(RunbookError, match=message):
        service.normalize(options)


def test_tcp_open_reports_a_refused_port():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.listen(1)
    try:
        assert service.tcp_open("127.0.0.1", port) is None
    finally:
        listener.close()
    assert service.tcp_open("127.0.0.1", port) is not None
