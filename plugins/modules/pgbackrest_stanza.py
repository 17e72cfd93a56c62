#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pgbackrest_stanza
short_description: Create a pgBackRest stanza when it is missing and check that WAL archiving into it works
version_added: 0.2.0
description:
  - Reads the repository with C(pgbackrest info). When it has no stanza O(pgbackrest_stanza) (or an incomplete one),
    runs C(pgbackrest stanza-create) and reports C(changed); an existing stanza is left as it is.
  - Then, with O(check), runs C(pgbackrest check), which makes PostgreSQL switch to a new WAL segment and waits until
    that segment is in the repository (pgBackRest's C(archive-timeout)), so the whole archiving path is proven.
  - Wrong S3 credentials, a missing bucket, a store that does not answer, a certificate that does not match or
    WAL that does not arrive fail the task with pgBackRest's reason and what to fix; secrets are masked. Nothing
    here stops or restarts PostgreSQL.
  - The C(ops.runbook.pgbackrest) role writes the configuration this module reads and calls it.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.pgbackrest
options:
  check:
    description: Run C(pgbackrest check) after making sure the stanza exists.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads the repository and returns the plan; creates nothing and does not run C(pgbackrest check), which archives a segment.
  diff_mode:
    support: none
    description: Nothing to compare.
notes:
  - Run it as root (C(become)); pgBackRest then runs as O(pgbackrest_user), the owner of the data directory.
  - The module is in the C(ops.runbook.pgbackrest) action group.
seealso:
  - module: ops.runbook.pg_health
"""

EXAMPLES = r"""
- name: Create the stanza and check the archive
  ops.runbook.pgbackrest_stanza:
    pgbackrest_stanza: main
  become: true
  register: stanza

- name: Only make sure the stanza exists
  ops.runbook.pgbackrest_stanza:
    pgbackrest_stanza: main
    pgbackrest_config: /etc/pgbackrest/pgbackrest.conf
    pgbackrest_timeout: 300
    check: false
  become: true
"""

RETURN = r"""
stanza:
  description: The stanza.
  returned: always
  type: str
  sample: main
config:
  description: The configuration file pgBackRest read.
  returned: always
  type: str
  sample: /etc/pgbackrest/pgbackrest.conf
existed:
  description: Whether the repository held the stanza before this run.
  returned: always
  type: bool
created:
  description: Whether this run created the stanza (always false in check mode).
  returned: always
  type: bool
check_passed:
  description: True when C(pgbackrest check) passed; null when it did not run (O(check=false), check mode).
  returned: always
  type: bool
plan:
  description: What the run does (or, in check mode, would do), one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["create the stanza main in the repository (pgbackrest stanza-create)",
           "check that WAL reaches the repository (pgbackrest check)"]
info:
  description:
    - The stanza as C(pgbackrest info) describes it after the run; null in check mode when the stanza does not exist yet.
    - C(status) (C(code), C(message)), C(backups) (their number), C(cipher), C(wal_min) and C(wal_max) (the oldest
      and newest archived segment of the current database).
  returned: always
  type: dict
  sample: {"status": {"code": 2, "message": "no valid backups"}, "backups": 0, "cipher": "aes-256-cbc",
           "wal_min": "000000010000000000000001", "wal_max": "000000010000000000000003"}
log:
  description: The steps taken, in order.
  returned: always
  type: list
  elements: str
msg:
  description: One sentence saying what was done.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest import pgbackrest_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest_stanza import DEFAULTS, ensure_stanza


def argument_spec():
    spec = pgbackrest_common_argument_spec()
    spec.update(check=dict(type="bool", default=DEFAULTS["check"]))
    return spec


def main():
    run_module(argument_spec(), ensure_stanza, progress=True, supports_check_mode=True)


if __name__ == "__main__":
    main()
