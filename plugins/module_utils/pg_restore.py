# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore a backup set without ever gambling the database it replaces.

The chosen set is verified (checksum, integrity, size) before anything is
touched, restored into a staging database, and its row counts are proven
against the manifest. Only then, and only with the explicit overwrite opt-in,
is the current database backed up, closed to new connections and swapped out
by renaming; the staging copy takes its name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
import uuid

from . import health
from . import manifest as manifest_lib
from .pg_backup import KINDS, run_backup
from .catalog import SET_DAMAGE_CAUSES, valid_sets
from .common import RunbookError, human_size, utc_now
from .deadline import Deadline
from .dumpfile import restore_into
from .job_progress import Progress
from .postgres import connect, quote_ident, table_row_counts
from .ranges import POSTGRES, Range, check_ranges
from .retention import future_reason
from .s3 import RANGES as S3_RANGES
from .s3_backup_verify import RESTORE_BLOCKING_CHECKS, Verification, catalog_for

DEFAULTS = {
    "database": None,
    "backup_id": None,
    "target": None,
    "overwrite": False,
    "pre_restore_backup": True,
    "keep_previous": False,
    "list_only": False,
    "backup_dir": "/var/backups/postgresql",
    "maintenance_db": "postgres",
    "pg_bin_dir": None,
    # The whole restore (verification, loading, proof, the safety backup, the swap) ends by then (seconds).
    "job_timeout": 21600,
}
# A set that fails one of these is never restored (s3_backup_verify.py keeps the list with the checks it names).
USABLE_CHECKS = RESTORE_BLOCKING_CHECKS
# The kind an old manifest without one counts as.
LEGACY_KIND = "manual"
# Kinds a restore takes without being named: never the safety backup of a database a restore replaced.
DEFAULT_KINDS = tuple(k for k in KINDS if k != "pre-restore")
# Errors of a verification that say the set (or its files) is damaged, not that the store is unreachable.
SET_PROBLEM_CAUSES = SET_DAMAGE_CAUSES + ("missing_file", "missing_set")


def set_kind(manifest):
    """Why a set was taken, as its manifest says; old manifests have no kind and count as manual."""
    return (manifest or {}).get("kind") or LEGACY_KIND


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    if not opts.get("database"):
        raise RunbookError("No database was named.", hint="Set database to the backed-up database's name.",
                           cause="invalid")
    check_ranges(opts, dict(POSTGRES, job_timeout=Range(1, None, why="seconds"), **S3_RANGES))
    opts["target"] = opts.get("target") or opts["database"]
    return opts


class Restore(object):
    def __init__(self, options, log=None, check_mode=False, progress=None):
        self.opts = normalize(options)
        self.log = log or (lambda message: None)
        self.progress = progress or Progress()
        self.check_mode = check_mode
        # PostgreSQL cuts a longer name to 63 bytes: a target of 64 would be another database.
        self.database = manifest_lib.check_database_name(self.opts["database"])
        self.target = manifest_lib.check_database_name(self.opts["target"])
        self.catalog = catalog_for(self.opts)
        self.deadline = Deadline(int(self.opts["job_timeout"]), "The restore of {0}".format(
            manifest_lib.shown(self.database)))
        if getattr(self.catalog, "store", None) is not None:
            self.catalog.store.job_deadline = self.deadline

    def list_sets(self):
        """Every set of the database, newest first, with what its manifest says, or why it cannot be restored."""
        rows = []
        for record in valid_sets(self.catalog, self.database):
            row = {"backup_id": record["backup_id"], "complete": record["complete"], "valid": record["valid"],
                   "reason": record["reason"], "location": record["location"]}
            manifest = record["manifest"]
            if manifest:
                row.update(size_bytes=manifest["size_bytes"], format=manifest.get("format"),
                           compression=manifest.get("compression"), finished_at=manifest.get("finished_at"),
                           tables=len(manifest.get("tables") or {}), kind=set_kind(manifest))
            rows.append(row)
        return rows

    def _verified(self, set_id, damaged=()):
        """The set's verification, and whether it may be restored.

        The verification sees the catalog without the `damaged` sets, so that a damaged neighbour (the
        previous set its size is compared with) cannot fail a good set.
        """
        options = dict(self.opts, backup_id=set_id, restore_test=False, checksum=True, integrity=True)
        verification = Verification(options, log=self.log, deadline=self.deadline)
        verification.catalog = _WithoutSets(self.catalog, damaged)
        result = verification.run()
        bad = [c for c in result["checks"] if c["name"] in USABLE_CHECKS and c["status"] == health.FAIL]
        return result, bad

    def _candidate_problem(self, record, now):
        """Why default selection passes over a set before verifying it, or None."""
        if not record["valid"]:
            return record["reason"]
        kind = set_kind(record["manifest"])
        if kind == "pre-restore":
            return ("it is a pre-restore backup (the database as it was before a restore replaced it); "
                    "name its backup_id to restore it")
        if kind not in DEFAULT_KINDS:
            return "its kind {0!r} is unknown to this version; name its backup_id to restore it".format(kind)
        future = future_reason(record, now)
        if future:
            return "it is dated in the future ({0}); name its backup_id to restore it".format(future)
        return None

    def choose(self):
        """The named set if it verifies, else the newest valid set (by its manifest's end time) that verifies.

        Returns (backup_id, verification, kind, skipped). Without a named set, damaged sets, pre-restore
        sets, sets of unknown kind and sets dated in the future are passed over; each set passed over,
        or that failed verification, is in `skipped` with the reason.
        """
        records = [r for r in valid_sets(self.catalog, self.database) if r["complete"]]
        where = self.catalog.location(self.database)
        if not records:
            raise RunbookError("There is no complete backup of {0} in {1}.".format(manifest_lib.shown(self.database), where),
                               cause="no_backup")
        wanted = self.opts["backup_id"]
        if wanted and not any(r["backup_id"] == wanted for r in records):
            raise RunbookError("Backup set {0} does not exist or is incomplete in {1}.".format(wanted, where),
                               hint="List the sets with list_only (pg_restore_list=true).", cause="missing_set")
        damaged = frozenset(r["backup_id"] for r in records if not r["valid"])
        now = utc_now()
        skipped = []
        # Newest first, each set in turn: only the sets newer than the one chosen are reported.
        for record in records:
            set_id = record["backup_id"]
            if wanted and set_id != wanted:
                continue
            problem = record["reason"] if wanted else self._candidate_problem(record, now)
            if problem:
                skipped.append(self._skip(record, problem))
                continue
            try:
                result, bad = self._verified(set_id, damaged)
            except RunbookError as error:
                if error.details.get("cause") not in SET_PROBLEM_CAUSES:
                    raise
                skipped.append(self._skip(record, "it could not be verified: {0}".format(error.message)))
                continue
            if not bad:
                return set_id, result, set_kind(record["manifest"]), skipped
            skipped.append(self._skip(record, "; ".join(c["output"] for c in bad)))
        raise RunbookError("No backup of {0} can be restored: {1}".format(
            manifest_lib.shown(self.database), "; ".join("{0}: {1}".format(s["backup_id"], s["reason"]) for s in skipped)),
            hint="Nothing was changed.", cause="unverified", skipped=skipped)

    def _skip(self, record, reason):
        self.log("not restoring {0}: {1}".format(record["backup_id"], reason))
        return {"backup_id": record["backup_id"], "reason": reason,
                "kind": set_kind(record["manifest"]) if record["manifest"] else None}

    def run(self):
        try:
            return self._run()
        finally:
            self.deadline.cancel()

    def _run(self):
        if self.opts["list_only"]:
            return {"changed": False, "backups": self.list_sets(),
                    "msg": "Backups of {0} in {1}".format(manifest_lib.shown(self.database),
                                                          self.catalog.location(self.database))}
        admin = connect(self.opts, self.opts["maintenance_db"])
        try:
            return self._restore(admin)
        finally:
            admin.close()

    def _target_state(self, admin):
        with admin.cursor() as cur:
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (self.target,))
            row = cur.fetchone()
        return (row is not None), (row[0] if row else None)

    def _restore(self, admin):
        exists, owner = self._target_state(admin)
        if exists and not self.opts["overwrite"]:
            raise RunbookError(
                "Database {0} already exists; refusing to replace it.".format(manifest_lib.shown(self.target)),
                hint="Restore into another target, or set overwrite (pg_restore_overwrite=true) to replace it; "
                     "a backup of it is taken first.", cause="target_exists")
        set_id, verification, kind, skipped = self.choose()
        manifest = verification["manifest"]
        plan = {
            "backup_id": set_id,
            "kind": kind,
            "source": self.catalog.location(self.database, set_id),
            "target": self.target,
            "target_exists": exists,
            "pre_restore_backup": exists and self.opts["pre_restore_backup"],
            "keep_previous": exists and self.opts["keep_previous"],
            "skipped": skipped,
            "verification": verification["checks"],
            "warnings": ["Backup set {0} was not restored: {1}".format(s["backup_id"], s["reason"])
                         for s in skipped if s["kind"] != "pre-restore"],
        }
        if self.check_mode:
            plan.update(changed=True, msg="Would restore {0} (a {1} backup, {2}) into {3}{4}.{5}".format(
                set_id, kind, human_size(manifest["size_bytes"]), manifest_lib.shown(self.target),
                ", replacing the existing database after backing it up" if exists else " (a new database)",
                _skipped_sentence(skipped)))
            return plan
        started = time.monotonic()
        staging = "ops_runbook_restore_{0}".format(uuid.uuid4().hex[:12])
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE {0}{1}".format(
                quote_ident(staging), " OWNER {0}".format(quote_ident(owner)) if owner else ""))
        try:
            self.log("restoring {0} into staging database {1}".format(set_id, staging))
            watcher = RestoreWatcher(self.opts, staging, len(manifest.get("tables") or {}))
            self.progress.watch(watcher.line)
            try:
                restore_into(self.opts, self.catalog, self.database, set_id, manifest, staging,
                             deadline=self.deadline)
            finally:
                self.progress.forget(watcher.line)
                watcher.close()  # before the swap, which renames the staging database: no session may stay
            counts = self._prove(staging, manifest)
            pre_backup = self._backup_target() if plan["pre_restore_backup"] else None
            previous = self._swap(admin, staging, exists)
        except BaseException:
            _drop(admin, staging)
            raise
        plan.update(
            changed=True, tables=counts, pre_restore_backup=pre_backup, previous_database=previous,
            duration_seconds=round(time.monotonic() - started, 3),
            msg="Restored {0} (a {1} backup) into {2}: {3} tables with the manifest's row counts{4}.{5}".format(
                set_id, kind, manifest_lib.shown(self.target), len(counts),
                "; the replaced database was backed up first as {0}".format(pre_backup["backup_id"])
                if pre_backup else "", _skipped_sentence(skipped)))
        return plan

    def _prove(self, staging, manifest):
        conn = connect(self.opts, staging)
        expiry = self.deadline.on_expiry(conn.cancel)
        try:
            counts = table_row_counts(conn)
        except Exception:  # noqa: BLE001 - a count cancelled at the deadline says so
            self.deadline.check("counting the restored rows")
            raise
        finally:
            self.deadline.forget(expiry)
            conn.close()
        expected = manifest.get("tables") or {}
        if manifest.get("row_count_method", "exact") == "exact":
            differences = ["{0}: {1} rows restored, {2} in the manifest".format(t, counts.get(t), expected.get(t))
                           for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t)]
            if differences:
                raise RunbookError("The restored copy does not match the backup's manifest: {0}.".format(
                    "; ".join(differences)), hint="The target was not touched.", cause="row_counts")
        return counts

    def _backup_target(self):
        # The safety backup has what is left of the restore's time, so the restore ends by its deadline;
        # it reports its progress through the restore's own progress file.
        options = dict(self.opts, database=self.target, retention=False, kind="pre-restore",
                       job_timeout=max(1, int(self.deadline.remaining())), progress_file=None)
        self.log("backing up {0} before replacing it".format(manifest_lib.shown(self.target)))
        try:
            return run_backup(options, log=self.log)["summary"]
        except RunbookError as error:
            error.message = "The backup of {0} before the restore failed, so it was not replaced: {1}".format(
                manifest_lib.shown(self.target), error.message)
            raise

    def _swap(self, admin, staging, exists):
        """Give the staging copy the target's name; returns the old database's name if it was kept."""
        previous = None
        with admin.cursor() as cur:
            if exists:
                previous = _previous_name(self.target, utc_now())
                cur.execute("ALTER DATABASE {0} ALLOW_CONNECTIONS false".format(quote_ident(self.target)))
                try:
                    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid()", (self.target,))
                    _wait_for_no_sessions(cur, self.target)
                    cur.execute("ALTER DATABASE {0} RENAME TO {1}".format(
                        quote_ident(self.target), quote_ident(previous)))
                except BaseException:
                    cur.execute("ALTER DATABASE {0} ALLOW_CONNECTIONS true".format(quote_ident(self.target)))
                    raise
            cur.execute("ALTER DATABASE {0} RENAME TO {1}".format(quote_ident(staging), quote_ident(self.target)))
            if previous and self.opts["keep_previous"]:
                cur.execute("ALTER DATABASE {0} ALLOW_CONNECTIONS true".format(quote_ident(previous)))
            elif previous:
                cur.execute("DROP DATABASE {0}".format(quote_ident(previous)))
                previous = None
        return previous


class _WithoutSets(object):
    """A catalog whose listing leaves out some sets; everything else is the catalog's own."""

    def __init__(self, catalog, hidden):
        self._catalog = catalog
        self._hidden = frozenset(hidden)

    def sets(self, database):
        return dict((k, v) for k, v in self._catalog.sets(database).items() if k not in self._hidden)

    def __getattr__(self, name):
        return getattr(self._catalog, name)


def _skipped_sentence(skipped):
    if not skipped:
        return ""
    return " Skipped: {0}.".format("; ".join("{0} ({1})".format(s["backup_id"], s["reason"]) for s in skipped))


def _previous_name(target, moment):
    """The replaced database's name: the target's, cut to whole characters so that the suffix
    fits PostgreSQL's 63 bytes (a longer name would be cut by the server, or equal the target)."""
    suffix = "_pre_restore_" + moment.strftime("%Y%m%d%H%M%S")
    room = manifest_lib.MAX_NAME_BYTES - len(suffix)
    head = target.encode("utf-8")[:room].decode("utf-8", "ignore")
    return head + suffix


def _wait_for_no_sessions(cur, database, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,))
        if cur.fetchone()[0] == 0:
            return
        if time.monotonic() > deadline:
            raise RunbookError(
                "Sessions on {0} did not end after being terminated.".format(manifest_lib.shown(database)),
                hint="Stop the applications that use it and run the restore again.", cause="busy")
        time.sleep(0.2)


def _drop(admin, database):
    try:
        with admin.cursor() as cur:
            # FORCE: a restore stopped at its deadline may leave its session behind for a moment.
            cur.execute("DROP DATABASE IF EXISTS {0} WITH (FORCE)".format(quote_ident(database)))
    except Exception:  # noqa: BLE001 - the original error matters more than a failed cleanup
        pass


# How far the restore into the staging database is: tables with rows, and the COPY running now (PostgreSQL 14+).
TABLES_SQL = "SELECT count(*) FROM pg_stat_user_tables WHERE n_tup_ins > 0"
COPY_SQL = "SELECT relid::regclass::text, bytes_processed FROM pg_stat_progress_copy WHERE datid = " \
           "(SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1"


class RestoreWatcher(object):
    """The progress line of a running restore: tables restored of the manifest's, and the table being copied."""

    def __init__(self, opts, staging, tables):
        self.opts = opts
        self.staging = staging
        self.tables = tables
        self.started = time.monotonic()
        self._conn = None
        self._failed = False

    def line(self):
        words = "restoring into {0} for {1:.0f} s".format(self.staging, time.monotonic() - self.started)
        if self._failed:
            return words
        try:
            if self._conn is None:
                self._conn = connect(self.opts, self.staging)
            with self._conn.cursor() as cur:
                cur.execute(TABLES_SQL)
                restored = cur.fetchone()[0]
                copying = None
                if self._conn.server_version >= 140000:
                    cur.execute(COPY_SQL)
                    copying = cur.fetchone()
        except Exception:  # noqa: BLE001 - without a monitoring connection the line shows the time only
            self._failed = True
            return words
        words += ": {0} of {1} tables restored".format(restored, self.tables)
        if copying:
            words += ", copying {0} ({1} read)".format(copying[0], human_size(copying[1] or 0))
        return words

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - the connection may be gone with the server
                pass
            self._conn = None


def run_restore(options, check_mode=False, log=None):
    """Restore (or plan, or list); with options["progress_file"], the running restore writes its progress there
    every options["progress_interval"] seconds (tables restored, the table being copied)."""
    progress = Progress(None if check_mode else options.get("progress_file"), options.get("progress_interval"))
    shown = log or (lambda message: None)

    def say(message):
        shown(message)
        progress.say(message)

    progress.start()
    try:
        return Restore(options, log=say, check_mode=check_mode, progress=progress).run()
    finally:
        progress.stop()
