# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis cache flush: runbook "Redis Cache Flush", step "Gracefully flush cache".

Empties one database with FLUSHDB ASYNC (the server frees the memory in the
background, so it keeps answering), or every database with FLUSHALL ASYNC
only when asked for all of them. Counts the keys before and after; in check
mode only counts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from . import redis as redis_lib
from .common import RunbookError

ASYNC_SINCE = (4, 0)


def plan(params):
    """(scope, db) from the options, refusing anything ambiguous."""
    all_databases = bool(params.get("all_databases"))
    db = params.get("db")
    if all_databases and db is not None:
        raise RunbookError(
            "Both db ({0}) and all_databases were given; a flush empties either one database or all of them.".format(
                db), hint="Drop db to flush every database, or drop all_databases to flush database {0}.".format(db),
            cause="invalid")
    if not all_databases and db is None:
        raise RunbookError(
            "No database was named to flush.",
            hint="Set db to the database number (for example 0), or all_databases: true to empty every database.",
            cause="invalid")
    if db is not None and int(db) < 0:
        raise RunbookError("db cannot be negative ({0}).".format(db), cause="invalid")
    return ("all", None) if all_databases else ("database", int(db))


def _describe(keyspace):
    return ", ".join("{0}={1}".format(name, keyspace[name]) for name in sorted(keyspace, key=lambda n: int(n[2:]))) \
        or "none"


def run_flush(params, check_mode=False):
    """Flush as `params` say; returns the module's result."""
    scope, db = plan(params)
    client = redis_lib.connect(params, db=db or 0)
    try:
        return _flush(client, params, scope, db, check_mode)
    finally:
        redis_lib.disconnect(client)


def _flush(client, params, scope, db, check_mode):
    where = redis_lib.endpoint(params)
    info = redis_lib.info(client, params)
    if info.get("role") == "slave":
        master = "{0}:{1}".format(info.get("master_host"), info.get("master_port"))
        raise RunbookError(
            "Redis at {0} is a replica of {1}: it is read-only and copies the master's data.".format(where, master),
            hint="Flush the master ({0}); its replicas follow.".format(master), cause="read_only")
    version = redis_lib.version_tuple(info)
    if version and version < ASYNC_SINCE:
        raise RunbookError(
            "Redis {0} at {1} cannot flush asynchronously (FLUSHDB ASYNC needs Redis 4.0).".format(
                info.get("redis_version"), where),
            hint="Upgrade Redis; a synchronous FLUSHDB blocks every client until it is done.", cause="unsupported")
    command = ["FLUSHALL", "ASYNC"] if scope == "all" else ["FLUSHDB", "ASYNC"]
    keyspace_before = redis_lib.keyspace(info)
    if scope == "all":
        keys_before = sum(keyspace_before.values())
        target = "every database"
    else:
        keys_before = int(redis_lib.command(client, params, "DBSIZE"))
        target = "database {0}".format(db)
    result = {
        "endpoint": where,
        "scope": scope,
        "db": db,
        "command": " ".join(command),
        "keys_before": keys_before,
        "keyspace_before": keyspace_before,
        "server_version": info.get("redis_version"),
    }
    if check_mode:
        result.update(
            changed=keys_before > 0, flushed=False, keys_after=keys_before, keyspace_after=keyspace_before,
            msg="Would run {0} on Redis at {1}: {2} holds {3} keys{4}. Databases with keys: {5}.".format(
                result["command"], where, target, keys_before, "" if keys_before else " (nothing to flush)",
                _describe(keyspace_before)))
        return result
    redis_lib.command(client, params, *command)
    # The keyspace is empty as soon as FLUSH* ASYNC returns; only the memory is freed later.
    keyspace_after = redis_lib.keyspace(redis_lib.info(client, params, "keyspace"))
    if scope == "all":
        keys_after = sum(keyspace_after.values())
    else:
        keys_after = int(redis_lib.command(client, params, "DBSIZE"))
    msg = "Ran {0} on Redis at {1}: {2} went from {3} keys to {4}.".format(
        result["command"], where, target, keys_before, keys_after)
    if keys_after:
        msg += " Clients wrote new keys right after the flush."
    msg += " Databases with keys now: {0}.".format(_describe(keyspace_after))
    result.update(changed=keys_before > 0, flushed=True, keys_after=keys_after, keyspace_after=keyspace_after,
                  msg=msg)
    return result
