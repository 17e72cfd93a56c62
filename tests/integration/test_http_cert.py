"""http_health and cert_check against real HTTPS servers on loopback, with certificates made by openssl.

Each check is driven to pass, warn and fail by what the servers really do: a
dependency that goes down, an answer that is slow, a certificate with 90, 20
or 3 days left, a port where nothing listens. Latency thresholds are set so
that a result cannot depend on the machine's speed: a slow answer sleeps
longer than the limit it must break, and fast answers get a limit of minutes.
"""
import json
import os
import socket
import subprocess
import tempfile

import pytest
from conftest import ROOT

from harness.ports import free_ports
from harness.tls import HealthServer, LocalCA

from ansible_collections.ops.runbook.plugins.module_utils.cert_check import run_cert_check
from ansible_collections.ops.runbook.plugins.module_utils.http_health import run_http_health

GENEROUS_MS = 120000


@pytest.fixture(scope="module")
def ca():
    return LocalCA(tempfile.mkdtemp(prefix="ops-runbook-it-tls-"))


@pytest.fixture(scope="module")
def issued(ca):
    """Leaf certificates for localhost with 90 (pass), 20 (warn) and 3 (fail) days left."""
    return {label: ca.issue(label, days) for label, days in (("fresh", 90), ("aging", 20), ("dying", 3))}


@pytest.fixture(scope="module")
def servers(issued):
    """An https health server per certificate, and one plain http server."""
    started = {label: HealthServer(cert, key).start() for label, (cert, key, _chain) in issued.items()}
    started["plain"] = HealthServer().start()
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def fresh(servers):
    """The https server with the good certificate, its state reset for each test."""
    server = servers["fresh"]
    server.state.__init__()
    return server


def by_name(result):
    return {item["name"]: item for item in result["checks"]}


def statuses(result):
    return {item["name"]: item["status"] for item in result["checks"]}


def health(ca, endpoints, **options):
    return run_http_health(dict(options, endpoints=endpoints, ca_path=ca.cert, host="web1"))


# -- http_health ----------------------------------------------------------------

def test_healthy_endpoint_passes_every_check(ca, fresh):
    result = health(ca, [{"url": fresh.url(), "name": "api", "latency_warn_ms": GENEROUS_MS,
                          "latency_fail_ms": GENEROUS_MS}])
    assert statuses(result) == {
        "api:status": "pass", "api:latency": "pass", "api:health": "pass", "api:dependency:cache": "pass",
        "api:dependency:database": "pass", "api:dependency:messageQueue": "pass", "api:trust": "pass",
        "api:certificate": "pass"}, result["checks"]
    assert result["status"] == "pass"
    checks = by_name(result)
    assert checks["api:status"]["observed_value"] == 200
    assert checks["api:latency"]["observed_unit"] == "ms"
    assert 89 < checks["api:certificate"]["observed_value"] <= 90
    assert checks["api:certificate"]["dns_names"] == ["localhost"]
    assert all(item["host"] == "web1" and item["component"] == "api" for item in result["checks"])
    assert result["endpoints"] == [{"name": "api", "url": fresh.url(), "status": "pass", "status_code": 200,
                                    "latency_ms": checks["api:latency"]["observed_value"],
                                    "days_to_expiry": checks["api:certificate"]["observed_value"]}]


def test_failed_dependency_fails_that_dependency_the_status_and_the_code(ca, fresh):
    fresh.state.dependencies["database"] = "unhealthy"
    result = health(ca, [{"url": fresh.url(), "name": "api"}])
    checks = by_name(result)
    assert checks["api:dependency:database"]["status"] == "fail"
    assert checks["api:dependency:database"]["output"] == \
        "api: dependencies.database is 'unhealthy', expected one of 'healthy', 'pass', 'ok', 'up'."
    assert checks["api:dependency:cache"]["status"] == "pass"
    assert checks["api:health"]["status"] == "fail"
    assert checks["api:status"]["status"] == "fail"
    assert checks["api:status"]["output"] == "GET {0} answered HTTP 503, expected 200.".format(fresh.url())
    assert result["status"] == "fail"


def test_degraded_dependency_warns(ca, fresh):
    fresh.state.dependencies["cache"] = "degraded"
    fresh.state.status_code = 200
    result = health(ca, [{"url": fresh.url(), "name": "api", "latency_warn_ms": GENEROUS_MS,
                          "latency_fail_ms": GENEROUS_MS}])
    assert statuses(result)["api:dependency:cache"] == "warn"
    assert result["status"] == "fail"  # the top-level status "unhealthy" still fails
    assert statuses(result)["api:health"] == "fail"


def test_latency_warns_then_fails_on_a_slow_answer(ca, fresh):
    result = health(ca, [
        {"url": fresh.url("/slow/300"), "name": "slow-warn", "latency_warn_ms": 100, "latency_fail_ms": GENEROUS_MS},
        {"url": fresh.url("/slow/300"), "name": "slow-fail", "latency_warn_ms": 50, "latency_fail_ms": 150},
        {"url": fresh.url("/slow/0"), "name": "quick", "latency_warn_ms": GENEROUS_MS, "latency_fail_ms": GENEROUS_MS},
    ])
    checks = by_name(result)
    assert checks["slow-warn:latency"]["status"] == "warn"
    assert checks["slow-warn:latency"]["observed_value"] >= 300
    assert checks["slow-warn:latency"]["threshold"] == {"warn": 100, "fail": GENEROUS_MS}
    assert "over the 100 ms warning" in checks["slow-warn:latency"]["output"]
    assert checks["slow-fail:latency"]["status"] == "fail"
    assert "over the 150 ms limit" in checks["slow-fail:latency"]["output"]
    assert checks["quick:latency"]["status"] == "pass"


@pytest.mark.parametrize("label, status, low, high", [
    ("fresh", "pass", 89, 90), ("aging", "warn", 19, 20), ("dying", "fail", 2, 3)])
def test_certificate_days_pass_warn_fail(ca, servers, label, status, low, high):
    result = health(ca, [{"url": servers[label].url(), "name": label}])
    check = by_name(result)[label + ":certificate"]
    assert check["status"] == status, check
    assert low < check["observed_value"] <= high
    assert check["threshold"] == {"warn": 30, "fail": 7}
    assert by_name(result)[label + ":trust"]["status"] == "pass"


def test_custom_certificate_thresholds_apply(ca, servers):
    result = health(ca, [{"url": servers["aging"].url(), "name": "aging", "warn_days": 14, "fail_days": 2}])
    assert by_name(result)["aging:certificate"]["status"] == "pass"


def test_untrusted_certificate_fails_trust_and_status_but_expiry_is_still_read(servers):
    # No ca_path: the system store does not know the test CA.
    result = run_http_health({"endpoints": [{"url": servers["fresh"].url(), "name": "api"}]})
    checks = by_name(result)
    assert checks["api:trust"]["status"] == "fail"
    assert "unable to get local issuer certificate" in checks["api:trust"]["output"]
    assert checks["api:certificate"]["status"] == "pass"
    assert checks["api:status"]["status"] == "fail"
    assert "clients will not trust the certificate" in checks["api:status"]["output"]
    assert "Set ca_path" in checks["api:status"]["output"]


def test_wrong_name_fails_trust(ca):
    cert, key, _chain = ca.issue("other", 90, dns_names=("other.test",), ip_addresses=())
    server = HealthServer(cert, key).start()
    try:
        result = health(ca, [{"url": server.url(), "name": "misnamed"}])
    finally:
        server.stop()
    assert statuses(result)["misnamed:trust"] == "fail"
    assert "Hostname mismatch" in by_name(result)["misnamed:trust"]["output"]
    assert statuses(result)["misnamed:certificate"] == "pass"
    assert by_name(result)["misnamed:certificate"]["dns_names"] == ["other.test"]


def test_validate_certs_false_reads_untrusted_endpoint_without_a_trust_check(servers):
    result = run_http_health({"endpoints": [{"url": servers["fresh"].url(), "name": "api"}], "validate_certs": False,
                              "latency_warn_ms": GENEROUS_MS, "latency_fail_ms": GENEROUS_MS})
    assert "api:trust" not in statuses(result)
    assert result["status"] == "pass", result["checks"]


def test_connection_refused_is_one_clear_failure(ca):
    port = free_ports(1)[0]
    result = health(ca, [{"url": "https://localhost:{0}/health".format(port), "name": "down"},
                         {"url": "http://127.0.0.1:{0}/health".format(port), "name": "down-plain"}])
    assert statuses(result) == {"down:status": "fail", "down-plain:status": "fail"}
    for name in ("down:status", "down-plain:status"):
        output = by_name(result)[name]["output"]
        assert "refused: nothing listens there" in output, output
        assert "Is the service" in output
        assert "unchecked" not in by_name(result)[name]  # nothing answers: a finding, not a check not made


def test_unresolvable_host_and_silent_port_fail_with_the_reason(ca):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the TCP connection, never answers
    try:
        result = health(ca, [
            {"url": "https://no-such-host.invalid/health", "name": "nxdomain"},
            {"url": "http://127.0.0.1:{0}/health".format(silent.getsockname()[1]), "name": "silent", "timeout": 1},
        ])
    finally:
        silent.close()
    assert "does not resolve" in by_name(result)["nxdomain:status"]["output"]
    assert "No answer from 127.0.0.1" in by_name(result)["silent:status"]["output"]
    assert result["status"] == "fail"


def test_http_to_a_tls_port_says_check_the_scheme(servers):
    result = run_http_health({"endpoints": [{"url": servers["fresh"].url().replace("https", "http"),
                                             "name": "wrong-scheme"}]})
    output = by_name(result)["wrong-scheme:status"]["output"]
    assert "without an HTTP answer" in output or "broke" in output, output


def test_plain_http_frontend_without_json_passes_and_json_expectations_fail_on_it(servers):
    plain = servers["plain"]
    result = run_http_health({"endpoints": [
        {"url": plain.url("/"), "name": "frontend", "latency_warn_ms": GENEROUS_MS, "latency_fail_ms": GENEROUS_MS},
        {"url": plain.url("/"), "name": "wants-json", "expect_json": {"status": "healthy"}}]})
    assert statuses(result)["frontend:status"] == "pass"
    assert "frontend:certificate" not in statuses(result)
    assert statuses(result)["wants-json:json"] == "fail"
    assert "not JSON" in by_name(result)["wants-json:json"]["output"]


def test_caller_expectations_with_wildcards(ca, fresh):
    fresh.state.dependencies["cache"] = "starting"
    result = health(ca, [{"url": fresh.url(), "name": "api", "check_dependencies": False, "expect_status": [200, 503],
                          "expect_json": {"version": ["1.2.0", "1.2.1"], "dependencies.*": "healthy",
                                          "build.commit": "abc", "status": ["healthy", "unhealthy"]}}])
    checks = statuses(result)
    assert checks["api:json:version"] == "pass"
    assert checks["api:json:dependencies.database"] == "pass"
    assert checks["api:json:dependencies.cache"] == "fail"
    assert "expected 'healthy'" in by_name(result)["api:json:dependencies.cache"]["output"]
    assert checks["api:json:build.commit"] == "fail"
    assert "has no build.commit" in by_name(result)["api:json:build.commit"]["output"]
    assert "api:dependency:cache" not in checks
    assert checks["api:json:status"] == "pass"
    assert "api:health" not in checks  # the caller's expectation of status replaces the built-in one ...
    assert checks["api:status"] == "pass"  # ... and 503 was accepted


def test_redirect_is_the_answer_unless_followed(ca, fresh):
    result = health(ca, [{"url": fresh.url("/moved"), "name": "moved"},
                         {"url": fresh.url("/moved"), "name": "followed", "follow_redirects": True,
                          "latency_warn_ms": GENEROUS_MS, "latency_fail_ms": GENEROUS_MS}])
    assert "answered HTTP 301 (redirect to /health), expected 200" in by_name(result)["moved:status"]["output"]
    assert statuses(result)["followed:status"] == "pass"
    assert statuses(result)["followed:dependency:database"] == "pass"


# -- cert_check -------------------------------------------------------------------

@pytest.mark.parametrize("label, status", [("fresh", "pass"), ("aging", "warn"), ("dying", "fail")])
def test_certificate_files_pass_warn_fail_and_chains_judge_the_leaf(issued, label, status):
    cert, _key, fullchain = issued[label]
    result = run_cert_check({"paths": [cert, fullchain], "host": "web1"})
    assert [item["status"] for item in result["checks"]] == [status, status]
    chain_check = by_name(result)[fullchain + ":certificate"]
    assert chain_check["subject"] == "CN=localhost, O=ops.runbook tests"
    assert [item["subject"] for item in chain_check["chain"]] == ["CN=ops.runbook test CA, O=ops.runbook tests"]
    assert result["certificates"][0]["path"] == cert


def test_bad_files_fail_with_what_to_do(issued, tmp_path):
    _cert, key, _chain = issued["fresh"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    unreadable = tmp_path / "unreadable.pem"
    unreadable.write_text("x")
    unreadable.chmod(0o000)
    paths = [key, str(garbage), str(tmp_path / "missing.pem"), str(tmp_path / "none-*.pem")]
    result = run_cert_check({"paths": paths})
    outputs = [item["output"] for item in result["checks"]]
    assert all(item["status"] == "fail" and item["unchecked"] is True for item in result["checks"])
    assert "not at a key or CSR" in outputs[0]
    assert "not valid base64" in outputs[1]
    assert "does not exist" in outputs[2]
    assert "No file matches" in outputs[3]
    if os.geteuid() != 0:  # root reads any file
        assert "permission denied" in run_cert_check({"paths": [str(unreadable)]})["checks"][0]["output"]


def test_endpoints_with_sni_choose_the_certificate(ca, issued):
    fresh_cert, fresh_key, _fresh_chain = issued["fresh"]
    dying_cert, dying_key, _dying_chain = issued["dying"]
    server = HealthServer(fresh_cert, fresh_key, sni={"old.localhost": (dying_cert, dying_key)}).start()
    try:
        where = "127.0.0.1:{0}".format(server.port)
        result = run_cert_check({"endpoints": [where, "localhost:{0}".format(server.port)],
                                 "server_names": {where: "old.localhost"}, "ca_path": ca.cert})
    finally:
        server.stop()
    checks = by_name(result)
    assert checks[where + ":certificate"]["status"] == "fail"
    assert checks[where + ":certificate"]["server_name"] == "old.localhost"
    assert checks[where + ":trust"]["status"] == "fail"  # the old certificate does not name old.localhost
    assert checks["localhost:{0}:certificate".format(server.port)]["status"] == "pass"
    assert checks["localhost:{0}:trust".format(server.port)]["status"] == "pass"


def test_unreachable_endpoint_and_plain_port_fail_with_the_reason(servers):
    refused = free_ports(1)[0]
    result = run_cert_check({"endpoints": ["127.0.0.1:{0}".format(refused),
                                           "127.0.0.1:{0}".format(servers["plain"].port)], "timeout": 5})
    outputs = [item["output"] for item in result["checks"]]
    assert len(outputs) == 2
    assert all(item["status"] == "fail" and item["unchecked"] is True for item in result["checks"])
    assert "refused: nothing listens there" in outputs[0]
    assert "TLS handshake" in outputs[1] and "speak TLS" in outputs[1]


# -- the modules, through Ansible ----------------------------------------------------

def run_module(module, args, check=False):
    """Run ops.runbook.MODULE on localhost through ansible; (return code, module result)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1")
    command = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m", "ops.runbook." + module,
               "-a", json.dumps(args)]
    if check:
        command.append("--check")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    try:
        output = json.loads(done.stdout)
    except ValueError:
        raise AssertionError("ansible printed no JSON: {0}\n{1}".format(done.stdout, done.stderr))
    return done.returncode, output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_module_fails_the_task_on_a_failing_check_unless_fail_on_never(ca, fresh):
    fresh.state.dependencies["database"] = "down"
    args = {"endpoints": [{"url": fresh.url(), "name": "api", "headers": {"Authorization": "Bearer s3cr3t-token"}}],
            "ca_path": ca.cert, "host": "web1"}
    code, result = run_module("http_health", args)
    assert code != 0 and result["failed"]
    assert result["msg"].startswith("HTTP CRITICAL - web1 api:status:")
    assert "api:dependency:database: api: dependencies.database is 'down', expected one of" in result["msg"]
    assert "s3cr3t-token" not in json.dumps(result)
    code, result = run_module("http_health", dict(args, fail_on="never"), check=True)
    assert code == 0 and not result.get("failed") and result["changed"] is False
    assert result["status"] == "fail"
    assert {"api:dependency:database", "api:certificate"} <= {item["name"] for item in result["checks"]}


def test_module_fail_on_warn(ca, servers):
    args = {"endpoints": [{"url": servers["aging"].url(), "name": "aging", "latency_warn_ms": GENEROUS_MS,
                           "latency_fail_ms": GENEROUS_MS}], "ca_path": ca.cert}
    assert run_module("http_health", args)[0] == 0
    code, result = run_module("http_health", dict(args, fail_on="warn"))
    assert code != 0 and "HTTP WARNING" in result["msg"] and "aging:certificate" in result["msg"]


def test_cert_check_module_reports_and_fails(issued):
    code, result = run_module("cert_check", {"paths": [issued["fresh"][2], issued["dying"][0]]})
    assert code != 0
    assert result["msg"].startswith("CERT CRITICAL - ")
    assert "expires in 2.9 days" in result["msg"] or "expires in 3 days" in result["msg"]
    assert [item["status"] for item in result["certificates"]] == ["pass", "fail"]
    code, result = run_module("cert_check", {"paths": []})
    assert code != 0 and "Nothing to check" in result["msg"]
