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
from .backup import run_backup
from .common import RunbookError, human_size, utc_now
from .dumpfile import restore_into
from .postgres import connect, quote_ident, table_row_counts
from .ranges import POSTGRES, check_ranges
from .s3 import RANGES as S3_RANGES
from .verify import Verification, catalog_for

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
}
USABLE_CHECKS = ("size", "checksum", "integrity")


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    if not opts.get("database"):
        raise RunbookError("No database was named.", hint="Set database to the backed-up database's name.",
                           cause="invalid")
    check_ranges(opts, dict(POSTGRES, **S3_RANGES))
    opts["target"] = opts.get("target") or opts["database"]
    return opts


class Restore(object):
    def __init__(self, options, log=None, check_mode=False):
        self.opts = normalize(options)
        self.log = log or (lambda message: None)
        self.check_mode = check_mode
        self.database = self.opts["database"]
        self.target = self.opts["target"]
        self.catalog = catalog_for(self.opts)

    def list_sets(self):
        """Every set of the database, newest first, with what its manifest says."""
        rows = []
        for set_id, entry in sorted(self.catalog.sets(self.database).items(), reverse=True):
            row = {"backup_id": set_id, "complete": entry["complete"],
                   "location": self.catalog.location(self.database, set_id)}
            if entry["complete"]:
                manifest = self.catalog.manifest(self.database, set_id)
                row.update(size_bytes=manifest["size_bytes"], format=manifest.get("format"),
                           compression=manifest.get("compression"), finished_at=manifest.get("finished_at"),
                           tables=len(manifest.get("tables") or {}))
            rows.append(row)
        return rows

    def _verified(self, set_id):
        """The set's verification, and whether it may be restored."""
        options = dict(self.opts, backup_id=set_id, restore_test=False, checksum=True, integrity=True)
        result = Verification(options, log=self.log).run()
        bad = [c for c in result["checks"] if c["name"] in USABLE_CHECKS and c["status"] == health.FAIL]
        return result, bad

    def choose(self):
        """The named set if it verifies, else the newest complete set that verifies."""
        sets = self.catalog.sets(self.database)
        complete = sorted((k for k, v in sets.items() if v["complete"]), reverse=True)
        if not complete:
            raise RunbookError("There is no complete backup of {0} in {1}.".format(
                self.database, self.catalog.location(self.database)), cause="no_backup")
        wanted = self.opts["backup_id"]
        if wanted and wanted not in complete:
            raise RunbookError("Backup set {0} does not exist or is incomplete in {1}.".format(
                wanted, self.catalog.location(self.database)),
                hint="List the sets with list_only (pg_restore_list=true).", cause="missing_set")
        skipped = []
        for set_id in [wanted] if wanted else complete:
            result, bad = self._verified(set_id)
            if not bad:
                return set_id, result, skipped
            reason = "; ".join(c["output"] for c in bad)
            self.log("not restoring {0}: {1}".format(set_id, reason))
            skipped.append({"backup_id": set_id, "reason": reason})
        raise RunbookError("No backup of {0} passed verification: {1}".format(
            self.database, "; ".join("{0}: {1}".format(s["backup_id"], s["reason"]) for s in skipped)),
            hint="Nothing was changed.", cause="unverified", skipped=skipped)

    def run(self):
        if self.opts["list_only"]:
            return {"changed": False, "backups": self.list_sets(),
                    "msg": "Backups of {0} in {1}".format(self.database, self.catalog.location(self.database))}
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
                "Database {0} already exists; refusing to replace it.".format(self.target),
                hint="Restore into another target, or set overwrite (pg_restore_overwrite=true) to replace it; "
                     "a backup of it is taken first.", cause="target_exists")
        set_id, verification, skipped = self.choose()
        manifest = verification["manifest"]
        plan = {
            "backup_id": set_id,
            "source": self.catalog.location(self.database, set_id),
            "target": self.target,
            "target_exists": exists,
            "pre_restore_backup": exists and self.opts["pre_restore_backup"],
            "keep_previous": exists and self.opts["keep_previous"],
            "skipped": skipped,
            "verification": verification["checks"],
        }
        if self.check_mode:
            plan.update(changed=True, msg="Would restore {0} ({1}) into {2}{3}.".format(
                set_id, human_size(manifest["size_bytes"]), self.target,
                ", replacing the existing database after backing it up" if exists else " (a new database)"))
            return plan
        started = time.monotonic()
        staging = "ops_runbook_restore_{0}".format(uuid.uuid4().hex[:12])
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE {0}{1}".format(
                quote_ident(staging), " OWNER {0}".format(quote_ident(owner)) if owner else ""))
        try:
            self.log("restoring {0} into staging database {1}".format(set_id, staging))
            restore_into(self.opts, self.catalog, self.database, set_id, manifest, staging)
            counts = self._prove(staging, manifest)
            pre_backup = self._backup_target() if plan["pre_restore_backup"] else None
            previous = self._swap(admin, staging, exists)
        except BaseException:
            _drop(admin, staging)
            raise
        plan.update(
            changed=True, tables=counts, pre_restore_backup=pre_backup, previous_database=previous,
            duration_seconds=round(time.monotonic() - started, 3),
            msg="Restored {0} into {1}: {2} tables with the manifest's row counts{3}.".format(
                set_id, self.target, len(counts),
                "; the replaced database was backed up first as {0}".format(pre_backup["backup_id"])
                if pre_backup else ""))
        return plan

    def _prove(self, staging, manifest):
        conn = connect(self.opts, staging)
        try:
            counts = table_row_counts(conn)
        finally:
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
        options = dict(self.opts, database=self.target, retention=False)
        self.log("backing up {0} before replacing it".format(self.target))
        try:
            return run_backup(options, log=self.log)["summary"]
        except RunbookError as error:
            error.message = "The backup of {0} before the restore failed, so it was not replaced: {1}".format(
                self.target, error.message)
            raise

    def _swap(self, admin, staging, exists):
        """Give the staging copy the target's name; returns the old database's name if it was kept."""
        previous = None
        with admin.cursor() as cur:
            if exists:
                previous = "{0}_pre_restore_{1}".format(self.target, utc_now().strftime("%Y%m%d%H%M%S"))[:63]
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


def _wait_for_no_sessions(cur, database, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,))
        if cur.fetchone()[0] == 0:
            return
        if time.monotonic() > deadline:
            raise RunbookError("Sessions on {0} did not end after being terminated.".format(database),
                               hint="Stop the applications that use it and run the restore again.", cause="busy")
        time.sleep(0.2)


def _drop(admin, database):
    try:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS {0}".format(quote_ident(database)))
    except Exception:  # noqa: BLE001 - the original error matters more than a failed cleanup
        pass


def run_restore(options, check_mode=False, log=None):
    return Restore(options, log=log, check_mode=check_mode).run()
