# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup engine: dump one database, prove the set complete, ship it, prune.

Used unchanged by the pg_backup module, the scheduled job on hosts
(pg_backup_cli.py), the tests and the benchmark.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import os
import shutil
import socket
import threading
import time

from . import manifest as manifest_lib
from . import retention as retention_lib
from .catalog import PARTIAL_SUFFIX, LocalCatalog, S3Catalog, valid_sets
from .common import RunbookError, human_size, isoformat, utc_now
from .deadline import Deadline
from .dumpfile import pg_tool, program, server_needs, tool_version
from .filemodes import FileModes, current_user
from .locking import HostLock
from .pipeline import PipelineError, bytes_read, copy_to_file, run_to_file
from .job_progress import Progress, rate
from .postgres import connect, conninfo, endpoint, interrupt, libpq_environment, server_info, table_row_counts
from .ranges import POSTGRES, Range, check_ranges, invalid
from .s3 import RANGES as S3_RANGES
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
    "job_timeout": 21600,
    "dump_lock_timeout": 300,
    "retention": True,
    "row_counts": "exact",
    "pg_bin_dir": None,
    "kind": "manual",
    "backup_group": None,
    # Free-form names for the set ({"deploy_id": ..., "release": ...}), recorded in its manifest as "labels" when
    # given; manifests without labels stay as they were, and verify and restore never need them.
    "labels": None,
}
# Why a set was taken, recorded in its manifest as "kind": restore's default
# choice never takes a pre-restore set (the data a restore replaced).
KINDS = ["scheduled", "manual", "pre-restore", "pre-deploy"]
CHOICES = {
    "format": ["custom", "plain"],
    "compression": ["zstd", "gzip", "none"],
    "row_counts": ["exact", "estimate", "none"],
    "kind": KINDS,
}
# zstd -1: on the 1 GB benchmark database (bench/backup_bench.py) the dump took 5.6 s
# at level 1 against 9.3 s at level 3, for an output no larger (185.0 MB against 187.3 MB):
# pg_dump, not the compressor, should be what a backup waits for.
DEFAULT_LEVEL = {"zstd": 1, "gzip": 6, "none": None}
# The levels each compressor really applies. zstd takes 20 to 22 only with
# --ultra and otherwise lowers any higher level to 19 without a word, so a
# manifest would record a level that was never used; gzip refuses above 9.
LEVELS = {
    "zstd": Range(1, 19, why="zstd's levels without --ultra"),
    "gzip": Range(1, 9, why="gzip's levels"),
}
# The real range of every other numeric option. Retention beyond a century
# would overflow the date arithmetic; zstd starts at most 256 threads.
RANGES = {
    "compression_threads": Range(0, 256, why="zstd threads; 0 means one per core"),
    "keep_days": Range(0, 36500, why="days"),
    "keep_count": Range(0, 1000000),
    "s3_keep_days": Range(0, 36500, why="days"),
    "s3_keep_count": Range(0, 1000000),
    "lock_timeout": Range(0, 86400, why="seconds"),
    # Deadlines: a backup must end in bounded time, so never 0 for "for ever".
    "job_timeout": Range(1, None, why="seconds"),
    "dump_lock_timeout": Range(1, 86400, why="seconds"),
}
RANGES.update(POSTGRES)
RANGES.update(S3_RANGES)

# The dump is uploaded while pg_dump writes it, so its part size is chosen
# before its size is known, from this upper estimate. Uncompressed output is
# COPY text: bytea doubles as hex and TOAST-compressed values expand, so allow
# four times pg_database_size; compressed output rarely reaches the database's
# size, so twice it is generous. A dump that outgrows the estimate all the same
# still arrives whole: streaming stops and it is uploaded after the dump.
DUMP_SIZE_FACTOR = {"none": 4, "zstd": 2, "gzip": 2}
CLIENT_CHECK_MS = 5000


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
    if opts["compression"] == "none" and opts["compression_level"] is not None:
        raise invalid([{"option": "compression_level", "value": opts["compression_level"],
                        "allowed": "unset with compression none"}])
    check_ranges(opts, dict(RANGES, compression_level=LEVELS.get(opts["compression"], Range())))
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
    def __init__(self, options, log=None, now=None, progress=None):
        self.opts = normalize(options)
        self.log = log or (lambda message: None)
        self.progress = progress or Progress()
        self.blocker_seen = None  # the session pg_dump last waited behind, from the progress probe
        self.modes = None  # the files' modes and group, known once _preflight has checked the group
        self.warnings = []
        self.started = now or utc_now()
        self.database = manifest_lib.check_database_name(self.opts["database"])
        self.shown = manifest_lib.shown(self.database)  # the name as messages show it
        self.db_root = os.path.join(self.opts["backup_dir"], manifest_lib.safe_name(self.database))
        # This run's mark: the random part of its id, and in its manifest and objects, so that
        # the set it reports is provably the one it wrote, whoever else writes to the prefix.
        self.writer = manifest_lib.new_writer()
        self.backup_id = manifest_lib.backup_id(self.database, self.started, self.writer)
        self.store = S3Store(self.opts) if self.opts.get("s3_bucket") else None
        self.local = LocalCatalog(self.opts["backup_dir"])
        self.remote = S3Catalog(self.store) if self.store else None
        self.dump_name = manifest_lib.dump_file_name(self.database, self.opts["format"], self.opts["compression"])
        self.deadline = Deadline(None, "The backup of {0}".format(self.database))

    def _preflight(self):
        """Everything that can fail before a byte is dumped, with its own message."""
        opts = self.opts
        # A host without any pg_dump hears that first; which one is used depends on the server's version.
        pg_tool(opts, "pg_dump")
        # A group that does not exist, or is not ours to give, is refused here (after pg_dump: a host
        # without PostgreSQL has no postgres group either, and the missing program is its real fault).
        self.modes = FileModes(opts["backup_group"])
        self.compressor = _compressor(opts)
        for path in opts["config_files"]:
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise RunbookError("The config file {0} to back up does not exist or is not readable.".format(path),
                                   hint="Fix config_files or run the backup as a user that can read it.",
                                   cause="config_file")
        conn = connect(opts, self.database)
        expiry = self.deadline.on_expiry(lambda: interrupt(conn))
        try:
            self.server = server_info(conn)
            with conn.cursor() as cur:
                cur.execute("SELECT pg_database_size(current_database())")
                self.database_size = int(cur.fetchone()[0])
        except Exception:
            self.deadline.check("PostgreSQL at " + _pg_where(opts))
            raise
        finally:
            self.deadline.forget(expiry)
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
            "kind": self.opts["kind"],
            "retention": {"local_partial_would_remove": self.local.partials(self.database)},
            "warnings": [],
            "msg": "Would back up database {0} ({1}) to {2}".format(
                self.shown, human_size(self.database_size), os.path.join(self.db_root, self.backup_id)),
        }
        if self.opts["retention"]:
            # The same decisions as a run's, with the set this run would write counted as written now.
            decisions = self._retention_decisions(pending=True)
            result["retention"].update(self._retention_result(decisions, "would_delete"))
            result["warnings"].extend(decisions["warnings"])
        if self.remote:
            result["s3_uri"] = self.remote.location(self.database, self.backup_id)
            result["msg"] += " and upload it to " + result["s3_uri"]
        return result

    def run(self):
        """The backup, under the job's deadline (job_timeout): when it passes, pg_dump and its compressor
        are killed, queries interrupted, the upload aborted, the partial set removed and the lock released."""
        self.deadline = Deadline(int(self.opts["job_timeout"]), "The backup of {0}".format(self.database))
        if self.store:
            self.store.job_deadline = self.deadline
        try:
            return self._run()
        finally:
            self.deadline.cancel()

    def _run(self):
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
            retention, warnings = self._apply_retention() if self.opts["retention"] else ({}, [])
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
            "kind": document["kind"],
            "retention": retention,
            "warnings": list(self.warnings) + warnings,
            "msg": "Backed up database {0} to {1} ({2}, sha256 {3}) in {4:.1f} s".format(
                self.shown, final_dir, human_size(document["size_bytes"]), document["sha256"], duration),
        }
        if self.remote:
            result["s3_uri"] = self.remote.location(self.database, self.backup_id)
            result["s3_keys"] = s3_keys
            result["msg"] += " and uploaded it to " + result["s3_uri"]
        return result

    def _claim_backup_id(self, attempts=3):
        """The set's final directory, under an id no other set has, here or in S3.

        Each run's id has a random writer part, so hosts backing up a database of
        the same name under one S3 prefix in the same second get sets of their own
        (and S3 refuses to overwrite an existing key all the same, see _upload).
        On this host a run that starts in the second of the previous set (it waited
        for the lock, a script runs two back to back) moves to the next second, so
        that this host's sets stay ordered by their ids.
        """
        for _attempt in range(attempts):
            final_dir = os.path.join(self.db_root, self.backup_id)
            second = self.started.replace(microsecond=0)
            same_second = any(entry["started_at"] == second for entry in self.local.sets(self.database).values())
            in_s3 = self.store and next(
                self.store.list_objects(self.remote.key(self.database, self.backup_id) + "/"), None) is not None
            if not same_second and not os.path.exists(final_dir) and not in_s3:
                return final_dir
            if same_second:
                following = second + datetime.timedelta(seconds=1)
                wait = (following - utc_now()).total_seconds()
                if wait > 0:
                    time.sleep(wait)
                self.started = following
            self.writer = manifest_lib.new_writer()
            self.backup_id = manifest_lib.backup_id(self.database, self.started, self.writer)
        raise RunbookError("A backup set {0} already exists.".format(final_dir),
                           hint="Run again; a new run draws a new id.", cause="exists")

    def _make_db_root(self):
        """Create <backup_dir>/<database>, or say whose permissions stand in the way.

        What this creates gets the directory mode (0700, or 0750 with backup_group);
        missing parents of backup_dir get 0755 less the umask, like mkdir -p. A
        directory that exists is left as it is (it may be the operator's mount
        point or shared with other tools), with a warning where it lets other
        users in further than the configured mode would.
        """
        try:
            _make_parents(os.path.dirname(self.opts["backup_dir"]))
            for path in (self.opts["backup_dir"], self.db_root):
                if not os.path.isdir(path):
                    try:
                        self.modes.mkdir(path)
                        continue
                    except FileExistsError:
                        pass  # another run created it meanwhile
                wider = self.modes.wider(path)
                if wider:
                    self._warn("{0} is open to {1} (mode {2:04o}) beyond the backups' {3:04o}: the set names "
                               "(database names and times) are visible there; the sets themselves are {3:04o}. "
                               "Tighten it with chmod {4}.".format(
                                   path, _audience(wider), os.stat(path).st_mode & 0o777, self.modes.dir,
                                   "g-rwx,o-rwx" if self.modes.gid is None else "g-w,o-rwx"))
            if not os.access(self.db_root, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        except OSError as error:
            raise RunbookError(
                "Cannot write backups to {0} as user {1}: {2}.".format(
                    self.db_root, current_user(), error.strerror or error),
                hint="Give that user write access to backup_dir (or its parent), run the backup as a user "
                     "who has it (postgres_become_user with postgres_become in a playbook, pg_backup_user for "
                     "the pg_backup role's scheduled job), or set backup_dir elsewhere.",
                cause="backup_dir")

    def _warn(self, message):
        self.log("warning: " + message)
        self.warnings.append(message)

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
        key = self.remote.key(self.database, self.backup_id, self.dump_name)
        return GrowingFileUpload(
            self.store, key, dump_part_size(self.store.part_size, self.database_size, self.opts["compression"]),
            metadata=self._object_metadata(), exclusive=True,
            on_first_part=lambda: self.log("uploading {0} to s3://{1}/{2} while it is written".format(
                self.dump_name, self.store.bucket, key)))

    def _write_local_set(self, final_dir, dump_upload=None):
        opts = self.opts
        partial = os.path.join(self.db_root, "." + self.backup_id + PARTIAL_SUFFIX)
        self.modes.mkdir(partial)
        try:
            files, tables, snapshot_used = self._dump(partial, dump_upload)
            if opts["globals"]:
                name = manifest_lib.globals_file_name(opts["compression"])
                stages = [("pg_dumpall", [self.pg_dumpall, "--globals-only", "--no-password",
                                          "--database", conninfo(self.database)])]
                stages += [self.compressor] if self.compressor else []
                size, digest = run_to_file(stages, os.path.join(partial, name),
                                           env=self._client_env(), deadline=self.deadline, modes=self.modes)
                files.append({"name": name, "role": "globals", "size": size, "sha256": digest})
            if opts["config_files"]:
                self.modes.mkdir(os.path.join(partial, "config"))
            for path in opts["config_files"]:
                name = manifest_lib.config_file_name(path)
                size, digest = copy_to_file(path, os.path.join(partial, name), modes=self.modes)
                files.append({"name": name, "role": "config", "source": path, "size": size, "sha256": digest})
            finished = utc_now()
            document = manifest_lib.build(
                self.backup_id, self.database, isoformat(self.started), manifest_lib.end_stamp(finished), files,
                duration_seconds=round((finished - self.started).total_seconds(), 3), tool=TOOL, host=socket.getfqdn(),
                server={"host": opts.get("login_host") or "local socket", "port": opts.get("login_port") or 5432,
                        "version": self.server["version"], "version_num": self.server["version_num"],
                        "in_recovery": self.server["in_recovery"]},
                pg_dump_version=_tool_version(self.pg_dump),
                format=opts["format"], compression=opts["compression"],
                compression_level=opts["compression_level"],
                database_size_bytes=self.database_size,
                tables=tables, row_count_method=opts["row_counts"], snapshot_consistent=snapshot_used,
                kind=opts["kind"],
                writer=self.writer,
                **({"labels": dict((str(k), str(v)) for k, v in opts["labels"].items())} if opts["labels"] else {})
            )
            manifest_path = os.path.join(partial, manifest_lib.MANIFEST_NAME)
            with self.modes.create(manifest_path) as handle:
                handle.write(manifest_lib.dumps(document).encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(partial, final_dir)
            _fsync_dir(self.db_root)
            return document
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def _client_env(self):
        """libpq environment for pg_dump/pg_dumpall. On PostgreSQL 14 and later their server sessions check
        every CLIENT_CHECK_MS that the client still exists, so a dump killed at the deadline while its
        query waits (behind a lock) leaves no session behind holding locks of its own."""
        env = libpq_environment(self.opts, self.database, TOOL)
        if self.server["version_num"] >= 140000:
            option = "-c client_connection_check_interval={0}".format(CLIENT_CHECK_MS)
            env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + option).strip()
        return env

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
                if self.server["version_num"] >= 140000:
                    cur.execute("SET client_connection_check_interval = {0}".format(CLIENT_CHECK_MS))
                try:
                    cur.execute("SELECT pg_export_snapshot()")
                    snapshot = cur.fetchone()[0]
                except Exception:  # noqa: BLE001 - older servers or standbys: counts without a shared snapshot
                    snap_conn.rollback()
                    snap_conn.autocommit = True
        # conninfo(): a database named like a connection string or URI is still only a name.
        args = [self.pg_dump, "--no-password", "--format=" + opts["format"], "--dbname", conninfo(self.database),
                "--lock-wait-timeout={0}".format(int(opts["dump_lock_timeout"]) * 1000)]
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
        expiry = self.deadline.on_expiry(lambda: interrupt(snap_conn)) if snap_conn is not None else None
        try:
            if counter:
                counter.start()
            self.log("dumping {0} with {1}".format(self.shown, " | ".join(s[0] for s in stages)))
            dump_path = os.path.join(partial, self.dump_name)
            if dump_upload:
                dump_upload.start(dump_path)
            watcher = DumpWatcher(self, dump_path, dump_upload)
            self.progress.watch(watcher.line)
            try:
                size, digest = run_to_file(stages, dump_path, env=self._client_env(),
                                           deadline=self.deadline, modes=self.modes, on_start=watcher.started)
            except PipelineError as error:
                raise _lock_wait_error(error, self.database, opts["dump_lock_timeout"], self.opts,
                                       self.blocker_seen)
            finally:
                self.progress.forget(watcher.line)
                watcher.close()
            if dump_upload:
                dump_upload.writer_finished(size)
        except BaseException:
            if snap_conn is not None:
                interrupt(snap_conn)  # the dump failed: a count waiting behind a lock must not hold the job
            raise
        finally:
            if counter:
                counter.join()
            if expiry is not None:
                self.deadline.forget(expiry)
            if snap_conn is not None:
                _close_quietly(snap_conn)
        if failure:
            self.deadline.check("counting the rows of {0}".format(self.shown))
            raise RunbookError("Counting the rows of {0} failed: {1}".format(self.shown, failure[0]),
                               cause="row_counts")
        files = [{"name": self.dump_name, "role": "dump", "size": size, "sha256": digest}]
        return files, counts, bool(snapshot)

    def _object_metadata(self, **extra):
        """S3 metadata of this run's objects: ASCII only, so the id (built from the safe name), not the name."""
        return dict(extra, **{"backup-id": self.backup_id, "writer": self.writer})

    def _upload(self, final_dir, document, dump_upload):
        """Finish the dump's upload, upload every other file, then the manifest, each only
        where no object exists yet; read the manifest back to prove the set is ours.
        On failure remove what this run uploaded, never what another writer may hold."""
        uploaded = []
        try:
            for entry in document["files"]:
                key = self.remote.key(self.database, self.backup_id, entry["name"])
                if entry["role"] == "dump" and dump_upload.complete():
                    self.log("completed the upload of {0} to s3://{1}/{2}".format(
                        entry["name"], self.store.bucket, key))
                else:
                    self.log("uploading {0} to s3://{1}/{2}".format(entry["name"], self.store.bucket, key))
                    self._put_exclusive(os.path.join(final_dir, entry["name"]), key,
                                        self._object_metadata(sha256=entry["sha256"]))
                uploaded.append(key)
            key = self.remote.key(self.database, self.backup_id, manifest_lib.MANIFEST_NAME)
            self._put_exclusive(os.path.join(final_dir, manifest_lib.MANIFEST_NAME), key, self._object_metadata())
            uploaded.append(key)
            self._read_back(document)
            return uploaded
        except BaseException as error:
            replaced = isinstance(error, RunbookError) and error.details.get("cause") == "replaced"
            try:
                # Only objects that still carry our mark go; after a replaced set, which is whose is unclear: none.
                ours = [] if replaced else [k for k in uploaded if self._writer_of(k) == self.writer]
                if ours:
                    self.store.delete_keys(ours)
            except RunbookError:
                pass  # without a manifest of ours these objects never count as a backup
            if isinstance(error, RunbookError):
                error.message = "{0} The local backup set {1} is complete and was kept.".format(
                    error.message, final_dir)
            raise

    def _put_exclusive(self, path, key, metadata):
        """Upload a file of the set where no object exists yet.

        A refusal (HTTP 412) means the key is taken, unless it is our own object: a
        retried request whose first attempt arrived but whose reply was lost.
        """
        try:
            self.store.upload_file(path, key, metadata=metadata, exclusive=True)
        except RunbookError as error:
            if error.details.get("cause") != "exists" or self._writer_of(key) != self.writer:
                raise

    def _writer_of(self, key):
        try:
            return (self.store.head(key).get("Metadata") or {}).get("writer")
        except RunbookError:
            return None

    def _read_back(self, document):
        """Report nothing that is not there: the manifest in S3 is ours and each file has its size.

        Writes are conditional (If-None-Match: *) where the store honours it (SeaweedFS,
        AWS S3 and MinIO do); on a store that ignores the header this read-back is what
        detects a set that another writer replaced after we wrote it.
        """
        key = self.remote.key(self.database, self.backup_id, manifest_lib.MANIFEST_NAME)
        where = "s3://{0}/{1}".format(self.store.bucket, key)
        try:
            stored = manifest_lib.loads(self.store.get_bytes(key).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            stored = {"unreadable": str(error)}
        mine = (stored.get("writer") == self.writer and stored.get("backup_id") == self.backup_id
                and stored.get("sha256") == document["sha256"])
        if not mine:
            raise RunbookError(
                "The manifest {0} read back after the upload is not this run's (writer {1}, found {2}): another "
                "writer replaced the set, so it is not reported as a backup. Nothing in S3 was deleted.".format(
                    where, self.writer, manifest_lib.shown(str(stored.get("writer", "none")))),
                hint="Find the other host or job that writes under this prefix; each should back up under its "
                     "own s3_prefix.", cause="replaced", key=key)
        for entry in document["files"]:
            file_key = self.remote.key(self.database, self.backup_id, entry["name"])
            head = self.store.head(file_key)
            if head.get("ContentLength") != entry["size"] or (head.get("Metadata") or {}).get("writer") != self.writer:
                raise RunbookError(
                    "s3://{0}/{1} read back after the upload is not this run's ({2} bytes by writer {3}, expected "
                    "{4} bytes by writer {5}): another writer replaced it. Nothing in S3 was deleted.".format(
                        self.store.bucket, file_key, head.get("ContentLength"),
                        manifest_lib.shown(str((head.get("Metadata") or {}).get("writer"))), entry["size"],
                        self.writer),
                    hint="Find the other host or job that writes under this prefix.", cause="replaced", key=file_key)

    def _retention_decisions(self, pending=False):
        """What retention decides in each place (retention.decide), the run's and check mode's one answer.

        Reads every set's manifest and the size of its dump (no dump is read): only valid sets are
        counted, ordered by their manifest's end time; damaged sets and sets dated in the future are
        reported, never deleted. With `pending`, the set this run would write counts as written now.
        A place without limits is not read: nothing there is deleted.
        """
        opts = self.opts
        now = utc_now()
        places = [("local", self.local, opts["keep_days"], opts["keep_count"])]
        if self.remote:
            places.append(("s3", self.remote, opts["s3_keep_days"], opts["s3_keep_count"]))
        decisions = {"places": {}, "invalid": [], "future": [], "warnings": []}
        for label, catalog, keep_days, keep_count in places:
            if keep_days is not None or keep_count is not None:
                records = valid_sets(catalog, self.database)
            else:  # nothing to decide: only the incomplete sets are reported, as before
                records = [{"backup_id": set_id, "complete": False}
                           for set_id, entry in catalog.sets(self.database).items() if not entry["complete"]]
            if pending and not any(r["backup_id"] == self.backup_id for r in records):
                records.append({"backup_id": self.backup_id, "complete": True, "valid": True, "reason": None,
                                "location": catalog.location(self.database, self.backup_id),
                                "started_at": self.started, "finished_at": now})
            decision = retention_lib.decide(records, now, keep_days, keep_count)
            decision["incomplete"] = sorted(r["backup_id"] for r in records if not r["complete"])
            decisions["places"][label] = decision
            for key in ("invalid", "future"):
                decisions[key].extend(dict(item, where=label) for item in decision[key])
            decisions["warnings"].extend(decision["warnings"])
        return decisions

    @staticmethod
    def _retention_result(decisions, verb):
        result = {"invalid": decisions["invalid"], "future": decisions["future"]}
        for label, decision in decisions["places"].items():
            result["{0}_{1}".format(label, verb)] = decision["delete"]
        if "s3" in decisions["places"]:
            result["s3_incomplete"] = decisions["places"]["s3"]["incomplete"]
        return result

    def _apply_retention(self):
        """Prune each place the sets are kept by its own limits; the newest valid set always stays.

        Returns the retention result and the warnings (sets dated in the future, damaged sets).
        """
        decisions = self._retention_decisions()
        catalogs = {"local": self.local, "s3": self.remote}
        for label, decision in decisions["places"].items():
            for set_id in decision["delete"]:
                self.log("retention: deleting {0}".format(catalogs[label].location(self.database, set_id)))
                catalogs[label].delete_set(self.database, set_id)
        return self._retention_result(decisions, "deleted"), decisions["warnings"]


def _pg_where(opts):
    return "{0}:{1}".format(opts.get("login_host") or opts.get("login_unix_socket") or "the local socket",
                            opts.get("login_port") or 5432)


# The sessions holding a lock that pg_dump's ACCESS SHARE lock waits behind (only ACCESS EXCLUSIVE conflicts).
HOLDERS_SQL = """
SELECT a.pid, a.usename, a.application_name, a.query_start, a.state, left(a.query, 300)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.locktype = 'relation' AND l.relation = to_regclass(%s)
  AND l.mode = 'AccessExclusiveLock' AND a.pid <> pg_backend_pid()
ORDER BY a.query_start NULLS LAST
"""
# What a waiting pg_dump of this job waits for, and who holds it.
WAITING_SQL = """
SELECT b.pid, b.usename, b.application_name, b.query_start, b.state, left(b.query, 300),
       coalesce(l.relation::regclass::text, l.locktype), now() - w.state_change
FROM pg_stat_activity w
JOIN pg_locks l ON l.pid = w.pid AND NOT l.granted
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE w.application_name = %s AND w.datname = current_database() AND w.wait_event_type = 'Lock'
ORDER BY b.query_start NULLS LAST
LIMIT 1
"""


def describe_session(row):
    """pid, user, application, query start and query of a session, from a row of HOLDERS_SQL."""
    pid, user, application, query_start, state, query = row[:6]
    return "pid {0} (user {1}, application {2}, {3}, query started {4}: {5})".format(
        pid, user or "?", application or "none", state or "state unknown",
        isoformat(query_start) if query_start else "at an unknown time", " ".join((query or "?").split()))


def lock_holders(opts, database, table):
    """The sessions holding ACCESS EXCLUSIVE on `table` in `database`, described; [] when none or unknown."""
    try:
        conn = connect(opts, database)
    except RunbookError:
        return []
    try:
        with conn.cursor() as cur:
            cur.execute(HOLDERS_SQL, (table,))
            return [describe_session(row) for row in cur.fetchall()]
    except Exception:  # noqa: BLE001 - the message without the holder is still the right one
        return []
    finally:
        conn.close()


class DumpWatcher(object):
    """The progress line of a running dump: bytes pg_dump produced, bytes written after compression, parts
    uploaded, and the lock pg_dump waits for."""

    def __init__(self, job, dump_path, dump_upload):
        self.job = job
        self.dump_path = dump_path
        self.dump_upload = dump_upload
        self.began = time.monotonic()
        self._conn = None
        self._conn_failed = False
        self._compressor = None  # (name, pid) of the stage reading pg_dump's output, when there is one
        self._dumped = None

    def started(self, stages):
        """run_to_file's on_start: with a compressor, its bytes read are pg_dump's output so far."""
        if len(stages) > 1:
            self._compressor = stages[-1]

    def _dumped_bytes(self, written):
        if self._compressor is None:
            return written  # no compressor: the file is pg_dump's output
        read = bytes_read(self._compressor[1])
        if read is not None:
            self._dumped = max(read, self._dumped or 0)
        return self._dumped

    def _waiting(self):
        if self._conn_failed:
            return None
        try:
            if self._conn is None:
                self._conn = connect(self.job.opts, self.job.database)
            with self._conn.cursor() as cur:
                cur.execute(WAITING_SQL, (TOOL,))
                row = cur.fetchone()
        except Exception:  # noqa: BLE001 - without a monitoring connection the line shows bytes only
            self._conn_failed = True
            return None
        if not row:
            return None
        self.job.blocker_seen = describe_session(row)
        return "pg_dump has waited {0:.0f} s for a lock on {1}, held by {2}".format(
            row[7].total_seconds() if row[7] is not None else 0, row[6], self.job.blocker_seen)

    def line(self):
        elapsed = time.monotonic() - self.began
        try:
            size = os.path.getsize(self.dump_path)
        except OSError:
            size = 0
        dumped = self._dumped_bytes(size)
        if dumped is None:  # the compressor's counter cannot be read here: say what is known
            words = "{0} written after {1} in {2:.0f} s".format(human_size(size), self._compressor[0], elapsed)
        else:
            speed = human_size(rate(dumped, elapsed))
            words = "{0} dumped in {1:.0f} s ({2}/s)".format(human_size(dumped), elapsed, speed)
            if self._compressor is not None:
                words += ", {0} after {1}".format(human_size(size), self._compressor[0])
        if self.dump_upload is not None:
            words += ", {0} part{1} uploaded".format(self.dump_upload.parts_sent,
                                                     "" if self.dump_upload.parts_sent == 1 else "s")
        waiting = self._waiting()
        return words + ("; " + waiting if waiting else "")

    def close(self):
        if self._conn is not None:
            _close_quietly(self._conn)
            self._conn = None


def _lock_wait_error(error, database, seconds, opts=None, blocker_seen=None):
    """pg_dump gave up waiting for a table lock (--lock-wait-timeout): say so, which session held the
    table (pg_locks and pg_stat_activity, read now; else the one the progress probe saw), and which
    option decides."""
    detail = error.details.get("stderr") or ""
    if error.details.get("stage") == "pg_dump" and "statement timeout" in detail and "LOCK TABLE" in detail:
        table = detail.split("LOCK TABLE", 1)[1].split(" IN ", 1)[0].strip()
        holders = lock_holders(opts, database, table) if opts is not None else []
        if not holders and blocker_seen:
            holders = [blocker_seen]
        if holders:
            who = "it is held by {0}".format("; ".join(holders))
        else:
            who = "another session holds a conflicting lock (ALTER TABLE, VACUUM FULL, LOCK TABLE, ...)"
        return RunbookError(
            "pg_dump of {0} could not lock table {1} within dump_lock_timeout ({2} s): {3}. "
            "Nothing was backed up.".format(database, table, seconds, who),
            hint="End the blocking session (SELECT pg_terminate_backend(PID), or the ops.runbook.pg_terminate "
                 "module) or let it finish, schedule the backup outside maintenance, or raise dump_lock_timeout.",
            cause="lock_wait", blocking_sessions=holders, **error.details)
    return error


def _make_parents(path):
    """mkdir -p with 0755 less the umask at every level (os.makedirs gives the levels above the last 0777)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o755)
        except FileExistsError:
            pass


def _audience(bits):
    """Who the permission bits `bits` (group and other) let in, in words."""
    who = []
    if bits & 0o070:
        who.append("its group")
    if bits & 0o007:
        who.append("every user")
    return " and ".join(who)


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


SUMMARY_KEYS = ("backup_id", "database", "kind", "local_path", "s3_uri", "size_bytes", "sha256", "duration_seconds")


def run_backup(options, check_mode=False, log=None, now=None):
    """Back up one database; in check mode, report what would happen.

    options["progress_file"] (optional): where the running backup writes its progress line every
    options["progress_interval"] seconds (progress.Progress), for the job_progress action to show.
    """
    progress = Progress(None if check_mode else options.get("progress_file"), options.get("progress_interval"))
    shown = log or (lambda message: None)

    def say(message):
        shown(message)
        progress.say(message)

    progress.start()
    try:
        job = BackupJob(options, log=say, now=now, progress=progress)
        result = job.plan() if check_mode else job.run()
    finally:
        progress.stop()
    result["summary"] = dict((k, result[k]) for k in SUMMARY_KEYS if k in result)
    return result
