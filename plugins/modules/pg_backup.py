#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_backup
short_description: Back up a PostgreSQL database to a local directory and S3, with a manifest
version_added: 0.1.0
description:
  - Dumps one database with C(pg_dump), streamed through compression and SHA-256 into a set
    written under a partial name and renamed only when every process of the pipeline succeeded.
  - Writes a manifest (C(manifest.json)) beside the dump with the database, host, server and
    C(pg_dump) versions, format, compression, size, SHA-256, start and end times and the row count
    of every table, counted in the same snapshot C(pg_dump) dumps.
  - Optionally adds the cluster's globals (roles, tablespaces) and named config files to the set.
  - Uploads the dump to S3 while C(pg_dump) is still writing it, as a multipart upload with an S3
    CRC32 checksum on every part, completed only once every process of the pipeline succeeded
    (and aborted otherwise); then uploads the globals and config files, and the manifest last.
    An upload that fails leaves no set that looks complete; the local set is kept.
  - The dump's part size is chosen before its size is known, so it is O(s3_part_size_mb) raised where
    needed for four times (uncompressed) or twice (compressed) the database's size to fit in 10,000 parts.
  - Applies retention locally and in S3. Retention counts valid sets only (manifest readable and naming the set and
    database it sits in, dump present with the manifest's size, as the file or the S3 listing says; no dump is
    downloaded), ordered by the manifest's end time, and never deletes the newest of them.
  - A set dated in the future (its name's or its manifest's time more than 5 minutes ahead of this host's clock)
    and a damaged set (unreadable or foreign manifest, missing or short dump) are never counted and never deleted;
    each one is reported in C(retention) and raises a warning.
  - Holds a host-wide lock so two runs never interleave.
  - The same engine runs as the scheduled job the C(ops.runbook.pg_backup) role installs.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.postgres
  - ops.runbook.s3
options:
  database:
    description: Database to back up.
    type: str
    required: true
    aliases: [db]
  format:
    description:
      - C(custom) is restored with C(pg_restore) and allows selective restores; C(plain) is SQL for C(psql).
    type: str
    default: custom
    choices: [custom, plain]
  compression:
    description: Compression of the dump stream (custom-format dumps are taken uncompressed and compressed here).
    type: str
    default: zstd
    choices: [zstd, gzip, none]
  compression_level:
    description:
      - Compression level; 1 for zstd (as fast as pg_dump, barely larger than 3) and 6 for gzip when unset.
      - C(1) to C(19) for zstd, C(1) to C(9) for gzip; must be unset with O(compression=none). Any other value
        fails the task before anything is written.
    type: int
  compression_threads:
    description: Threads zstd may use, C(0) to C(256) (C(0) means one per core). Keep it low on a busy database host.
    type: int
    default: 1
  globals:
    description: Also dump the cluster's roles and tablespaces (C(pg_dumpall --globals-only)) into the set.
    type: bool
    default: false
  backup_dir:
    description: Local directory of backup sets (C(BACKUP_DIR/DATABASE/BACKUP_ID/)); created when missing.
    type: path
    default: /var/backups/postgresql
  config_files:
    description: Files to copy into the set, such as the nginx site and the application's systemd unit.
    type: list
    elements: path
    default: []
  keep_days:
    description:
      - Local sets younger than this many days are kept.
      - With O(keep_count) also set, a set is deleted only when both limits say it is old.
      - The newest complete set is never deleted.
    type: int
    default: 7
  keep_count:
    description: Number of newest local sets always kept. Unset means only O(keep_days) applies.
    type: int
  s3_keep_days:
    description: Like O(keep_days), for the sets in S3. Unset (and O(s3_keep_count) unset) deletes nothing in S3.
    type: int
  s3_keep_count:
    description: Like O(keep_count), for the sets in S3.
    type: int
  lock_timeout:
    description: Seconds (C(0) to C(86400)) to wait for another backup run on this host to finish before failing.
    type: int
    default: 300
  job_timeout:
    description:
      - Deadline of the whole backup in seconds, from the start of the task. When it passes, C(pg_dump) and its
        compressor are killed, queries interrupted, the upload to S3 aborted, the partial set removed and the host
        lock released, and the task fails with a message naming O(job_timeout).
      - The default (6 hours) is meant to be far above any normal backup; set it to a few times your longest
        backup so a hung one is noticed the same day. A call to S3 in flight at the deadline ends within its own
        O(s3_timeout) bounds.
    type: int
    default: 21600
  dump_lock_timeout:
    description:
      - Seconds C(pg_dump) waits for the shared lock on each table (C(--lock-wait-timeout)). A table held under an
        exclusive lock (C(ALTER TABLE), C(VACUUM FULL), C(LOCK TABLE)) longer than this fails the backup with a
        message naming the table, the session holding it (pid, user, application, query start, query) and this
        option, instead of waiting behind it. RV(blocking_sessions) lists the holders.
    type: int
    default: 300
  progress_file:
    description:
      - While the backup runs, write its progress here every O(progress_interval) seconds - the bytes dumped, the
        parts uploaded, the lock C(pg_dump) waits for and the session holding it - as JSON with a C(line). The file
        is removed when the backup ends. Unset means no progress file.
      - The C(ops.runbook.pg_backup) role runs the module with C(async) and shows this line in the job log with
        the C(ops.runbook.job_progress) action while the backup runs.
    type: path
    version_added: 0.2.0
  progress_interval:
    description: Seconds between two progress lines in O(progress_file).
    type: int
    default: 5
    version_added: 0.2.0
  row_counts:
    description:
      - How the manifest records each table's rows. C(exact) counts inside the dump's snapshot,
        C(estimate) takes the planner's statistics, C(none) records none.
      - Verification and restore compare against exact counts only.
    type: str
    default: exact
    choices: [exact, estimate, none]
  pg_bin_dir:
    description: Directory of C(pg_dump)/C(pg_dumpall), for example C(/usr/lib/postgresql/16/bin). Default is E(PATH).
    type: path
  kind:
    description:
      - Why the set is taken, recorded in its manifest as C(kind).
      - The scheduled job of the C(ops.runbook.pg_backup) role records C(scheduled); M(ops.runbook.pg_restore)
        records C(pre-restore) for the backup of a database it replaces, and never restores such a set unless its
        O(ops.runbook.pg_restore#module:backup_id) is named.
    type: str
    default: manual
    choices: [scheduled, manual, pre-restore, pre-deploy]
  labels:
    description:
      - Names for the set, recorded in its manifest as C(labels) (strings), such as the deployment a C(pre-deploy)
        set was taken for (C(application), C(deploy_id), C(release)). Unset, the manifest has no C(labels).
    type: dict
  backup_group:
    description:
      - Group that may read the backups. Unset, every file of a set (dump, globals, config copies, manifest) is
        created with mode C(0600) and every directory this module creates (O(backup_dir) when missing, the
        database's directory, each set's) with C(0700), whatever the umask.
      - Set, files are C(0640) and those directories C(0750), with this group. The group must exist and the user
        running the backup must be a member of it (or root); otherwise the task fails before anything is written.
      - Directories that already exist keep their mode; one that lets other users in further returns a warning.
    type: str
attributes:
  check_mode:
    support: full
    description: Connects, checks the bucket and reports what would be dumped, where, and what retention would delete.
  diff_mode:
    support: none
    description: A backup has no meaningful diff.
notes:
  - Every numeric option is checked against its real range (for example O(keep_days) C(0) to C(36500),
    O(s3_part_size_mb) C(5) to C(5120), O(login_port) C(1) to C(65535)) before anything is written or connected to;
    the message names the option, the value and the range.
  - The database password is passed to C(pg_dump) in its environment, never on its command line.
  - Run as a user that can write O(backup_dir) (with C(become)), or as the database's OS user for peer authentication.
  - "Deadlines: connecting to PostgreSQL waits at most O(connect_timeout); each S3 request at most O(s3_timeout) of
    silence and each S3 operation, retries included, at most twice that; C(pg_dump) waits for a table lock at most
    O(dump_lock_timeout); and the whole task ends by O(job_timeout). A server that accepts connections and never
    answers fails the task within these bounds, naming the endpoint, and never keeps the host lock."
  - The local set is kept when the dump completed and only the upload to S3 failed (the message says so); nothing
    of the failed upload is left in S3 as a backup.
seealso:
  - name: Backup and restore architecture
    description: The layout of a backup set and how the scheduled job shares this engine.
    link: https://github.com/ops-runbook/ops.runbook/blob/main/docs/architecture.md
"""

EXAMPLES = r"""
- name: Back up bmidb to S3, keeping 7 days locally and 30 days in the bucket
  ops.runbook.pg_backup:
    database: bmidb
    login_user: postgres
    globals: true
    config_files:
      - /etc/nginx/sites-available/bmi-health-tracker
      - /etc/systemd/system/bmi-backend.service
    s3_bucket: batch09-ostad
    s3_prefix: backups/bmi-app
    s3_sse: AES256
    keep_days: 7
    s3_keep_days: 30
  become: true
  become_user: postgres

- name: Back up to an S3-compatible store with explicit credentials
  ops.runbook.pg_backup:
    database: bmidb
    login_host: db.internal
    login_user: backup
    login_password: "{{ vault_backup_password }}"
    s3_bucket: backups
    s3_endpoint_url: https://minio.internal:9000
    aws_access_key: "{{ vault_minio_access_key }}"
    aws_secret_key: "{{ vault_minio_secret_key }}"

- name: Show what a backup would do, without doing it
  ops.runbook.pg_backup:
    database: bmidb
  check_mode: true
"""

RETURN = r"""
blocking_sessions:
  description: When C(pg_dump) gave up waiting for a table lock, the sessions that held it, each described.
  returned: on a lock wait failure
  type: list
  elements: str
  sample: ["pid 4242 (user alice, application psql, idle in transaction, query started 2026-12-06T03:10:00Z: LOCK TABLE orders)"]
  version_added: 0.2.0
backup_id:
  description:
    - Name of the backup set, C(DATABASE-YYYYmmddTHHMMSSZ-WRITER) (UTC start time, then 8 hex digits drawn per run).
    - C(DATABASE) is the name with every character but letters, digits, C(_), C(-) and C(.) (not first)
      percent-encoded as UTF-8, as in the set's directory and S3 keys.
  returned: always
  type: str
  sample: bmidb-20260224T020000Z-3fa4c1d2
local_path:
  description: Directory of the backup set (in check mode, the directory it would have).
  returned: always
  type: str
  sample: /var/backups/postgresql/bmidb/bmidb-20260224T020000Z-3fa4c1d2
dump_path:
  description: The dump file.
  returned: success
  type: str
size_bytes:
  description: Size of the (compressed) dump file.
  returned: success
  type: int
sha256:
  description: SHA-256 of the dump file.
  returned: success
  type: str
duration_seconds:
  description: Wall time of the whole backup, upload and retention included.
  returned: success
  type: float
files:
  description: Files of the set with their role (dump, globals, config), size and SHA-256 (names only in check mode).
  returned: always
  type: list
  elements: raw
tables:
  description: Row count of every table, keyed C(schema.table).
  returned: success
  type: dict
manifest:
  description: The manifest written beside the dump.
  returned: success
  type: dict
s3_uri:
  description: S3 location of the set.
  returned: when s3_bucket is set
  type: str
  sample: s3://batch09-ostad/backups/bmi-app/bmidb/bmidb-20260224T020000Z-3fa4c1d2/
s3_keys:
  description: Keys uploaded, the manifest last.
  returned: success, when s3_bucket is set
  type: list
  elements: str
retention:
  description:
    - What retention deleted (C(local_deleted), C(s3_deleted), C(local_partial_removed)) and incomplete S3 sets seen
      (C(s3_incomplete)); in check mode what it would delete (C(local_would_delete), C(s3_would_delete)).
    - C(invalid) lists the damaged sets and C(future) the sets dated in the future, each with C(where) (C(local) or
      C(s3)), C(backup_id), C(location) and C(reason); retention left them alone, and each one is also a warning.
  returned: always
  type: dict
kind:
  description: Why the set was taken, as recorded in its manifest.
  returned: always
  type: str
  sample: manual
database_size_bytes:
  description: Size of the database on the server.
  returned: check mode
  type: int
summary:
  description: The key facts of the backup in one small dictionary, for reports and AWX C(set_stats).
  returned: always
  type: dict
  sample: {"backup_id": "bmidb-20260224T020000Z-3fa4c1d2", "database": "bmidb", "sha256": "9f2c...", "size_bytes": 14023312,
           "s3_uri": "s3://batch09-ostad/backups/bmi-app/bmidb/bmidb-20260224T020000Z-3fa4c1d2/"}
server_version:
  description: Version of the PostgreSQL server.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import DEFAULTS, KINDS, run_backup
from ansible_collections.ops.runbook.plugins.module_utils.postgres import postgres_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.s3 import s3_common_argument_spec


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(s3_common_argument_spec())
    spec.update(
        database=dict(type="str", required=True, aliases=["db"]),
        format=dict(type="str", default=DEFAULTS["format"], choices=["custom", "plain"]),
        compression=dict(type="str", default=DEFAULTS["compression"], choices=["zstd", "gzip", "none"]),
        compression_level=dict(type="int"),
        compression_threads=dict(type="int", default=DEFAULTS["compression_threads"]),
        globals=dict(type="bool", default=DEFAULTS["globals"]),
        backup_dir=dict(type="path", default=DEFAULTS["backup_dir"]),
        config_files=dict(type="list", elements="path", default=[]),
        keep_days=dict(type="int", default=DEFAULTS["keep_days"]),
        keep_count=dict(type="int"),
        s3_keep_days=dict(type="int"),
        s3_keep_count=dict(type="int"),
        lock_timeout=dict(type="int", default=DEFAULTS["lock_timeout"]),
        job_timeout=dict(type="int", default=DEFAULTS["job_timeout"]),
        dump_lock_timeout=dict(type="int", default=DEFAULTS["dump_lock_timeout"]),
        row_counts=dict(type="str", default=DEFAULTS["row_counts"], choices=["exact", "estimate", "none"]),
        pg_bin_dir=dict(type="path"),
        kind=dict(type="str", default=DEFAULTS["kind"], choices=KINDS),
        labels=dict(type="dict"),
        backup_group=dict(type="str"),
        progress_file=dict(type="path"),
        progress_interval=dict(type="int", default=5),
    )
    return spec


def run(params, check_mode, log):
    return run_backup(params, check_mode=check_mode, log=log)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, progress=True)


if __name__ == "__main__":
    main()
