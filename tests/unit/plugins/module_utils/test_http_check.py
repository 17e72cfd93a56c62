"""Judging a health endpoint's answer and reading its settings: pure logic, no server."""
import json

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import http_health as http_check
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


def settings(**options):
    return http_check.endpoint_settings({"url": "https://api.example.com/health", "name": "api"},
                                        dict(http_check.DEFAULTS, **options))


def statuses(checks):
    return {item["name"]: item["status"] for item in checks}


def test_endpoint_settings_name_defaults_to_host_and_path():
    assert http_check.endpoint_settings("https://api.example.com/auth/health/", http_check.DEFAULTS)["name"] == \
        "api.example.com/auth/health"
    assert http_check.endpoint_settings({"url": "http://web1:8080"}, http_check.DEFAULTS)["name"] == "web1:8080"


def test_endpoint_options_override_module_defaults():
    item = http_check.endpoint_settings({"url": "https://x/health", "latency_warn_ms": 100, "method": "head"},
                                        dict(http_check.DEFAULTS, latency_fail_ms=900))
    assert (item["latency_warn_ms"], item["latency_fail_ms"], item["method"]) == (100, 900, "HEAD")


@pytest.mark.parametrize("spec, words", [
    ({"url": "ftp://x/"}, "not an http:// or https:// URL"),
    ({"url": "api.example.com/health"}, "not an http:// or https:// URL"),
    ({"url": "https://x/", "latency_warn_ms": 900, "latency_fail_ms": 100},
     "Endpoint x: latency_warn_ms \\(900\\) is above latency_fail_ms \\(100\\)"),
    ({"url": "https://x/", "warn_days": 3}, "warn_days \\(3\\) is below fail_days \\(7\\)"),
])
def test_endpoint_settings_refuse_what_cannot_work(spec, words):
    with pytest.raises(RunbookError, match=words):
        http_check.endpoint_settings(spec, http_check.DEFAULTS)


def test_duplicate_names_are_refused_before_any_request():
    with pytest.raises(RunbookError, match="share the name api"):
        http_check.run_http_health({"endpoints": [{"url": "http://a/", "name": "api"},
                                                  {"url": "http://b/", "name": "api"}]})


def test_resolve_follows_dots_wildcards_and_list_indexes():
    document = {"status": "ok", "dependencies": {"db": {"status": "up"}, "cache": {"status": "down"}},
                "checks": [{"status": "pass"}, {"status": "warn"}]}
    assert http_check.resolve(document, "status") == [("status", "ok")]
    assert http_check.resolve(document, "dependencies.*.status") == [
        ("dependencies.cache.status", "down"), ("dependencies.db.status", "up")]
    assert http_check.resolve(document, "checks.1.status") == [("checks.1.status", "warn")]
    assert http_check.resolve(document, "checks.*.status")[0] == ("checks.0.status", "pass")
    assert http_check.resolve(document, "missing.path") == []
    assert http_check.resolve(document, "status.deeper") == []


def test_resolve_names_list_items_by_their_name_or_index():
    document = {"dependencies": [{"name": "db", "status": "ok"}, {"status": "up"}]}
    assert http_check.resolve(document, "dependencies.*.status") == [
        ("dependencies.db.status", "ok"), ("dependencies.1.status", "up")]
    assert http_check.resolve(document, "dependencies.db.status") == [("dependencies.db.status", "ok")]
    assert http_check.resolve(document, "dependencies.0.status") == [("dependencies.0.status", "ok")]
    assert http_check.resolve(document, "dependencies.cache.status") == []


def test_runbook_answer_with_plain_string_dependencies():
    # The answer the runbooks' "Expected Responses" show.
    answer = {"status": "healthy", "version": "1.2.0", "uptime": 86400,
              "dependencies": {"database": "healthy", "cache": "healthy", "messageQueue": "unhealthy"}}
    checks = http_check.judge_document(answer, settings())
    assert statuses(checks) == {"health": "pass", "dependency:cache": "pass",
                                "dependency:database": "pass", "dependency:messageQueue": "fail"}
    failing = [item for item in checks if item["status"] == "fail"][0]
    assert failing["output"] == \
        "dependencies.messageQueue is 'unhealthy', expected one of 'healthy', 'pass', 'ok', 'up'"
    assert failing["threshold"] == ["healthy", "pass", "ok", "up"]
    assert failing["dependency"] == "messageQueue" and failing["observed_value"] == "unhealthy"


def test_services_key_objects_with_status_and_ietf_check_lists():
    answer = {"status": "pass",
              "services": {"database": {"status": "UP"}, "api": {"status": "degraded"}, "queue": {"latency": 3}},
              "checks": {"db:connections": [{"status": "pass"}, {"status": "warn"}], "uptime": [{"status": "pass"}]}}
    checks = http_check.judge_document(answer, settings())
    assert statuses(checks) == {"health": "pass", "dependency:database": "pass", "dependency:api": "warn",
                                "dependency:queue": "fail", "dependency:db:connections": "warn",
                                "dependency:uptime": "pass"}
    outputs = {item["name"]: item["output"] for item in checks}
    assert outputs["dependency:api"] == \
        "services.api.status is 'degraded' (degraded), expected one of 'healthy', 'pass', 'ok', 'up'"
    assert outputs["dependency:db:connections"].startswith("checks.db:connections.1.status is 'warn' (degraded)")
    assert [item["observed_value"] for item in checks if item["name"] == "dependency:db:connections"] == \
        [["pass", "warn"]]


def test_dependency_without_status_says_so():
    checks = http_check.judge_document({"dependencies": {"queue": {"latency": 3}}}, settings())
    assert checks[0]["output"] == "the answer has no dependencies.queue.status"
    assert checks[0]["status"] == "fail" and checks[0]["observed_value"] is None


HEALTHY = {"status": "healthy", "dependencies": {"database": {"status": "healthy"}, "redis": {"status": "ok"}}}


@pytest.mark.parametrize("body", [HEALTHY, {"status": "ok"}, {"status": "UP", "dependencies": {}},
                                  {"status": "pass", "dependencies": []}])
def test_a_healthy_service_with_or_without_dependencies_passes(body):
    checks = http_check.judge_document(body, settings(require_status=True))
    assert checks and all(item["status"] == "pass" for item in checks), checks


def test_dependencies_as_a_list_are_named_by_their_name():
    body = {"status": "ok", "dependencies": [{"name": "db", "status": "ok"}, {"name": "s3", "status": "down"}]}
    checks = http_check.judge_document(body, settings())
    assert statuses(checks) == {"health": "pass", "dependency:db": "pass", "dependency:s3": "fail"}
    assert checks[-1]["output"] == "dependencies.s3.status is 'down', expected one of 'healthy', 'pass', 'ok', 'up'"


def test_unknown_degraded_and_non_string_top_level_status():
    assert statuses(http_check.judge_document({"status": "starting"}, settings()))["health"] == "fail"
    assert statuses(http_check.judge_document({"status": 1}, settings()))["health"] == "fail"
    degraded = http_check.judge_document({"status": "degraded"}, settings())
    assert statuses(degraded) == {"health": "warn"}
    assert degraded[0]["output"] == "status is 'degraded' (degraded), expected one of 'healthy', 'pass', 'ok', 'up'"


def test_a_missing_status_fails_only_when_required_and_nothing_else_is_expected():
    assert http_check.judge_document({"dependencies": {}}, settings()) == []
    required = http_check.judge_document({"dependencies": {}}, settings(require_status=True))
    assert [(item["name"], item["status"], item["output"]) for item in required] == [
        ("health", "fail", "the answer has no status")]
    assert http_check.judge_document(["ok"], settings(require_status=True))[0]["output"] == \
        'the answer is ["ok"], not a JSON object with a status'
    expected = http_check.judge_document({"state": "green"}, settings(require_status=True,
                                                                      expect_json={"state": "green"}))
    assert statuses(expected) == {"json:state": "pass"}


def test_dependencies_can_be_left_alone():
    checks = http_check.judge_document({"dependencies": {"db": "down"}}, settings(check_dependencies=False))
    assert checks == []


@pytest.mark.parametrize("value, expected, good", [
    ("Healthy", "healthy", True), ("healthy", ["ok", "healthy"], True), ("sick", ["ok", "healthy"], False),
    (3, 3, True), (3, "3", False), (True, True, True), (1, True, False), (True, 1, False), (None, None, True),
])
def test_expectations_match(value, expected, good):
    check = http_check.judge_document({"field": value}, settings(expect_json={"field": expected}))[0]
    assert (check["status"] == "pass") is good, check


def test_expectations_say_what_was_found_and_expected():
    expectation = {"status": "healthy", "dependencies.database.status": "healthy", "version": 2}
    body = dict(HEALTHY, version=2, uptime=12)
    assert all(item["status"] == "pass" for item in http_check.judge_document(body, settings(expect_json=expectation)))
    outputs = [item["output"] for item in http_check.judge_document(dict(body, version=3),
                                                                    settings(expect_json=expectation))
               if item["status"] != "pass"]
    assert outputs == ["version is 3, expected 2"]
    missing = {"status": "healthy", "dependencies": {"redis": {"status": "ok"}}, "version": 2}
    checks = http_check.judge_document(missing, settings(expect_json=expectation))
    assert [(item["name"], item["output"]) for item in checks if item["status"] != "pass"] == [
        ("json:dependencies.database.status", "the answer has no dependencies.database.status")]
    assert http_check.judge_document({"ready": 1}, settings(expect_json={"ready": True}))[0]["output"] == \
        "ready is 1, expected true"
    assert http_check.judge_document(["ok"], settings(expect_json={"status": "ok"}))[0]["output"] == \
        "the answer has no status"


def test_a_named_field_and_a_wildcard_combine_with_the_built_in_dependency_checks():
    expectation = {"dependencies.database.latency_ms": [1, 2, 3], "dependencies.*.status": ["healthy", "ok"]}
    body = {"status": "ok", "dependencies": {"database": {"status": "healthy", "latency_ms": 2},
                                             "redis": {"status": "ok"}, "mail": {"status": "failing"}}}
    checks = http_check.judge_document(body, settings(expect_json=expectation))
    failing = [(item["name"], item["output"]) for item in checks if item["status"] != "pass"]
    assert failing == [
        ("dependency:mail", "dependencies.mail.status is 'failing', expected one of 'healthy', 'pass', 'ok', 'up'"),
        ("json:dependencies.mail.status", "dependencies.mail.status is 'failing', expected one of 'healthy', 'ok'")]


def test_caller_expectation_of_status_replaces_the_built_in_one():
    checks = statuses(http_check.judge_document({"status": "green"}, settings(expect_json={"status": "green"})))
    assert checks == {"json:status": "pass"}


@pytest.mark.parametrize("expect_json, words", [
    (["healthy"], "must be a mapping of dotted paths"),
    ({"dependencies": {"database": {"status": "healthy"}}}, "name each field by its own dotted path"),
    ({"status": [["healthy"]]}, "name each field by its own dotted path"),
    ({"dependencies..status": "ok"}, "is not a dotted path"),
])
def test_expectations_that_cannot_mean_what_their_writer_meant_are_refused(expect_json, words):
    with pytest.raises(RunbookError, match=words):
        settings(expect_json=expect_json)


def answer(code, body, content_type="application/json", location=None):
    return http_check.Answer(code, body.encode() if isinstance(body, str) else json.dumps(body).encode(),
                             content_type, location)


def test_judge_answer_needs_the_expected_status_and_healthy_json():
    required = settings(expect_status=None, require_status=True)
    assert statuses(http_check.judge_answer(answer(204, {"status": "healthy"}), required)) == {
        "status": "pass", "health": "pass"}
    checks = http_check.judge_answer(answer(503, {"status": "unhealthy", "dependencies": {
        "database": {"status": "unhealthy"}}}), required)
    assert [(item["name"], item["status"]) for item in checks] == [
        ("status", "fail"), ("health", "fail"), ("dependency:database", "fail")]
    assert checks[0]["output"] == "answered HTTP 503, expected a 2xx status"
    assert checks[0]["threshold"] == "2xx"
    assert http_check.judge_answer(answer(503, {"status": "ok"}), settings())[0]["output"] == \
        "answered HTTP 503, expected 200"
    moved = http_check.judge_answer(answer(301, "", "text/html", "https://x/health"), settings())[0]
    assert moved["output"] == "answered HTTP 301 (redirect to https://x/health), expected 200"


def test_an_answer_that_is_not_json_fails_only_when_json_was_required():
    page = answer(200, "<html>\n  It works</html>", "text/html")
    assert statuses(http_check.judge_answer(page, settings())) == {"status": "pass"}
    checks = http_check.judge_answer(page, settings(require_status=True))
    assert checks[1]["output"] == "the answer is not JSON but 24 bytes of text/html: <html> It works</html>"
    assert checks[1]["observed_value"] == "text/html"
    empty = http_check.judge_answer(answer(200, "", ""), settings(expect_json={"status": "ok"}))
    assert empty[1]["output"] == "the answer is empty, not JSON"


@pytest.mark.parametrize("environment, use_proxy, expected", [
    ({"https_proxy": "http://proxy.example.com:3128"}, True, True),
    ({"https_proxy": "http://proxy.example.com:3128", "no_proxy": "api.example.com"}, True, False),
    ({"https_proxy": "http://proxy.example.com:3128"}, False, False),
    ({}, True, False),
])
def test_certificate_is_only_read_directly_when_no_proxy_is_in_the_way(monkeypatch, environment, use_proxy, expected):
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    parsed = http_check.urllib.parse.urlsplit("https://api.example.com/health")
    assert http_check.proxied(settings(use_proxy=use_proxy), parsed) is expected


def test_a_refused_proxy_is_named_not_the_url(monkeypatch):
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    refused = http_check.urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    error = http_check.request_error(refused, settings())
    assert error.message == "through the proxy: Connection to 127.0.0.1:9 refused: nothing listens there."
    direct = http_check.request_error(refused, settings(use_proxy=False))
    assert direct.message == "Connection to api.example.com:443 refused: nothing listens there."


def test_a_certificate_behind_a_proxy_could_not_be_checked_and_never_passes(monkeypatch):
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    checks, summary = http_check.check_endpoint(settings(timeout=2), "web1", None)
    by_name = dict((check["name"], check) for check in checks)
    certificate = by_name["api:certificate"]
    assert (certificate["status"], certificate["unchecked"]) == ("fail", True)
    assert certificate["output"].startswith("Could not check the certificate of api: the request goes through the "
                                            "proxy 127.0.0.1:9")
    assert "check_certificate: false" in certificate["output"]
    assert summary["days_to_expiry"] is None
    # Left out knowingly, it is not asked for and not reported.
    checks, _summary = http_check.check_endpoint(settings(timeout=2, check_certificate=False), "web1", None)
    assert "api:certificate" not in [check["name"] for check in checks]
