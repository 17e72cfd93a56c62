# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a service answer? A TCP connect, an HTTP GET, and what its health JSON must say.

`expectation_mismatches` is the health-JSON matcher: a pattern is a JSON-like
value the response must agree with.

- A mapping: every key must be present and match. The key `*` stands for
  every entry of the object (or every element of a list) that the pattern
  does not name; an absent or empty object has no entries, so
  `{"dependencies": {"*": {...}}}` also accepts a service without dependencies.
- A list: one of these values (strings compared without regard to case).
- Anything else: equal (strings compared without regard to case).

The default expectation is a healthy top-level status and a healthy status of
every dependency: `{"status": healthy|ok|pass|up, "dependencies": {"*": {"status": ...}}}`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl

from urllib.error import HTTPError, URLError
from urllib.request import HTTPSHandler, ProxyHandler, Request, build_opener

HEALTHY_WORDS = ["healthy", "ok", "pass", "up"]
DEFAULT_EXPECTATION = {"status": HEALTHY_WORDS, "dependencies": {"*": {"status": HEALTHY_WORDS}}}
BODY_LIMIT = 1024 * 1024


def tcp_open(host, port, timeout=3.0):
    """None when `host:port` accepts a TCP connection, else the reason it did not."""
    try:
        connection = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, socket.timeout) as error:
        return getattr(error, "strerror", None) or str(error) or error.__class__.__name__
    connection.close()
    return None


def http_get(url, timeout=5.0, validate_certs=True, headers=None):
    """(status code or None, body text, error text or None) of a GET of `url`.

    An HTTP error status (4xx, 5xx) is an answer, not an error: its code and
    body come back. Only a request that got no answer has an error text.
    """
    request = Request(url, headers=dict({"Accept": "application/json", "User-Agent": "ops.runbook"},
                                        **(headers or {})))
    context = ssl.create_default_context()
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # A service's own health URL is asked directly: an http_proxy set for
    # downloads must not answer for it.
    opener = build_opener(ProxyHandler({}), HTTPSHandler(context=context))
    try:
        response = opener.open(request, timeout=timeout)
        with response:
            return response.getcode(), response.read(BODY_LIMIT).decode("utf-8", "replace"), None
    except HTTPError as error:
        body = error.read(BODY_LIMIT).decode("utf-8", "replace") if error.fp else ""
        return error.code, body, None
    except (URLError, OSError, socket.timeout) as error:
        reason = getattr(error, "reason", None) or error
        return None, "", str(reason)


def _same(value, wanted):
    if isinstance(value, str) and isinstance(wanted, str):
        return value.casefold() == wanted.casefold()
    if isinstance(value, bool) != isinstance(wanted, bool):
        return False
    return value == wanted


def _show(value):
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else "'{0}'".format(value)


def _child(path, key):
    return "{0}.{1}".format(path, key) if path else str(key)


def _entries(value):
    """(key, item) pairs of an object, or of a list (named by an item's `name` when it has one)."""
    if isinstance(value, dict):
        return sorted(value.items())
    pairs = []
    for index, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        pairs.append((name if isinstance(name, str) and name else index, item))
    return pairs


def expectation_mismatches(value, pattern, path=""):
    """Sentences saying where `value` disagrees with `pattern`; empty when it matches."""
    if isinstance(pattern, dict):
        wildcard = pattern.get("*")
        named = dict((key, sub) for key, sub in pattern.items() if key != "*")
        if wildcard is not None and not named and value in (None, {}, []):
            return []
        if isinstance(value, list) and wildcard is not None and not named:
            problems = []
            for key, item in _entries(value):
                problems += expectation_mismatches(item, wildcard, _child(path, key))
            return problems
        if not isinstance(value, dict):
            return ["{0} is {1}, expected an object".format(path or "the response", _show(value))]
        problems = []
        for key, sub in named.items():
            if key not in value:
                if isinstance(sub, dict) and set(sub) == {"*"}:
                    continue
                problems.append("{0} is missing".format(_child(path, key)))
                continue
            problems += expectation_mismatches(value[key], sub, _child(path, key))
        if wildcard is not None:
            for key, item in _entries(value):
                if key not in named:
                    problems += expectation_mismatches(item, wildcard, _child(path, key))
        return problems
    if isinstance(pattern, list):
        if any(_same(value, choice) for choice in pattern):
            return []
        return ["{0} is {1}, expected {2}".format(path or "the response", _show(value),
                                                  "one of " + ", ".join(_show(c) for c in pattern)
                                                  if len(pattern) != 1 else _show(pattern[0]))]
    if _same(value, pattern):
        return []
    return ["{0} is {1}, expected {2}".format(path or "the response", _show(value), _show(pattern))]


def judge_health(status, body, expectation=None):
    """(None, document) when an answer is healthy, else (the reason, document or None).

    Healthy means a 2xx status and a JSON body that matches `expectation`
    (DEFAULT_EXPECTATION when None).
    """
    document = None
    try:
        document = json.loads(body) if body.strip() else None
    except ValueError:
        document = None
    if status is None or not 200 <= status < 300:
        detail = ""
        if document is not None:
            problems = expectation_mismatches(document, expectation or DEFAULT_EXPECTATION)
            detail = ": " + "; ".join(problems) if problems else ""
        return "answered HTTP {0}{1}".format(status, detail), document
    if document is None:
        snippet = " ".join(body.split())[:200]
        return "answered HTTP {0} but not with JSON: {1}".format(status, snippet or "(empty body)"), None
    problems = expectation_mismatches(document, expectation or DEFAULT_EXPECTATION)
    if problems:
        return "; ".join(problems), document
    return None, document


def describe_healthy(document):
    """A short sentence of what a healthy answer said, e.g. "status 'healthy', database 'healthy'"."""
    if not isinstance(document, dict):
        return "a JSON answer"
    parts = []
    if "status" in document:
        parts.append("status {0}".format(_show(document["status"])))
    dependencies = document.get("dependencies")
    if isinstance(dependencies, (dict, list)):
        for key, item in _entries(dependencies):
            if isinstance(item, dict) and "status" in item:
                parts.append("{0} {1}".format(key, _show(item["status"])))
    return ", ".join(parts) or "a JSON answer"
