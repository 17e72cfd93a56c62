#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pgbackrest_health
short_description: Check that a cluster can be recovered to a recent point in time with pgBackRest, as pass / warn / fail
version_added: 0.2.0
description:
  - Reads C(pgbackrest info --output=json), lists the stanza's WAL archive in the repository with
    C(pgbackrest repo-ls), and asks the cluster for C(pg_stat_archiver) and its current WAL position, over one
    read-only connection. Every finding is a C(pass), C(warn) or C(fail) check with the observed value, the threshold
    and a sentence. Changes nothing.
  - C(pgbackrest_stanza:STANZA) - pgBackRest can read the stanza, and it belongs to this cluster (same system
    identifier).
  - C(pgbackrest_full_backup:STANZA) - age of the newest full backup in hours (weekly full backups - threshold
    C(full_backup_age_hours)); C(pgbackrest_backup:STANZA) - age of the newest backup of any type, full, diff or incr
    (daily differential backups - C(backup_age_hours)). No backup fails.
  - C(pgbackrest_archive_continuity:STANZA) - every WAL segment from the oldest backup's archive start to the newest
    archived one (the repository's, or the cluster's last archived segment when that is newer) is in the repository.
    A gap fails and names the missing segments, since recovery stops at the first one.
  - C(pgbackrest_archive_age:STANZA) - the age of the last archived segment against the RPO (C(archive_age_seconds)),
    judged only when WAL written since that segment waits to be archived (the cluster's current WAL segment is newer
    than the last archived one). An idle cluster archives nothing and has nothing to lose, so it passes however old
    its last archived segment is. C(archive_mode=off) fails.
  - C(pgbackrest_archive_push:STANZA) - failed archive-push attempts from C(pg_stat_archiver). A failure newer than
    the last success fails, naming the WAL file and the time; older failures pass with a sentence saying how many
    and when the last one was.
  - A check that could not be made is never C(pass) - it is C(fail), marked C(unchecked=true), with the reason
    translated by the collection's pgBackRest helper (wrong S3 credentials, a store that does not answer, a missing
    stanza or bucket) or its PostgreSQL connection (a refused login). The cluster's checks are still made when
    pgBackRest cannot read the repository, and the repository's when the cluster cannot be reached.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.pgbackrest
  - ops.runbook.postgres
  - ops.runbook.checks
options:
  database:
    description: Database the module connects to (any one; the archiving state is the cluster's).
    type: str
    default: postgres
    aliases: [db, login_db]
  thresholds:
    description:
      - "Limits by name, each C({warn: X, fail: Y}). A level left out keeps its default; C(null) switches a level off."
      - "A value breaches a limit only when it is strictly above it."
      - "Defaults: C(full_backup_age_hours) 192/336 (a weekly full a day late warns, a week late fails),
        C(backup_age_hours) 26/50 (the daily diff), C(archive_age_seconds) 120/3600 (two C(archive_timeout)s of 60 s;
        the 1-hour RPO of runbook 001 - set C(fail) to your RPO, 60 for runbook 003)."
      - A name this module does not know is refused, and the error lists the known ones. The
        C(ops.runbook.thresholds_for) filter takes this module's names out of a dictionary shared by several
        modules, such as the inventory's C(runbook_thresholds).
    type: dict
    default: {}
  query_timeout:
    description: Seconds the query of the cluster's archiving state may run (statement_timeout).
    type: int
    default: 30
  io_timeout:
    description:
      - pgBackRest's C(--io-timeout) in seconds for the module's C(info) and C(repo-ls), over the configuration's.
      - pgBackRest retries a store that does not answer about four times this long before it gives up, so a stopped
        store is reported in about 20 s at the default (pgBackRest's own default of 60 s would take minutes).
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs every check.
  diff_mode:
    support: none
    description: Nothing is changed.
notes:
  - Run it on the database host, as root or as the cluster's owner; pgBackRest runs as O(pgbackrest_user).
  - The PostgreSQL login needs to read C(pg_control_system()) and C(pg_control_checkpoint()) - a superuser or a
    member of C(pg_monitor).
  - A store that does not answer makes pgBackRest retry each request for about four times O(io_timeout);
    O(pgbackrest_timeout) bounds every command whatever happens.
  - Timeline switches are followed by segment number - a missing number no timeline from the backup's on has is a
    gap; history files are not read, so a gap covered only by an abandoned timeline is not found.
  - The module is in the C(ops.runbook.pgbackrest), C(ops.runbook.postgres) and C(ops.runbook.checks) action groups.
seealso:
  - module: ops.runbook.pg_health
  - module: ops.runbook.health_report
"""

EXAMPLES = r"""
- name: Check that the cluster can be recovered to a recent point in time
  ops.runbook.pgbackrest_health:
    pgbackrest_stanza: main
    thresholds: "{{ runbook_thresholds | ops.runbook.thresholds_for('pgbackrest_health') }}"
    fail_on: never
  become: true
  register: pitr_health

- name: Hold the archive to runbook 003's one-minute RPO
  ops.runbook.pgbackrest_health:
    pgbackrest_stanza: main
    pgbackrest_config: /etc/pgbackrest/pgbackrest.conf
    login_unix_socket: /var/run/postgresql
    thresholds:
      archive_age_seconds: {warn: 60, fail: 65}
  become: true
"""

RETURN = r"""
checks:
  description:
    - Every finding; each has C(name), C(status) (C(pass), C(warn), C(fail)), C(observed_value), C(observed_unit),
      C(threshold), C(output) (a sentence) and C(stanza), and its own facts - C(label) and C(type) of the newest
      backup, C(missing) (the missing segments' names) and C(ranges) of the continuity check, C(current_wal),
      C(waiting_segments) and C(last_archived_wal) of the archive age, C(failed_count) and C(last_failed_wal) of the
      archive pushes.
    - Names are C(pgbackrest_stanza:STANZA), C(pgbackrest_full_backup:STANZA), C(pgbackrest_backup:STANZA),
      C(pgbackrest_archive_continuity:STANZA), C(pgbackrest_archive_age:STANZA), C(pgbackrest_archive_push:STANZA).
    - A check that could not be made has C(unchecked=true) (and C(status) C(fail)).
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "pgbackrest_archive_continuity:main", "status": "fail", "observed_value": 1,
       "observed_unit": "segments", "threshold": "no gap", "stanza": "main",
       "missing": ["000000010000000000000005"],
       "output": "The WAL archive of stanza main has a gap: 1 segment missing (000000010000000000000005). Recovery
       stops at the first missing segment, ..."}
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: pass
counts:
  description: Number of checks per status.
  returned: always
  type: dict
  sample: {"pass": 6, "warn": 0, "fail": 0}
facts:
  description:
    - C(stanza); C(backups) (label, type, end time, archive start of each, oldest first) and C(archive) (id, min, max)
      as pgBackRest reports them; C(cluster) (archive_mode, WAL segment size, system identifier, pg_stat_archiver's
      counts and last archived and failed WAL) when the cluster was read.
  returned: always
  type: dict
unchecked:
  description: Names of the checks that could not be made.
  returned: always
  type: list
  elements: str
time:
  description: When the check finished (UTC, ISO 8601).
  returned: always
  type: str
msg:
  description: One line with the overall status and every check that is not passing.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest import pgbackrest_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest_health import DEFAULTS, collect
from ansible_collections.ops.runbook.plugins.module_utils.postgres import postgres_common_argument_spec


def argument_spec():
    spec = pgbackrest_common_argument_spec()
    spec.update(postgres_common_argument_spec())
    spec.update(
        database=dict(type="str", default=DEFAULTS["database"], aliases=["db", "login_db"]),
        thresholds=dict(type="dict", default={}),
        query_timeout=dict(type="int", default=DEFAULTS["query_timeout"]),
        io_timeout=dict(type="int", default=DEFAULTS["io_timeout"]),
    )
    return spec


def run(params, check_mode, log):
    params = dict(params)
    params.pop("fail_on")
    result = collect(params)
    result["changed"] = False
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
