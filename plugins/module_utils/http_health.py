# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health endpoints, checked the way the runbooks' `curl .../health` is read by a person.

The collection's one way to ask a health URL (`fetch`) and to judge its answer
(`judge_answer`): http_health checks endpoints with it (plus latency and the
certificate), and service_restart proves with it that a restarted service is
healthy. The judgement, as health checks:

- `status`: the status code is one of `expect_status` (any 2xx when None); a
  redirect is the answer unless `follow_redirects`;
- `health`: the JSON's top-level `status` is one of `healthy_values` (pass),
  `degraded_values` (warn) or anything else (fail). With `require_status`, an
  answer without one fails, unless the caller's `expect_json` names what to expect;
- `dependency:DEP`: with `check_dependencies`, every entry of the groups named in
  `dependency_keys` is judged the same way; an entry is a status word, an object
  with a `status`, or an IETF list of such objects; a group may also be a list of
  objects known by their `name`;
- `json:PATH`: each of the caller's `expect_json`, a mapping of dotted paths
  (`*` for every key or item, a list item also by its `name`) to the expected value
  or a list of acceptable ones; strings compare without regard to case;
- `json`: an answer that is not JSON, when JSON was required (`expect_json` or
  `require_status`).

Each judged check has a short name and a sentence without a subject ("dependencies.
database.status is 'unhealthy', expected one of ..."); callers name the endpoint.
The standard library only (urllib, ssl, socket), so it runs on any host with
python3 and from the controller alike.
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

from . import cert_check as certs, health
from .common import RunbookError

# An answer slower than a limit breaches it; exactly at the limit does not (health.Limits).
THRESHOLDS = {
    "latency_ms": health.Limit(warn=500, fail=2000, spelled={"warn": "latency_warn_ms", "fail": "latency_fail_ms"}),
}
DEFAULTS = {
    "endpoints": [],
    "timeout": 10,
    "latency_warn_ms": THRESHOLDS["latency_ms"].warn,
    "latency_fail_ms": THRESHOLDS["latency_ms"].fail,
    "expect_status": [200],
    "expect_json": {},
    "require_status": False,
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
EXPECT_JSON_EXAMPLE = 'For example {"status": "healthy", "dependencies.*.status": ["healthy", "ok"]}.'
_MISSING = object()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the answer, as curl does without -L: a health URL should not move."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def limits_from(overrides=None, context=""):
    """The endpoint thresholds (latency_ms) with the caller's {name: {warn, fail}} laid over them."""
    return health.Limits(THRESHOLDS, overrides, option="", context=context)


def validate_expectations(expectations):
    """The caller's expect_json, refused unless it maps dotted paths to a value or a list of acceptable values.

    A nested mapping would be compared as a whole object, which is never what
    its writer meant: each field gets its own path instead.
    """
    if not isinstance(expectations, dict):
        raise RunbookError("expect_json must be a mapping of dotted paths to expected values, not {0}.".format(
            _show(expectations)), hint=EXPECT_JSON_EXAMPLE, cause="invalid")
    for path, expected in expectations.items():
        if not isinstance(path, str) or "" in path.split("."):
            raise RunbookError("{0} in expect_json is not a dotted path such as dependencies.database.status.".format(
                _show(path)), hint=EXPECT_JSON_EXAMPLE, cause="invalid")
        choices = expected if isinstance(expected, list) else [expected]
        if any(isinstance(choice, (dict, list)) for choice in choices):
            raise RunbookError("expect_json's {0} expects {1}: name each field by its own dotted path, such as "
                               "{0}.status, instead of a nested value.".format(path, _show(expected)),
                               hint=EXPECT_JSON_EXAMPLE, cause="invalid")
    return expectations


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
    if settings["expect_status"] is not None:
        settings["expect_status"] = [int(code) for code in settings["expect_status"]]
    settings["expect_json"] = validate_expectations(settings["expect_json"] or {})
    context = "Endpoint {0}: ".format(settings["name"])
    settings["limits"] = limits_from({"latency_ms": {"warn": settings["latency_warn_ms"],
                                                     "fail": settings["latency_fail_ms"]}}, context=context)
    certs.days_limits(settings["warn_days"], settings["fail_days"], context=context)
    return settings


# -- the JSON health judgement ---------------------------------------------------------

def _show(value):
    """A value as it reads in JSON, strings quoted: 'healthy', 3, true, null."""
    if isinstance(value, str):
        return "'{0}'".format(value)
    return json.dumps(value, sort_keys=True)


def _expected_words(expected):
    if isinstance(expected, list):
        return "one of " + ", ".join(_show(item) for item in expected) if len(expected) != 1 else _show(expected[0])
    return _show(expected)


def _children(value):
    """(key, child) pairs of an object, or of a list, whose items are known by their `name` when they have one."""
    if isinstance(value, dict):
        return sorted(value.items())
    if isinstance(value, list):
        pairs = []
        for index, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            pairs.append((name if isinstance(name, str) and name else str(index), item))
        return pairs
    return []


def resolve(document, path):
    """[(concrete path, value)] that a dotted path with `*` wildcards names in a JSON document.

    A list item is named by its index or, when it has one, by its `name`.
    """
    found = [("", document)]
    for part in path.split("."):
        step = []
        for prefix, value in found:
            if part == "*":
                children = _children(value)
            elif isinstance(value, dict):
                children = [(part, value[part])] if part in value else []
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                children = [(part, value[int(part)])]
            else:
                children = [(key, child) for key, child in _children(value) if key == part]
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


def _status_sentence(path, word, status, settings):
    if word is _MISSING:
        return "the answer has no {0}".format(path)
    if status == health.PASS:
        return "{0} is {1}".format(path, _show(word))
    degraded = " (degraded)" if status == health.WARN else ""
    return "{0} is {1}{2}, expected {3}".format(path, _show(word), degraded, _expected_words(settings["healthy_values"]))


def _reported_statuses(path, value):
    """[(path, status word)] a dependency reports: a word, an object's `status`, or each of an IETF list's."""
    if isinstance(value, dict):
        return [(path + ".status", value.get("status", _MISSING))]
    if isinstance(value, list):
        reported = []
        for key, item in _children(value):
            reported.extend(_reported_statuses(path + "." + key, item))
        return reported or [(path + ".*.status", _MISSING)]
    return [(path, value)]


def _dependency_check(group, dependency, value, settings):
    reported = _reported_statuses("{0}.{1}".format(group, dependency), value)
    judged = [(status_word(word, settings), path, word) for path, word in reported]
    status = health.worst([{"status": item[0]} for item in judged])
    _status, path, word = [item for item in judged if item[0] == status][0]
    words = [None if item[2] is _MISSING else item[2] for item in judged]
    return health.check("dependency:{0}".format(dependency), status, words[0] if len(words) == 1 else words,
                        settings["healthy_values"], _status_sentence(path, word, status, settings),
                        dependency=dependency)


def judge_document(document, settings):
    """Checks of a JSON answer: the top-level status, each dependency, and the caller's expectations."""
    expectations = settings["expect_json"] or {}
    healthy = settings["healthy_values"]
    checks = []
    if "status" not in expectations:
        if isinstance(document, dict) and "status" in document:
            status = status_word(document["status"], settings)
            checks.append(health.check("health", status, document["status"], healthy,
                                       _status_sentence("status", document["status"], status, settings)))
        elif settings["require_status"] and not expectations:
            output = ("the answer has no status" if isinstance(document, dict) else
                      "the answer is {0}, not a JSON object with a status".format(_show(document)))
            checks.append(health.check("health", health.FAIL, None, healthy, output))
    if settings["check_dependencies"] and isinstance(document, dict):
        for group in settings["dependency_keys"]:
            if isinstance(document.get(group), (dict, list)):
                for dependency, value in _children(document[group]):
                    checks.append(_dependency_check(group, dependency, value, settings))
    for path, expected in sorted(expectations.items()):
        found = resolve(document, path)
        if not found:
            checks.append(health.check("json:{0}".format(path), health.FAIL, None, expected,
                                       "the answer has no {0}".format(path)))
        for concrete, value in found:
            good = _matches(value, expected)
            checks.append(health.check(
                "json:{0}".format(concrete), health.PASS if good else health.FAIL, value, expected,
                "{0} is {1}".format(concrete, _show(value)) if good else
                "{0} is {1}, expected {2}".format(concrete, _show(value), _expected_words(expected))))
    return checks


def judge_status_code(answer, settings):
    """The check of an answer's status code: one of expect_status, or any 2xx when that is None."""
    expected = settings["expect_status"]
    good = answer.code in expected if expected else 200 <= answer.code < 300
    if good:
        return health.check("status", health.PASS, answer.code, expected or "2xx",
                            "answered HTTP {0}".format(answer.code))
    moved = " (redirect to {0})".format(answer.location) if answer.location and 300 <= answer.code < 400 else ""
    wanted = " or ".join(str(code) for code in expected) if expected else "a 2xx status"
    return health.check("status", health.FAIL, answer.code, expected or "2xx",
                        "answered HTTP {0}{1}, expected {2}".format(answer.code, moved, wanted))


def judge_answer(answer, settings):
    """Every check of one answer: its status code first, then what its body says (see the module's docstring)."""
    checks = [judge_status_code(answer, settings)]
    if answer.is_json:
        return checks + judge_document(answer.document, settings)
    if settings["expect_json"] or settings["require_status"]:
        text = " ".join(answer.body.decode("utf-8", "replace").split())[:200]
        output = "the answer is empty, not JSON" if not text else "the answer is not JSON but {0} bytes of {1}: {2}".format(
            len(answer.body), answer.content_type or "an unnamed type", text)
        checks.append(health.check("json", health.FAIL, answer.content_type or None, "JSON", output))
    return checks


# -- HTTP ---------------------------------------------------------------------------

class Answer(object):
    """What a URL answered: status code, body (bytes), content type, redirect target and time taken."""

    def __init__(self, code, body, content_type="", location=None, elapsed_ms=0.0):
        self.code = code
        self.body = body
        self.content_type = content_type
        self.location = location
        self.elapsed_ms = elapsed_ms
        try:
            self._document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._document = _MISSING

    @property
    def is_json(self):
        return self._document is not _MISSING

    @property
    def document(self):
        """The decoded JSON body; only when is_json."""
        return self._document


def _proxy(settings, parsed):
    """(host, port) of the proxy the request goes through, or None."""
    if not proxied(settings, parsed):
        return None
    address = urllib.parse.urlsplit(urllib.request.getproxies()[parsed.scheme])
    return address.hostname, address.port or (443 if address.scheme == "https" else 80)


def request_error(error, settings):
    """A RunbookError saying in words why the request got no answer (callers name the request)."""
    parsed = urllib.parse.urlsplit(settings["url"])
    reason = getattr(error, "reason", error)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return RunbookError("clients will not trust the certificate: {0}.".format(reason.verify_message or reason),
                            hint="Set ca_path to the CA that signed it (or validate_certs: false to look past it).")
    if isinstance(reason, (http.client.RemoteDisconnected, http.client.BadStatusLine)):
        return RunbookError("the server closed the connection without an HTTP answer.",
                            hint="Is this the right scheme (http or https) and port?")
    if isinstance(reason, str):
        return RunbookError("{0}.".format(reason))
    proxy = _proxy(settings, parsed)
    if proxy:
        translated = certs.connection_error(reason, proxy[0], proxy[1], settings["timeout"])
        return RunbookError("through the proxy: {0}".format(translated.message),
                            hint="Check the proxy (https_proxy, http_proxy, no_proxy), or ask the URL directly.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    translated = certs.connection_error(reason, parsed.hostname, port, settings["timeout"])
    return RunbookError(translated.message, hint=translated.hint)


def _read_body(response, limit, deadline, settings):
    """At most `limit` bytes of the body, all of them by `deadline`: a server that sends
    a byte now and then never holds a check for longer than its timeout."""
    read = getattr(response, "read1", None) or response.read
    parts, size = [], 0
    while size < limit:
        if time.monotonic() > deadline:
            raise RunbookError("the answer did not arrive within {0:g} s (timeout): the server sent {1} bytes "
                               "of its body and then kept the connection open.".format(settings["timeout"], size),
                               hint="Check the application (is it stuck?), or raise timeout if it is just slow.")
        data = read(min(65536, limit - size))
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)


def fetch(settings):
    """The URL's Answer, whatever its status code; RunbookError when no HTTP answer came."""
    handlers = [urllib.request.HTTPSHandler(context=certs.client_context(settings["validate_certs"],
                                                                         settings["ca_path"]))]
    if not settings["follow_redirects"]:
        handlers.append(_NoRedirect())
    if not settings["use_proxy"]:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    headers = dict({"User-Agent": "ops.runbook", "Accept": "application/json, */*"}, **(settings["headers"] or {}))
    request = urllib.request.Request(settings["url"], headers=headers, method=settings["method"])
    limit = settings["max_body_bytes"]
    started = time.monotonic()
    try:
        try:
            response = opener.open(request, timeout=settings["timeout"])
        except urllib.error.HTTPError as error:
            response = error
        with response:
            body = _read_body(response, limit, started + settings["timeout"], settings)
            code = response.getcode()
            headers_seen = response.headers
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise request_error(error, settings)
    elapsed_ms = (time.monotonic() - started) * 1000.0
    return Answer(code, body, headers_seen.get("Content-Type", ""), headers_seen.get("Location"), elapsed_ms)


def _endpoint_check(check, settings, facts):
    """A judged check, named after the endpoint: `api:dependency:database`, "api: ... ."."""
    if check["name"] == "status":
        output = "{0} {1} {2}.".format(settings["method"], settings["url"], check["output"])
    else:
        output = "{0}: {1}.".format(settings["name"], check["output"])
    return dict(check, name="{0}:{1}".format(settings["name"], check["name"]), output=output, **facts)


def _latency_check(settings, answer, facts):
    limits = settings["limits"]
    warn, fail = settings["latency_warn_ms"], settings["latency_fail_ms"]
    elapsed = answer.elapsed_ms
    status = limits.grade("latency_ms", elapsed)
    if status == health.FAIL:
        words = "over the {0:g} ms limit".format(fail)
    elif status == health.WARN:
        words = "over the {0:g} ms warning".format(warn)
    else:
        words = "within {0:g} ms".format(warn)
    return health.check("{0}:latency".format(settings["name"]), status, round(elapsed, 1),
                        limits.threshold("latency_ms"),
                        "{0} answered in {1:.0f} ms, {2}.".format(settings["name"], elapsed, words), unit="ms", **facts)


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
    if parsed.scheme == "https" and settings["check_certificate"] and proxied(settings, parsed):
        # The certificate is asked for but cannot be seen through the proxy: could not check, never a pass.
        checks.append(health.unchecked(
            "{0}:certificate".format(settings["name"]),
            "Could not check the certificate of {0}: the request goes through the proxy {1}:{2}, and a direct TLS "
            "handshake would see another certificate or none. Check it with cert_check from a host that reaches "
            "{3} directly, or set check_certificate: false for this endpoint.".format(
                settings["name"], _proxy(settings, parsed)[0], _proxy(settings, parsed)[1], parsed.hostname),
            threshold={"warn": settings["warn_days"], "fail": settings["fail_days"]}, unit="days", **facts))
    elif parsed.scheme == "https" and settings["check_certificate"]:
        endpoint = {"host": parsed.hostname, "port": parsed.port or 443, "server_name": parsed.hostname}
        tls = certs.endpoint_checks(settings["name"], endpoint, settings, now, facts)
        if tls[0]["observed_value"] is None:
            # Nothing answers at all: one failure says so, rather than three saying it again.
            failure = dict(tls[0], name="{0}:status".format(settings["name"]), threshold=settings["expect_status"])
            failure.pop("unchecked", None)  # no answer at all is what the status check found, not a check not made
            failure["output"] = "{0} {1} failed: {2}".format(settings["method"], settings["url"], tls[0]["output"])
            summary["status"] = health.FAIL
            return [failure], summary
        checks.extend(tls)
        summary["days_to_expiry"] = tls[0]["observed_value"]
    try:
        answer = fetch(settings)
    except RunbookError as error:
        checks.insert(0, health.check("{0}:status".format(settings["name"]), health.FAIL, None,
                                      settings["expect_status"] or "2xx", "{0} {1} failed: {2}".format(
                                          settings["method"], settings["url"], error), **facts))
        summary["status"] = health.worst(checks)
        return checks, summary
    summary.update(status_code=answer.code, latency_ms=round(answer.elapsed_ms, 1))
    judged = [_endpoint_check(check, settings, facts) for check in judge_answer(answer, settings)]
    checks = judged[:1] + [_latency_check(settings, answer, facts)] + judged[1:] + checks
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
