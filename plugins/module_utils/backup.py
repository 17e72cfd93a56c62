# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup engine: dump one database, prove the set complete, ship it, prune.

Used unchanged by the pg_backup module, the scheduled job on hosts
(backup_job.py), the tests and the benchmark.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import os
import pwd
import shutil
import socket
import threading
import time

from . import manifest as manifest_lib
from .catalog import PARTIAL_SUFFIX, LocalCatalog, S3Catalog, complete_sets
from .common import RunbookError, human_size, isoformat, utc_now
from .dumpfile import pg_tool, program, server_needs, tool_version
from .locking import HostLock
from .pipeline import copy_to_file, run_to_file
from .postgres import connect, endpoint, libpq_environment, server_info, table_row_counts
from .retention import select_for_deletion
from .s3 import GrowingFileUpload, S3Store, part_size_for

TOOL = "ops.runbook pg_backup"
LOCK_NAME = ".ops-runbook-pg-backup.lock"
SECRET_OPTIONS = ("login_password", "aws_secret_key", "aws_session_token")

# The engine's own options and their defaults; the module's argument spec and
# the host-side job both take their defaults from here.
DEFAULTS = {
    "database": None,
    "format": "custom",
    "compression": "zstd",
    "compression_level": None,
    "compression_threads": 1,
    "globals": False,
    "backup_dir": "/var/backups/postgresql",
    "config_files": [],
    "keep_days": 7,
    "keep_count": None,
    "s3_keep_days": None,
    "s3_keep_count": None,
    "lock_timeout": 300,
    "retention": True,
    "row_counts": "exact",
    "pg_bin_dir": None,
}
CHOICES = {
    "format": ["custom", "plain"],
    "compression": ["zstd", "gzip", "none"],
    "row_counts": ["exact", "estimate", "none"],
}
# zstd -1: on the 1 GB benchmark database (bench/backup_bench.py) the dump took 5.6 s
# at level 1 against 9.3 s at level 3, for an output no larger (185.0 MB against 187.3 MB):
# pg_dump, not the compressor, should be what a backup waits for.
DEFAULT_LEVEL = {"zstd": 1, "gzip": 6, "none": None}

# The dump is uploaded while pg_dump writes it, so its part size is chosen
# before its size is known, from this upper estimate. Uncompressed output is
# COPY text: bytea doubles as hex and TOAST-compressed values expand, so allow
# four times pg_database_size; compressed output rarely reaches the database's
# size, so twice it is generous. A dump that outgrows the estimate all the same
# still arrives whole: streaming stops and it is uploaded after the dump.
DUMP_SIZE_FACTOR = {"none": 4, "zstd": 2, "gzip": 2}


def dump_part_size(minimum, database_size, compression):
    """Part size for streaming a dump of a database of `database_size` bytes."""
    return part_size_for(minimum, DUMP_SIZE_FACTOR[compression] * database_size)


def normalize(options):
    """Options with defaults filled in and checked, as the engine uses them."""
    opts = dict(DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    if not opts.get("database"):
        raise RunbookError("No database was named.", hint="Set database.", cause="invalid")
    for name, allowed in CHOICES.items():
        if opts[name] not in allowed:
            raise RunbookError("{0} must be one of {1}, not '{2}'.".format(name, ", ".join(allowed), opts[name]),
                               cause="invalid")
    for name in ("keep_days", "keep_count", "s3_keep_days", "s3_keep_count", "lock_timeout"):
        if opts.get(name) is not None and int(opts[name]) < 0:
            raise RunbookError("{0} cannot be negative ({1}).".format(name, opts[name]), cause="invalid")
    if opts["compression_level"] is None:
        opts["compression_level"] = DEFAULT_LEVEL[opts["compression"]]
    opts["config_files"] = list(opts.get("config_files") or [])
    opts["backup_dir"] = os.path.abspath(opts["backup_dir"])
    return opts


def _compressor(opts):
    """The compression stage of the pipeline, or None."""
    kind, level = opts["compression"], opts["compression_level"]
    if kind == "none":
        return None
    path = program(kind)
    if kind == "zstd":
        return ("zstd", [path, "-q", "-c", "-{0}".format(level), "-T{0}".format(opts["compression_threads"])])
    return ("gzip", [path, "-c", "-{0}".format(level)])


def _tool_version(path):
    return tool_version(path)


# -- the job -----------------------------------------------------------------

class BackupJob(object):
    def __init__(self, options, log=None, now=None):
        self.opts = normalize(options)
        self.log = log or (lambda message: None)
        self.started = now or utc_now()
        self.database = self.opts["database"]
        self.db_root = os.path.join(self.opts["backup_dir"], self.database)
        self.backup_id = manifest_lib.backup_id(self.database, self.started)
        self.store = S3Store(self.opts) if self.opts.get("s3_bucket") else None
        self.local = LocalCatalog(self.opts["backup_dir"])
        self.remote = S3Catalog(self.store) if self.store else None
        self.dump_name = manifest_lib.dump_file_name(self.database, self.opts["format"], self.opts["compression"])

    def _preflight(self):
        """Everything that can fail before a byte is dumped, with its own message."""
        opts = self.opts
        self.compressor = _compressor(opts)
        for path in opts["config_files"]:
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise RunbookError("The config file {0} to back up does not exist or is not readable.".format(path),
                                   hint="Fix config_files or run the backup as a user that can read it.",
                                   cause="config_file")
        conn = connect(opts, self.database)
        try:
            self.server = server_info(conn)
            with conn.cursor() as cur:
                cur.execute("SELECT pg_database_size(current_database())")
                self.database_size = int(cur.fetchone()[0])
        finally:
            conn.close()
        # pg_dump older than the server refuses it: the programs are chosen by the server's version.
        minimum, why = server_needs(self.server, endpoint(opts))
        self.pg_dump = pg_tool(opts, "pg_dump", minimum, why)
        self.pg_dumpall = pg_tool(opts, "pg_dumpall", minimum, why) if opts["globals"] else None
        if self.store:
            self.store.check_bucket()

    def plan(self):
        """What a run would do, for check mode. Reads, never writes."""
        self._preflight()
        existing = complete_sets(self.local, self.database) + [(self.backup_id, self.started)]
        files = [self.dump_name]
        if self.opts["globals"]:
            files.append(manifest_lib.globals_file_name(self.opts["compression"]))
        files.extend(manifest_lib.config_file_name(p) for p in self.opts["config_files"])
        result = {
            "changed": True,
            "backup_id": self.backup_id,
            "database": self.database,
            "database_size_bytes": self.database_size,
            "server_version": self.server["version"],
            "local_path": os.path.join(self.db_root, self.backup_id),
            "files": files,
            "retention": {
                "local_would_delete": select_for_deletion(existing, self.started, self.opts["keep_days"],
                                                          self.opts["keep_count"]),
                "local_partial_would_remove": self.local.partials(self.database),
            },
            "msg": "Would back up database {0} ({1}) to {2}".format(
                self.database, human_size(self.database_size), os.path.join(self.db_root, self.backup_id)),
        }
        if self.remote:
            result["s3_uri"] = self.remote.location(self.database, self.backup_id)
            result["retention"]["s3_would_delete"] = select_for_deletion(
                complete_sets(self.remote, self.database) + [(self.backup_id, self.started)],
                self.started, self.opts["s3_keep_days"], self.opts["s3_keep_count"])
            result["msg"] += " and upload it to " + result["s3_uri"]
        return result

    def run(self):
        clock = time.monotonic()
        self._preflight()
        self._make_db_root()
        with HostLock(os.path.join(self.opts["backup_dir"], LOCK_NAME), self.opts["lock_timeout"]):
            removed_partials = self._remove_stale_partials()
            final_dir = self._claim_backup_id()
            dump_upload = self._dump_upload()
            try:
                document = self._write_local_set(final_dir, dump_upload)
                self.log("backup set {0} complete: {1}, sha256 {2}".format(
                    final_dir, human_size(document["size_bytes"]), document["sha256"]))
                s3_keys = self._upload(final_dir, document, dump_upload) if self.store else []
            finally:
                if dump_upload:
                    dump_upload.abort()  # stops its thread on every path; a no-op once completed
            retention = self._apply_retention() if self.opts["retention"] else {}
        retention["local_partial_removed"] = removed_partials
        duration = round(time.monotonic() - clock, 3)
        result = {
            "changed": True,
            "backup_id": self.backup_id,
            "database": self.database,
            "local_path": final_dir,
            "dump_path": os.path.join(final_dir, document["dump_file"]),
            "size_bytes": document["size_bytes"],
            "sha256": document["sha256"],
            "duration_seconds": duration,
            "files": document["files"],
            "tables": document["tables"],
            "server_version": self.server["version"],
            "manifest": document,
            "retention": retention,
            "msg": "Backed up database {0} to {1} ({2}, sha256 {3}) in {4:.1f} s".format(
                self.database, final_dir, human_size(document["size_bytes"]), document["sha256"], duration),
        }
        if self.remote:
            result["s3_uri"] = self.remote.location(self.database, self.backup_id)
            result["s3_keys"] = s3_keys
            result["msg"] += " and uploaded it to " + result["s3_uri"]
        return result

    def _claim_backup_id(self, attempts=3):
        """The set's final directory, under an id no other set has, here or in S3.

        Ids have one-second resolution, so a run that starts in the same second
        as the previous one (it waited for this host's lock, a script runs two
        back to back, another host backs up a database of the same name under
        the same S3 prefix) moves its start to the next second instead of
        failing or, in S3, overwriting the other set's objects.
        """
        for _attempt in range(attempts):
            final_dir = os.path.join(self.db_root, self.backup_id)
            in_s3 = self.store and next(
                self.store.list_objects(self.store.key(self.database, self.backup_id) + "/"), None) is not None
            if not os.path.exists(final_dir) and not in_s3:
                return final_dir
            following = self.started.replace(microsecond=0) + datetime.timedelta(seconds=1)
            wait = (following - utc_now()).total_seconds()
            if wait > 0:
                time.sleep(wait)
            self.started = following
            self.backup_id = manifest_lib.backup_id(self.database, self.started)
        raise RunbookError("A backup set {0} already exists.".format(final_dir),
                           hint="Sets are named by the second they start in; run again.", cause="exists")

    def _make_db_root(self):
        """Create <backup_dir>/<database>, or say whose permissions stand in the way."""
        try:
            for path in (self.opts["backup_dir"], self.db_root):
                if not os.path.isdir(path):
                    os.makedirs(path, 0o750)  # only the leaf takes the mode: create both levels in turn
            if not os.access(self.db_root, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        except OSError as error:
            raise RunbookError(
                "Cannot write backups to {0} as user {1}: {2}.".format(
                    self.db_root, _current_user(), error.strerror or error),
                hint="Give that user write access to backup_dir (or its parent), run the backup as a user "
                     "who has it (pg_backup_user with pg_backup_become), or set backup_dir elsewhere.",
                cause="backup_dir")

    def _remove_stale_partials(self):
        """Partial sets left by a run that died. We hold the lock, so none is in progress."""
        partial = self.local.partials(self.database)
        for path in partial:
            self.log("removing partial set {0} left by an interrupted run".format(path))
            shutil.rmtree(path, ignore_errors=True)
        return partial

    def _dump_upload(self):
        """The dump's upload to S3, started with pg_dump and completed by _upload.

        Its object carries the backup id but no sha256 metadata: the digest is
        known only once the dump is written, after the upload began, and the
        manifest (uploaded last) is where restore and verify read it.
        """
        if not self.store:
            return None
        key = self.store.key(self.database, self.backup_id, self.dump_name)
        return GrowingFileUpload(
            self.store, key, dump_part_size(self.store.part_size, self.database_size, self.opts["compression"]),
            metadata={"backup-id": self.backup_id},
            on_first_part=lambda: self.log("uploading {0} to s3://{1}/{2} while it is written".format(
                self.dump_name, self.store.bucket, key)))

    def _write_local_set(self, final_dir, dump_upload=None):
        opts = self.opts
        partial = os.path.join(self.db_root, "." + self.backup_id + PARTIAL_SUFFIX)
        os.makedirs(partial, 0o750)
        try:
            files, tables, snapshot_used = self._dump(partial, dump_upload)
            if opts["globals"]:
                name = manifest_lib.globals_file_name(opts["compression"])
                stages = [("pg_dumpall", [self.pg_dumpall, "--globals-only", "--no-password",
                                          "--database", self.database])]
                stages += [self.compressor] if self.compressor else []
                size, digest = run_to_file(stages, os.path.join(partial, name),
                                           env=libpq_environment(opts, self.database, TOOL))
                files.append({"name": name, "role": "globals", "size": size, "sha256": digest})
            if opts["config_files"]:
                os.mkdir(os.path.join(partial, "config"))
            for path in opts["config_files"]:
                name = manifest_lib.config_file_name(path)
                size, digest = copy_to_file(path, os.path.join(partial, name))
                files.append({"name": name, "role": "config", "source": path, "size": size, "sha256": digest})
            finished = utc_now()
            document = manifest_lib.build(
                self.backup_id, self.database, isoformat(self.started), isoformat(finished), files,
                duration_seconds=round((finished - self.started).total_seconds(), 3), tool=TOOL, host=socket.getfqdn(),
                server={"host": opts.get("login_host") or "local socket", "port": opts.get("login_port") or 5432,
                        "version": self.server["version"], "version_num": self.server["version_num"],
                        "in_recovery": self.server["in_recovery"]},
                pg_dump_version=_tool_version(self.pg_dump),
                format=opts["format"], compression=opts["compression"],
                compression_level=opts["compression_level"],
                database_size_bytes=self.database_size,
                tables=tables, row_count_method=opts["row_counts"], snapshot_consistent=snapshot_used,
            )
            manifest_path = os.path.join(partial, manifest_lib.MANIFEST_NAME)
            with open(manifest_path, "x") as handle:
                handle.write(manifest_lib.dumps(document))
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(partial, final_dir)
            _fsync_dir(self.db_root)
            return document
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def _dump(self, partial, dump_upload=None):
        """pg_dump | compressor > file, with row counts taken in pg_dump's own snapshot.

        `dump_upload` (a GrowingFileUpload) sends the file's parts to S3 while it grows.
        """
        opts = self.opts
        snap_conn = None
        snapshot = None
        if opts["row_counts"] != "none":
            snap_conn = connect(opts, self.database, autocommit=False)
            with snap_conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try:
                    cur.execute("SELECT pg_export_snapshot()")
                    snapshot = cur.fetchone()[0]
                except Exception:  # noqa: BLE001 - older servers or standbys: counts without a shared snapshot
                    snap_conn.rollback()
                    snap_conn.autocommit = True
        args = [self.pg_dump, "--no-password", "--format=" + opts["format"], "--dbname", self.database]
        if opts["format"] == "custom":
            args.append("--compress=0")
        if snapshot:
            args.append("--snapshot=" + snapshot)
        stages = [("pg_dump", args)] + ([self.compressor] if self.compressor else [])
        counts = {}
        failure = []

        def count_rows():
            try:
                counts.update(table_row_counts(snap_conn, exact=opts["row_counts"] == "exact"))
            except Exception as error:  # noqa: BLE001 - reported after the dump, with the dump's own errors first
                failure.append(error)

        counter = threading.Thread(target=count_rows) if snap_conn is not None else None
        try:
            if counter:
                counter.start()
            self.log("dumping {0} with {1}".format(self.database, " | ".join(s[0] for s in stages)))
            dump_path = os.path.join(partial, self.dump_name)
            if dump_upload:
                dump_upload.start(dump_path)
            size, digest = run_to_file(stages, dump_path, env=libpq_environment(opts, self.database, TOOL))
            if dump_upload:
                dump_upload.writer_finished(size)
        finally:
            if counter:
                counter.join()
            if snap_conn is not None:
                _close_quietly(snap_conn)
        if failure:
            raise RunbookError("Counting the rows of {0} failed: {1}".format(self.database, failure[0]),
                               cause="row_counts")
        files = [{"name": self.dump_name, "role": "dump", "size": size, "sha256": digest}]
        return files, counts, bool(snapshot)

    def _upload(self, final_dir, document, dump_upload):
        """Finish the dump's upload, upload every other file, then the manifest;
        on failure remove what this run uploaded."""
        uploaded = []
        try:
            for entry in document["files"]:
                key = self.store.key(self.database, self.backup_id, entry["name"])
                if entry["role"] == "dump" and dump_upload.complete():
                    self.log("completed the upload of {0} to s3://{1}/{2}".format(
                        entry["name"], self.store.bucket, key))
                else:
                    self.log("uploading {0} to s3://{1}/{2}".format(entry["name"], self.store.bucket, key))
                    self.store.upload_file(os.path.join(final_dir, entry["name"]), key,
                                           metadata={"sha256": entry["sha256"], "backup-id": self.backup_id})
                uploaded.append(key)
            key = self.store.key(self.database, self.backup_id, manifest_lib.MANIFEST_NAME)
            self.store.upload_file(os.path.join(final_dir, manifest_lib.MANIFEST_NAME), key)
            uploaded.append(key)
            return uploaded
        except BaseException as error:
            if uploaded:
                try:
                    self.store.delete_keys(uploaded)
                except RunbookError:
                    pass  # without a manifest these objects never count as a backup
            if isinstance(error, RunbookError):
                error.message = "{0} The local backup set {1} is complete and was kept.".format(
                    error.message, final_dir)
            raise

    def _apply_retention(self):
        """Prune each place the sets are kept by its own limits; the newest always stays."""
        opts = self.opts
        now = utc_now()
        places = [("local", self.local, opts["keep_days"], opts["keep_count"])]
        if self.remote:
            places.append(("s3", self.remote, opts["s3_keep_days"], opts["s3_keep_count"]))
        result = {}
        for label, catalog, keep_days, keep_count in places:
            doomed = select_for_deletion(complete_sets(catalog, self.database), now, keep_days, keep_count)
            for set_id in doomed:
                self.log("retention: deleting {0}".format(catalog.location(self.database, set_id)))
                catalog.delete_set(self.database, set_id)
            result[label + "_deleted"] = doomed
        if self.remote:
            result["s3_incomplete"] = sorted(k for k, v in self.remote.sets(self.database).items()
                                             if not v["complete"])
        return result


def _current_user():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _close_quietly(conn):
    """End the snapshot transaction; a dead server must not hide the dump's own error."""
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone with the server
        pass
    finally:
        conn.close()


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SUMMARY_KEYS = ("backup_id", "database", "local_path", "s3_uri", "size_bytes", "sha256", "duration_seconds")


def run_backup(options, check_mode=False, log=None, now=None):
    """Back up one database; in check mode, report what would happen."""
    job = BackupJob(options, log=log, now=now)
    result = job.plan() if check_mode else job.run()
    result["summary"] = dict((k, result[k]) for k in SUMMARY_KEYS if k in result)
    return result
