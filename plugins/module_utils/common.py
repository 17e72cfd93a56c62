# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors and small helpers shared by every engine of the collection.

Plain Python: no Ansible imports, so the same code runs inside a module, in the
scheduled job on a host, in tests and in benchmarks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re


class RunbookError(Exception):
    """A failure an operator can act on: what happened, and what to do.

    `details` carries structured facts (a stage's stderr, a key) that modules
    return beside the message.
    """

    def __init__(self, message, hint=None, **details):
        super(RunbookError, self).__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self):
        if self.hint:
            return "{0} {1}".format(self.message, self.hint)
        return self.message


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def isoformat(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_size(num_bytes):
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return "{0:.1f} {1}".format(value, unit) if unit != "B" else "{0} B".format(int(value))
        value /= 1024
    return "{0} B".format(num_bytes)


def read_json(path, what, required=True):
    """The JSON document in `path`; {} for a missing optional file; RunbookError naming `what` otherwise."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError) as error:
        if not required:
            return {}
        raise RunbookError("Cannot read the {0} file {1}: {2}".format(what, path, error.strerror or error))
    except ValueError as error:
        raise RunbookError("The {0} file {1} is not valid JSON: {2}".format(what, path, error))


# A secret written as KEY=VALUE, KEY: VALUE or "KEY": "VALUE", whose key names a password, secret, token
# or key (PGPASSWORD=..., db_password: ..., aws_secret_access_key=..., "token": "..."), and the password
# of a URL (postgresql://user:PASSWORD@host).
_SECRET_ASSIGNMENT = re.compile(
    r"""(?P<key>\b[\w.-]*(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)[\w.-]*)"""
    r"""(?P<sep>["']?\s*[=:]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;&"'}]+)""", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?P<value>[^\s@/]+)(?=@)", re.IGNORECASE)
_BEARER = re.compile(r"(?P<head>\b(?:bearer|basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
REDACTED = "********"


def redact(text):
    """`text` with the values of obvious secrets (password=..., token: ..., URL passwords, bearer tokens) masked.

    For text a person reads (log lines, command output); it catches what is written plainly, not every secret.
    """
    text = _SECRET_ASSIGNMENT.sub(lambda m: m.group("key") + m.group("sep") + _masked(m.group("value")), text)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    return _BEARER.sub(lambda m: m.group("head") + REDACTED, text)


def _masked(value):
    if value[:1] in ("'", '"') and len(value) >= 2:
        return value[0] + REDACTED + value[-1]
    return REDACTED
