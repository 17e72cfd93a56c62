# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL health: the runbooks' manual psql checks as pass / warn / fail.

One read-only connection runs the selected probes. Each probe turns what the
server reports into health.py checks with the observed value, the threshold it
was held against and a sentence. Column and function names that differ between
PostgreSQL 12 and 17 are chosen from server_version_num or read from the
catalog, never guessed. The pg_health module, the host-side command
(pg_health_cli.py), the maintenance engine's slow-query report, the tests and
the benchmark all run this code.

A check that cannot be made is never a pass: a missing privilege (a role
without pg_read_all_stats sees other sessions' state, queries and the
standbys' positions as NULL), an extension that is not installed, a query that
fails: each is a `fail` marked `unchecked` (health.unchecked) saying what
could not be checked, why and what to do. `slow_statements` needs
pg_stat_statements, so it runs only when asked for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from . import health, health_report as report
from .common import RunbookError, human_size
from .postgres import connect, endpoint, import_psycopg2, quote_ident, server_info

# The runbooks' limits (health.Limits: a value strictly beyond a limit breaches it). The names of the
# runbooks' thresholds (inventories/example/group_vars/all.yml, runbook_thresholds) are kept.
THRESHOLDS = {
    "db_connections_percent": health.Limit(warn=80, fail=90),
    "long_query_minutes": health.Limit(warn=5, fail=30),
    "idle_in_transaction_minutes": health.Limit(warn=5, fail=10),
    "lock_wait_seconds": health.Limit(warn=30, fail=300),
    "cache_hit_percent": health.Limit(warn=90, fail=80, worse=health.LOWER),
    "dead_tuple_percent": health.Limit(warn=20, fail=50),
    "vacuum_age_days": health.Limit(warn=35, fail=70),
    "analyze_age_days": health.Limit(warn=35, fail=70),
    "xid_age": health.Limit(warn=1000000000, fail=1500000000),
    "replication_lag_seconds": health.Limit(warn=10, fail=60),
    "replication_lag_bytes": health.Limit(warn=64 * 1024 ** 2, fail=1024 ** 3),
    "slot_retained_bytes": health.Limit(warn=1024 ** 3, fail=10 * 1024 ** 3),
    "archive_ready_files": health.Limit(warn=10, fail=100),
    "slow_statement_ms": health.Limit(warn=100, fail=1000),
    "database_size_bytes": health.Limit(),
}

CHECKS = [
    "reachable", "connections", "database_size", "long_queries", "idle_in_transaction", "blocked_queries",
    "cache_hit_ratio", "dead_tuples", "last_vacuum", "last_analyze", "wraparound", "replication",
    "replication_slots", "archiver", "slow_statements",
]
# Checks that need something a server may well not have (the pg_stat_statements extension) run only when
# asked for; asked for and not possible, they fail as unchecked.
OPTIONAL_CHECKS = ("slow_statements",)
DEFAULT_CHECKS = [name for name in CHECKS if name not in OPTIONAL_CHECKS]
PRIVILEGE_HINT = "Grant it pg_monitor (or pg_read_all_stats), or connect as a superuser."

DEFAULTS = {
    "database": "postgres",
    "checks": list(DEFAULT_CHECKS),
    "thresholds": {},
    "idle_session_minutes": 10,
    "min_table_size_mb": 10.0,
    "expected_standbys": 0,
    "slow_statements_top": 10,
    "slow_statements_min_calls": 5,
    "cache_hit_min_blocks": 1000,
    "query_timeout": 30,
    "prometheus_file": None,
    "prometheus_prefix": "ops_runbook_pg",
}
QUERY_HEAD = 120
LISTED = 10


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    unknown = sorted(set(opts["checks"]) - set(CHECKS))
    if unknown:
        raise RunbookError("Unknown health checks: {0}.".format(", ".join(unknown)),
                           hint="Choose from: {0}.".format(", ".join(CHECKS)), cause="invalid")
    opts["limits"] = limits_from(opts.get("thresholds"))
    return opts


def limits_from(overrides=None):
    """The PostgreSQL thresholds with the caller's {name: {warn, fail}} laid over them (health.Limits)."""
    return health.Limits(THRESHOLDS, overrides)


def _minutes(seconds):
    return round(seconds / 60.0, 2)


def _head(query):
    text = " ".join((query or "").split())
    return text if len(text) <= QUERY_HEAD else text[:QUERY_HEAD - 3] + "..."


def _plural(count, word):
    return "{0} {1}{2}".format(count, word, "" if count == 1 else "s")


class Probe(object):
    """The probes of one health run over one connection."""

    def __init__(self, conn, opts, server):
        self.conn = conn
        self.opts = opts
        self.limits = opts["limits"]
        self.server = server
        self.version_num = server["version_num"]
        self.standby = server["in_recovery"]
        self.database = opts["database"]
        self._sees_all = None
        self.user = None

    @property
    def sees_all(self):
        """True when this role sees every session's and WAL sender's details (superuser or pg_read_all_stats)."""
        if self._sees_all is None:
            self.user, sees = self.one(
                "SELECT current_user, rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') "
                "FROM pg_roles WHERE rolname = current_user")
            self._sees_all = bool(sees)
        return self._sees_all

    def _hidden_sessions(self):
        """Sessions whose details this role may not see (NULL backend_type, state and query start)."""
        return int(self.one("SELECT count(*) FROM pg_stat_activity WHERE backend_type IS NULL")[0])

    def _unseen(self, name, what, found, unit=None, **facts):
        """`found` (the check of what this role could see) as a fail marked unchecked: part of it was hidden."""
        return health.unchecked(name, "Could not check {0}: role {1} may not see other roles' sessions ({2} hidden "
                                "from it). {3} Of what it can see: {4}".format(
                                    what, self.user, self._hidden_sessions(), PRIVILEGE_HINT, found["output"]),
                                observed=found["observed_value"], threshold=found["threshold"], unit=unit,
                                **dict((k, v) for k, v in found.items() if k not in health_fields()), **facts)

    def rows(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def one(self, sql, params=None):
        found = self.rows(sql, params)
        return found[0] if found else None

    def graded(self, name, key, observed, output, unit=None, **facts):
        return health.check(name, self.limits.grade(key, observed), observed, self.limits.threshold(key), output,
                            unit=unit, **facts)

    # -- availability ------------------------------------------------------
    def reachable(self):
        uptime = float(self.one("SELECT extract(epoch FROM now() - pg_postmaster_start_time())::float8")[0])
        role = "standby" if self.standby else "primary"
        return [health.check(
            "reachable", health.PASS, self.server["version"], None,
            "PostgreSQL {0} answers at {1} as a {2}, up {3:.1f} h.".format(
                self.server["version"], endpoint(self.opts), role, uptime / 3600.0),
            version_num=self.version_num, role=role, uptime_seconds=round(uptime, 1))]

    def connections(self):
        idle_minutes = self.opts["idle_session_minutes"]
        used, idle_long, max_connections, reserved = self.one("""
            SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
                   count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'idle'
                                    AND state_change < now() - %s * interval '1 minute'),
                   current_setting('max_connections')::int,
                   current_setting('superuser_reserved_connections')::int
            FROM pg_stat_activity""", (idle_minutes,))
        states = dict(self.rows("""
            SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
            WHERE backend_type = 'client backend' GROUP BY 1"""))
        counted = "pg_stat_activity"
        if not self.sees_all:
            # Other roles' sessions have no backend_type for this role: count every backend connected to a database.
            used = int(self.one("SELECT coalesce(sum(numbackends), 0) FROM pg_stat_database WHERE datid <> 0")[0])
            counted = "pg_stat_database"
        percent = round(100.0 * used / max_connections, 1)
        sentence = "{0} of max_connections {1} in use ({2}%).".format(used, max_connections, percent)
        if counted == "pg_stat_database":
            sentence += (" Counted from pg_stat_database.numbackends: this role may not see other roles' sessions "
                         "(idle ones of other roles are not counted).")
        if idle_long:
            sentence += " {0} idle for more than {1} min (ops.runbook.pg_terminate can end them).".format(
                _plural(idle_long, "session"), idle_minutes)
        return [self.graded("connections", "db_connections_percent", percent, sentence, unit="percent",
                            connections=used, max_connections=max_connections,
                            superuser_reserved_connections=reserved, by_state=states,
                            idle_over_limit=idle_long, counted_from=counted)]

    def database_size(self):
        sizes = [(name, int(size)) for name, size in self.rows("""
            SELECT datname, pg_database_size(oid) FROM pg_database
            WHERE datallowconn AND has_database_privilege(oid, 'CONNECT')
            ORDER BY 2 DESC, 1""")]
        largest_name, largest = sizes[0] if sizes else ("", 0)
        check = self.graded(
            "database_size", "database_size_bytes", largest,
            "Largest database {0} is {1}; {2}, {3} in all.".format(
                largest_name, human_size(largest), _plural(len(sizes), "database"),
                human_size(sum(size for name, size in sizes))),
            unit="bytes", databases=[{"name": name, "size_bytes": size} for name, size in sizes])
        unmeasured = [row[0] for row in self.rows("""
            SELECT datname FROM pg_database
            WHERE datallowconn AND NOT has_database_privilege(oid, 'CONNECT') ORDER BY 1""")]
        if unmeasured:
            check["unmeasured"] = unmeasured
            check["output"] += " Not measured (no CONNECT privilege): {0}.".format(", ".join(unmeasured[:LISTED]))
            limits = self.limits.threshold("database_size_bytes")
            if limits:
                check = health.unchecked(
                    "database_size", "Could not check the size of {0} against the limits: this role may not "
                    "connect to {1}. Grant it CONNECT there, or connect as a superuser. {2}".format(
                        _plural(len(unmeasured), "database"), ", ".join(unmeasured[:LISTED]), check["output"]),
                    observed=largest, threshold=limits, unit="bytes", databases=check["databases"],
                    unmeasured=unmeasured)
        return [check]

    # -- sessions -----------------------------------------------------------
    def _sessions(self, where, since):
        found = self.rows("""
            SELECT pid, usename, datname, application_name, state,
                   extract(epoch FROM now() - {0})::float8 AS seconds, query
            FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND {1}
            ORDER BY seconds DESC NULLS LAST""".format(since, where))
        return [{"pid": pid, "user": user, "database": database, "application_name": application, "state": state,
                 "age_seconds": round(seconds or 0.0, 1), "query": _head(query)}
                for pid, user, database, application, state, seconds, query in found]

    def _session_check(self, name, key, sessions, what, whats):
        oldest = _minutes(sessions[0]["age_seconds"]) if sessions else 0.0
        limits = self.limits[key]
        floor = min(limit for limit in (limits["warn"], limits["fail"], float("inf")) if limit is not None)
        over = [s for s in sessions if s["age_seconds"] / 60.0 > floor]
        if sessions:
            first = sessions[0]
            sentence = "{0} {1}; the oldest, pid {2} of {3} on {4}, for {5} min: {6}".format(
                len(sessions), what if len(sessions) == 1 else whats, first["pid"], first["user"],
                first["database"], oldest, first["query"] or "(no query)")
        else:
            sentence = "No {0}.".format(whats)
        return [self.graded(name, key, oldest, sentence, unit="minutes", count=len(sessions),
                            sessions=over[:LISTED])]

    def _all_seen(self, checks, what):
        if self.sees_all:
            return checks
        return [self._unseen(check["name"], what, check, unit=check.get("observed_unit")) for check in checks]

    def long_queries(self):
        sessions = self._sessions("state = 'active'", "query_start")
        return self._all_seen(self._session_check("long_queries", "long_query_minutes", sessions, "active query",
                                                  "active queries"), "long-running queries")

    def idle_in_transaction(self):
        sessions = self._sessions("state IN ('idle in transaction', 'idle in transaction (aborted)')",
                                  "state_change")
        return self._all_seen(self._session_check("idle_in_transaction", "idle_in_transaction_minutes", sessions,
                                                  "session idle in a transaction", "sessions idle in a transaction"),
                              "sessions idle in a transaction")

    def blocked_queries(self):
        found = self.rows("""
            SELECT pid, usename, datname, pg_blocking_pids(pid),
                   extract(epoch FROM now() - query_start)::float8 AS seconds, wait_event, query
            FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()
            ORDER BY seconds DESC NULLS LAST""")
        blocked = [{"pid": pid, "user": user, "database": database, "blocked_by": list(blockers),
                    "wait_seconds": round(seconds or 0.0, 1), "lock": wait_event, "query": _head(query)}
                   for pid, user, database, blockers, seconds, wait_event, query in found if blockers]
        longest = blocked[0]["wait_seconds"] if blocked else 0.0
        if blocked:
            first = blocked[0]
            sentence = "{0} waiting for a lock; pid {1} has waited {2} s for pid {3}: {4}".format(
                _plural(len(blocked), "session"), first["pid"], longest,
                ", ".join(str(p) for p in first["blocked_by"]), first["query"])
        else:
            sentence = "No session waits for a lock."
        return self._all_seen([self.graded("blocked_queries", "lock_wait_seconds", longest, sentence, unit="seconds",
                                           count=len(blocked), sessions=blocked[:LISTED])], "lock waits")

    # -- storage and statistics ------------------------------------------------
    def cache_hit_ratio(self):
        hits, reads = self.one("SELECT coalesce(sum(blks_hit), 0)::float8, coalesce(sum(blks_read), 0)::float8 "
                               "FROM pg_stat_database")
        total = hits + reads
        if total < self.opts["cache_hit_min_blocks"]:
            return [health.check(
                "cache_hit_ratio", health.PASS, None, self.limits.threshold("cache_hit_percent"),
                "Only {0:.0f} blocks read since the statistics were reset; too few to judge the cache.".format(
                    total), unit="percent", blocks_hit=int(hits), blocks_read=int(reads))]
        ratio = round(100.0 * hits / total, 2)
        return [self.graded("cache_hit_ratio", "cache_hit_percent", ratio,
                            "{0}% of block reads were served from shared buffers ({1:.0f} of {2:.0f}).".format(
                                ratio, hits, total),
                            unit="percent", blocks_hit=int(hits), blocks_read=int(reads))]

    def _tables(self):
        floor = int(float(self.opts["min_table_size_mb"]) * 1024 * 1024)
        found = self.rows("""
            SELECT schemaname || '.' || relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid),
                   extract(epoch FROM now() - greatest(last_vacuum, last_autovacuum))::float8,
                   extract(epoch FROM now() - greatest(last_analyze, last_autoanalyze))::float8
            FROM pg_stat_user_tables WHERE pg_total_relation_size(relid) >= %s
            ORDER BY 1""", (floor,))
        return floor, [{"table": name, "live_tuples": int(live), "dead_tuples": int(dead), "size_bytes": int(size),
                        "vacuum_age_days": None if vacuumed is None else round(vacuumed / 86400.0, 6),
                        "analyze_age_days": None if analyzed is None else round(analyzed / 86400.0, 6)}
                       for name, live, dead, size, vacuumed, analyzed in found]

    def dead_tuples(self):
        floor, tables = self._tables()
        for table in tables:
            total = table["live_tuples"] + table["dead_tuples"]
            table["dead_percent"] = round(100.0 * table["dead_tuples"] / total, 2) if total else 0.0
        tables.sort(key=lambda t: -t["dead_percent"])
        where = "in database {0} ({1} of at least {2})".format(
            self.database, _plural(len(tables), "table"), human_size(floor))
        if not tables or not tables[0]["dead_tuples"]:
            return [self.graded("dead_tuples", "dead_tuple_percent", 0.0, "No dead tuples {0}.".format(where),
                                unit="percent", tables=[])]
        worst = tables[0]
        sentence = "{0} is {1}% dead tuples ({2} dead, {3} live), the most {4}.".format(
            worst["table"], worst["dead_percent"], worst["dead_tuples"], worst["live_tuples"], where)
        listed = [t for t in tables if t["dead_tuples"]][:LISTED]
        return [self.graded("dead_tuples", "dead_tuple_percent", worst["dead_percent"], sentence, unit="percent",
                            tables=[dict((k, t[k]) for k in ("table", "dead_percent", "dead_tuples", "live_tuples",
                                                             "size_bytes")) for t in listed])]

    def _age_check(self, name, key, what):
        floor, tables = self._tables()
        where = "in database {0} ({1} of at least {2})".format(
            self.database, _plural(len(tables), "table"), human_size(floor))
        never = sorted(t["table"] for t in tables if t[key] is None)
        aged = sorted((t for t in tables if t[key] is not None), key=lambda t: -t[key])
        oldest = aged[0][key] if aged else 0.0
        check = self.graded(name, key, oldest, "", unit="days",
                            never=never[:LISTED], tables=[{"table": t["table"], key: t[key]} for t in aged[:LISTED]])
        if aged:
            check["output"] = "{0} was last {1} {2} days ago, the longest {3}.".format(
                aged[0]["table"], what, oldest, where)
        else:
            check["output"] = "No table {0} needs checking.".format(where) if not never else ""
        if never:
            check["output"] = ("{0} never {1}: {2}. ".format(_plural(len(never), "table"), what, ", ".join(
                never[:LISTED])) + check["output"]).strip()
            if check["status"] == health.PASS:
                check["status"] = health.WARN
        return [check]

    def last_vacuum(self):
        return self._age_check("last_vacuum", "vacuum_age_days", "vacuumed")

    def last_analyze(self):
        return self._age_check("last_analyze", "analyze_age_days", "analyzed")

    def wraparound(self):
        found = self.rows("SELECT datname, age(datfrozenxid)::bigint FROM pg_database ORDER BY 2 DESC, 1")
        name, age = found[0]
        percent = round(100.0 * age / 2 ** 31, 4)
        return [self.graded(
            "wraparound", "xid_age", int(age),
            "Database {0} has the oldest unfrozen transaction ID, {1} transactions old ({2}% of the way to "
            "wraparound).".format(name, age, percent), unit="transactions", database=name,
            percent_to_wraparound=percent)]

    # -- replication and WAL ------------------------------------------------------
    def replication(self):
        return self._replication_standby() if self.standby else self._replication_primary()

    def _replication_primary(self):
        found = self.rows("""
            SELECT application_name, host(client_addr), state, sync_state,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8,
                   extract(epoch FROM replay_lag)::float8
            FROM pg_stat_replication ORDER BY 1""")
        standbys = [{"name": name, "client_addr": addr, "state": state, "sync_state": sync,
                     "lag_bytes": int(lag_bytes or 0),
                     "lag_seconds": round(lag_seconds, 3) if lag_seconds is not None else 0.0}
                    for name, addr, state, sync, lag_bytes, lag_seconds in found]
        expected = int(self.opts["expected_standbys"] or 0)
        if standbys and not self.sees_all:
            # For a role without pg_read_all_stats every column but the pid is NULL: no state, no positions.
            return [health.unchecked(
                "standbys", "Could not check replication: {0} connected to this primary, but role {1} may "
                "not read their state and positions in pg_stat_replication. {2}".format(
                    _plural(len(standbys), "WAL sender"), self.user, PRIVILEGE_HINT),
                unit="standbys", expected=expected, connected=len(standbys))]
        streaming = [s for s in standbys if s["state"] == "streaming"]
        count_status = health.FAIL if len(streaming) < expected else health.PASS
        # No threshold: "at least N" has no place in the warn/fail-above vocabulary the renderings read.
        checks = [health.check(
            "standbys", count_status, len(streaming), None,
            "{0} streaming from this primary{1}.".format(
                _plural(len(streaming), "standby"),
                "; {0} expected".format(expected) if expected else ""),
            unit="standbys", expected=expected, standbys=standbys)]
        if not standbys:
            return checks
        by_time = max(standbys, key=lambda s: s["lag_seconds"])
        by_bytes = max(standbys, key=lambda s: s["lag_bytes"])
        checks.append(self.graded("replication_lag", "replication_lag_seconds", by_time["lag_seconds"],
                                  "Standby {0} replays {1} s behind this primary.".format(
                                      by_time["name"] or by_time["client_addr"], by_time["lag_seconds"]),
                                  unit="seconds", side="primary"))
        checks.append(self.graded("replication_lag_bytes", "replication_lag_bytes", by_bytes["lag_bytes"],
                                  "Standby {0} has {1} of WAL still to replay.".format(
                                      by_bytes["name"] or by_bytes["client_addr"], human_size(by_bytes["lag_bytes"])),
                                  unit="bytes", side="primary"))
        return checks

    def _replication_standby(self):
        receiver = self.one("SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver")
        lag_bytes, lag_seconds, paused = self.one("""
            SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8,
                   CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                        THEN 0 ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8,
                   pg_is_wal_replay_paused()""")
        # NULL: nothing was replayed since this standby started, so its lag in time is unknown.
        lag_seconds = None if lag_seconds is None else round(max(lag_seconds, 0.0), 3)
        if receiver and receiver[0] is None and not self.sees_all:
            receiving = health.unchecked(
                "wal_receiver", "Could not check this standby's WAL receiver: this role may not read its status in "
                "pg_stat_wal_receiver. {0}".format(PRIVILEGE_HINT), threshold="streaming")
        elif receiver and receiver[0] == "streaming":
            receiving = health.check("wal_receiver", health.PASS, receiver[0], "streaming",
                                     "This standby streams WAL from {0}:{1}.".format(receiver[1], receiver[2]))
        else:
            receiving = health.check(
                "wal_receiver", health.FAIL, receiver[0] if receiver else "stopped", "streaming",
                "This standby is not streaming WAL from its primary ({0}); it falls further behind.".format(
                    receiver[0] if receiver else "no WAL receiver runs"))
        paused_note = " Replay is paused (pg_wal_replay_resume() resumes it)." if paused else ""
        return [
            receiving,
            self.graded("replication_lag", "replication_lag_seconds", lag_seconds,
                        ("This standby replays {0} s behind the WAL it received.{1}".format(lag_seconds, paused_note)
                         if lag_seconds is not None else
                         "No transaction was replayed since this standby started, so its lag in seconds is "
                         "unknown; see replication_lag_bytes.{0}".format(paused_note)),
                        unit="seconds", side="standby", replay_paused=paused),
            self.graded("replication_lag_bytes", "replication_lag_bytes", int(lag_bytes),
                        "This standby has {0} of received WAL still to replay.{1}".format(
                            human_size(lag_bytes), paused_note),
                        unit="bytes", side="standby", replay_paused=paused),
        ]

    def replication_slots(self):
        position = "pg_last_wal_receive_lsn()" if self.standby else "pg_current_wal_lsn()"
        # wal_status tells a slot that lost its WAL (max_slot_wal_keep_size); PostgreSQL 13 added it.
        wal_status = "wal_status" if self.version_num >= 130000 else "NULL::text"
        found = self.rows("""
            SELECT slot_name, slot_type, active, coalesce(pg_wal_lsn_diff({0}, restart_lsn), 0)::float8, {1}
            FROM pg_replication_slots ORDER BY 1""".format(position, wal_status))
        slots = [{"name": name, "type": kind, "active": active, "retained_bytes": int(retained), "wal_status": status}
                 for name, kind, active, retained, status in found]
        if not slots:
            return [self.graded("replication_slots", "slot_retained_bytes", 0, "No replication slots.",
                                unit="bytes", slots=[])]
        worst = max(slots, key=lambda s: s["retained_bytes"])
        check = self.graded(
            "replication_slots", "slot_retained_bytes", worst["retained_bytes"],
            "Slot {0} retains {1} of WAL{2}.".format(
                worst["name"], human_size(worst["retained_bytes"]), "" if worst["active"] else " and is inactive"),
            unit="bytes", slots=slots)
        inactive = [s["name"] for s in slots if not s["active"]]
        lost = [s["name"] for s in slots if s["wal_status"] == "lost"]
        if lost:
            check["status"] = health.FAIL
            check["output"] += " Slot {0} lost WAL its consumer needs: rebuild that standby.".format(", ".join(lost))
        elif inactive:
            if check["status"] == health.PASS:
                check["status"] = health.WARN
            check["output"] += (" Inactive: {0}; an inactive slot keeps WAL until its consumer returns or it is "
                                "dropped (pg_drop_replication_slot).".format(", ".join(inactive)))
        return [check]

    def archiver(self):
        mode = self.one("SELECT current_setting('archive_mode')")[0]
        if mode == "off":
            return [health.check("archiver", health.PASS, 0, self.limits.threshold("archive_ready_files"),
                                 "WAL archiving is off (archive_mode = off).", unit="files", archive_mode=mode)]
        archived, failed, last_failed_wal, failing, failed_ago = self.one("""
            SELECT archived_count, failed_count, last_failed_wal,
                   coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false),
                   extract(epoch FROM now() - last_failed_time)::float8
            FROM pg_stat_archiver""")
        ready = int(self.one("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%%.ready'")[0])
        check = self.graded("archiver", "archive_ready_files", ready,
                            "{0} waiting to be archived; {1} archived, {2} failed attempts.".format(
                                _plural(ready, "WAL file"), archived, failed),
                            unit="files", archive_mode=mode, archived_count=int(archived), failed_count=int(failed),
                            failing=bool(failing), last_failed_wal=last_failed_wal)
        if failing:
            check["status"] = health.FAIL
            check["output"] = ("archive_command is failing: the last attempt, {0:.0f} s ago for {1}, failed and "
                               "nothing was archived since. ".format(failed_ago or 0.0, last_failed_wal)
                               + check["output"] + " Check the server log and archive_command.")
        return [check]

    # -- statements ---------------------------------------------------------------
    def slow_statements(self):
        report_ = slow_statement_report(self.conn, self.opts["slow_statements_top"],
                                        self.opts["slow_statements_min_calls"])
        if not report_["available"]:
            return [health.unchecked("slow_statements", "Could not check slow statements: {0} Or leave "
                                     "slow_statements out of checks.".format(report_["message"]),
                                     threshold=self.limits.threshold("slow_statement_ms"), unit="ms", available=False,
                                     reason=report_["reason"], statements=[])]
        statements = report_["statements"]
        slowest = statements[0]["mean_ms"] if statements else 0.0
        if statements:
            sentence = "The slowest statement ({0} calls) takes {1} ms on average: {2}".format(
                statements[0]["calls"], slowest, statements[0]["query"])
        else:
            sentence = "No statement was called {0} times or more since the statistics were reset.".format(
                self.opts["slow_statements_min_calls"])
        if any(statement["query"] == "<insufficient privilege>" for statement in statements):
            sentence += (" The texts of other roles' statements are hidden from this role: grant it "
                         "pg_read_all_stats to see them.")
        return [self.graded("slow_statements", "slow_statement_ms", slowest, sentence, unit="ms", available=True,
                            mean_column=report_["mean_column"], statements=statements)]


def statement_columns(conn):
    """(schema, mean column, total column) of pg_stat_statements in this database, or None.

    The extension's version, not the server's, decides the names: 1.8
    (PostgreSQL 13) renamed mean_time and total_time to mean_exec_time and
    total_exec_time, so they are read from the catalog.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                    "WHERE e.extname = 'pg_stat_statements'")
        found = cur.fetchone()
        if not found:
            return None
        schema = found[0]
        cur.execute("""
            SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = to_regclass(quote_ident(%s) || '.pg_stat_statements')
              AND a.attnum > 0 AND NOT a.attisdropped""", (schema,))
        columns = set(row[0] for row in cur.fetchall())
    mean = "mean_exec_time" if "mean_exec_time" in columns else "mean_time"
    total = "total_exec_time" if "total_exec_time" in columns else "total_time"
    if mean not in columns or total not in columns:
        return None
    return schema, mean, total


def slow_statement_report(conn, top=10, min_calls=5):
    """The `top` statements by mean execution time from pg_stat_statements, or why there are none."""
    psycopg2 = import_psycopg2()
    database = conn.get_dsn_parameters().get("dbname")
    columns = statement_columns(conn)
    if columns is None:
        return {"available": False, "reason": "not_installed", "statements": [],
                "message": "pg_stat_statements is not installed in database {0}, so slow statements were not "
                           "checked. Add it to shared_preload_libraries, restart, and run CREATE EXTENSION "
                           "pg_stat_statements there.".format(database)}
    schema, mean, total = columns
    sql = """
        SELECT s.query, s.calls, s.{1}, s.{0}, s.rows, d.datname, r.rolname
        FROM {2}.pg_stat_statements s
        LEFT JOIN pg_database d ON d.oid = s.dbid LEFT JOIN pg_roles r ON r.oid = s.userid
        WHERE s.calls >= %s ORDER BY s.{0} DESC LIMIT %s""".format(mean, total, quote_ident(schema))
    try:
        with conn.cursor() as cur:
            cur.execute(sql, (min_calls, top))
            found = cur.fetchall()
    except psycopg2.Error as error:
        if "shared_preload_libraries" not in str(error):
            raise
        return {"available": False, "reason": "not_loaded", "statements": [],
                "message": "pg_stat_statements is installed in database {0} but the server did not load it: add "
                           "it to shared_preload_libraries and restart PostgreSQL.".format(database)}
    statements = [{"query": _head(query), "calls": int(calls), "total_ms": round(total_ms, 2),
                   "mean_ms": round(mean_ms, 2), "rows": int(rows), "database": datname, "user": user}
                  for query, calls, total_ms, mean_ms, rows, datname, user in found]
    return {"available": True, "reason": None, "statements": statements, "mean_column": mean,
            "message": "{0} from pg_stat_statements.{1}.".format(_plural(len(statements), "statement"), mean)}


def health_fields():
    return ("name", "status", "observed_value", "threshold", "output", "observed_unit", "unchecked")


def could_not_run(name, failure, opts):
    """The failed, unchecked check of a probe whose query the server refused or cancelled."""
    said = " ".join(str(failure).split()).rstrip(".")
    code = getattr(failure, "pgcode", None)
    if code == "42501":  # insufficient_privilege
        todo = PRIVILEGE_HINT.replace("Grant it", "Grant the login role")
    elif code == "57014":  # query_canceled: statement_timeout
        todo = "The query ran past query_timeout ({0} s); raise it if the server is just busy.".format(
            opts["query_timeout"])
    else:
        todo = "Leave {0} out of checks if this server cannot answer it.".format(name)
    return health.unchecked(name, "Could not check {0}: {1}. {2}".format(name, said, todo), cause=code)


def _summary(checks, error=None):
    if error is not None:
        return str(error)
    tally = health.counts(checks)
    problems = [c for c in report.worst_first(checks) if c["status"] != health.PASS]
    head = "PostgreSQL health {0}: {1} fail, {2} warn, {3} pass.".format(
        health.worst(checks).upper(), tally[health.FAIL], tally[health.WARN], tally[health.PASS])
    if problems:
        head += " " + " ".join("{0}: {1}".format(c["name"], c["output"]) for c in problems)
    return head


def run_health(options, check_mode=False, log=None):
    """Run the selected checks over one read-only connection; render and return them.

    A connection that cannot be made is itself the `reachable` check, failed,
    so the Nagios line and the Prometheus file say so too; its RunbookError is
    returned as `error` for the caller to raise or report.
    """
    log = log or (lambda message: None)
    opts = normalize(options)
    checks = []
    error = None
    server = None
    psycopg2 = import_psycopg2()
    try:
        conn = connect(opts, opts["database"])
    except RunbookError as failure:
        error = failure
        checks.append(health.check("reachable", health.FAIL, None, None, str(failure),
                                   cause=failure.details.get("cause")))
        conn = None
    if conn is not None:
        try:
            conn.set_session(readonly=True, autocommit=True)
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = %s", ("{0}s".format(int(opts["query_timeout"])),))
                cur.execute("SET lock_timeout = %s", ("{0}s".format(int(opts["query_timeout"])),))
            server = server_info(conn)
            probe = Probe(conn, opts, server)
            for name in CHECKS:
                if name not in opts["checks"] and name != "reachable":
                    continue
                try:
                    found = getattr(probe, name)()
                except psycopg2.Error as failure:
                    found = [could_not_run(name, failure, opts)]
                for item in found:
                    log("{0}: {1} - {2}".format(item["name"], item["status"], item["output"]))
                checks.extend(found)
        finally:
            conn.close()
    status = health.worst(checks)
    line, code = report.render_nagios(checks, service="POSTGRES")
    result = {
        "changed": False,
        "status": status,
        "counts": health.counts(checks),
        "checks": checks,
        "failed_checks": [c["name"] for c in checks if c["status"] == health.FAIL],
        "nagios": {"line": line, "exit_code": code},
        "msg": _summary(checks, error),
    }
    if server is not None:
        result["server"] = {"version": server["version"], "version_num": server["version_num"],
                            "role": "standby" if server["in_recovery"] else "primary"}
    if error is not None:
        result["error"] = error
    if opts.get("prometheus_file"):
        text = report.render_prometheus(checks, prefix=opts["prometheus_prefix"])
        result["prometheus_file"] = opts["prometheus_file"]
        result["changed"] = True if check_mode else report.write_atomic(opts["prometheus_file"], text)
    return result
