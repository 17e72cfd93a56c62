#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_health
short_description: Check a PostgreSQL server's health as pass, warn or fail
version_added: 0.1.0
description:
  - Connects once, read-only, and runs the selected checks of the runbooks' PostgreSQL sections, each
    reported as C(pass), C(warn) or C(fail) with the observed value, the threshold it was held against
    and a sentence.
  - "Checks: C(reachable) (version, uptime, primary or standby; always run), C(connections) (share of
    max_connections), C(database_size), C(long_queries), C(idle_in_transaction), C(blocked_queries) (lock
    waits), C(cache_hit_ratio), C(dead_tuples), C(last_vacuum) and C(last_analyze) (tables above
    O(min_table_size_mb) in O(database)), C(wraparound) (transaction ID age), C(replication) (lag in bytes and
    seconds, from a primary or on a standby, and the number of streaming standbys), C(replication_slots)
    (WAL retained, inactive or lost slots), C(archiver) (failing archive_command, WAL files waiting) and
    C(slow_statements) (top statements from pg_stat_statements; only when asked for in O(checks), since it needs
    that extension)."
  - A check that cannot be made is never C(pass) - it is C(fail), marked C(unchecked=true), and its sentence says
    what could not be checked, why and what to do. For example, C(slow_statements) asked for where
    pg_stat_statements is not installed (or not in shared_preload_libraries), session and replication checks run
    by a role that lacks pg_read_all_stats (PostgreSQL hides other roles' sessions and the standbys' positions
    from it), or a query the server refuses.
  - Works on PostgreSQL 12 to 17; names that differ between versions (C(mean_time) and C(mean_exec_time)
    of pg_stat_statements, C(wal_status) of slots) are read from the catalog or chosen by C(server_version_num).
  - The task fails when any check is C(fail) (O(fail_on)). A server that cannot be reached is the C(reachable)
    check, failed, with the cause; with O(fail_on=never) it is reported like any other failed check.
  - The same checks are returned as a Nagios line with its exit code and, with O(prometheus_file), written
    for node_exporter's textfile collector. C(checks) uses the collection's health vocabulary, so a
    playbook can merge it with other hosts' and services' checks.
  - The same engine runs on hosts as C(ops-runbook-pg-health) (module_utils C(pg_health_cli.py)).
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
  - ops.runbook.checks
options:
  database:
    description: Database to connect to; the table checks and pg_stat_statements are read there.
    type: str
    default: postgres
    aliases: [db, login_db]
  checks:
    description:
      - Checks to run. C(reachable) always runs.
      - C(slow_statements) is not among the defaults; name it to check pg_stat_statements (it fails as
        unchecked where that extension is not installed and loaded).
    type: list
    elements: str
    choices: [reachable, connections, database_size, long_queries, idle_in_transaction, blocked_queries,
              cache_hit_ratio, dead_tuples, last_vacuum, last_analyze, wraparound, replication,
              replication_slots, archiver, slow_statements]
    default: [reachable, connections, database_size, long_queries, idle_in_transaction, blocked_queries,
              cache_hit_ratio, dead_tuples, last_vacuum, last_analyze, wraparound, replication,
              replication_slots, archiver]
  thresholds:
    description:
      - "Limits by name, each C({warn: X, fail: Y}). A level left out keeps its default (C({warn: 70}) keeps the fail
        limit); C(null) switches a level off."
      - "A value breaches a limit only when it is strictly beyond it - above it, or below it for
        C(cache_hit_percent): 80 % of max_connections in use passes the warn limit 80, 80.1 % warns."
      - "Defaults (the runbooks'): C(db_connections_percent) 80/90, C(long_query_minutes) 5/30,
        C(idle_in_transaction_minutes) 5/10, C(lock_wait_seconds) 30/300, C(cache_hit_percent) 90/80,
        C(dead_tuple_percent) 20/50, C(vacuum_age_days) and C(analyze_age_days) 35/70, C(xid_age)
        1000000000/1500000000, C(replication_lag_seconds) 10/60, C(replication_lag_bytes) 64 MiB/1 GiB,
        C(slot_retained_bytes) 1 GiB/10 GiB, C(archive_ready_files) 10/100, C(slow_statement_ms) 100/1000,
        C(database_size_bytes) none."
      - A name this module does not know is refused, and the error lists the known ones. The
        C(ops.runbook.thresholds_for) filter takes this module's names out of a dictionary shared by several
        modules, such as the inventory's C(runbook_thresholds).
    type: dict
    default: {}
  idle_session_minutes:
    description: Idle sessions older than this are counted (and named as ones to end) in the C(connections) check.
    type: float
    default: 10
  min_table_size_mb:
    description: Tables smaller than this are left out of C(dead_tuples), C(last_vacuum) and C(last_analyze).
    type: float
    default: 10
  expected_standbys:
    description: On a primary, the C(standbys) check fails when fewer standbys stream than this.
    type: int
    default: 0
  slow_statements_top:
    description: Number of statements, slowest mean time first, returned by C(slow_statements).
    type: int
    default: 10
  slow_statements_min_calls:
    description: Statements called fewer times are not ranked (one slow ad-hoc query is not a trend).
    type: int
    default: 5
  cache_hit_min_blocks:
    description: Below this many block reads since the statistics were reset, the cache hit ratio is not judged.
    type: int
    default: 1000
  query_timeout:
    description: Seconds any one health query may run or wait for a lock (statement_timeout and lock_timeout).
    type: int
    default: 30
  prometheus_file:
    description:
      - Write the checks in the Prometheus text format to this file, atomically (for node_exporter's textfile
        collector, which reads C(*.prom) files). Not written in check mode.
    type: path
  prometheus_prefix:
    description: Prefix of the metric names in O(prometheus_file).
    type: str
    default: ops_runbook_pg
attributes:
  check_mode:
    support: full
    description: Runs every check (they only read); O(prometheus_file) is not written.
  diff_mode:
    support: none
    description: Nothing is changed.
notes:
  - Connect as a superuser or a member of C(pg_monitor) (or C(pg_read_all_stats)); otherwise the checks that need
    it (other roles' sessions, the standbys' positions, C(pg_ls_archive_statusdir)) fail as unchecked with the
    reason, and C(connections) counts backends from C(pg_stat_database).
  - The module never writes to the database; the session is read-only, with statement and lock timeouts.
seealso:
  - module: ops.runbook.pg_terminate
  - module: ops.runbook.pg_maintenance
"""

EXAMPLES = r"""
- name: Check PostgreSQL with the runbooks' thresholds
  ops.runbook.pg_health:
    database: bmidb
    thresholds: "{{ runbook_thresholds | ops.runbook.thresholds_for('pg_health') }}"
  become: true
  become_user: postgres

- name: Check the standby's replication only, and report without failing
  ops.runbook.pg_health:
    login_host: db2.example.internal
    login_user: monitor
    login_password: "{{ vault_monitor_password }}"
    checks: [replication, replication_slots]
    fail_on: never
  register: standby_health

- name: Write the metrics for node_exporter's textfile collector
  ops.runbook.pg_health:
    prometheus_file: /var/lib/prometheus/node-exporter/postgres.prom
    thresholds:
      replication_lag_seconds: {warn: 10, fail: 60}
      db_connections_percent: {warn: 80, fail: 90}
"""

RETURN = r"""
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: warn
counts:
  description: Number of checks of each status.
  returned: always
  type: dict
  sample: {"pass": 13, "warn": 1, "fail": 0}
checks:
  description:
    - One entry per check in the collection's health vocabulary (C(name), C(status), C(observed_value),
      C(observed_unit), C(threshold) as C({warn, fail}), C(output)) plus the check's own facts (the sessions,
      tables, slots or statements behind the figure).
    - A check that could not be made (missing privilege, missing extension, a refused query) is C(fail) with
      C(unchecked=true) and a sentence saying what could not be checked, why and what to do.
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "connections", "status": "warn", "observed_value": 84.0, "observed_unit": "percent",
       "threshold": {"warn": 80, "fail": 90}, "output": "84 of max_connections 100 in use (84.0%).",
       "connections": 84, "max_connections": 100}
failed_checks:
  description: Names of the checks that failed.
  returned: always
  type: list
  elements: str
nagios:
  description: The checks as a Nagios plugin line with perfdata, and the plugin exit code (0 OK, 1 WARNING, 2 CRITICAL).
  returned: always
  type: dict
  sample: {"line": "POSTGRES WARNING - connections: 84 of max_connections 100 in use (84.0%). | connections=84;80;90",
           "exit_code": 1}
server:
  description: Version and role of the server.
  returned: when the server was reached
  type: dict
  sample: {"version": "15.8", "version_num": 150008, "role": "primary"}
prometheus_file:
  description: The file the Prometheus text was written to.
  returned: when prometheus_file is set
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pg_health import CHECKS, DEFAULT_CHECKS, DEFAULTS, run_health
from ansible_collections.ops.runbook.plugins.module_utils.postgres import import_psycopg2, postgres_common_argument_spec


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        database=dict(type="str", default=DEFAULTS["database"], aliases=["db", "login_db"]),
        checks=dict(type="list", elements="str", choices=CHECKS, default=list(DEFAULT_CHECKS)),
        thresholds=dict(type="dict", default={}),
        idle_session_minutes=dict(type="float", default=DEFAULTS["idle_session_minutes"]),
        min_table_size_mb=dict(type="float", default=DEFAULTS["min_table_size_mb"]),
        expected_standbys=dict(type="int", default=DEFAULTS["expected_standbys"]),
        slow_statements_top=dict(type="int", default=DEFAULTS["slow_statements_top"]),
        slow_statements_min_calls=dict(type="int", default=DEFAULTS["slow_statements_min_calls"]),
        cache_hit_min_blocks=dict(type="int", default=DEFAULTS["cache_hit_min_blocks"]),
        query_timeout=dict(type="int", default=DEFAULTS["query_timeout"]),
        prometheus_file=dict(type="path"),
        prometheus_prefix=dict(type="str", default=DEFAULTS["prometheus_prefix"]),
    )
    return spec


def run(params, check_mode, log):
    return run_health(params, check_mode=check_mode, log=log)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True, progress=True, requires=[import_psycopg2])


if __name__ == "__main__":
    main()
