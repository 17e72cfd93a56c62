# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health endpoints, checked the way the runbooks' `curl .../health` is read by a person.

For each endpoint: did it answer with an expected status code, how long did
the whole answer take, does its JSON say it is healthy (the top-level
`status`, every dependency's status, and any field the caller names), and,
over https, is the certificate trusted and how many days has it left (judged
by certs.py, the same code the cert_check module uses).

Each finding is a health.check; the standard library only (urllib, ssl,
socket), so it runs on any host with python3 and from the controller alike.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from . import certs, health
from .common import RunbookError

DEFAULTS = {
    "endpoints": [],
    "timeout": 10,
    "latency_warn_ms": 500,
    "latency_fail_ms": 2000,
    "expect_status": [200],
    "expect_json": {},
    "check_dependencies": True,
    "healthy_values": ["healthy", "pass", "ok", "up"],
    "degraded_values": ["degraded", "warn", "warning"],
    "dependency_keys": ["dependencies", "services", "checks"],
    "check_certificate": True,
    "warn_days": certs.DEFAULT_WARN_DAYS,
    "fail_days": certs.DEFAULT_FAIL_DAYS,
    "validate_certs": True,
    "ca_path": None,
    "follow_redirects": False,
    "use_proxy": True,
    "method": "GET",
    "headers": {},
    "max_body_bytes": 1024 * 1024,
    "host": None,
    "max_workers": 8,
}
_MISSING = object()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the answer, as curl does without -L: a health URL should not move."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def endpoint_settings(spec, defaults):
    """One endpoint's settings: the module-wide options, overridden by those the entry sets itself."""
    if isinstance(spec, str):
        spec = {"url": spec}
    settings = dict((k, v) for k, v in defaults.items() if k != "endpoints")
    settings.update(dict((k, v) for k, v in spec.items() if v is not None))
    url = settings.get("url")
    parsed = urllib.parse.urlsplit(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RunbookError("{0!r} is not an http:// or https:// URL.".format(url),
                           hint="Give each endpoint a full URL, such as https://api.example.com/health.")
    settings.setdefault("name", parsed.netloc + (parsed.path.rstrip("/") or ""))
    settings["method"] = settings["method"].upper()
    settings["expect_status"] = [int(code) for code in settings["expect_status"]]
    if settings["latency_fail_ms"] < settings["latency_warn_ms"]:
        raise RunbookError("latency_fail_ms ({0}) of {1} is below latency_warn_ms ({2}).".format(
            settings["latency_fail_ms"], settings["name"], settings["latency_warn_ms"]))
    certs.validate_thresholds(settings["warn_days"], settings["fail_days"])
    return settings


# -- JSON -------------------------------------------------------------------------

def resolve(document, path):
    """[(concrete path, value)] that a dotted path with `*` wildcards names in a JSON document."""
    found = [("", document)]
    for part in path.split("."):
        step = []
        for prefix, value in found:
            if part == "*":
                if isinstance(value, dict):
                    children = sorted(value.items())
                elif isinstance(value, list):
                    children = [(str(i), item) for i, item in enumerate(value)]
                else:
                    children = []
            elif isinstance(value, dict) and part in value:
                children = [(part, value[part])]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                children = [(part, value[int(part)])]
            else:
                children = []
            step.extend(((prefix + "." + key) if prefix else key, child) for key, child in children)
        found = step
    return found


def _matches(value, expected):
    """A list expects one of its items; strings compare without case, everything else exactly."""
    choices = expected if isinstance(expected, list) else [expected]
    for choice in choices:
        if isinstance(choice, str) and isinstance(value, str):
            if value.casefold() == choice.casefold():
                return True
        elif isinstance(choice, bool) or isinstance(value, bool):
            if value is choice:
                return True
        elif value == choice:
            return True
    return False


def status_word(value, settings):
    """pass/warn/fail for a status a health endpoint reports ("healthy", "degraded", "down")."""
    if not isinstance(value, str):
        return health.FAIL
    if _matches(value, settings["healthy_values"]):
        return health.PASS
    if _matches(value, settings["degraded_values"]):
        return health.WARN
    return health.FAIL


def _dependency_status(value):
    """The status a dependency entry reports: a string, {"status": ...}, or an IETF list of those."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("status")
    if isinstance(value, list) and value:
        statuses = [_dependency_status(item) for item in value]
        return statuses if len(statuses) > 1 else statuses[0]
    return None


def body_checks(document, settings, facts):
    """Checks of a JSON answer: the top-level status, each dependency, and the caller's expectations."""
    name = settings["name"]
    expectations = settings["expect_json"] or {}
    checks = []
    healthy = settings["healthy_values"]
    if "status" not in expectations and isinstance(document, dict) and "status" in document:
        word = document["status"]
        status = status_word(word, settings)
        checks.append(health.check("{0}:health".format(name), status, word, healthy,
                                   "{0} reports status {1!r}.".format(name, word) if status == health.PASS else
                                   "{0} reports status {1!r}, not one of {2}.".format(name, word, ", ".join(healthy)),
                                   **facts))
    if settings["check_dependencies"] and isinstance(document, dict):
        for key in settings["dependency_keys"]:
            group = document.get(key)
            if not isinstance(group, dict):
                continue
            for dependency, value in sorted(group.items()):
                reported = _dependency_status(value)
                words = reported if isinstance(reported, list) else [reported]
                status = health.worst([{"status": status_word(word, settings)} for word in words])
                if reported is None:
                    output = "{0} reports no status for its dependency {1}.".format(name, dependency)
                elif status == health.PASS:
                    output = "{0}: {1} is {2}.".format(name, dependency, reported)
                else:
                    output = "{0}: dependency {1} is {2!r}.".format(name, dependency, reported)
                checks.append(health.check("{0}:dependency:{1}".format(name, dependency), status, reported, healthy,
                                           output, dependency=dependency, **facts))
    for path, expected in sorted(expectations.items()):
        found = resolve(document, path)
        if not found:
            checks.append(health.check("{0}:json:{1}".format(name, path), health.FAIL, None, expected,
                                       "{0}'s answer has no {1}.".format(name, path), **facts))
            continue
        for concrete, value in found:
            good = _matches(value, expected)
            checks.append(health.check(
                "{0}:json:{1}".format(name, concrete), health.PASS if good else health.FAIL, value, expected,
                "{0}: {1} is {2!r}.".format(name, concrete, value) if good else
                "{0}: {1} is {2!r}, expected {3}.".format(name, concrete, value, _expected_words(expected)), **facts))
    return checks


def _expected_words(expected):
    if isinstance(expected, list):
        return "one of " + ", ".join(repr(item) for item in expected)
    return repr(expected)


# -- HTTP ---------------------------------------------------------------------------

class Answer(object):
    def __init__(self, code, body, content_type, location, elapsed_ms):
        self.code = code
        self.body = body
        self.content_type = content_type
        self.location = location
        self.elapsed_ms = elapsed_ms


def request_error(error, settings):
    """A RunbookError saying in words why the request got no answer."""
    parsed = urllib.parse.urlsplit(settings["url"])
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    reason = getattr(error, "reason", error)
    prefix = "{0} {1}".format(settings["method"], settings["url"])
    if isinstance(reason, ssl.SSLCertVerificationError):
        return RunbookError("{0}: clients will not trust the certificate: {1}.".format(
            prefix, reason.verify_message or reason),
            hint="Set ca_path to the CA that signed it (or validate_certs: false to look past it).")
    if isinstance(reason, (http.client.RemoteDisconnected, http.client.BadStatusLine)):
        return RunbookError("{0}: the server closed the connection without an HTTP answer.".format(prefix),
                            hint="Is this the right scheme (http or https) and port?")
    if isinstance(reason, str):
        return RunbookError("{0} failed: {1}.".format(prefix, reason))
    translated = certs.connection_error(reason, parsed.hostname, port, settings["timeout"])
    return RunbookError("{0} failed: {1}".format(prefix, translated.message), hint=translated.hint)


def fetch(settings):
    """The endpoint's Answer; RunbookError when no HTTP answer came."""
    handlers = [urllib.request.HTTPSHandler(context=certs.client_context(settings["validate_certs"],
                                                                         settings["ca_path"]))]
    if not settings["follow_redirects"]:
        handlers.append(_NoRedirect())
    if not settings.get("use_proxy", True):
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    headers = dict({"User-Agent": "ops.runbook-http_health", "Accept": "application/json, */*"},
                   **(settings["headers"] or {}))
    request = urllib.request.Request(settings["url"], headers=headers, method=settings["method"])
    limit = settings["max_body_bytes"]
    started = time.monotonic()
    try:
        try:
            response = opener.open(request, timeout=settings["timeout"])
        except urllib.error.HTTPError as error:
            response = error
        with response:
            body = response.read(limit + 1)
            code = response.getcode()
            headers_seen = response.headers
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise request_error(error, settings)
    elapsed_ms = (time.monotonic() - started) * 1000.0
    return Answer(code, body[:limit], headers_seen.get("Content-Type", ""), headers_seen.get("Location"), elapsed_ms)


def _status_check(settings, answer, facts):
    expected = settings["expect_status"]
    name = "{0}:status".format(settings["name"])
    prefix = "{0} {1}".format(settings["method"], settings["url"])
    if answer.code in expected:
        return health.check(name, health.PASS, answer.code, expected,
                            "{0} answered {1}.".format(prefix, answer.code), **facts)
    moved = " (redirect to {0})".format(answer.location) if answer.location and 300 <= answer.code < 400 else ""
    return health.check(name, health.FAIL, answer.code, expected, "{0} answered {1}{2}; expected {3}.".format(
        prefix, answer.code, moved, " or ".join(str(code) for code in expected)), **facts)


def _latency_check(settings, answer, facts):
    warn, fail = settings["latency_warn_ms"], settings["latency_fail_ms"]
    elapsed = answer.elapsed_ms
    if elapsed > fail:
        status, words = health.FAIL, "over the {0:g} ms limit".format(fail)
    elif elapsed > warn:
        status, words = health.WARN, "over the {0:g} ms warning".format(warn)
    else:
        status, words = health.PASS, "within {0:g} ms".format(warn)
    return health.check("{0}:latency".format(settings["name"]), status, round(elapsed, 1), {"warn": warn, "fail": fail},
                        "{0} answered in {1:.0f} ms, {2}.".format(settings["name"], elapsed, words), unit="ms", **facts)


def _decode_json(answer):
    try:
        return json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _MISSING


def proxied(settings, parsed):
    """True when the request goes through a proxy (https_proxy, not bypassed by no_proxy).

    The certificate is read in a direct TLS handshake, which a proxied network
    may not allow, and which would show the proxy's certificate if it did.
    """
    if not settings.get("use_proxy", True):
        return False
    return bool(urllib.request.getproxies().get(parsed.scheme)) and not urllib.request.proxy_bypass(parsed.hostname)


def check_endpoint(settings, host, now):
    """Every check of one endpoint, and a summary of what it answered."""
    parsed = urllib.parse.urlsplit(settings["url"])
    facts = {"host": host, "component": settings["name"], "component_type": "http", "url": settings["url"]}
    summary = {"name": settings["name"], "url": settings["url"], "status_code": None, "latency_ms": None,
               "days_to_expiry": None}
    checks = []
    if parsed.scheme == "https" and settings["check_certificate"] and not proxied(settings, parsed):
        endpoint = {"host": parsed.hostname, "port": parsed.port or 443, "server_name": parsed.hostname}
        tls = certs.endpoint_checks(settings["name"], endpoint, settings, now, facts)
        if tls[0]["observed_value"] is None:
            # Nothing answers at all: one failure says so, rather than three saying it again.
            failure = dict(tls[0], name="{0}:status".format(settings["name"]), threshold=settings["expect_status"])
            failure["output"] = "{0} {1} failed: {2}".format(settings["method"], settings["url"], tls[0]["output"])
            summary["status"] = health.FAIL
            return [failure], summary
        checks.extend(tls)
        summary["days_to_expiry"] = tls[0]["observed_value"]
    try:
        answer = fetch(settings)
    except RunbookError as error:
        checks.insert(0, health.check("{0}:status".format(settings["name"]), health.FAIL, None,
                                      settings["expect_status"], str(error), **facts))
        summary["status"] = health.worst(checks)
        return checks, summary
    summary.update(status_code=answer.code, latency_ms=round(answer.elapsed_ms, 1))
    answer_checks = [_status_check(settings, answer, facts), _latency_check(settings, answer, facts)]
    document = _decode_json(answer)
    if document is not _MISSING:
        answer_checks.extend(body_checks(document, settings, facts))
    elif settings["expect_json"]:
        answer_checks.append(health.check(
            "{0}:json".format(settings["name"]), health.FAIL, answer.content_type or None, "JSON",
            "{0} answered {1} bytes of {2}, not JSON; the expected fields cannot be read.".format(
                settings["name"], len(answer.body), answer.content_type or "an unnamed type"), **facts))
    checks = answer_checks + checks
    summary["status"] = health.worst(checks)
    return checks, summary


def run_http_health(options, now=None):
    """Check every endpoint (in parallel); {"status", "checks", "counts", "endpoints"}."""
    defaults = dict(DEFAULTS)
    defaults.update(dict((k, v) for k, v in options.items() if v is not None))
    if not defaults["endpoints"]:
        raise RunbookError("No endpoints to check.", hint="Set endpoints to a list of URLs, such as "
                                                          "[https://api.example.com/health].")
    settings = [endpoint_settings(spec, defaults) for spec in defaults["endpoints"]]
    names = [item["name"] for item in settings]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        raise RunbookError("Two endpoints share the name {0}.".format(", ".join(duplicates)),
                           hint="Give each endpoint its own name.")
    host = defaults["host"] or socket.gethostname()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    workers = max(1, min(defaults["max_workers"], len(settings)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda item: check_endpoint(item, host, now), settings))
    checks = [check for endpoint_checks, _summary in results for check in endpoint_checks]
    return {"status": health.worst(checks), "checks": checks, "counts": health.counts(checks),
            "endpoints": [summary for _checks, summary in results]}
