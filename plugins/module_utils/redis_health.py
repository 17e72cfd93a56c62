# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis health: memory, hit rate, evictions, clients, persistence, replication.

Runbooks "Cache Health" (hit rate > 80 %, memory < 90 % of maxmemory,
evictions = 0) and "Cache Performance", as health checks in the collection's
pass / warn / fail vocabulary (health.py).

`evaluate` is a pure function of parsed INFO, a few CONFIG values, the
thresholds and the previous run's counters; `run_health` connects, reads and
calls it. Counters (hits, misses, evictions, rejections) only ever grow, so
with a state file they are judged over the time since the previous check;
without one they cover the server's whole uptime, and a count alone then only
warns, because it cannot tell whether the problem is still happening.

A check that cannot be made (maxclients unknown because CONFIG is refused on a
Redis that does not report it in INFO; no memory limit and no system memory
to compare with) is a `fail` marked `unchecked` (health.unchecked), never a pass.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from . import health
from . import redis as redis_lib
from .common import RunbookError, human_size
from .health_report import write_atomic

COMPONENT_TYPE = "datastore"

# The runbooks' numbers where they give one (memory < 90 %, hit rate > 80 %, evictions = 0,
# connections < 80 % of max); the rest are explained in the module's documentation. A value strictly
# beyond a limit breaches it (health.Limits), so counts warn above 0: from the first eviction.
THRESHOLDS = {
    "memory_used_percent": health.Limit(warn=90, fail=95),
    "hit_rate_percent": health.Limit(warn=80, fail=50, worse=health.LOWER),
    "clients_used_percent": health.Limit(warn=80, fail=90),
    "evictions": health.Limit(warn=0),
    "rejected_connections": health.Limit(warn=0, fail=0),
    "rejected_writes": health.Limit(warn=0, fail=0),
    "blocked_clients": health.Limit(warn=50),
    "last_save_age_seconds": health.Limit(warn=7200, fail=86400),
    "replication_lag_seconds": health.Limit(warn=30, fail=60),
}
DEFAULTS = {
    "hit_rate_min_lookups": 100,
    "min_replicas": 0,
    "state_file": None,
    "fail_on": "fail",
}
# Counters compared with the previous check.
COUNTERS = ("keyspace_hits", "keyspace_misses", "evicted_keys", "rejected_connections", "rejected_writes")


def limits_from(overrides=None):
    """The Redis thresholds with the caller's {name: {warn, fail}} laid over them (health.Limits).

    Each threshold is a module option of its own (memory_used_percent: {warn: 90, fail: 95}).
    """
    return health.Limits(THRESHOLDS, overrides, option="")


def _number(value):
    return "{0:g}".format(value) if isinstance(value, float) else str(value)


def _duration(seconds):
    seconds = int(max(seconds, 0))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return "{0:.1f} {1}".format(seconds / size, unit).replace(".0 ", " ")
    return "{0} s".format(seconds)


def _percent(part, whole):
    return round(100.0 * part / whole, 1)


def counters(info):
    """The growing counters this module compares between checks."""
    errors = info.get("errorstat_OOM")
    return {
        "keyspace_hits": int(info.get("keyspace_hits", 0)),
        "keyspace_misses": int(info.get("keyspace_misses", 0)),
        "evicted_keys": int(info.get("evicted_keys", 0)),
        "rejected_connections": int(info.get("rejected_connections", 0)),
        # Writes refused with "OOM command not allowed when used memory > 'maxmemory'" (Redis >= 6.2).
        "rejected_writes": int(errors.get("count", 0)) if isinstance(errors, dict) else 0,
    }


def counter_window(info, previous, now):
    """The counters to judge: since the previous check when it is comparable, else since start.

    Returns {"since": "last_check" | "start", "seconds", "counts", "totals"}.
    A previous check of another server process (run_id changed: restarted) or
    with larger counters (CONFIG RESETSTAT) is no baseline.
    """
    totals = counters(info)
    window = {"since": "start", "seconds": int(info.get("uptime_in_seconds", 0)), "counts": dict(totals),
              "totals": totals}
    if not previous or str(previous.get("run_id")) != str(info.get("run_id")):
        return window
    before = previous.get("counters") or {}
    if any(name not in before or totals[name] < int(before[name]) for name in COUNTERS):
        return window
    window["since"] = "last_check"
    window["seconds"] = int(max(now - float(previous.get("time", now)), 0))
    window["counts"] = dict((name, totals[name] - int(before[name])) for name in COUNTERS)
    return window


def _window_words(window):
    if window["since"] == "last_check":
        return "since the previous check {0} ago".format(_duration(window["seconds"]))
    return "since the server started {0} ago (or its statistics were reset)".format(_duration(window["seconds"]))


def check_memory(info, limits):
    threshold = limits.threshold("memory_used_percent")
    used = int(info.get("used_memory", 0))
    maxmemory = int(info.get("maxmemory", 0))
    policy = info.get("maxmemory_policy", "unknown")
    system = int(info.get("total_system_memory", 0))
    facts = {"used_memory_bytes": used, "maxmemory_bytes": maxmemory, "maxmemory_policy": policy}
    if maxmemory > 0:
        percent = _percent(used, maxmemory)
        status = limits.grade("memory_used_percent", percent)
        at_limit = ("it refuses writes" if policy == "noeviction"
                    else "it evicts keys ({0})".format(policy))
        output = "Redis uses {0} of its maxmemory {1} ({2} %); at the limit {3}.".format(
            human_size(used), human_size(maxmemory), percent, at_limit)
        return health.check("redis_memory", status, percent, threshold, output, unit="percent",
                            limit_source="maxmemory", **facts)
    if system > 0:
        percent = _percent(used, system)
        status = limits.grade("memory_used_percent", percent)
        output = ("maxmemory is 0 (no limit): Redis may grow until the host runs out of memory. It uses {0}, "
                  "{1} % of the system's {2}; set maxmemory to cap it.").format(
            human_size(used), percent, human_size(system))
        return health.check("redis_memory", status, percent, threshold, output, unit="percent",
                            limit_source="system_memory", total_system_memory_bytes=system, **facts)
    output = ("Could not check Redis memory use: maxmemory is 0 (no limit) and the server does not report "
              "total_system_memory, so its {0} cannot be held against anything. Set maxmemory to cap it.").format(
        human_size(used))
    return health.unchecked("redis_memory", output, threshold=threshold, unit="percent", limit_source=None, **facts)


def check_hit_rate(window, limits, min_lookups):
    threshold = limits.threshold("hit_rate_percent")
    hits = window["counts"]["keyspace_hits"]
    misses = window["counts"]["keyspace_misses"]
    lookups = hits + misses
    facts = {"hits": hits, "misses": misses, "since": window["since"]}
    if lookups < min_lookups:
        output = ("Only {0} key lookups ({1} hits, {2} misses) {3}: too few to judge the hit rate "
                  "(needs {4}).").format(lookups, hits, misses, _window_words(window), min_lookups)
        return health.check("redis_hit_rate", health.PASS, None, threshold, output, unit="percent", **facts)
    rate = _percent(hits, lookups)
    status = limits.grade("hit_rate_percent", rate)
    output = "Hit rate {0} % ({1} hits, {2} misses) {3}.".format(rate, hits, misses, _window_words(window))
    if status != health.PASS:
        output += " Check key TTLs and whether the application caches what it reads."
    return health.check("redis_hit_rate", status, rate, threshold, output, unit="percent", **facts)


def _counter_check(name, threshold_name, count, total, window, limits, what, advice):
    threshold = limits.threshold(threshold_name)
    status = limits.grade(threshold_name, count)
    output = "{0} {1} {2}".format(count, what, _window_words(window))
    if window["since"] == "last_check":
        output += " ({0} since the server started).".format(total)
    else:
        output += "."
        if status == health.FAIL:
            # A count since start cannot tell whether the problem is still happening.
            status = health.WARN
            output += " Give state_file to judge only what happened since the previous check."
    if status != health.PASS:
        output += " " + advice
    return health.check(name, status, count, threshold, output, unit="count", total=total, since=window["since"])


def check_evictions(window, limits, info):
    return _counter_check(
        "redis_evictions", "evictions", window["counts"]["evicted_keys"], window["totals"]["evicted_keys"],
        window, limits, "keys evicted",
        "Redis reached maxmemory and dropped keys ({0}): raise maxmemory or shorten TTLs.".format(
            info.get("maxmemory_policy", "unknown")))


def check_rejected_connections(window, limits):
    return _counter_check(
        "redis_rejected_connections", "rejected_connections", window["counts"]["rejected_connections"],
        window["totals"]["rejected_connections"], window, limits, "connections rejected (maxclients reached)",
        "Clients could not connect: find leaking connections (CLIENT LIST) or raise maxclients.")


def check_rejected_writes(window, limits):
    return _counter_check(
        "redis_rejected_writes", "rejected_writes", window["counts"]["rejected_writes"],
        window["totals"]["rejected_writes"], window, limits, "writes refused with OOM (used memory > maxmemory)",
        "The application lost writes: raise maxmemory, free memory, or use an eviction policy such as "
        "allkeys-lru for a cache.")


def check_clients(info, maxclients, limits):
    threshold = limits.threshold("clients_used_percent")
    connected = int(info.get("connected_clients", 0))
    facts = {"connected_clients": connected, "maxclients": maxclients}
    if not maxclients:
        output = ("Could not check client use: {0} clients connected, but maxclients is unknown (INFO does not report "
                  "it and CONFIG GET maxclients is refused or renamed). Allow CONFIG GET to the user that "
                  "checks (ACL +config|get).").format(connected)
        return health.unchecked("redis_clients", output, threshold=threshold, unit="percent", **facts)
    percent = _percent(connected, maxclients)
    status = limits.grade("clients_used_percent", percent)
    output = "{0} of maxclients {1} clients connected ({2} %).".format(connected, maxclients, percent)
    if status != health.PASS:
        output += " New clients are rejected at the limit: find idle or leaking clients (CLIENT LIST)."
    return health.check("redis_clients", status, percent, threshold, output, unit="percent", **facts)


def check_blocked_clients(info, limits):
    threshold = limits.threshold("blocked_clients")
    blocked = int(info.get("blocked_clients", 0))
    status = limits.grade("blocked_clients", blocked)
    output = "{0} clients blocked in a blocking command (BLPOP, BRPOP, XREAD, WAIT...).".format(blocked)
    if status != health.PASS:
        output += " Queue workers block normally; more than there are workers suggests stuck consumers."
    return health.check("redis_blocked_clients", status, blocked, threshold, output, unit="count")


def _snapshots_scheduled(save_schedule):
    """True/False when the save schedule is known, None when CONFIG is unavailable."""
    if save_schedule is None:
        return None
    return bool(str(save_schedule).strip())


def check_rdb(info, save_schedule):
    status_word = info.get("rdb_last_bgsave_status", "ok")
    scheduled = _snapshots_scheduled(save_schedule)
    facts = {"rdb_last_bgsave_status": status_word, "save": save_schedule,
             "rdb_bgsave_in_progress": bool(info.get("rdb_bgsave_in_progress"))}
    if status_word != "ok":
        output = ("The last RDB snapshot (BGSAVE) failed; while it fails Redis refuses writes when "
                  "stop-writes-on-bgsave-error is yes. Check the Redis log and the space and permissions of its dir.")
        return health.check("redis_rdb", health.FAIL, status_word, "ok", output, **facts)
    if scheduled is False and not info.get("rdb_saves"):
        output = "RDB snapshots are off (save \"\"): a restart starts with an empty dataset unless AOF is on."
    elif info.get("rdb_bgsave_in_progress"):
        output = "An RDB snapshot is being written; the last one succeeded."
    else:
        output = "The last RDB snapshot succeeded."
    return health.check("redis_rdb", health.PASS, status_word, "ok", output, **facts)


def check_last_save(info, save_schedule, now, limits):
    threshold = limits.threshold("last_save_age_seconds")
    changes = int(info.get("rdb_changes_since_last_save", 0))
    last_save = int(info.get("rdb_last_save_time", 0))
    age = int(max(now - last_save, 0)) if last_save else None
    scheduled = _snapshots_scheduled(save_schedule)
    facts = {"rdb_changes_since_last_save": changes, "rdb_last_save_time": last_save, "save": save_schedule}
    if scheduled is False:
        durability = "AOF keeps them" if info.get("aof_enabled") else "a restart loses them, as a pure cache may"
        output = "RDB snapshots are off; {0} changes since the last save: {1}.".format(changes, durability)
        return health.check("redis_last_save", health.PASS, age, threshold, output, unit="seconds", **facts)
    if changes == 0 or age is None:
        output = "Every change is in the last RDB snapshot, taken {0} ago.".format(_duration(age or 0))
        return health.check("redis_last_save", health.PASS, age, threshold, output, unit="seconds", **facts)
    status = limits.grade("last_save_age_seconds", age)
    output = "{0} changes are not in an RDB snapshot yet; the last one was taken {1} ago{2}.".format(
        changes, _duration(age), "" if scheduled else " (the save schedule is unknown: CONFIG is not available)")
    if status != health.PASS:
        output += " Snapshots are not keeping up: check the save schedule and redis_rdb."
    return health.check("redis_last_save", status, age, threshold, output, unit="seconds", **facts)


def check_aof(info):
    facts = {"aof_enabled": bool(info.get("aof_enabled")),
             "aof_last_write_status": info.get("aof_last_write_status"),
             "aof_last_bgrewrite_status": info.get("aof_last_bgrewrite_status")}
    if not info.get("aof_enabled"):
        return health.check("redis_aof", health.PASS, "off", "ok", "AOF (appendonly) is off.", **facts)
    if info.get("aof_last_write_status", "ok") != "ok":
        output = ("Redis cannot write its append-only file (aof_last_write_status {0}); it refuses writes until it "
                  "can. Check free space and the Redis log.").format(info.get("aof_last_write_status"))
        return health.check("redis_aof", health.FAIL, info.get("aof_last_write_status"), "ok", output, **facts)
    if info.get("aof_last_bgrewrite_status", "ok") != "ok":
        output = ("The last AOF rewrite failed ({0} failures in a row): the file keeps growing. "
                  "Check free space and the Redis log.").format(info.get("aof_rewrites_consecutive_failures", "?"))
        return health.check("redis_aof", health.WARN, info.get("aof_last_bgrewrite_status"), "ok", output,
                            **facts)
    return health.check("redis_aof", health.PASS, "ok", "ok", "AOF is on; its last write and rewrite succeeded.",
                        **facts)


def replicas(info):
    """The master's view of its replicas, from the slaveN lines of INFO replication."""
    found = []
    for name in sorted((key for key in info if key.startswith("slave") and key[5:].isdigit()),
                       key=lambda key: int(key[5:])):
        entry = info[name]
        if isinstance(entry, dict):
            found.append({"address": "{0}:{1}".format(entry.get("ip"), entry.get("port")),
                          "state": entry.get("state"), "lag_seconds": entry.get("lag"),
                          "offset": entry.get("offset")})
    return found


def _worse(status, other):
    return health.worst([{"status": status}, {"status": other}])


def check_replication(info, limits, min_replicas):
    threshold = limits.threshold("replication_lag_seconds")
    if info.get("role") == "slave":
        return _check_master_link(info, limits)
    found = replicas(info)
    online = [item for item in found if item["state"] == "online"]
    lags = [(item["address"], item["lag_seconds"]) for item in online if isinstance(item["lag_seconds"], int)]
    status = health.PASS
    problems = []
    if len(online) < min_replicas:
        status = health.FAIL
        problems.append("expected at least {0}".format(min_replicas))
    syncing = [item["address"] for item in found if item["state"] != "online"]
    if syncing:
        status = _worse(status, health.WARN)
        problems.append("not online yet: {0}".format(", ".join(syncing)))
    for address, lag in lags:
        lag_status = limits.grade("replication_lag_seconds", lag)
        if lag_status != health.PASS:
            status = _worse(status, lag_status)
            problems.append("{0} last acknowledged {1} s ago".format(address, lag))
    output = "Master with {0} replica(s) online".format(len(online))
    if lags:
        output += ": " + ", ".join("{0} (lag {1} s)".format(address, lag) for address, lag in lags)
    if problems:
        output += "; " + "; ".join(problems)
    return health.check("redis_replication", status, len(online), {"fail": min_replicas}, output + ".",
                        unit="replicas", role="master", replicas=found, lag_threshold=threshold)


def _check_master_link(info, limits):
    threshold = limits.threshold("replication_lag_seconds")
    master = "{0}:{1}".format(info.get("master_host"), info.get("master_port"))
    link = info.get("master_link_status", "down")
    facts = {"role": "replica", "master": master, "master_link_status": link,
             "master_sync_in_progress": bool(info.get("master_sync_in_progress"))}
    if link != "up":
        down_for = info.get("master_link_down_since_seconds")
        output = "Replica of {0}: the link to the master is down{1}; this replica serves stale data.".format(
            master, " for {0}".format(_duration(down_for)) if isinstance(down_for, int) and down_for >= 0 else "")
        output += " Check that the master runs and that masterauth/masteruser are right (see the replica's log)."
        return health.check("redis_replication", health.FAIL, None, threshold, output, unit="seconds", **facts)
    lag = int(info.get("master_last_io_seconds_ago", 0))
    status = limits.grade("replication_lag_seconds", lag)
    output = "Replica of {0}: link up, last data from the master {1} s ago.".format(master, lag)
    if info.get("master_sync_in_progress"):
        status = _worse(status, health.WARN)
        output += " A full synchronisation is in progress."
    return health.check("redis_replication", status, lag, threshold, output, unit="seconds", **facts)


def check_server(info, where):
    role = "replica" if info.get("role") == "slave" else info.get("role", "master")
    output = "Redis {0} ({1}) at {2}, up {3}.".format(
        info.get("redis_version", "?"), role, where, _duration(int(info.get("uptime_in_seconds", 0))))
    if info.get("loading"):
        return health.check("redis_connection", health.WARN, "loading", "answers", output.rstrip(".")
                            + ", is still loading its dataset and answers no commands yet.")
    return health.check("redis_connection", health.PASS, "answers", "answers", output)


def evaluate(info, config, settings, previous=None, now=None, where="redis"):
    """The health checks of one Redis server, and the state to keep for the next check.

    `info` is parsed INFO, `config` the CONFIG values that could be read
    ({"maxclients": ..., "save": ...}, values None where unavailable),
    `settings` the normalized options, `previous` the last check's state.
    """
    now = time.time() if now is None else now
    limits = settings["thresholds"]
    window = counter_window(info, previous, now)
    maxclients = info.get("maxclients") or config.get("maxclients")
    checks = [
        check_server(info, where),
        check_memory(info, limits),
        check_hit_rate(window, limits, settings["hit_rate_min_lookups"]),
        check_evictions(window, limits, info),
        check_rejected_writes(window, limits),
        check_clients(info, int(maxclients) if maxclients else None, limits),
        check_rejected_connections(window, limits),
        check_blocked_clients(info, limits),
        check_rdb(info, config.get("save")),
        check_last_save(info, config.get("save"), now, limits),
        check_aof(info),
        check_replication(info, limits, settings["min_replicas"]),
    ]
    state = {"run_id": info.get("run_id"), "time": now, "counters": window["totals"]}
    return checks, window, state


def normalize(options):
    settings = dict(DEFAULTS)
    settings.update(dict((k, v) for k, v in options.items() if k in DEFAULTS and v is not None))
    settings["thresholds"] = limits_from(dict((name, options[name]) for name in THRESHOLDS if options.get(name)))
    for name in ("hit_rate_min_lookups", "min_replicas"):
        settings[name] = int(settings[name])
        if settings[name] < 0:
            raise RunbookError("{0} cannot be negative ({1}).".format(name, settings[name]), cause="invalid")
    return settings


def read_state(path):
    """The previous check's state, or (None, a sentence why there is none usable)."""
    if not path or not os.path.exists(path):
        return None, None
    try:
        with open(path) as handle:
            state = json.load(handle)
    except (IOError, OSError, ValueError) as error:
        return None, "Ignored the unreadable state file {0} ({1}); counters cover the whole uptime.".format(
            path, error)
    return (state if isinstance(state, dict) else None), None


def write_state(path, state):
    """Keep `state` for the next check; a sentence when that failed (the checks still stand)."""
    try:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        write_atomic(path, json.dumps(state, sort_keys=True) + "\n", mode=0o600)
    except (IOError, OSError) as error:
        return "Could not save the counters to {0} ({1}); the next check will cover the whole uptime.".format(
            path, error)
    return None


def summarize(checks, where):
    tally = health.counts(checks)
    status = health.worst(checks)
    line = "Redis at {0}: {1} ({2} fail, {3} warn, {4} pass)".format(
        where, status, tally[health.FAIL], tally[health.WARN], tally[health.PASS])
    problems = [item["output"] for item in checks if item["status"] == health.FAIL] + \
        [item["output"] for item in checks if item["status"] == health.WARN]
    return line + (": " + " ".join(problems) if problems else ".")


def run_health(params, check_mode=False, now=None):
    """Connect, read INFO and CONFIG, evaluate, keep the counters. Returns the module's result.

    With fail_on never (the caller only reports), a server that cannot be
    reached is a failed `redis_connection` check instead of an error, so a
    fleet report lists it.
    """
    settings = normalize(params)
    where = redis_lib.endpoint(params)
    warnings = []
    try:
        client = redis_lib.connect(params)
        try:
            info = redis_lib.info(client, params)
            config = {"save": redis_lib.config_value(client, params, "save")}
            if not info.get("maxclients"):
                config["maxclients"] = redis_lib.config_value(client, params, "maxclients")
        finally:
            redis_lib.disconnect(client)
    except RunbookError as error:
        if settings["fail_on"] != "never":
            raise
        checks = [health.check("redis_connection", health.FAIL, error.details.get("cause", "error"), "answers",
                               str(error), component=where, component_type=COMPONENT_TYPE)]
        return {"changed": False, "status": health.FAIL, "counts": health.counts(checks), "checks": checks,
                "msg": summarize(checks, where), "endpoint": where, "server": {}, "window": None,
                "warnings": warnings}
    previous, problem = read_state(settings["state_file"])
    if problem:
        warnings.append(problem)
    checks, window, state = evaluate(info, config, settings, previous, now, where)
    for item in checks:
        item.update(component=where, component_type=COMPONENT_TYPE)
    if settings["state_file"] and not check_mode:
        problem = write_state(settings["state_file"], state)
        if problem:
            warnings.append(problem)
    server = {
        "version": info.get("redis_version"),
        "role": "replica" if info.get("role") == "slave" else info.get("role"),
        "mode": info.get("redis_mode"),
        "uptime_seconds": info.get("uptime_in_seconds"),
        "run_id": info.get("run_id"),
        "maxmemory_policy": info.get("maxmemory_policy"),
        "keyspace": redis_lib.keyspace(info),
    }
    return {"changed": False, "status": health.worst(checks), "counts": health.counts(checks), "checks": checks,
            "msg": summarize(checks, where), "endpoint": where, "server": server,
            "window": {"since": window["since"], "seconds": window["seconds"]}, "warnings": warnings}
