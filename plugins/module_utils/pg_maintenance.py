# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database maintenance: VACUUM (ANALYZE), ANALYZE and REINDEX that never block production.

The runbooks' monthly `VACUUM ANALYZE;` and `REINDEX DATABASE ...;` with the
guards a busy server needs: every statement runs under lock_timeout and
statement_timeout, VACUUM and ANALYZE skip tables another session holds
locked (SKIP_LOCKED) instead of queueing behind it, and REINDEX runs
CONCURRENTLY. Each step reports its duration and the dead tuples it removed
(from the statistics before and after). A slow-query report from
pg_stat_statements comes from the health engine's own function. The
pg_maintenance module, the scheduled job (pg_maintenance_cli.py), the
db_maintenance.yml playbook and the tests run this code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from .common import RunbookError
from .pg_health import slow_statement_report
from .postgres import connect, import_psycopg2, quote_ident, server_info
from .ranges import POSTGRES, Range, check_ranges

OPERATIONS = ["vacuum", "analyze", "reindex"]
DEFAULTS = {
    "databases": [],
    "tables": [],
    "operations": ["vacuum", "analyze"],
    "reindex_concurrently": True,
    "skip_locked": True,
    "lock_timeout": 5,
    "statement_timeout": 3600,
    "slow_query_report": True,
    "slow_statements_top": 10,
    "slow_statements_min_calls": 5,
}
STATS_SETTLE_SECONDS = 2.0
# PostgreSQL keeps both timeouts in milliseconds in an int; a lock_timeout of 0
# would let maintenance queue behind a lock forever, the one thing it must not do.
RANGES = {
    "lock_timeout": Range(1, 2147483, why="seconds; 0 would wait for a lock forever"),
    "statement_timeout": Range(0, 2147483, why="seconds; 0 means no limit"),
    "slow_statements_top": Range(1, 1000),
    "slow_statements_min_calls": Range(0, None),
}
RANGES.update(POSTGRES)


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    opts["databases"] = list(opts.get("databases") or [])
    opts["tables"] = list(opts.get("tables") or [])
    opts["operations"] = list(opts.get("operations") or [])
    if not opts["databases"]:
        raise RunbookError("No database was named for maintenance.", hint="Set databases, e.g. [bmidb].",
                           cause="invalid")
    unknown = sorted(set(opts["operations"]) - set(OPERATIONS))
    if unknown or not opts["operations"]:
        raise RunbookError("Unknown or no maintenance operations: {0}.".format(", ".join(unknown) or "none"),
                           hint="Choose from: {0}.".format(", ".join(OPERATIONS)), cause="invalid")
    check_ranges(opts, RANGES)
    return opts


def qualified(table):
    """`schema.table` or `table` as a quoted SQL name; a bare name resolves through search_path."""
    parts = table.split(".", 1)
    return ".".join(quote_ident(part) for part in parts)


def plan_statements(opts, database, version_num):
    """[(operation, target, SQL)] for one database, in the order they run.

    VACUUM and ANALYZE together are one VACUUM (ANALYZE): one pass over each
    table instead of two.
    """
    targets = [(table, " " + qualified(table)) for table in opts["tables"]] or [(None, "")]
    wanted = set(opts["operations"])
    skip = ", SKIP_LOCKED" if opts["skip_locked"] else ""
    statements = []
    for target, name in targets:
        if "vacuum" in wanted:
            options = "ANALYZE" + skip if "analyze" in wanted else skip.lstrip(", ")
            operation = "vacuum_analyze" if "analyze" in wanted else "vacuum"
            statements.append((operation, target, "VACUUM{0}{1}".format(
                " ({0})".format(options) if options else "", name)))
        elif "analyze" in wanted:
            statements.append(("analyze", target, "ANALYZE{0}{1}".format(
                " (SKIP_LOCKED)" if opts["skip_locked"] else "", name)))
    if "reindex" in wanted:
        # REINDEX CONCURRENTLY arrived in PostgreSQL 12.
        concurrently = " CONCURRENTLY" if opts["reindex_concurrently"] and version_num >= 120000 else ""
        for target, name in targets:
            if target is None:
                statements.append(("reindex", None, "REINDEX DATABASE{0} {1}".format(
                    concurrently, quote_ident(database))))
            else:
                statements.append(("reindex", target, "REINDEX TABLE{0}{1}".format(concurrently, name)))
    return statements


class DatabaseMaintenance(object):
    def __init__(self, opts, database, log):
        self.opts = opts
        self.database = database
        self.log = log
        self.psycopg2 = import_psycopg2()

    def _stats(self, cur, target):
        """{table: (dead tuples, vacuum runs, analyze runs)} of the target table, or of every user table."""
        cur.execute("SELECT pg_stat_clear_snapshot()")
        where = "WHERE relid = to_regclass(%s)" if target else ""
        cur.execute("""
            SELECT schemaname || '.' || relname, n_dead_tup, vacuum_count + autovacuum_count,
                   analyze_count + autoanalyze_count
            FROM pg_stat_user_tables {0}""".format(where), (qualified(target),) if target else None)
        return dict((name, (int(dead), int(vacuums), int(analyzes))) for name, dead, vacuums, analyzes in cur.fetchall())

    @staticmethod
    def _untouched(before, after, operation):
        """Tables whose vacuum (or analyze) count did not move: skipped because they were locked."""
        if operation == "reindex":
            return []
        counter = 2 if operation == "analyze" else 1
        return sorted(name for name, figures in before.items()
                      if name in after and after[name][counter] <= figures[counter])

    def _settled_stats(self, cur, target, operation, before):
        """Statistics after a step; before PostgreSQL 15 they reach the views a moment later."""
        deadline = time.monotonic() + STATS_SETTLE_SECONDS
        while True:
            after = self._stats(cur, target)
            if not self._untouched(before, after, operation) or time.monotonic() >= deadline:
                return after
            time.sleep(0.1)

    def run(self, conn, statements, check_mode):
        steps = []
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = %s", ("{0}s".format(int(self.opts["lock_timeout"])),))
            cur.execute("SET statement_timeout = %s", ("{0}s".format(int(self.opts["statement_timeout"])),))
            for operation, target, sql in statements:
                step = {"database": self.database, "operation": operation, "table": target, "statement": sql}
                steps.append(step)
                if target is not None:
                    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified(target),))
                    if not cur.fetchone()[0]:
                        step.update(status="failed", error="Table {0} does not exist in database {1}.".format(
                            target, self.database))
                        self.log("{0}: {1}".format(self.database, step["error"]))
                        continue
                before = self._stats(cur, target)
                step["dead_tuples_before"] = sum(figures[0] for figures in before.values())
                if check_mode:
                    step["status"] = "planned"
                    self.log("{0}: would run {1}".format(self.database, sql))
                    continue
                del conn.notices[:]
                started = time.monotonic()
                try:
                    cur.execute(sql)
                except self.psycopg2.Error as error:
                    step.update(status="failed", duration_seconds=round(time.monotonic() - started, 3),
                                error=self._explain(error, sql))
                    self.log("{0}: {1} failed: {2}".format(self.database, sql, step["error"]))
                    continue
                step["duration_seconds"] = round(time.monotonic() - started, 3)
                after = self._settled_stats(cur, target, operation, before)
                dead_after = sum(figures[0] for figures in after.values())
                skipped = self._untouched(before, after, operation)
                step.update(status="ok", dead_tuples_after=dead_after,
                            dead_tuples_removed=max(step["dead_tuples_before"] - dead_after, 0),
                            notices=[" ".join(n.split()) for n in conn.notices], skipped_locked=skipped)
                self.log("{0}: {1} took {2} s, removed {3} dead tuples{4}".format(
                    self.database, sql, step["duration_seconds"], step["dead_tuples_removed"],
                    "; skipped (locked): {0}".format(", ".join(skipped)) if skipped else ""))
        return steps

    def _explain(self, error, sql):
        text = " ".join(str(error).split())
        code = getattr(error, "pgcode", None)
        if code == "55P03":
            return ("{0} could not take its lock within lock_timeout ({1} s): another session holds the table. "
                    "Nothing waited behind it; run again later.".format(sql, self.opts["lock_timeout"]))
        if code == "57014":
            hint = " REINDEX CONCURRENTLY may have left invalid indexes named *_ccnew: drop them." \
                if "CONCURRENTLY" in sql else ""
            return "{0} ran past statement_timeout ({1} s) and was cancelled.{2}".format(
                sql, self.opts["statement_timeout"], hint)
        return "{0} failed: {1}".format(sql, text)


def run_maintenance(options, check_mode=False, log=None):
    """Run (or in check mode, list) the maintenance statements on each database."""
    log = log or (lambda message: None)
    opts = normalize(options)
    steps = []
    slow = None
    for database in opts["databases"]:
        conn = connect(opts, database)
        try:
            server = server_info(conn)
            if server["in_recovery"]:
                raise RunbookError("{0} is a standby in recovery; maintenance runs on the primary.".format(
                    database), hint="Point login_host at the primary.", cause="standby")
            statements = plan_statements(opts, database, server["version_num"])
            steps.extend(DatabaseMaintenance(opts, database, log).run(conn, statements, check_mode))
            if opts["slow_query_report"] and (slow is None or not slow["available"]):
                slow = slow_statement_report(conn, opts["slow_statements_top"], opts["slow_statements_min_calls"])
                slow["database"] = database
        finally:
            conn.close()
    failed = [s for s in steps if s["status"] == "failed"]
    removed = sum(s.get("dead_tuples_removed", 0) for s in steps)
    duration = round(sum(s.get("duration_seconds", 0.0) for s in steps), 3)
    if check_mode:
        msg = "Would run {0} statement(s) on {1}.".format(len(steps), ", ".join(opts["databases"]))
    else:
        msg = "Ran {0} of {1} maintenance statement(s) on {2} in {3} s, removing {4} dead tuples.".format(
            len(steps) - len(failed), len(steps), ", ".join(opts["databases"]), duration, removed)
    if failed:
        msg += " Failed: " + " ".join(s["error"] for s in failed)
    return {
        "changed": not check_mode and len(failed) < len(steps),
        "steps": steps,
        "statements": [s["statement"] for s in steps],
        "failed_steps": len(failed),
        "dead_tuples_removed": removed,
        "duration_seconds": duration,
        "slow_statements": slow,
        "msg": msg,
    }
