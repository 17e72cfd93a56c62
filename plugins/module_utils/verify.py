# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify backup sets: are they fresh, complete, intact, and do they restore?

Each finding is a pass / warn / fail check (health.py). The dump is read
once, as a stream, for both its checksum and its integrity; an optional
restore test loads it into a scratch database that this code creates and
always drops, and compares every table's row count with the manifest.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import subprocess
import tempfile
import time
import uuid

from . import health
from .catalog import LocalCatalog, S3Catalog
from .common import RunbookError, human_size, utc_now
from .dumpfile import decompress_stages, pg_tool, reader_needs, restore_into
from .pipeline import DISCARD_REST, PipelineError, hash_alongside, stream_through
from .postgres import connect, quote_ident, table_row_counts
from .s3 import S3Store

DEFAULTS = {
    "database": None,
    "backup_dir": "/var/backups/postgresql",
    "backup_id": None,
    "max_age_hours": 26.0,
    "min_size_bytes": 1024,
    "max_size_drop": 0.5,
    "incomplete_grace_minutes": 60,
    "checksum": True,
    "integrity": True,
    "restore_test": False,
    "smoke_sql": [],
    "pg_bin_dir": None,
    "maintenance_db": "postgres",
}
PLAIN_TRAILER = b"PostgreSQL database dump complete"


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    if not opts.get("database"):
        raise RunbookError("No database was named.", hint="Set database.", cause="invalid")
    opts["smoke_sql"] = list(opts.get("smoke_sql") or [])
    return opts


def catalog_for(opts):
    if opts.get("s3_bucket"):
        return S3Catalog(S3Store(opts))
    return LocalCatalog(os.path.abspath(opts["backup_dir"]))


class Verification(object):
    def __init__(self, options, log=None, now=None, check_mode=False):
        self.opts = normalize(options)
        self.log = log or (lambda message: None)
        self.now = now or utc_now()
        self.check_mode = check_mode
        self.database = self.opts["database"]
        self.catalog = catalog_for(self.opts)
        self.checks = []

    def add(self, *args, **kwargs):
        item = health.check(*args, **kwargs)
        self.log("{0}: {1} - {2}".format(item["name"], item["status"], item["output"]))
        self.checks.append(item)
        return item

    def run(self):
        sets = self.catalog.sets(self.database)
        complete = sorted((k for k, v in sets.items() if v["complete"]), reverse=True)
        where = self.catalog.location(self.database)
        self._check_incomplete(sets)
        if not complete:
            self.add("presence", health.FAIL, 0, 1,
                     "No complete backup of {0} exists in {1}.".format(self.database, where), unit="sets")
            return self._result(None)
        self._check_freshness(complete[0], sets[complete[0]]["started_at"])
        target = self.opts["backup_id"] or complete[0]
        if target not in complete:
            raise RunbookError("Backup set {0} does not exist or is incomplete in {1}.".format(target, where),
                               hint="List the sets with check mode, or leave backup_id unset for the newest.",
                               cause="missing_set")
        manifest = self.catalog.manifest(self.database, target)
        previous = [k for k in complete if k < target]
        self._check_size(manifest, self.catalog.manifest(self.database, previous[0]) if previous else None)
        if self.opts["checksum"] or self.opts["integrity"]:
            self._scan(target, manifest)
        if self.opts["restore_test"]:
            if self.check_mode:
                self.add("restore", health.PASS, None, None,
                         "Check mode: the restore test would restore {0} into a scratch database.".format(target))
            else:
                self._restore_test(target, manifest)
        return self._result(target, manifest)

    def _result(self, target, manifest=None):
        status = health.worst(self.checks)
        failing = [c["name"] for c in self.checks if c["status"] == health.FAIL]
        summary = "Backup {0} of {1}: {2}".format(target or "(none)", self.database, status)
        if failing:
            summary += " ({0} failed)".format(", ".join(failing))
        report = {
            "database": self.database,
            "backup_id": target,
            "status": status,
            "counts": health.counts(self.checks),
            "checks": self.checks,
            "verified_at": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return {
            "changed": False,
            "report": report,
            "status": status,
            "database": self.database,
            "backup_id": target,
            "location": self.catalog.location(self.database, target) if target else
            self.catalog.location(self.database),
            "checks": self.checks,
            "counts": health.counts(self.checks),
            "manifest": manifest,
            "msg": summary,
        }

    # -- the checks ------------------------------------------------------
    def _check_incomplete(self, sets):
        grace = float(self.opts["incomplete_grace_minutes"])
        incomplete = sorted(k for k, v in sets.items() if not v["complete"])
        stale = [k for k in incomplete
                 if (self.now - sets[k]["started_at"]).total_seconds() / 60 >= grace]
        fresh = [k for k in incomplete if k not in stale]
        if stale:
            self.add("manifests", health.FAIL, len(stale), 0,
                     "Set(s) without a manifest, older than {0:g} min: {1}. A backup died before it finished; "
                     "do not restore from these.".format(grace, ", ".join(stale)), unit="sets", sets=stale)
        elif fresh:
            self.add("manifests", health.WARN, len(fresh), 0,
                     "Set(s) without a manifest yet: {0}; a backup may still be uploading.".format(", ".join(fresh)),
                     unit="sets", sets=fresh)
        else:
            self.add("manifests", health.PASS, 0, 0, "Every set has its manifest.", unit="sets")

    def _check_freshness(self, newest, started_at):
        age = (self.now - started_at).total_seconds() / 3600
        limit = float(self.opts["max_age_hours"])
        status = health.PASS if age <= limit else health.FAIL
        self.add("freshness", status, round(age, 2), limit,
                 "The newest complete backup, {0}, is {1:.1f} h old (limit {2:g} h).".format(newest, age, limit),
                 unit="hours")

    def _check_size(self, manifest, previous):
        size = manifest["size_bytes"]
        minimum = int(self.opts["min_size_bytes"])
        if size < minimum:
            self.add("size", health.FAIL, size, minimum,
                     "The dump is {0} bytes, below the minimum of {1}: it is probably empty.".format(size, minimum),
                     unit="bytes")
            return
        drop = float(self.opts["max_size_drop"])
        if previous and size < previous["size_bytes"] * (1 - drop):
            shrink = 1 - size / float(previous["size_bytes"])
            self.add("size", health.FAIL, size, int(previous["size_bytes"] * (1 - drop)),
                     "The dump is {0}, {1:.0%} smaller than the previous backup {2} ({3}); more than {4:.0%} "
                     "smaller means data is missing.".format(human_size(size), shrink, previous["backup_id"],
                                                             human_size(previous["size_bytes"]), drop),
                     unit="bytes")
            return
        self.add("size", health.PASS, size, minimum, "The dump is {0}{1}.".format(
            human_size(size), ", in line with the previous backup" if previous else ""), unit="bytes")

    def _scan(self, target, manifest):
        """One streamed read of the dump: its SHA-256, full decompression, and its table of contents."""
        opts = self.opts
        digest = hashlib.sha256()
        minimum, why = reader_needs(manifest)
        inspector = _Inspector(manifest["format"], pg_tool(opts, "pg_restore", minimum, why)
                               if manifest["format"] == "custom" else None)

        chunks = self.catalog.chunks(self.database, target, manifest["dump_file"])
        if opts["checksum"]:
            chunks = hash_alongside(chunks, digest)
        stages = decompress_stages(manifest["compression"]) if opts["integrity"] else []
        sink = inspector.feed if opts["integrity"] else (lambda data: None)
        started = time.monotonic()
        problem = None
        try:
            stream_through(chunks, stages, sink, on_discarded=inspector.skipped)
        except PipelineError as error:
            problem = str(error)
        finally:
            inspector_problem = inspector.close()
        seconds = time.monotonic() - started
        if opts["checksum"]:
            # stream_through reads the input to its end even when a stage fails, so the digest is whole.
            observed = digest.hexdigest()
            if observed == manifest["sha256"]:
                self.add("checksum", health.PASS, observed, manifest["sha256"],
                         "The dump's SHA-256 matches the manifest.")
            else:
                self.add("checksum", health.FAIL, observed, manifest["sha256"],
                         "The dump's SHA-256 does not match the manifest: the object was altered or truncated.")
        if opts["integrity"]:
            problem = problem or inspector_problem
            if problem:
                self.add("integrity", health.FAIL, "unreadable", "decompresses and lists",
                         "The dump cannot be read back: {0}".format(problem))
            else:
                self.add("integrity", health.PASS, inspector.describe(), "decompresses and lists",
                         "The dump decompresses completely ({0}) and {1}.".format(
                             human_size(inspector.bytes_out), inspector.describe()),
                         seconds=round(seconds, 3))

    def _restore_test(self, target, manifest):
        scratch = "ops_runbook_verify_{0}".format(uuid.uuid4().hex[:12])
        admin = connect(self.opts, self.opts["maintenance_db"])
        try:
            with admin.cursor() as cur:
                cur.execute("CREATE DATABASE {0}".format(quote_ident(scratch)))
            self.log("restoring {0} into scratch database {1}".format(target, scratch))
            try:
                seconds = restore_into(self.opts, self.catalog, self.database, target, manifest, scratch,
                                       keep_owners=False)
                conn = connect(self.opts, scratch)
                try:
                    counts = table_row_counts(conn)
                    smoke_failures = _run_smoke_sql(conn, self.opts["smoke_sql"])
                finally:
                    conn.close()
            except RunbookError as error:
                if error.details.get("cause") in ("missing_tool", "old_tool"):
                    raise  # this host lacks the programs: says nothing about the dump
                self.add("restore", health.FAIL, "failed", "restores",
                         "The dump does not restore: {0}".format(error))
                return
            finally:
                with admin.cursor() as cur:
                    cur.execute("DROP DATABASE IF EXISTS {0}".format(quote_ident(scratch)))
        finally:
            admin.close()
        expected = manifest.get("tables") or {}
        differences = dict((t, {"manifest": expected.get(t), "restored": counts.get(t)})
                           for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t))
        if manifest.get("row_count_method", "exact") != "exact":
            differences = {}
        if differences or smoke_failures:
            self.add("restore", health.FAIL, len(differences) + len(smoke_failures), 0,
                     "The restored copy differs from the manifest: {0}{1}".format(
                         ", ".join("{0} {1[restored]} rows instead of {1[manifest]}".format(t, d)
                                   for t, d in differences.items()),
                         "; smoke SQL failed: " + "; ".join(smoke_failures) if smoke_failures else ""),
                     differences=differences, smoke_failures=smoke_failures, seconds=round(seconds, 3))
        else:
            self.add("restore", health.PASS, round(seconds, 2), None,
                     "Restored into a scratch database in {0:.1f} s; all {1} tables have the manifest's row counts"
                     "{2}.".format(seconds, len(expected), " and the smoke SQL passed" if self.opts["smoke_sql"]
                                   else ""), unit="seconds", seconds=round(seconds, 3))


class _Inspector(object):
    """Reads the decompressed dump: a custom dump's TOC through pg_restore --list, a plain dump's trailer."""

    def __init__(self, dump_format, pg_restore):
        self.format = dump_format
        self.bytes_out = 0
        self.tail = b""
        self.proc = None
        self.entries = 0
        if pg_restore:
            self._listing = tempfile.TemporaryFile()
            self._errors = tempfile.TemporaryFile()
            self.proc = subprocess.Popen([pg_restore, "--list"], stdin=subprocess.PIPE, stdout=self._listing,
                                         stderr=self._errors)

    def feed(self, data):
        self.bytes_out += len(data)
        self.tail = (self.tail + data[-256:])[-256:]
        if self.proc is not None:
            if self.proc.stdin is not None:
                try:
                    self.proc.stdin.write(data)
                    return None
                except BrokenPipeError:
                    self.proc.stdin = None  # pg_restore has read the table of contents it needs
            # A custom dump's only trailer check is pg_restore's: the rest needs counting, not reading.
            return DISCARD_REST
        return None

    def skipped(self, count):
        """The decompressed bytes after the table of contents, discarded unread."""
        self.bytes_out += count

    def close(self):
        """Finish; return a problem sentence, or None."""
        if self.proc is None:
            if not self.bytes_out:
                return "the dump is empty"
            if PLAIN_TRAILER not in self.tail:
                return "the SQL stops before pg_dump's closing line; the dump is truncated"
            return None
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        rc = self.proc.wait()
        self._listing.seek(0)
        lines = self._listing.read().decode("utf-8", "replace").splitlines()
        self._listing.close()
        self._errors.seek(0)
        errors = self._errors.read().decode("utf-8", "replace").strip()
        self._errors.close()
        self.entries = len([line for line in lines if line.strip() and not line.startswith(";")])
        if rc != 0:
            return "pg_restore --list failed: {0}".format(errors or "exit status {0}".format(rc))
        return None

    def describe(self):
        if self.format == "custom":
            return "pg_restore lists {0} entries".format(self.entries)
        return "the SQL ends with pg_dump's closing line"


def _run_smoke_sql(conn, statements):
    failures = []
    for statement in statements:
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                row = cur.fetchone() if cur.description else None
            if row is not None and row[0] in (False, 0, None):
                failures.append("{0!r} returned {1!r}".format(statement, row[0]))
        except Exception as error:  # noqa: BLE001 - any SQL error is a failed smoke test
            conn.rollback()
            failures.append("{0!r}: {1}".format(statement, str(error).strip()))
    return failures


def verify_backup(options, check_mode=False, log=None, now=None):
    """Verify the newest (or a named) backup set of a database."""
    return Verification(options, log=log, now=now, check_mode=check_mode).run()
