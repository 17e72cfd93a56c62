#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a PostgreSQL backup set safely, or list the sets available
version_added: 0.1.0
description:
  - Restores a set written by M(ops.runbook.pg_backup), from S3 (when O(s3_bucket) is set) or a local directory.
  - Chooses O(backup_id), or the newest valid set (by its manifest's end time) that passes verification (size,
    checksum, integrity); sets that fail are skipped, reported in RV(skipped) with the reason, and warned about.
  - Without O(backup_id), passes over (and reports) damaged sets (unreadable or foreign manifest, missing or short
    dump), sets dated in the future, and C(pre-restore) sets, the backups of databases a restore replaced;
    a named O(backup_id) may be of any kind. Sets written before manifests recorded a kind count as C(manual).
  - Restores into a staging database and compares every table's row count with the manifest before anything
    else is touched; on any difference it fails and the target is left as it was.
  - Refuses to replace an existing database unless O(overwrite=true). Then it first backs the database up
    (to the same place the backups are kept), closes it to new connections, ends its sessions, and swaps the
    staging copy in by renaming. The replaced database is dropped, or kept with O(keep_previous=true).
  - With O(list_only=true), lists the sets and changes nothing.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
  - ops.runbook.s3
options:
  database:
    description: Name of the backed-up database, as in the backup sets.
    type: str
    required: true
    aliases: [db]
  target:
    description: Database to restore into. Default is O(database).
    type: str
  backup_id:
    description: Set to restore. Unset means the newest complete set that verifies.
    type: str
  overwrite:
    description: Allow replacing an existing O(target). Without it, an existing target fails the task before anything is changed.
    type: bool
    default: false
  pre_restore_backup:
    description: Back up an existing O(target) before replacing it. Turning this off needs a reason.
    type: bool
    default: true
  keep_previous:
    description: Keep the replaced database under the name C(TARGET_pre_restore_TIMESTAMP) instead of dropping it.
    type: bool
    default: false
  list_only:
    description: List the backup sets of O(database) and change nothing.
    type: bool
    default: false
  backup_dir:
    description: Local directory of backup sets, used when O(s3_bucket) is not set.
    type: path
    default: /var/backups/postgresql
  maintenance_db:
    description: Database to connect to while creating, renaming and dropping databases.
    type: str
    default: postgres
  pg_bin_dir:
    description: Directory of C(pg_restore), C(psql) and C(pg_dump). Default is E(PATH).
    type: path
  progress_file:
    description:
      - While the restore runs, write its progress here every O(progress_interval) seconds - the tables restored of
        the manifest's and the table being copied - as JSON with a C(line); removed when the restore ends. Unset
        means no progress file.
      - The C(ops.runbook.pg_restore) role runs the module with C(async) and shows this line in the job log with
        the C(ops.runbook.job_progress) action.
    type: path
    version_added: 0.2.0
  progress_interval:
    description: Seconds between two progress lines in O(progress_file).
    type: int
    default: 5
    version_added: 0.2.0
  job_timeout:
    description:
      - Seconds the whole restore may take (verification, loading, the proof, the backup of the replaced database
        and the swap). When they pass, what is running is stopped, the staging database dropped and the target
        left as it was.
      - At least 1.
    type: int
    default: 21600
attributes:
  check_mode:
    support: full
    description: Verifies and chooses the set and reports the plan (which set, which target, whether it is replaced); changes nothing.
  diff_mode:
    support: none
    description: Not applicable.
notes:
  - The login needs the CREATEDB privilege; replacing a database owned by another role, or restoring objects with
    their original owners, needs a superuser such as C(postgres).
  - Stop the applications that use O(target) first; the restore.yml playbook does this for you.
"""

EXAMPLES = r"""
- name: List the backups of bmidb in S3
  ops.runbook.pg_restore:
    database: bmidb
    s3_bucket: batch09-ostad
    s3_prefix: backups/bmi-app
    list_only: true

- name: Restore last night's backup into a copy for inspection
  ops.runbook.pg_restore:
    database: bmidb
    target: bmidb_inspect
    s3_bucket: batch09-ostad
    s3_prefix: backups/bmi-app

- name: Replace bmidb with a chosen backup (after backing it up)
  ops.runbook.pg_restore:
    database: bmidb
    backup_id: bmidb-20260224T020000Z-3fa4c1d2
    overwrite: true
    s3_bucket: batch09-ostad
    s3_prefix: backups/bmi-app
  become: true
  become_user: postgres
"""

RETURN = r"""
backups:
  description:
    - With O(list_only), every set newest first (backup_id, complete, valid, reason, location, and from a readable
      manifest kind, size_bytes, format, compression, finished_at, tables).
    - A damaged set is listed with C(valid=false) and the C(reason), never hidden.
  returned: when list_only
  type: list
  elements: dict
backup_id:
  description: The set restored (or that would be restored).
  returned: unless list_only
  type: str
kind:
  description: Why the chosen set was taken (C(scheduled), C(manual), C(pre-restore), C(pre-deploy)), from its manifest.
  returned: unless list_only
  type: str
target:
  description: The database restored into.
  returned: unless list_only
  type: str
target_exists:
  description: Whether the target existed before.
  returned: unless list_only
  type: bool
skipped:
  description: Newer sets passed over or that failed verification, each with backup_id, kind and the reason.
  returned: unless list_only
  type: list
  elements: dict
verification:
  description: The checks the chosen set passed.
  returned: unless list_only
  type: list
  elements: dict
tables:
  description: Row count of every restored table (equal to the manifest's).
  returned: success, unless list_only or check mode
  type: dict
pre_restore_backup:
  description: Summary of the backup taken of the replaced database (backup_id, sha256, location), or null.
  returned: success, unless list_only
  type: dict
previous_database:
  description: Name the replaced database was kept under, with O(keep_previous).
  returned: success, unless list_only
  type: str
duration_seconds:
  description: Wall time of restore, proof, pre-restore backup and swap.
  returned: success, unless list_only or check mode
  type: float
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.postgres import postgres_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.pg_restore import DEFAULTS, run_restore
from ansible_collections.ops.runbook.plugins.module_utils.s3 import s3_common_argument_spec


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(s3_common_argument_spec())
    spec.update(
        database=dict(type="str", required=True, aliases=["db"]),
        target=dict(type="str"),
        backup_id=dict(type="str"),
        overwrite=dict(type="bool", default=DEFAULTS["overwrite"]),
        pre_restore_backup=dict(type="bool", default=DEFAULTS["pre_restore_backup"]),
        keep_previous=dict(type="bool", default=DEFAULTS["keep_previous"]),
        list_only=dict(type="bool", default=DEFAULTS["list_only"]),
        backup_dir=dict(type="path", default=DEFAULTS["backup_dir"]),
        maintenance_db=dict(type="str", default=DEFAULTS["maintenance_db"]),
        pg_bin_dir=dict(type="path"),
        job_timeout=dict(type="int", default=DEFAULTS["job_timeout"]),
        progress_file=dict(type="path"),
        progress_interval=dict(type="int", default=5),
    )
    return spec


def run(params, check_mode, log):
    return run_restore(params, check_mode=check_mode, log=log)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, progress=True)


if __name__ == "__main__":
    main()
