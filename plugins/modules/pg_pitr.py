#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_pitr
short_description: Point-in-time recovery with pgBackRest - plan it, drill it in a scratch cluster, or recover
version_added: 0.2.0
description:
  - Recovers a PostgreSQL cluster backed up by pgBackRest to a target - a time with its time zone, an LSN, a
    transaction id, a named restore point, or the end of the archive (O(target_type)).
  - Every mode plans first, from C(pgbackrest info --output=json) - the backup set (the newest that finished before
    a target time or LSN, else the newest; O(backup_set) names one), the WAL it replays, the expected data loss, where
    it recovers to and what it stops and moves. O(mode=plan) and check mode return the plan and change nothing.
  - O(mode=drill) restores the set plus WAL into a scratch data directory under O(scratch_dir), starts it on a free
    loopback port with its own socket directory and C(archive_mode=off) (it never pushes WAL into the real
    archive), waits until it promotes at the target, runs O(checks), stops it and removes the directory, also when
    something failed. A WAL segment the recovery needed and the archive lacks is named in the error
    (RV(missing_segment)).
  - O(mode=recover) recovers into the new data directory O(restore_dir), started on 127.0.0.1 (O(copy_port)) with
    archiving off and left running for inspection; the live cluster is not touched.
  - With O(replace_live=true), O(mode=recover) replaces the live cluster instead - it stops PostgreSQL
    (O(postgres_service), else C(pg_ctl) on O(data_directory)), moves O(data_directory) aside as
    C(DATA_DIRECTORY.pre-pitr-TIMESTAMP) (never deleted), restores into O(data_directory), promotes at the target,
    starts PostgreSQL and checks that it answers, is out of recovery and passes O(checks). If the restore or a check
    fails, it puts the old data directory back, starts it again and fails saying it rolled back. Stopping and
    starting the application is the caller's (the C(ops.runbook.pg_pitr) role does it).
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
  - ops.runbook.pgbackrest
options:
  mode:
    description: C(plan), C(drill) or C(recover).
    type: str
    choices: [plan, drill, recover]
    default: plan
  target_type:
    description:
      - C(time) - O(target) is a time with its time zone (C(2026-12-05T10:15:00Z), C(2026-12-05 11:15:00+01:00));
        a time without a zone is refused, a time in the future too.
      - C(lsn) - O(target) is an LSN (C(16/B374D848)); C(xid) - a transaction id; C(name) - a restore point made
        with C(pg_create_restore_point()).
      - C(latest) - the end of the archive (the newest archived WAL); O(target) stays unset.
    type: str
    choices: [time, lsn, xid, name, latest]
    default: latest
  target:
    description: The target's value, as O(target_type) says.
    type: str
  target_exclusive:
    description: Stop just before the target instead of just after it (C(--target-exclusive)).
    type: bool
    default: false
  target_timeline:
    description:
      - The timeline to recover along (C(--target-timeline)) - C(current), the backup set's, C(latest), or a number.
      - C(current) is the default because PostgreSQL's own, C(latest), follows any newer timeline in the archive,
        such as one an abandoned recovery promoted and archived, past the target. Set C(latest) or the number when
        the cluster moved to a new timeline after the backup set (a failover, an earlier recovery).
    type: str
    default: current
  verify_repository:
    description: With O(mode=drill), run C(pgbackrest verify) first (every backup file and archived WAL segment is
      read and checked) and report it as the check C(pgbackrest_verify).
    type: bool
    default: false
  backup_set:
    description:
      - The backup set's label (C(20261205-010000F)). Unset means the newest set that finished before a target time or
        LSN, else the newest set.
      - Needed for an O(target_type=xid) or O(target_type=name) target older than the newest set.
    type: str
  scratch_dir:
    description: Parent directory of the drill's scratch directory (removed after the drill). It needs room for a copy
      of the cluster.
    type: path
    default: /var/lib/postgresql
  restore_dir:
    description: The new data directory of O(mode=recover) without O(replace_live); it must not exist or be empty.
    type: path
  data_directory:
    description: The live cluster's data directory, replaced with O(replace_live=true).
    type: path
  replace_live:
    description: Replace the live cluster in O(data_directory) with O(mode=recover). Without it, O(mode=recover)
      recovers into O(restore_dir).
    type: bool
    default: false
  postgres_service:
    description: The systemd unit of the live cluster (C(postgresql@15-main)), stopped and started with
      O(replace_live=true). Unset means C(pg_ctl) on O(data_directory), with the options the running server was
      started with (C(postmaster.opts)).
    type: str
  postgres_log_file:
    description: The log PostgreSQL writes while the live cluster starts after O(replace_live=true) (C(pg_ctl -l));
      read when the recovery fails. Unset means C(DATA_DIRECTORY-pitr.log) beside the data directory.
    type: path
  copy_port:
    description: Port of the drill's scratch cluster and of the O(restore_dir) copy on 127.0.0.1; C(0) means a free one.
    type: int
    default: 0
  pg_bin_dir:
    description: Directory of the PostgreSQL server programs (C(pg_ctl)). Unset means Debian's
      C(/usr/lib/postgresql/VERSION/bin) for the restored C(PG_VERSION).
    type: path
  server_settings:
    description:
      - Settings for the drill's scratch cluster and the O(restore_dir) copy (C(-c NAME=VALUE)), for example
        C(shared_buffers) set to C(128MB) so a copy does not take the memory the live cluster is configured for.
    type: dict
    default: {}
  checks:
    description:
      - SQL checks run on the recovered cluster after it ends recovery, besides C(pg_is_in_recovery()) being false.
      - Each is C(name), C(sql) (a query returning one value), C(database) (default C(postgres)) and C(expect), the
        value as text (C(true) when unset). The marker-row proof - a row written before the target is there, one
        written after is not - is two such checks.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check in the result.
        type: str
      sql:
        description: The query; its first column of its first row is compared.
        type: str
        required: true
      database:
        description: Database to run it in.
        type: str
        default: postgres
      expect:
        description: The expected value as text (C(true), C(false), C(1), C(null)).
        type: raw
  recovery_timeout:
    description: Seconds a recovered cluster has to start, replay the WAL and promote.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Check mode returns the plan and changes nothing, whatever O(mode) is.
  diff_mode:
    support: none
    description: No diff.
notes:
  - Run it as the cluster's owner (C(become_user=postgres)), or as root, which runs C(pg_ctl) and pgBackRest as
    O(pgbackrest_user), the owner of the data directory. Connections to a drill's or an inspection copy go through its own
    private socket directory (trusted there) as O(pgbackrest_user), the cluster's owner and bootstrap superuser;
    with O(replace_live=true) the recovered live cluster is reached with the connection options (O(login_host),
    O(login_port), ...).
  - The module is in the C(ops.runbook.postgres) and C(ops.runbook.pgbackrest) action groups.
seealso:
  - module: ops.runbook.pg_restore
"""

EXAMPLES = r"""
- name: Plan a recovery to 10:15 UTC (what check mode shows)
  ops.runbook.pg_pitr:
    pgbackrest_stanza: main
    target_type: time
    target: "2026-12-05T10:15:00Z"

- name: Drill the recovery and prove the marker rows
  ops.runbook.pg_pitr:
    mode: drill
    pgbackrest_stanza: main
    target_type: time
    target: "{{ drill_target }}"
    checks:
      - {name: marker before the target, database: appdb, sql: "SELECT count(*) FROM pitr_marker WHERE id = 41",
         expect: 1}
      - {name: marker after the target, database: appdb, sql: "SELECT count(*) FROM pitr_marker WHERE id = 42",
         expect: 0}
  become: true
  become_user: postgres

- name: Recover the live cluster to a restore point, keeping the old data directory
  ops.runbook.pg_pitr:
    mode: recover
    replace_live: true
    pgbackrest_stanza: main
    target_type: name
    target: before-migration-42
    data_directory: /var/lib/postgresql/15/main
    postgres_service: postgresql@15-main
"""

RETURN = r"""
plan:
  description:
    - The plan - C(backup) (label, type, finished, size), C(wal) (archive_id, first, last, archive_min, archive_max),
      C(target), C(expected_data_loss) (seconds, text), C(destination), C(restore_options), and C(text), the plan as
      lines a person reads.
  returned: always
  type: dict
checks:
  description: The verification of the recovered cluster as C(pass)/C(fail) checks (name, status, observed_value,
    threshold, output); C(pitr_check:out_of_recovery) first.
  returned: when mode is drill or recover
  type: list
  elements: dict
status:
  description: The worst status of RV(checks).
  returned: when mode is drill or recover
  type: str
port:
  description: The port of the drill's scratch cluster or of the recovered copy.
  returned: when mode is drill, or recover without replace_live
  type: int
data_directory:
  description: Where the recovered cluster runs.
  returned: when mode is recover
  type: str
moved_aside:
  description: Where the old data directory was moved (kept) with replace_live.
  returned: when replace_live succeeded
  type: str
rolled_back:
  description: True when a failed recovery of the live cluster was rolled back to the old data directory.
  returned: on failure with replace_live
  type: bool
missing_segment:
  description: The WAL segment the recovery needed and the archive did not have.
  returned: on failure, when the log names one
  type: str
log_tail:
  description: The end of the recovered cluster's log, on failure.
  returned: on failure
  type: str
msg:
  description: What was done, or the plan.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pg_pitr import DEFAULTS, MODES, TARGET_TYPES, run_pitr
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest import pgbackrest_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.postgres import postgres_common_argument_spec


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(pgbackrest_common_argument_spec())
    spec.update(
        mode=dict(type="str", choices=list(MODES), default=DEFAULTS["mode"]),
        target_type=dict(type="str", choices=list(TARGET_TYPES), default=DEFAULTS["target_type"]),
        target=dict(type="str"),
        target_exclusive=dict(type="bool", default=DEFAULTS["target_exclusive"]),
        target_timeline=dict(type="str", default=DEFAULTS["target_timeline"]),
        verify_repository=dict(type="bool", default=DEFAULTS["verify_repository"]),
        backup_set=dict(type="str"),
        scratch_dir=dict(type="path", default=DEFAULTS["scratch_dir"]),
        restore_dir=dict(type="path"),
        data_directory=dict(type="path"),
        replace_live=dict(type="bool", default=DEFAULTS["replace_live"]),
        postgres_service=dict(type="str"),
        postgres_log_file=dict(type="path"),
        copy_port=dict(type="int", default=DEFAULTS["copy_port"]),
        pg_bin_dir=dict(type="path"),
        server_settings=dict(type="dict", default=DEFAULTS["server_settings"]),
        checks=dict(type="list", elements="dict", default=DEFAULTS["checks"], options=dict(
            name=dict(type="str"),
            sql=dict(type="str", required=True),
            database=dict(type="str", default="postgres"),
            expect=dict(type="raw"),
        )),
        recovery_timeout=dict(type="int", default=DEFAULTS["recovery_timeout"]),
    )
    return spec


def run(params, check_mode, log):
    return run_pitr(params, check_mode, log)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, progress=True,
               required_if=[("replace_live", True, ("data_directory",))])


if __name__ == "__main__":
    main()
