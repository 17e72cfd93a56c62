"""The health-JSON expectation: what a healthy answer must say, and how a mismatch is told."""
import pytest

from ansible_collections.ops.runbook.plugins.module_utils import probe

HEALTHY = {"status": "healthy", "dependencies": {"database": {"status": "healthy"}, "redis": {"status": "ok"}}}


def test_default_expectation_accepts_a_healthy_service_and_its_dependencies():
    assert probe.expectation_mismatches(HEALTHY, probe.DEFAULT_EXPECTATION) == []


def test_default_expectation_names_the_failed_dependency():
    body = {"status": "healthy", "dependencies": {"database": {"status": "unhealthy"}, "redis": {"status": "ok"}}}
    problems = probe.expectation_mismatches(body, probe.DEFAULT_EXPECTATION)
    assert len(problems) == 1
    assert problems[0].startswith("dependencies.database.status is 'unhealthy', expected one of 'healthy'")


def test_default_expectation_fails_an_unhealthy_top_level_status():
    problems = probe.expectation_mismatches({"status": "degraded"}, probe.DEFAULT_EXPECTATION)
    assert problems == ["status is 'degraded', expected one of 'healthy', 'ok', 'pass', 'up'"]


@pytest.mark.parametrize("body", [{"status": "ok"}, {"status": "UP", "dependencies": {}},
                                  {"status": "pass", "dependencies": []}])
def test_a_service_without_dependencies_is_healthy(body):
    assert probe.expectation_mismatches(body, probe.DEFAULT_EXPECTATION) == []


def test_dependencies_as_a_list_are_named_by_their_name():
    body = {"status": "ok", "dependencies": [{"name": "db", "status": "ok"}, {"name": "s3", "status": "down"}]}
    assert probe.expectation_mismatches(body, probe.DEFAULT_EXPECTATION) == [
        "dependencies.s3.status is 'down', expected one of 'healthy', 'ok', 'pass', 'up'"]


def test_a_missing_status_is_reported():
    assert probe.expectation_mismatches({"dependencies": {}}, probe.DEFAULT_EXPECTATION) == ["status is missing"]


def test_caller_expectation_is_a_subset_match_with_exact_values():
    expectation = {"status": "healthy", "dependencies": {"database": {"status": "healthy"}}, "version": 2}
    body = dict(HEALTHY, version=2, uptime=12)
    assert probe.expectation_mismatches(body, expectation) == []
    assert probe.expectation_mismatches(dict(body, version=3), expectation) == ["version is 3, expected 2"]
    missing = {"status": "healthy", "dependencies": {"redis": {"status": "ok"}}, "version": 2}
    assert probe.expectation_mismatches(missing, expectation) == ["dependencies.database is missing"]


def test_a_named_dependency_and_a_wildcard_combine():
    expectation = {"dependencies": {"database": {"status": "healthy", "latency_ms": [1, 2, 3]},
                                    "*": {"status": ["healthy", "ok"]}}}
    body = {"dependencies": {"database": {"status": "healthy", "latency_ms": 2}, "redis": {"status": "ok"},
                             "mail": {"status": "failing"}}}
    assert probe.expectation_mismatches(body, expectation) == [
        "dependencies.mail.status is 'failing', expected one of 'healthy', 'ok'"]


def test_booleans_are_not_numbers():
    assert probe.expectation_mismatches({"ready": 1}, {"ready": True}) == ["ready is 1, expected true"]
    assert probe.expectation_mismatches({"ready": True}, {"ready": True}) == []


def test_a_non_object_answer_is_reported():
    assert probe.expectation_mismatches(["ok"], {"status": "ok"}) == [
        'the response is ["ok"], expected an object']


def test_judge_health_needs_a_2xx_and_matching_json():
    assert probe.judge_health(200, '{"status": "healthy"}')[0] is None
    reason, document = probe.judge_health(503, '{"status": "unhealthy", "dependencies": {"database": '
                                               '{"status": "unhealthy"}}}')
    assert reason.startswith("answered HTTP 503: status is 'unhealthy'")
    assert "dependencies.database.status is 'unhealthy'" in reason
    assert document["status"] == "unhealthy"
    assert probe.judge_health(200, "<html>It works</html>")[0] == \
        "answered HTTP 200 but not with JSON: <html>It works</html>"
    assert probe.judge_health(200, "")[0] == "answered HTTP 200 but not with JSON: (empty body)"
    reason, _document = probe.judge_health(200, '{"status": "ok", "dependencies": {"db": {"status": "down"}}}')
    assert reason == "dependencies.db.status is 'down', expected one of 'healthy', 'ok', 'pass', 'up'"


def test_judge_health_uses_the_callers_expectation():
    assert probe.judge_health(200, '{"state": "green"}', {"state": "green"})[0] is None
    assert probe.judge_health(200, '{"state": "red"}', {"state": "green"})[0] == "state is 'red', expected 'green'"


def test_describe_healthy_names_status_and_dependencies():
    assert probe.describe_healthy(HEALTHY) == "status 'healthy', database 'healthy', redis 'ok'"


def test_tcp_open_reports_a_refused_port():
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.listen(1)
    try:
        assert probe.tcp_open("127.0.0.1", port) is None
    finally:
        listener.close()
    assert probe.tcp_open("127.0.0.1", port) is not None
