#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_terminate
short_description: End PostgreSQL sessions selected by explicit filters
version_added: 0.1.0
description:
  - The runbooks' C(pg_terminate_backend) queries with guards. Ends (or, with O(action=cancel), cancels the
    query of) the client sessions that match every filter given, O(states), O(min_age_minutes),
    O(databases), O(users), O(application_names) and O(query_pattern).
  - At least one filter must be given; an empty selection is refused rather than taken as every session.
  - Never touches its own session, replication connections (walsenders), autovacuum or other background
    processes. Superusers' sessions are left alone unless O(allow_superuser=true); they are returned in
    C(protected) with the reason.
  - The sessions are selected and signalled by one statement that re-applies the filters, so a session
    that changed state in between is not ended on stale grounds.
  - In check mode, returns exactly the sessions that would be ended, and ends none.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
options:
  database:
    description: Database to connect to (sessions of every database are visible from any of them).
    type: str
    default: postgres
    aliases: [db, login_db]
  states:
    description: Session states to select.
    type: list
    elements: str
    choices: [active, idle, idle in transaction, idle in transaction (aborted)]
    default: []
  min_age_minutes:
    description:
      - Select only sessions in their state for longer than this. For C(active) sessions the age is how long the
        current query has run; for idle ones, how long they have been idle.
    type: float
  databases:
    description: Select only sessions connected to these databases.
    type: list
    elements: str
    default: []
  users:
    description: Select only sessions of these users.
    type: list
    elements: str
    default: []
  application_names:
    description: Select only sessions with these application names.
    type: list
    elements: str
    default: []
  query_pattern:
    description: Select only sessions whose current or last query matches this POSIX regular expression (C(~)).
    type: str
  action:
    description: C(terminate) ends the session (C(pg_terminate_backend)); C(cancel) cancels its query (C(pg_cancel_backend)).
    type: str
    choices: [terminate, cancel]
    default: terminate
  allow_superuser:
    description: Also end superusers' sessions that match.
    type: bool
    default: false
  max_sessions:
    description: Refuse, ending none, when the filters select more sessions than this.
    type: int
  wait_seconds:
    description: Seconds to wait for terminated sessions to exit; those still there are returned in C(lingering).
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: Returns the sessions the filters select now; ends none.
  diff_mode:
    support: none
    description: Sessions have no diff.
notes:
  - The login user must be a superuser or a member of C(pg_signal_backend) to end other users' sessions.
seealso:
  - module: ops.runbook.pg_health
"""

EXAMPLES = r"""
- name: End sessions idle for more than 10 minutes (runbook "Database Connection Errors")
  ops.runbook.pg_terminate:
    states: [idle]
    min_age_minutes: 10
    databases: [blogengine]

- name: Kill queries running longer than 30 minutes (runbook "High Database Load")
  ops.runbook.pg_terminate:
    states: [active]
    min_age_minutes: 30

- name: Show which sessions of the report job would be cancelled
  ops.runbook.pg_terminate:
    action: cancel
    application_names: [nightly-report]
    query_pattern: "FROM measurements"
  check_mode: true
"""

RETURN = r"""
sessions:
  description: Sessions ended (in check mode, that would be ended), with their age in their state and query head.
  returned: always
  type: list
  elements: dict
  sample:
    - {"pid": 4242, "user": "bmi_user", "database": "bmidb", "application_name": "node", "state": "idle",
       "age_seconds": 903.2, "superuser": false, "query": "SELECT * FROM measurements WHERE user_id = $1"}
protected:
  description: Sessions the filters matched but that were left alone, each with C(reason).
  returned: always
  type: list
  elements: dict
lingering:
  description: Terminated sessions still present after O(wait_seconds).
  returned: always
  type: list
  elements: int
count:
  description: Number of sessions in C(sessions).
  returned: always
  type: int
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pg_terminate import DEFAULTS, STATES, end_sessions
from ansible_collections.ops.runbook.plugins.module_utils.postgres import import_psycopg2, postgres_common_argument_spec


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        database=dict(type="str", default=DEFAULTS["database"], aliases=["db", "login_db"]),
        states=dict(type="list", elements="str", choices=STATES, default=[]),
        min_age_minutes=dict(type="float"),
        databases=dict(type="list", elements="str", default=[]),
        users=dict(type="list", elements="str", default=[]),
        application_names=dict(type="list", elements="str", default=[]),
        query_pattern=dict(type="str"),
        action=dict(type="str", choices=["terminate", "cancel"], default=DEFAULTS["action"]),
        allow_superuser=dict(type="bool", default=False),
        max_sessions=dict(type="int"),
        wait_seconds=dict(type="int", default=DEFAULTS["wait_seconds"]),
    )
    return spec


def run(params, check_mode, log):
    return end_sessions(params, check_mode=check_mode, log=log)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, progress=True, requires=[import_psycopg2])


if __name__ == "__main__":
    main()
