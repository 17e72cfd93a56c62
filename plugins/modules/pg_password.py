#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_password
short_description: Set a PostgreSQL role's password without sending it to the server, and prove logins with it
version_added: 0.1.0
description:
  - With O(state=present), sets the password of O(role). libpq computes the SCRAM-SHA-256 verifier where the module
    runs (as psql's C(\password) does) and only the verifier is sent (C(ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...')),
    so the password itself never reaches the server and cannot appear in its log, in C(pg_stat_activity) or in
    C(pg_stat_statements).
  - When the login user is a superuser, C(log_statement), C(log_min_duration_statement) and C(log_min_error_statement)
    are switched off for that one transaction, so not even the verifier is logged; a superuser can also read the
    stored verifier, and the module then changes nothing when the role already has this password (a password of
    printable ASCII characters; others are set again).
  - The password needs 16 to 256 characters and no control characters. Any other text libpq accepts is taken,
    spaces, quotes and non-ASCII letters included; libpq prepares it with SASLprep, as libpq clients do when they log
    in. A password that also goes into an environment file or a URL should pass the
    P(ops.runbook.password_problems#filter) filter, which C(rotate_db_password.yml) applies.
  - With O(state=accepted), logs in as O(role) with O(password) to O(database) and fails unless that works; with
    O(state=rejected), fails unless the server refuses the password itself (a refused connection or a
    C(pg_hba.conf) rejection proves nothing). Both change nothing, and run in check mode too.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
options:
  role:
    description: The role (user) whose password this is.
    type: str
    required: true
  password:
    description: The password. Never shown in output; the task using it should also have C(no_log=true).
    type: str
    required: true
  state:
    description:
      - C(present) sets the password, connecting with the O(login_user) options (a superuser, or a role with
        C(CREATEROLE)).
      - C(accepted) and C(rejected) log in as O(role) with O(password) instead, to the same host and port;
        O(login_user) and O(login_password) are not used then.
    type: str
    choices: [present, accepted, rejected]
    default: present
  database:
    description:
      - Database to connect to. For O(state=accepted) and O(state=rejected) use the application's database, so that
        its C(pg_hba.conf) rules apply.
    type: str
    default: postgres
    aliases: [db]
  scram_iterations:
    description:
      - PBKDF2 iterations of the SCRAM verifier (PostgreSQL's default is 4096).
      - Another count needs PostgreSQL 16 or later and libpq 16 or later where the module runs (libpq takes it from
        the session's C(scram_iterations)); otherwise the module fails before changing anything.
    type: int
    default: 4096
attributes:
  check_mode:
    support: full
    description:
      - O(state=present) connects, checks that the role exists and the login user may change its password, and reports
        whether it would change. O(state=accepted) and O(state=rejected) run as usual.
  diff_mode:
    support: none
    description: A password has no diff that may be shown.
notes:
  - Clients must support SCRAM-SHA-256 authentication (libpq 10 and later, node-postgres 7.4 and later, JDBC 42.2 and
    later); C(pg_hba.conf) methods C(scram-sha-256) and C(md5) both accept a SCRAM verifier.
  - Existing sessions of the role stay logged in; restart the application to prove the new password.
  - Without superuser, a server with C(log_statement=ddl) or C(all) records the verifier (a salted hash, not the
    password) in its log; the module warns then. Extensions such as pgaudit log by their own settings.
seealso:
  - module: ops.runbook.env_secret
  - module: ops.runbook.service_restart
"""

EXAMPLES = r"""
- name: Update database user
  ops.runbook.pg_password:
    role: bmi_app
    password: "{{ new_db_password }}"
  become: true
  become_user: postgres
  no_log: true

- name: Prove the application's host can log in with the new password
  ops.runbook.pg_password:
    role: bmi_app
    password: "{{ new_db_password }}"
    state: accepted
    login_host: db.internal
    database: bmidb
  no_log: true

- name: Prove the old password is dead
  ops.runbook.pg_password:
    role: bmi_app
    password: "{{ old_db_password }}"
    state: rejected
    login_host: db.internal
    database: bmidb
  no_log: true
"""

RETURN = r"""
role:
  description: The role.
  returned: always
  type: str
state:
  description: The requested state.
  returned: always
  type: str
endpoint:
  description: Where the module connected, e.g. C(127.0.0.1:5432) or C(database 'bmidb' at db.internal:5432).
  returned: always
  type: str
login:
  description: C(accepted) or C(refused), the outcome of the login with O(password).
  returned: when state is accepted or rejected
  type: str
algorithm:
  description: How the password is stored, C(SCRAM-SHA-256).
  returned: when state is present
  type: str
iterations:
  description: PBKDF2 iterations of the verifier.
  returned: when state is present
  type: int
compared:
  description:
    - Whether the stored verifier could be compared with the password, to tell if it already was this one; it needs a
      superuser, and a password of printable ASCII characters when the stored verifier is SCRAM-SHA-256.
  returned: when state is present
  type: bool
server_logging:
  description: C(suppressed) when statement logging was off for the change, else the server's C(log_statement).
  returned: when state is present
  type: str
server_version:
  description: Version of the server.
  returned: when state is present
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pg_password import DEFAULTS, STATES, run_pg_password
from ansible_collections.ops.runbook.plugins.module_utils.postgres import import_psycopg2, postgres_common_argument_spec


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        role=dict(type="str", required=True),
        password=dict(type="str", required=True, no_log=True),
        state=dict(type="str", choices=list(STATES), default=DEFAULTS["state"]),
        database=dict(type="str", default=DEFAULTS["database"], aliases=["db"]),
        scram_iterations=dict(type="int", default=DEFAULTS["scram_iterations"]),
    )
    return spec


def run(params, check_mode, log):
    return run_pg_password(params, check_mode=check_mode)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, requires=[import_psycopg2])


if __name__ == "__main__":
    main()
