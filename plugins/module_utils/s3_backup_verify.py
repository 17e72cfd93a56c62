# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify backup sets: are they fresh, complete, intact, and do they restore?

Each finding is a pass / warn / fail check (health.py). The dump is read
once, as a stream, for both its checksum and its integrity; an optional
restore test loads it into a scratch database that this code creates and
always drops, and compares every table's row count with the manifest.

A set is also checked for what it claims to be (its manifest names this
database and this set, and the host that wrote it where that is known) and
its content is compared with the previous valid set's (a table that vanished
or lost its rows). A verification that finds a damaged, missing or foreign
set, or cannot reach the store, still returns its report with the failed
check; only a configuration error raises.
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
from . import manifest as manifest_lib
from .catalog import LocalCatalog, S3Catalog, manifest_time, valid_sets
from .common import RunbookError, human_size, utc_now
from .deadline import Deadline
from .dumpfile import decompress_stages, pg_tool, reader_needs, restore_into
from .pipeline import DISCARD_REST, PipelineError, hash_alongside, stream_through
from .postgres import connect, import_psycopg2, quote_ident, table_row_counts
from .ranges import POSTGRES, Range, check_ranges
from .s3 import RANGES as S3_RANGES
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
    "max_row_drop": 0.5,
    "expected_host": None,
    # The whole verification, its restore test included, ends by then (seconds).
    "job_timeout": 21600,
}
PLAIN_TRAILER = b"PostgreSQL database dump complete"
# A failure of one of these checks means the set must not be restored (pg_restore.py skips such a set).
# `tables` is not one of them: a set whose table shrank is a faithful copy of the database, see _check_tables.
RESTORE_BLOCKING_CHECKS = ("access", "presence", "manifest", "identity", "files", "size", "checksum", "integrity")
NAMED_AT_MOST = 10  # tables named in a sentence; the check's facts list them all

# The real range of every numeric option: a limit of 0 hours (or less) would
# fail every backup, a drop of more than 1 (100%) could never be reached.
RANGES = {
    "max_age_hours": Range(0, None, integer=False, low_open=True, why="hours"),
    "min_size_bytes": Range(0, None, why="bytes"),
    "max_size_drop": Range(0, 1, integer=False, why="a fraction; 0.5 is half the previous size"),
    "incomplete_grace_minutes": Range(0, None, why="minutes"),
    "job_timeout": Range(1, None, why="seconds"),
    "max_row_drop": Range(0, 1, integer=False, why="a share of a table's rows; 0.5 warns when it lost more than half"),
}
RANGES.update(POSTGRES)
RANGES.update(S3_RANGES)


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    if not opts.get("database"):
        raise RunbookError("No database was named.", hint="Set database.", cause="invalid")
    check_ranges(opts, RANGES)
    opts["smoke_sql"] = list(opts.get("smoke_sql") or [])
    return opts


def catalog_for(opts):
    if opts.get("s3_bucket"):
        return S3Catalog(S3Store(opts))
    return LocalCatalog(os.path.abspath(opts["backup_dir"]))


class Verification(object):
    def __init__(self, options, log=None, now=None, check_mode=False, deadline=None):
        self.opts = normalize(options)
        self.deadline = deadline  # a caller's (restore's) deadline; else run() starts one of job_timeout
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
        """Every check of the set, within the job's deadline (job_timeout): what is running then is stopped
        and reported as a failed check."""
        own = self.deadline is None
        if own:
            self.deadline = Deadline(int(self.opts["job_timeout"]),
                                     "The verification of {0}".format(manifest_lib.shown(self.database)))
        store = getattr(self.catalog, "store", None)
        if store is not None:
            store.job_deadline = self.deadline
        try:
            return self._run()
        finally:
            if own:
                self.deadline.cancel()

    def _run(self):
        where = self.catalog.location(self.database)
        try:
            sets = self.catalog.sets(self.database)
        except RunbookError as error:
            # An unreachable store, a missing bucket, refused credentials: nothing can be verified, and the
            # report says so instead of vanishing with an exception.
            self.add("access", health.FAIL, "cannot list", "lists the sets",
                     "Cannot list the backups of {0} in {1}: {2}".format(self.database, where, error))
            return self._result(self.opts["backup_id"])
        complete = sorted((k for k, v in sets.items() if v["complete"]), reverse=True)
        self._check_incomplete(sets)
        if not complete:
            self.add("presence", health.FAIL, 0, 1,
                     "No complete backup of {0} exists in {1}.".format(manifest_lib.shown(self.database), where),
                     unit="sets")
            return self._result(self.opts["backup_id"])
        self._check_freshness(complete[0], sets[complete[0]]["started_at"])
        target = self.opts["backup_id"] or complete[0]
        if target not in complete:
            self.add("presence", health.FAIL, target, "a complete set",
                     "Backup set {0} does not exist or has no manifest in {1}. List the sets with check mode, or "
                     "leave backup_id unset for the newest.".format(target, where))
            return self._result(target)
        manifest = self._load_manifest(target)
        if manifest is None:
            return self._result(target)
        previous_id, previous = self._previous_valid_set(sets, target, manifest)
        same_database = self._check_identity(target, manifest, previous_id, previous)
        dump_present = self._check_files(target, manifest)
        self._check_size(manifest, previous)
        if same_database:
            self._check_tables(manifest, previous_id, previous)
        if dump_present and (self.opts["checksum"] or self.opts["integrity"]):
            try:
                self._scan(target, manifest)
            except RunbookError as error:  # pg_restore or a decompressor missing here
                self.add("integrity", health.FAIL, "not run", "decompresses and lists",
                         "The dump could not be checked here: {0}".format(error))
        if self.opts["restore_test"] and dump_present:
            if self.check_mode:
                self.add("restore", health.PASS, None, None,
                         "Check mode: the restore test would restore {0} into a scratch database.".format(target))
            else:
                self._restore_test(target, manifest)
        return self._result(target, manifest)

    def _result(self, target, manifest=None):
        status = health.worst(self.checks)
        summary = "Backup {0} of {1}: {2}".format(target or "(none)", manifest_lib.shown(self.database), status)
        problems = ["{0} {1}: {2}".format(c["name"], "failed" if c["status"] == health.FAIL else "warned",
                                          c["output"]) for c in self.checks if c["status"] != health.PASS]
        if problems:
            summary += " ({0})".format("; ".join(problems))
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
            "failed_checks": [c["name"] for c in self.checks if c["status"] == health.FAIL],
            "manifest": manifest,
            "msg": summary,
        }

    # -- what a set is -----------------------------------------------------
    def _load_manifest(self, target):
        """The target's manifest, or None after a failed `manifest` check saying what is wrong with it."""
        try:
            document = self.catalog.manifest(self.database, target)
            problems = manifest_lib.problems(document)
        except RunbookError as error:
            document, problems = None, [str(error)]
        if problems:
            self.add("manifest", health.FAIL, "damaged", "readable and complete",
                     "The manifest of {0} cannot be used: {1}. Without it the set cannot be checked or restored; "
                     "do not restore from it.".format(target, "; ".join(problems)))
            return None
        return document

    def _previous_valid_set(self, sets, target, manifest):
        """(set id, manifest) of the newest valid set that finished before `target`, or (None, None).

        Valid as retention and restore judge it (catalog.valid_sets), and every file it lists is there with
        its size. Ordered by the manifests' end times, not by names, so a set named with a skewed clock is
        not taken for the previous one.
        """
        target_end = manifest_time(manifest.get("finished_at")) or sets[target]["started_at"]
        try:
            records = valid_sets(self.catalog, self.database)
        except RunbookError:
            return None, None  # the sets were listed a moment ago; without their manifests there is nothing to compare
        for record in records:
            if record["backup_id"] == target or not record["valid"] or record["finished_at"] >= target_end:
                continue
            problems, dump_present = self._file_problems(record["backup_id"], record["manifest"])
            if not problems and dump_present:
                return record["backup_id"], record["manifest"]
        return None, None

    def _check_identity(self, target, manifest, previous_id, previous):
        """Is the set what it sits there as? Returns False when it is another database's."""
        said_database, said_id, host = manifest["database"], manifest["backup_id"], manifest.get("host")
        problems, warnings = [], []
        if said_database != self.database:
            problems.append("the manifest says database {0}".format(_shown(said_database)))
        if said_id != target:
            problems.append("the manifest says backup id {0}, so it was copied or renamed from another set".format(
                _shown(said_id)))
        expected_host = self.opts.get("expected_host")
        if expected_host:
            if not host:
                problems.append("the manifest does not say which host wrote it (expected {0})".format(
                    _shown(expected_host)))
            elif not _same_host(host, expected_host):
                problems.append("it was written on {0}, not on {1}".format(_shown(host), _shown(expected_host)))
        elif previous and host and previous.get("host") and not _same_host(host, previous["host"]):
            warnings.append("it was written on {0}, the previous backup {1} on {2}; check that the right host "
                            "backs up {3} there".format(_shown(host), previous_id, _shown(previous["host"]),
                                                        _shown(self.database)))
        observed = {"database": said_database, "backup_id": said_id, "host": host}
        threshold = {"database": self.database, "backup_id": target,
                     "host": expected_host or (previous or {}).get("host")}
        if problems:
            self.add("identity", health.FAIL, observed, threshold,
                     "Set {0} in {1} is not {2}: {3}. Do not restore it; find out what wrote it there.".format(
                         target, self.catalog.location(self.database),
                         "a backup of " + _shown(self.database) if said_database != self.database else
                         "the backup its place says", "; ".join(problems)))
        elif warnings:
            self.add("identity", health.WARN, observed, threshold,
                     "Set {0} is a backup of {1}, but {2}.".format(target, _shown(self.database), "; ".join(warnings)))
        else:
            self.add("identity", health.PASS, observed, threshold,
                     "The manifest names database {0} and set {1}{2}.".format(
                         _shown(self.database), target, ", written on {0}".format(_shown(host)) if host else ""))
        return said_database == self.database

    def _file_problems(self, set_id, manifest):
        """([sentence, ...], dump present) for the files a manifest lists, as the store has them."""
        problems = []
        dump_present = False
        for entry in manifest["files"]:
            try:
                size = self.catalog.file_size(self.database, set_id, entry["name"])
            except RunbookError as error:
                problems.append("{0} cannot be checked: {1}".format(entry["name"], error))
                continue
            if size is None:
                problems.append("{0} is missing".format(entry["name"]))
                continue
            if entry["name"] == manifest["dump_file"]:
                dump_present = True
            if size != entry["size"]:
                problems.append("{0} is {1} bytes, the manifest says {2}".format(entry["name"], size, entry["size"]))
        return problems, dump_present

    def _check_files(self, target, manifest):
        """Every file the manifest lists is there with its size. Returns whether the dump can be read."""
        problems, dump_present = self._file_problems(target, manifest)
        if problems:
            self.add("files", health.FAIL, len(problems), 0,
                     "Set {0} is not whole: {1}. Do not restore from it.".format(target, "; ".join(problems)),
                     unit="files", problems=problems)
        else:
            self.add("files", health.PASS, 0, 0, "All {0} file(s) the manifest lists are in the set with their "
                     "sizes.".format(len(manifest["files"])), unit="files")
        return dump_present

    def _check_tables(self, manifest, previous_id, previous):
        """Each table's row count against the previous valid set's.

        A table that vanished or fell to zero, or lost more than max_row_drop of its rows, is a warn, not a
        fail: the set is a faithful copy of what the database held (a migration drops tables, a queue empties),
        and a fail would fail every scheduled verification on such routine changes and make restore pass over
        a correct backup. The warn names each table with its counts in the report, the task's message and the
        host job's log, for a person to judge before retention removes the sets that still hold the rows.
        """
        if previous is None:
            self.add("tables", health.PASS, None, None,
                     "There was nothing to compare the row counts with: no earlier complete, valid backup of {0}."
                     .format(_shown(self.database)))
            return
        # A manifest without a table list recorded no counts, like row_counts: none.
        methods = tuple(document.get("row_count_method", "exact") if document.get("tables") is not None else "none"
                        for document in (manifest, previous))
        now, before = manifest.get("tables") or {}, previous.get("tables") or {}
        if "none" in methods:
            # The backups were configured without counts (row_counts: none): a choice, not a failure.
            which = "this backup" if methods[0] == "none" else "the previous backup " + previous_id
            self.add("tables", health.PASS, None, None,
                     "Row counts were not recorded in {0} (row_counts: none), so the tables were not "
                     "compared.".format(which))
            return
        exact = methods == ("exact", "exact")
        drop = self.opts["max_row_drop"]
        vanished = [t for t in sorted(before) if t not in now]
        emptied, shrunk = [], []
        if exact:
            for table in sorted(before):
                if table not in now or before[table] <= 0:
                    continue
                if now[table] == 0:
                    emptied.append(table)
                elif now[table] < before[table] * (1 - drop):
                    shrunk.append(table)
        changes = dict((t, {"before": before[t], "after": now.get(t)}) for t in vanished + emptied + shrunk)
        sentences = []
        if vanished:
            sentences.append("gone: {0}".format(_named(vanished, lambda t: "{0} ({1} -> no table)".format(
                t, before[t]))))
        if emptied:
            sentences.append("emptied: {0}".format(_named(emptied, lambda t: "{0} ({1} -> 0 rows)".format(
                t, before[t]))))
        if shrunk:
            sentences.append("lost more than {0:.0%} of their rows: {1}".format(drop, _named(
                shrunk, lambda t: "{0} ({1} -> {2} rows)".format(t, before[t], now[t]))))
        compared = "row counts" if exact else "table lists (the counts are estimates)"
        if sentences:
            self.add("tables", health.WARN, len(changes), 0,
                     "Tables changed sharply since the previous backup {0}: {1}. Check that this was intended "
                     "before older backups expire.".format(previous_id, "; ".join(sentences)),
                     unit="tables", changes=changes, previous_backup_id=previous_id)
        else:
            self.add("tables", health.PASS, 0, 0,
                     "The {0} of {1} table(s) are in line with the previous backup {2}.".format(
                         compared, len(now), previous_id), unit="tables", previous_backup_id=previous_id)

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
        status = health.grade(age, {"fail": limit})
        self.add("freshness", status, round(age, 2), limit,
                 "The newest complete backup, {0}, is {1:.1f} h old (limit {2:g} h).".format(newest, age, limit),
                 unit="hours")

    def _check_size(self, manifest, previous):
        size = manifest["size_bytes"]
        minimum = int(self.opts["min_size_bytes"])
        if health.beyond(size, minimum, health.LOWER):
            self.add("size", health.FAIL, size, minimum,
                     "The dump is {0} bytes, below the minimum of {1}: it is probably empty.".format(size, minimum),
                     unit="bytes")
            return
        drop = float(self.opts["max_size_drop"])
        if previous and health.beyond(size, previous["size_bytes"] * (1 - drop), health.LOWER):
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
            stream_through(chunks, stages, sink, on_discarded=inspector.skipped, deadline=self.deadline)
        except PipelineError as error:  # a stage failed; the input was still read to its end
            problem = str(error)
        except RunbookError as error:  # the store failed mid-read: no whole digest either
            problem = str(error)
            digest = None
        finally:
            inspector_problem = inspector.close()
        seconds = time.monotonic() - started
        if opts["checksum"]:
            # stream_through reads the input to its end even when a stage fails, so the digest is whole;
            # only a read that failed leaves it partial, and then there is no digest to compare.
            observed = digest.hexdigest() if digest is not None else "unreadable"
            if digest is None:
                self.add("checksum", health.FAIL, observed, manifest["sha256"],
                         "The dump could not be read to its end: {0}".format(problem))
            elif observed == manifest["sha256"]:
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
        try:
            psycopg2 = import_psycopg2()
            admin = connect(self.opts, self.opts["maintenance_db"])
        except RunbookError as error:
            self.add("restore", health.FAIL, "not run", "restores",
                     "The restore test could not run: {0}".format(error))
            return
        try:
            try:
                with admin.cursor() as cur:
                    cur.execute("CREATE DATABASE {0}".format(quote_ident(scratch)))
            except psycopg2.Error as error:
                self.add("restore", health.FAIL, "not run", "restores",
                         "The restore test could not create its scratch database: {0}. The login needs the "
                         "CREATEDB privilege.".format(str(error).strip()))
                return
            self.log("restoring {0} into scratch database {1}".format(target, scratch))
            try:
                seconds = restore_into(self.opts, self.catalog, self.database, target, manifest, scratch,
                                       keep_owners=False, deadline=self.deadline)
                conn = connect(self.opts, scratch)
                expiry = self.deadline.on_expiry(conn.cancel)  # ends a long count or smoke query at the deadline
                try:
                    counts = table_row_counts(conn)
                    smoke_failures = _run_smoke_sql(conn, self.opts["smoke_sql"])
                finally:
                    self.deadline.forget(expiry)
                    conn.close()
                self.deadline.check("the restore test's queries")
            except (RunbookError, psycopg2.Error) as error:
                if isinstance(error, RunbookError) and error.details.get("cause") in ("missing_tool", "old_tool"):
                    raise  # this host lacks the programs: says nothing about the dump
                if self.deadline.expired():
                    self.add("restore", health.FAIL, "not finished", "restores",
                             "The restore test did not finish: {0}".format(self.deadline.error("the restore test")))
                    return
                self.add("restore", health.FAIL, "failed", "restores",
                         "The dump does not restore: {0}".format(str(error).strip()))
                return
            finally:
                with admin.cursor() as cur:
                    # FORCE: a restore stopped at the deadline may leave its session behind for a moment.
                    cur.execute("DROP DATABASE IF EXISTS {0} WITH (FORCE)".format(quote_ident(scratch)))
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


def error_result(options, error):
    """The report of a verification that could not start (a configuration error), for the module and host job."""
    database = options.get("database")
    item = health.check("configuration", health.FAIL, "invalid", "valid options",
                        "The verification of {0} could not start: {1}".format(_shown(database), error))
    return {
        "status": health.FAIL,
        "database": database,
        "backup_id": options.get("backup_id"),
        "checks": [item],
        "counts": health.counts([item]),
        "failed_checks": ["configuration"],
        "report": {"database": database, "backup_id": options.get("backup_id"), "status": health.FAIL,
                   "counts": health.counts([item]), "checks": [item],
                   "verified_at": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")},
        "msg": "Backup verification of {0}: fail (configuration failed: {1})".format(_shown(database), error),
    }


def _same_host(one, other):
    """Host names compared as DNS does (no case, no final dot); a short name matches its FQDN's first label."""
    one, other = [str(h).strip().rstrip(".").lower() for h in (one, other)]
    if one == other:
        return True
    if "." in one and "." in other:
        return False
    return one.split(".", 1)[0] == other.split(".", 1)[0]


def _shown(value):
    """A name as data in a sentence: printable names as they are, anything else quoted with escapes."""
    if isinstance(value, str) and value and value.isprintable():
        return value
    return repr(value)


def _named(tables, describe):
    shown = [describe(t) for t in tables[:NAMED_AT_MOST]]
    if len(tables) > NAMED_AT_MOST:
        shown.append("and {0} more".format(len(tables) - NAMED_AT_MOST))
    return ", ".join(shown)


def verify_backup(options, check_mode=False, log=None, now=None):
    """Verify the newest (or a named) backup set of a database."""
    return Verification(options, log=log, now=now, check_mode=check_mode).run()
