# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make sure a pgBackRest stanza exists in its repository and that WAL archiving into it works.

`pgbackrest stanza-create` runs only when `pgbackrest info` says the repository
has no (or an incomplete) stanza, so a second run changes nothing; then
`pgbackrest check` proves the whole path: it makes PostgreSQL switch to a new
WAL segment and waits (archive-timeout) until that segment is in the
repository, so wrong credentials, an unreachable store or a broken
archive_command fail here with pgBackRest's reason and what to do (the
translation is module_utils/pgbackrest.py's). Neither command stops or
restarts PostgreSQL.

Check mode reads the repository (`pgbackrest info`) and returns the plan: it
creates nothing and does not run `check`, which archives a segment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .common import RunbookError
from .pgbackrest import PgBackRest, stanza_status

DEFAULTS = {"check": True}


def repository_state(backrest):
    """(exists, info): whether the repository holds the stanza, and its `pgbackrest info` entry when it does.

    A missing or incomplete stanza (status 1 or 3) is "does not exist"; every other error of the repository
    (credentials, a store that does not answer, TLS) is raised as module_utils/pgbackrest.py translates it.
    """
    try:
        return True, backrest.info()
    except RunbookError as error:
        if error.details.get("cause") == "stanza_missing":
            return False, None
        raise


def summary(info):
    """What `pgbackrest info` says about the stanza, in a few fields a playbook can show or test."""
    code, message = stanza_status(info)
    archives = info.get("archive") or []
    return {
        "status": {"code": code, "message": message},
        "backups": len(info.get("backup") or []),
        "cipher": info.get("cipher"),
        "wal_min": archives[-1].get("min") if archives else None,
        "wal_max": archives[-1].get("max") if archives else None,
    }


def ensure_stanza(params, check_mode, log, backrest=None):
    """Create the stanza when it is missing, then run `pgbackrest check`; the module's result."""
    backrest = backrest or PgBackRest(params)
    stanza = backrest.stanza
    run_check = params.get("check", DEFAULTS["check"])
    exists, info = repository_state(backrest)
    plan = []
    if not exists:
        plan.append("create the stanza {0} in the repository (pgbackrest stanza-create)".format(stanza))
    if run_check:
        plan.append("check that WAL reaches the repository (pgbackrest check)")
    result = {"stanza": stanza, "config": backrest.config, "plan": plan, "existed": exists,
              "created": False, "check_passed": None, "changed": not exists}
    if check_mode:
        result.update(info=summary(info) if info else None, msg="Check mode: would {0}.".format(
            "; ".join(plan) if plan else "do nothing"))
        return result
    if not exists:
        log("creating the stanza {0}".format(stanza))
        backrest.run("stanza-create")
        result["created"] = True
    if run_check:
        log("running pgbackrest check for the stanza {0}".format(stanza))
        backrest.run("check")
        result["check_passed"] = True
    result["info"] = summary(backrest.info())
    done = ["created the stanza {0}".format(stanza) if result["created"]
            else "the stanza {0} exists".format(stanza)]
    if run_check:
        done.append("pgbackrest check passed: WAL reaches the repository")
    result["msg"] = "pgBackRest: {0}.".format("; ".join(done))
    return result
