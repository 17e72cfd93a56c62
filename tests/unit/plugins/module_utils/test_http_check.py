"""Reading a health endpoint's JSON answer and settings: pure logic, no server."""
import pytest

from ansible_collections.ops.runbook.plugins.module_utils import http_check
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


def settings(**overrides):
    spec = dict({"url": "https://api.example.com/health", "name": "api"}, **overrides)
    return http_check.endpoint_settings(spec, dict(http_check.DEFAULTS))


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
    ({"url": "https://x/", "latency_warn_ms": 900, "latency_fail_ms": 100}, "below latency_warn_ms"),
    ({"url": "https://x/", "warn_days": 3}, "larger than warn_days"),
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


def test_runbook_answer_with_plain_string_dependencies():
    # The answer the runbooks' "Expected Responses" show.
    answer = {"status": "healthy", "version": "1.2.0", "uptime": 86400,
              "dependencies": {"database": "healthy", "cache": "healthy", "messageQueue": "unhealthy"}}
    checks = http_check.body_checks(answer, settings(), {"host": "web1"})
    assert statuses(checks) == {"api:health": "pass", "api:dependency:cache": "pass",
                                "api:dependency:database": "pass", "api:dependency:messageQueue": "fail"}
    failing = [item for item in checks if item["status"] == "fail"][0]
    assert failing["output"] == "api: dependency messageQueue is 'unhealthy'."
    assert failing["threshold"] == ["healthy", "pass", "ok", "up"]
    assert failing["host"] == "web1" and failing["dependency"] == "messageQueue"


def test_services_key_objects_with_status_and_ietf_check_lists():
    answer = {"status": "pass",
              "services": {"database": {"status": "UP"}, "api": {"status": "degraded"}, "queue": {"latency": 3}},
              "checks": {"db:connections": [{"status": "pass"}, {"status": "warn"}], "uptime": [{"status": "pass"}]}}
    checks = statuses(http_check.body_checks(answer, settings(), {}))
    assert checks == {"api:health": "pass", "api:dependency:database": "pass", "api:dependency:api": "warn",
                      "api:dependency:queue": "fail", "api:dependency:db:connections": "warn",
                      "api:dependency:uptime": "pass"}


def test_dependency_without_status_says_so():
    checks = http_check.body_checks({"dependencies": {"queue": {"latency": 3}}}, settings(), {})
    assert checks[0]["output"] == "api reports no status for its dependency queue."


def test_unknown_and_non_string_top_level_status_fail():
    assert statuses(http_check.body_checks({"status": "starting"}, settings(), {}))["api:health"] == "fail"
    assert statuses(http_check.body_checks({"status": 1}, settings(), {}))["api:health"] == "fail"


def test_dependencies_can_be_left_alone():
    checks = http_check.body_checks({"dependencies": {"db": "down"}}, settings(check_dependencies=False), {})
    assert checks == []


@pytest.mark.parametrize("value, expected, good", [
    ("Healthy", "healthy", True), ("healthy", ["ok", "healthy"], True), ("sick", ["ok", "healthy"], False),
    (3, 3, True), (3, "3", False), (True, True, True), (1, True, False), (True, 1, False), (None, None, True),
])
def test_expectations_match(value, expected, good):
    check = http_check.body_checks({"field": value}, settings(expect_json={"field": expected}), {})[0]
    assert (check["status"] == "pass") is good, check


def test_caller_expectation_of_status_replaces_the_built_in_one():
    checks = statuses(http_check.body_checks({"status": "green"}, settings(expect_json={"status": "green"}), {}))
    assert checks == {"api:json:status": "pass"}


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
