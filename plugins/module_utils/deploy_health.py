# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health of each application's last deployment, from the records deployments leave on the host.

The newest record of each application is judged in the collection's vocabulary:
- `deployed` (every gate passed), or a run still `in_progress` for less than
  the stale limit: pass;
- `rolled_back` (a gate failed, the previous state is back and proven) or
  `failed` (it failed before anything changed): warn - the application runs
  the old version and someone should look at the record's sentence;
- `rollback_failed`, or `in_progress` for longer than the stale limit (the run
  died half-way, the host may be between two versions): fail.

Plain Python over deploy_record.py: the module and the tests share it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os

from . import deploy_record, health
from .common import RunbookError, utc_now

DEFAULT_STALE_MINUTES = 60
_STATUS = {"deployed": health.PASS, "rolled_back": health.WARN, "failed": health.WARN,
           "rollback_failed": health.FAIL}


def _started(record):
    try:
        return datetime.datetime.strptime(record.get("started") or "", "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def _what(record):
    target = record.get("to") or {}
    operation = target.get("operation") or "deploy"
    name = target.get("release") or ", ".join(sorted((target.get("images") or {}).keys())) or "?"
    return "{0} {1} of {2} (record {3}, started {4})".format(
        "The rollback to" if operation == "rollback" else "The deployment", name, record.get("application"),
        record.get("id"), record.get("started"))


def judge(record, now=None, stale_minutes=DEFAULT_STALE_MINUTES):
    """One check of an application's newest record."""
    now = now or utc_now()
    application = record.get("application")
    name = "deployment {0}".format(application)
    outcome = record.get("outcome")
    facts = {"component": application, "record": record.get("path"), "deploy_id": record.get("id")}
    if outcome == "in_progress":
        started = _started(record)
        minutes = round((now - started).total_seconds() / 60.0, 1) if started else None
        if minutes is None or minutes > stale_minutes:
            return health.check(name, health.FAIL, minutes, stale_minutes,
                                "{0} is still in progress after {1} min: the run died half-way and the host may be "
                                "between two versions; read the record and finish or roll back by hand.".format(
                                    _what(record), minutes if minutes is not None else "an unknown number of"),
                                unit="minutes", outcome=outcome, **facts)
        return health.check(name, health.PASS, minutes, stale_minutes,
                            "{0} is in progress ({1} min).".format(_what(record), minutes), unit="minutes",
                            outcome=outcome, **facts)
    status = _STATUS.get(outcome)
    if status is None:
        return health.check(name, health.FAIL, outcome, "deployed",
                            "{0} has the unknown outcome {1!r}.".format(_what(record), outcome), outcome=outcome,
                            **facts)
    sentence = record.get("message") or "{0} ended {1}.".format(_what(record), outcome)
    if status != health.PASS:
        sentence = "{0} ended {1}: {2}".format(_what(record), outcome, sentence)
    return health.check(name, status, outcome, "deployed", sentence, outcome=outcome, **facts)


def applications_in(records_dir):
    try:
        return sorted(n for n in os.listdir(records_dir) if os.path.isdir(os.path.join(records_dir, n)))
    except FileNotFoundError:
        return []
    except OSError as error:
        raise RunbookError("Cannot list the deployment records in {0}: {1}.".format(
            records_dir, error.strerror or error), hint="Run with become.")


def run_deploy_health(opts, now=None):
    """The checks of every application (or of those named) under the records directory."""
    records_dir = opts.get("records_dir") or deploy_record.DEFAULT_RECORDS_DIR
    stale = opts.get("stale_minutes") or DEFAULT_STALE_MINUTES
    applications = opts.get("applications") or applications_in(records_dir)
    if not applications:
        # A host nothing was ever deployed to has nothing to judge: skipped, as a task is, so the health
        # check (which fails a module that ran but returned no check) leaves it out instead of failing it.
        return {"skipped": True, "checks": [], "status": health.PASS,
                "msg": "No deployment is recorded in {0}: nothing to check.".format(records_dir)}
    checks, warnings = [], []
    for application in applications:
        records, problems = deploy_record.load_records(records_dir, application)
        warnings.extend(problems)
        if not records:
            checks.append(health.check("deployment {0}".format(application), health.PASS, None, "deployed",
                                       "No deployment of {0} is recorded in {1}.".format(application, records_dir),
                                       component=application))
            continue
        checks.append(judge(records[0], now=now, stale_minutes=stale))
    return {"checks": checks, "status": health.worst(checks), "warnings": warnings,
            "msg": "; ".join(c["output"] for c in checks if c["status"] != health.PASS)
            or "{0} application(s): every last deployment is fine.".format(len(checks))}
