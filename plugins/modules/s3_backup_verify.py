#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: s3_backup_verify
short_description: Prove that PostgreSQL backups are fresh, complete, intact and restorable
version_added: 0.1.0
description:
  - Verifies the sets that M(ops.runbook.pg_backup) writes, in S3 (when O(s3_bucket) is set) or in a local directory.
  - Reports each finding as a C(pass), C(warn) or C(fail) check with the observed value, the threshold and a sentence.
  - C(access) - the sets can be listed; an unreachable store, a missing bucket or refused credentials fail it.
  - C(manifests) - every set has its manifest; a set without one, older than O(incomplete_grace_minutes), fails.
  - C(presence) - a complete set exists (the one named by O(backup_id), when set).
  - C(freshness) - the newest complete backup is younger than O(max_age_hours) (the recovery point objective).
  - C(manifest) - the verified set's manifest reads and has every field verification and restore need; a damaged
    one fails, and the set's other checks are not made.
  - C(identity) - the manifest names the verified database and its own set, so a set of another database (or
    another set) copied under this database's prefix fails, naming the database its manifest says. With
    O(expected_host) the host that wrote it must be that one (fail); without it, a host other than the one that
    wrote the previous valid set is a warn.
  - C(files) - every file the manifest lists is in the set with the manifest's size; a missing dump fails.
  - C(size) - the dump is at least O(min_size_bytes) and not more than O(max_size_drop) smaller than the previous one.
  - C(tables) - each table's row count against the previous valid set (manifest present and complete, same database,
    dump there with its size; the one that finished last before this one). A table that vanished, fell to zero,
    or lost more than O(max_row_drop) of its rows is a warn naming the tables and their counts (a faithful copy of
    a database whose table was dropped or emptied, so not a fail, but for a person to judge). Counts are compared
    only when both sets have exact counts; vanished tables also with estimates. Without a previous set it passes
    with a sentence that there was nothing to compare.
  - C(checksum) - the dump's bytes, streamed, have the SHA-256 of the manifest.
  - C(integrity) - the dump decompresses completely; a custom-format dump lists with C(pg_restore --list), a plain
    one ends with C(pg_dump)'s closing line. Checksum and integrity share one streamed read.
  - C(restore) - with O(restore_test=true), restores into a scratch database that the module creates and always
    drops (never an existing one), compares every table's row count with the manifest, runs O(smoke_sql) and
    reports the restore duration.
  - The task fails when any check fails (O(fail_on)). A set that cannot be verified (damaged,
    missing, foreign, or a store that cannot be reached) still returns the report with the failed check; only
    invalid options end the task without checks, whatever O(fail_on) says, and then RV(report) holds one failed
    C(configuration) check.
  - "A limit is breached only when the value is strictly beyond it: a backup exactly O(max_age_hours) old is fresh,
    a dump of exactly O(min_size_bytes) is big enough."
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
  - ops.runbook.s3
  - ops.runbook.checks
options:
  database:
    description: Database whose backups to verify.
    type: str
    required: true
    aliases: [db]
  backup_dir:
    description: Local directory of backup sets, used when O(s3_bucket) is not set.
    type: path
    default: /var/backups/postgresql
  backup_id:
    description: Set to verify. Unset means the newest complete set.
    type: str
  max_age_hours:
    description: Age limit of the newest complete backup, in hours. 26 suits a daily backup.
    type: float
    default: 26
  min_size_bytes:
    description: Smallest believable dump size. An empty database's dump is a few hundred bytes.
    type: int
    default: 1024
  max_size_drop:
    description: Largest believable shrink against the previous backup, as a fraction (0.5 is half the size).
    type: float
    default: 0.5
  max_row_drop:
    description:
      - Largest believable fall of a table's row count against the previous valid set, as a share from 0 to 1
        (0.5 is half the rows). A larger fall is a C(tables) warn; a table that vanished or fell to zero always is.
    type: float
    default: 0.5
  expected_host:
    description:
      - The host that writes this database's backups, as the manifest records it (the FQDN of the backup host).
        A set written elsewhere fails C(identity). A short name matches an FQDN's first label; case is ignored.
      - Unset, a change of host against the previous valid set is a C(identity) warn.
    type: str
  job_timeout:
    description:
      - Seconds the whole verification, its restore test included, may take. When they pass, the programs and
        queries still running are stopped and the step is a failed check; the report is still written.
      - At least 1.
    type: int
    default: 21600
  incomplete_grace_minutes:
    description: How long a set may lack its manifest (a backup still uploading) before it fails the check.
    type: int
    default: 60
  checksum:
    description: Stream the dump and compare its SHA-256 with the manifest.
    type: bool
    default: true
  integrity:
    description: Decompress the dump completely and read its table of contents.
    type: bool
    default: true
  restore_test:
    description:
      - Restore the dump into a scratch database and compare row counts. The connection options name the server
        to restore on; the login needs the CREATEDB privilege.
    type: bool
    default: false
  smoke_sql:
    description:
      - Queries run in the restored scratch database. A query fails the check when it errors or its first column
        is false, zero or null, for example C(SELECT count(*) > 0 FROM measurements).
    type: list
    elements: str
    default: []
  maintenance_db:
    description: Database to connect to while creating and dropping the scratch database.
    type: str
    default: postgres
  pg_bin_dir:
    description: Directory of C(pg_restore) and C(psql). Default is E(PATH).
    type: path
attributes:
  check_mode:
    support: full
    description: Runs every read-only check; the restore test is reported, not run, and no scratch database is created.
  diff_mode:
    support: none
    description: Verification changes nothing.
"""

EXAMPLES = r"""
- name: Verify last night's backup in S3, with a restore test
  ops.runbook.s3_backup_verify:
    database: bmidb
    s3_bucket: batch09-ostad
    s3_prefix: backups/bmi-app
    restore_test: true
    smoke_sql:
      - SELECT count(*) > 0 FROM measurements
  register: bmidb_verification

- name: Only report on the local copies of a weekly backup
  ops.runbook.s3_backup_verify:
    database: bmidb
    backup_dir: /var/backups/postgresql
    max_age_hours: 170
    fail_on: never
"""

RETURN = r"""
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: pass
checks:
  description: One entry per check, with C(name), C(status), C(observed_value), C(threshold) and C(output).
  returned: always
  type: list
  elements: dict
  sample:
    - name: freshness
      status: pass
      observed_value: 3.2
      observed_unit: hours
      threshold: 26
      output: The newest complete backup, bmidb-20260224T020000Z-3fa4c1d2, is 3.2 h old (limit 26 h).
failed_checks:
  description: The names of the checks that failed.
  returned: always
  type: list
  elements: str
  sample: [identity]
counts:
  description: How many checks passed, warned and failed.
  returned: always
  type: dict
  sample: {"pass": 6, "warn": 0, "fail": 0}
backup_id:
  description: The set that was verified (null when there is none).
  returned: always
  type: str
location:
  description: Where the set is, a local path or an C(s3://) URI.
  returned: always
  type: str
report:
  description: The verification as one document (database, backup_id, status, counts, checks, verified_at), as
    the verify_backups.yml playbook writes it to its JSON report.
  returned: always
  type: dict
manifest:
  description: The verified set's manifest.
  returned: when a complete set exists
  type: dict
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.postgres import postgres_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.s3 import s3_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.s3_backup_verify import DEFAULTS, error_result, verify_backup


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(s3_common_argument_spec())
    spec.update(
        database=dict(type="str", required=True, aliases=["db"]),
        backup_dir=dict(type="path", default=DEFAULTS["backup_dir"]),
        backup_id=dict(type="str"),
        max_age_hours=dict(type="float", default=DEFAULTS["max_age_hours"]),
        min_size_bytes=dict(type="int", default=DEFAULTS["min_size_bytes"]),
        max_size_drop=dict(type="float", default=DEFAULTS["max_size_drop"]),
        max_row_drop=dict(type="float", default=DEFAULTS["max_row_drop"]),
        expected_host=dict(type="str"),
        job_timeout=dict(type="int", default=DEFAULTS["job_timeout"]),
        incomplete_grace_minutes=dict(type="int", default=DEFAULTS["incomplete_grace_minutes"]),
        checksum=dict(type="bool", default=DEFAULTS["checksum"]),
        integrity=dict(type="bool", default=DEFAULTS["integrity"]),
        restore_test=dict(type="bool", default=DEFAULTS["restore_test"]),
        smoke_sql=dict(type="list", elements="str", default=[]),
        maintenance_db=dict(type="str", default=DEFAULTS["maintenance_db"]),
        pg_bin_dir=dict(type="path"),
    )
    return spec


def run(params, check_mode, log):
    return verify_backup(params, check_mode=check_mode, log=log)


def main():
    # Only a configuration error raises; its result still says which database and why.
    run_module(argument_spec(), run, supports_check_mode=True, checks=True, progress=True, error_result=error_result)


if __name__ == "__main__":
    main()
