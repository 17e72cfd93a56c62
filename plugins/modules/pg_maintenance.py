#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_maintenance
short_description: VACUUM (ANALYZE), ANALYZE and REINDEX PostgreSQL databases without blocking production
version_added: 0.1.0
description:
  - Runs the runbooks' C(VACUUM ANALYZE), C(ANALYZE) and C(REINDEX) on each database in O(databases), on the whole
    database or on the tables in O(tables).
  - Every statement runs with C(lock_timeout) and C(statement_timeout), so maintenance never queues behind
    production traffic (and so never blocks the queries queued behind it) and never runs unbounded.
  - VACUUM and ANALYZE use C(SKIP_LOCKED) (tables another session holds are skipped and named in the step);
    REINDEX runs C(CONCURRENTLY) (PostgreSQL 12 and later).
  - Each step reports its duration and the dead tuples it removed (from C(pg_stat_user_tables) before and after).
  - With O(slow_query_report), returns the slowest statements from pg_stat_statements (the same report as the
    M(ops.runbook.pg_health) C(slow_statements) check).
  - The same engine runs on hosts as the scheduled job of the C(ops.runbook.pg_maintenance) role.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
options:
  databases:
    description: Databases to maintain, in this order.
    type: list
    elements: str
    required: true
  tables:
    description:
      - Tables (C(schema.table), or C(table) found through the search path) to maintain in each database.
        Empty means the whole database.
    type: list
    elements: str
    default: []
  operations:
    description: What to run. C(vacuum) and C(analyze) together run as one C(VACUUM (ANALYZE)).
    type: list
    elements: str
    choices: [vacuum, analyze, reindex]
    default: [vacuum, analyze]
  reindex_concurrently:
    description: REINDEX CONCURRENTLY, which does not block writes. False takes locks that block writes for the whole rebuild.
    type: bool
    default: true
  skip_locked:
    description: VACUUM and ANALYZE skip tables they cannot lock at once instead of waiting.
    type: bool
    default: true
  lock_timeout:
    description:
      - Seconds a statement may wait for a lock before it gives up (the step fails, the others run).
      - C(1) to C(2147483); C(0), which PostgreSQL reads as no limit, is refused.
    type: int
    default: 5
  statement_timeout:
    description: Seconds a statement may run before it is cancelled, C(0) to C(2147483). C(0) means no limit.
    type: int
    default: 3600
  slow_query_report:
    description: Return the slowest statements from pg_stat_statements in C(slow_statements).
    type: bool
    default: true
  slow_statements_top:
    description: Number of statements in the slow-query report.
    type: int
    default: 10
  slow_statements_min_calls:
    description: Statements called fewer times are left out of the slow-query report.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    description: Connects and returns the statements it would run, with each table's dead tuples now; runs none.
  diff_mode:
    support: none
    description: Maintenance has no diff.
notes:
  - A standby cannot be maintained; the module refuses one and says so.
  - VACUUM of a table needs its owner or a superuser; run as C(postgres) or the tables' owner.
seealso:
  - module: ops.runbook.pg_health
"""

EXAMPLES = r"""
- name: Vacuum and analyze bmidb (runbook "Database Maintenance")
  ops.runbook.pg_maintenance:
    databases: [bmidb]
  become: true
  become_user: postgres

- name: Rebuild the indexes of two tables without blocking writes
  ops.runbook.pg_maintenance:
    databases: [inventory]
    tables: [public.items, public.stock_moves]
    operations: [reindex]
    lock_timeout: 2

- name: Show the statements maintenance would run
  ops.runbook.pg_maintenance:
    databases: [bmidb, blogengine]
    operations: [vacuum, analyze, reindex]
  check_mode: true
"""

RETURN = r"""
steps:
  description:
    - One entry per statement with C(database), C(table) (null for the whole database), C(operation), C(statement),
      C(status) (C(ok), C(failed), or C(planned) in check mode), C(duration_seconds), C(dead_tuples_before),
      C(dead_tuples_after), C(dead_tuples_removed), C(notices), C(error), and C(skipped_locked), the tables VACUUM
      or ANALYZE skipped because another session held them locked.
  returned: always
  type: list
  elements: dict
statements:
  description: The SQL statements, in order (in check mode, the ones that would run).
  returned: always
  type: list
  elements: str
  sample: ["VACUUM (ANALYZE, SKIP_LOCKED)", "REINDEX DATABASE CONCURRENTLY \"bmidb\""]
failed_steps:
  description: Number of steps that failed.
  returned: always
  type: int
dead_tuples_removed:
  description: Dead tuples removed by all steps together.
  returned: always
  type: int
duration_seconds:
  description: Time spent in the statements.
  returned: always
  type: float
slow_statements:
  description:
    - The slow-query report, C(available), C(message), C(database), and C(statements) (query head, calls,
      total_ms, mean_ms, rows, database, user).
  returned: when slow_query_report is true
  type: dict
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pg_maintenance import DEFAULTS, OPERATIONS, run_maintenance
from ansible_collections.ops.runbook.plugins.module_utils.postgres import import_psycopg2, postgres_common_argument_spec


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        databases=dict(type="list", elements="str", required=True),
        tables=dict(type="list", elements="str", default=[]),
        operations=dict(type="list", elements="str", choices=OPERATIONS, default=list(DEFAULTS["operations"])),
        reindex_concurrently=dict(type="bool", default=DEFAULTS["reindex_concurrently"]),
        skip_locked=dict(type="bool", default=DEFAULTS["skip_locked"]),
        lock_timeout=dict(type="int", default=DEFAULTS["lock_timeout"]),
        statement_timeout=dict(type="int", default=DEFAULTS["statement_timeout"]),
        slow_query_report=dict(type="bool", default=DEFAULTS["slow_query_report"]),
        slow_statements_top=dict(type="int", default=DEFAULTS["slow_statements_top"]),
        slow_statements_min_calls=dict(type="int", default=DEFAULTS["slow_statements_min_calls"]),
    )
    return spec


def run(params, check_mode, log):
    result = run_maintenance(params, check_mode=check_mode, log=log)
    result["failed"] = bool(result["failed_steps"])
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, progress=True, requires=[import_psycopg2])


if __name__ == "__main__":
    main()
