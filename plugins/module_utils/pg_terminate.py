# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End PostgreSQL sessions chosen by explicit filters, and nothing else.

The runbooks' `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE
...` made safe: the selection must be explicit, this session, replication
connections and background workers are never touched, superusers' sessions
only when allowed, and the sessions are selected and ended by one statement,
so what is ended is exactly what the filters matched at that moment. Check
mode runs the same selection without ending anything.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from .common import RunbookError
from .postgres import connect, import_psycopg2

STATES = ["active", "idle", "idle in transaction", "idle in transaction (aborted)"]
ACTIONS = {"terminate": "pg_terminate_backend", "cancel": "pg_cancel_backend"}
FILTERS = ("states", "min_age_minutes", "databases", "users", "application_names", "query_pattern")

DEFAULTS = {
    "database": "postgres",
    "states": [],
    "min_age_minutes": None,
    "databases": [],
    "users": [],
    "application_names": [],
    "query_pattern": None,
    "action": "terminate",
    "allow_superuser": False,
    "max_sessions": None,
    "wait_seconds": 10,
}
QUERY_HEAD = 120

# Age is how long a session has been in its state: for an active one, how long
# its query has run (the runbook's query_start); for an idle one, since it
# went idle (state_change).
SELECTION = """
SELECT a.pid, a.usename, a.datname, a.application_name, a.state,
       extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.state_change END)::float8,
       a.query, coalesce(r.rolsuper, false),
       a.pid = pg_backend_pid(), a.backend_type
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE {where}
ORDER BY a.pid
"""


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    for name in ("states", "databases", "users", "application_names"):
        opts[name] = list(opts.get(name) or [])
    if not any(opts.get(name) not in (None, [], "") for name in FILTERS):
        raise RunbookError(
            "No session filter was given, and ending every session of the server is never what is meant.",
            hint="Select the sessions explicitly with states, min_age_minutes, databases, users, "
                 "application_names or query_pattern.", cause="invalid")
    return opts


def _where(opts):
    """The filter as SQL and its parameters; values only ever travel as parameters."""
    clauses = ["a.backend_type = 'client backend'"]
    params = []
    if opts["states"]:
        clauses.append("a.state = ANY(%s)")
        params.append(opts["states"])
    if opts["min_age_minutes"] is not None:
        clauses.append("CASE WHEN a.state = 'active' THEN a.query_start ELSE a.state_change END "
                       "< now() - %s * interval '1 minute'")
        params.append(float(opts["min_age_minutes"]))
    for option, column in (("databases", "a.datname"), ("users", "a.usename"),
                           ("application_names", "a.application_name")):
        if opts[option]:
            clauses.append("{0} = ANY(%s)".format(column))
            params.append(opts[option])
    if opts["query_pattern"]:
        clauses.append("a.query ~ %s")
        params.append(opts["query_pattern"])
    return " AND ".join(clauses), params


def _session(row):
    pid, user, database, application, state, seconds, query, superuser, own, backend_type = row[:10]
    text = " ".join((query or "").split())
    return {"pid": pid, "user": user, "database": database, "application_name": application, "state": state,
            "age_seconds": round(seconds or 0.0, 1), "superuser": bool(superuser),
            "query": text if len(text) <= QUERY_HEAD else text[:QUERY_HEAD - 3] + "..."}


def _protection(row, opts):
    """Why a matched session is left alone, or None."""
    superuser, own = row[7], row[8]
    if own:
        return "this session"
    if superuser and not opts["allow_superuser"]:
        return "superuser session (allow_superuser is false)"
    return None


def _wait_gone(conn, pids, seconds):
    """The pids still present after waiting up to `seconds` for them to exit."""
    deadline = time.monotonic() + seconds
    remaining = list(pids)
    with conn.cursor() as cur:
        while remaining:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (remaining,))
            remaining = [row[0] for row in cur.fetchall()]
            if not remaining or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    return remaining


def end_sessions(options, check_mode=False, log=None):
    """Select sessions by the filters and end them (in check mode, only list them)."""
    log = log or (lambda message: None)
    opts = normalize(options)
    psycopg2 = import_psycopg2()
    conn = connect(opts, opts["database"])
    try:
        where, params = _where(opts)
        with conn.cursor() as cur:
            cur.execute(SELECTION.format(where=where), params)
            matched = cur.fetchall()
        protected = [dict(_session(row), reason=_protection(row, opts)) for row in matched if _protection(row, opts)]
        chosen = [row for row in matched if not _protection(row, opts)]
        limit = opts["max_sessions"]
        if limit is not None and len(chosen) > int(limit):
            raise RunbookError(
                "The filters select {0} sessions, more than max_sessions ({1}); none was ended.".format(
                    len(chosen), limit),
                hint="Narrow the filters or raise max_sessions.", cause="too_many",
                sessions=[_session(row) for row in chosen])
        verb = "cancel" if opts["action"] == "cancel" else "terminate"
        if check_mode:
            ended = [_session(row) for row in chosen]
            for session in ended:
                log("would {0} pid {1} ({2}@{3}, {4} for {5} s)".format(
                    verb, session["pid"], session["user"], session["database"], session["state"],
                    session["age_seconds"]))
            return _result(ended, protected, [], opts, check_mode)
        ended = []
        if chosen:
            # Re-applying the filters while signalling means a session that
            # changed since the selection (went active, began a new query) is
            # not ended on stale grounds.
            with conn.cursor() as cur:
                cur.execute("""
                    SELECT s.*, {0}(s.pid) FROM ({1}) s WHERE s.pid = ANY(%s)""".format(
                    ACTIONS[opts["action"]], SELECTION.format(where=where)), params + [[row[0] for row in chosen]])
                signalled = cur.fetchall()
            ended = [_session(row) for row in signalled if row[-1] and not _protection(row, opts)]
        lingering = _wait_gone(conn, [s["pid"] for s in ended], opts["wait_seconds"]) \
            if opts["action"] == "terminate" else []
        for session in ended:
            log("{0} pid {1} ({2}@{3}, {4} for {5} s)".format(
                "cancelled the query of" if verb == "cancel" else "terminated", session["pid"], session["user"],
                session["database"], session["state"], session["age_seconds"]))
        return _result(ended, protected, lingering, opts, check_mode)
    except psycopg2.Error as error:
        raise RunbookError("Ending sessions failed: {0}".format(" ".join(str(error).split())),
                           hint="The login user needs pg_signal_backend (or superuser) to end others' sessions.",
                           cause="query")
    finally:
        conn.close()


def _result(ended, protected, lingering, opts, check_mode):
    verb = {"terminate": "terminate", "cancel": "cancel the query of"}[opts["action"]]
    done = {"terminate": "Terminated", "cancel": "Cancelled the queries of"}[opts["action"]]
    pids = ", ".join(str(s["pid"]) for s in ended)
    if check_mode:
        msg = "Would {0} {1} session(s){2}.".format(verb, len(ended), ": pid " + pids if ended else "")
    else:
        msg = "{0} {1} session(s){2}.".format(done, len(ended), ": pid " + pids if ended else "")
    if protected:
        msg += " Left alone: {0}.".format(", ".join("pid {0} ({1})".format(s["pid"], s["reason"]) for s in protected))
    if lingering:
        msg += " Still present after {0} s: pid {1}.".format(opts["wait_seconds"], ", ".join(map(str, lingering)))
    return {"changed": bool(ended), "sessions": ended, "protected": protected, "lingering": lingering,
            "count": len(ended), "msg": msg}
