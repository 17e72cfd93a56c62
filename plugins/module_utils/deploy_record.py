# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record every deployment and rollback leaves on its host.

One JSON file per deployment under `<records_dir>/<application>/`, named
`<UTC stamp>-<deploy id>.json` so names sort by time. It says who deployed,
when, from which release (or compose images) to which, each gate's evidence in
the health vocabulary (`pass` / `warn` / `fail` with the observed value, the
threshold and a sentence) and the outcome. The deploy engines write it at the
start (outcome `in_progress`) and again at every gate, so a deployment that dies
half-way is seen as such, never as done; rollback and the health report read it.

Plain Python: the release and compose engines, the modules and the tests share it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import secrets
import tempfile

from .common import RunbookError, utc_now

RECORD_VERSION = 1
DEFAULT_RECORDS_DIR = "/var/lib/ops-runbook/deploys"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
KINDS = ("release", "compose")
# in_progress: written before the first change; a record left so means the run died half-way.
# deployed: every gate passed. rolled_back: a gate failed and the previous state is back and proven.
# rollback_failed: a gate failed and putting the previous state back failed too (act now).
# failed: it failed before anything changed.
OUTCOMES = ("in_progress", "deployed", "rolled_back", "rollback_failed", "failed")
GATE_STATUSES = ("pass", "warn", "fail")
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_FILE_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<id>[0-9a-f]{8})\.json$")


def check_application(name):
    """An application name is one path component: refuse any other before anything is written."""
    if not isinstance(name, str) or not _APP_NAME.match(name) or name in (".", ".."):
        raise RunbookError(
            "The application name {0!r} cannot name a deployment: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit, at most 128 characters.".format(name),
            hint="Set the application's name (deploy_application) to a plain name such as 'blog-api'.")
    return name


def actor(environ=None):
    """Who deployed: the controller user, and the AWX/Controller job when run there."""
    environ = os.environ if environ is None else environ
    who = {"user": environ.get("SUDO_USER") or environ.get("USER") or environ.get("LOGNAME") or "unknown"}
    for key, name in (("JOB_ID", "awx_job_id"), ("AWX_HOST", "awx_host"), ("TOWER_HOST", "awx_host")):
        if environ.get(key):
            who[name] = environ[key]
    return who


def new_record(application, kind, source, target, who=None, now=None):
    """A record in state `in_progress`; `source`/`target` describe the release or images, e.g.
    `{"release": "20261206T101500Z-ab12"}` or `{"images": {"backend": "sha256:..."}}`."""
    check_application(application)
    if kind not in KINDS:
        raise RunbookError("Unknown deployment kind {0!r}; known: {1}.".format(kind, ", ".join(KINDS)))
    now = now or utc_now()
    return {
        "version": RECORD_VERSION,
        "application": application,
        "kind": kind,
        "id": secrets.token_hex(4),
        "started": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stamp": now.strftime(STAMP_FORMAT),
        "finished": None,
        "actor": who if who is not None else actor(),
        "from": source,
        "to": target,
        "gates": [],
        "outcome": "in_progress",
        "message": "",
    }


def add_gate(record, name, status, observed, threshold, sentence, now=None):
    """Append one gate's evidence; returns the gate."""
    if status not in GATE_STATUSES:
        raise RunbookError("A gate's status is one of {0}, not {1!r}.".format(", ".join(GATE_STATUSES), status))
    gate = {"name": name, "status": status, "observed": observed, "threshold": threshold, "message": sentence,
            "at": (now or utc_now()).strftime("%Y-%m-%dT%H:%M:%SZ")}
    record["gates"].append(gate)
    return gate


def finish(record, outcome, message, now=None):
    if outcome not in OUTCOMES or outcome == "in_progress":
        raise RunbookError("A finished deployment's outcome is one of {0}, not {1!r}.".format(
            ", ".join(o for o in OUTCOMES if o != "in_progress"), outcome))
    record["outcome"] = outcome
    record["message"] = message
    record["finished"] = (now or utc_now()).strftime("%Y-%m-%dT%H:%M:%SZ")
    return record


def record_path(records_dir, record):
    return os.path.join(records_dir, check_application(record["application"]),
                        "{0}-{1}.json".format(record["stamp"], record["id"]))


def write_record(records_dir, record):
    """Write (or rewrite) the record atomically: a reader sees the old or the new whole file, never half."""
    path = record_path(records_dir, record)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o750, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".record-", dir=directory)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(record, out, indent=2, sort_keys=True)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o640)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    except OSError as error:
        raise RunbookError("Cannot write the deployment record {0}: {1}.".format(path, error.strerror or error),
                           hint="Check that the records directory is writable and the disk is not full.")
    return path


def load_records(records_dir, application):
    """(records newest first, [sentences about files that could not be read]) of one application."""
    directory = os.path.join(records_dir, check_application(application))
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return [], []
    except OSError as error:
        raise RunbookError("Cannot list the deployment records in {0}: {1}.".format(
            directory, error.strerror or error), hint="Run with become, or check the directory's permissions.")
    records, problems = [], []
    for name in sorted((n for n in names if _FILE_NAME.match(n)), reverse=True):
        path = os.path.join(directory, name)
        try:
            with open(path) as handle:
                document = json.load(handle)
            if not isinstance(document, dict) or document.get("application") != application:
                raise ValueError("not a record of {0}".format(application))
        except (OSError, ValueError) as error:
            problems.append("The deployment record {0} cannot be read ({1}); it was left out.".format(path, error))
            continue
        document["path"] = path
        records.append(document)
    return records, problems


def latest(records, outcomes=None, kind=None):
    """The newest record with one of `outcomes` (and of `kind`), or None."""
    for record in records:
        if (outcomes is None or record.get("outcome") in outcomes) and (kind is None or record.get("kind") == kind):
            return record
    return None


def prune(records_dir, application, keep):
    """Delete all but the newest `keep` records (never one in progress); returns the deleted paths."""
    if keep < 1:
        raise RunbookError("Keep at least one deployment record (keep={0}).".format(keep))
    records, _problems = load_records(records_dir, application)
    deleted = []
    for record in records[keep:]:
        if record.get("outcome") == "in_progress":
            continue
        os.unlink(record["path"])
        deleted.append(record["path"])
    return deleted
