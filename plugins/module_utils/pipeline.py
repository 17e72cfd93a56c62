# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run `producer | filter | ...` into a file, hashing the bytes on the way.

Unlike a shell pipeline under `set -e`, every stage's exit status counts: the
output is good only if every process succeeded, and a failure names the stage
that caused it with that stage's stderr.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import os
import queue
import signal
import subprocess
import tempfile
import threading

from .common import RunbookError
from .filemodes import PRIVATE

CHUNK = 1024 * 1024


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# Linux's default pipe holds 64 KiB: a writer of 1 MiB chunks then waits for
# the reader to drain nearly all of it, so hashing one chunk and decompressing
# the previous one never overlap. A pipe as large as a chunk lets them.
# 1 MiB is the largest an unprivileged process may ask for by default.
PIPE_SIZE = CHUNK


# Returned by stream_through's on_output: it needs no more of the output, only
# the number of bytes left (verification, once pg_restore has read the table of
# contents). The rest is then discarded in the kernel instead of read into Python.
DISCARD_REST = "discard-rest"


class PipelineError(RunbookError):
    pass


def _widen(pipe):
    """Give a pipe room for a whole chunk; where the kernel refuses, keep its size."""
    try:
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, ValueError):
        pass


def _decode(data):
    return data.decode("utf-8", "replace").strip()


def _check_statuses(names, procs, stderr_files):
    """Wait for every stage; raise PipelineError for the one that caused a failure."""
    statuses = [proc.wait() for proc in procs]
    failed = [index for index, rc in enumerate(statuses) if rc != 0]
    if not failed:
        return
    # A stage killed by SIGPIPE only saw its reader die: blame the reader.
    index = ([i for i in failed if statuses[i] != -signal.SIGPIPE] or failed)[0]
    name, rc = names[index], statuses[index]
    stderr_files[index].seek(0)
    detail = _decode(stderr_files[index].read()[-4000:])
    status = "was killed by signal {0}".format(-rc) if rc < 0 else "exited with status {0}".format(rc)
    raise PipelineError("{0} {1}: {2}".format(name, status, detail or "(no error output)"),
                        stage=name, returncode=rc, stderr=detail)


def bytes_read(pid):
    """Bytes the process `pid` has read so far (Linux's /proc/PID/io rchar), or None where that cannot be read
    (another system, the process gone). For a compressor reading a pipe, that is the stream before compression."""
    try:
        with open("/proc/{0}/io".format(int(pid))) as handle:
            for line in handle:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _kill_all(procs):
    for proc in list(procs):
        if proc.poll() is None:
            proc.kill()


def run_to_file(stages, dest_path, env=None, chunk_size=CHUNK, deadline=None, modes=PRIVATE, on_start=None):
    """Run `stages` (a list of (name, argv)) as a pipeline into `dest_path`.

    Returns (size, sha256 hex). `dest_path` must not exist; it is created with
    `modes` (a filemodes.FileModes: 0600 unless a group is configured). On
    failure it is removed and PipelineError (or RunbookError for a local write
    problem) is raised. Only one chunk is ever held in memory. When `deadline`
    (a deadline.Deadline) passes, every stage is killed and its error is raised.
    `on_start`, when given, is called with [(name, pid), ...] once every stage
    runs (a progress line can then read what a stage has read, bytes_read()).
    """
    names, procs = [], []
    expiry = None
    stderr_files = []
    digest = hashlib.sha256()
    size = 0
    created = False
    try:
        upstream = subprocess.DEVNULL
        for index, (name, argv) in enumerate(stages):
            err = tempfile.TemporaryFile()
            stderr_files.append(err)
            try:
                proc = subprocess.Popen(argv, stdin=upstream, stdout=subprocess.PIPE, stderr=err, env=env,
                                        close_fds=True)
            except OSError as error:
                raise PipelineError("Cannot start {0} ({1}): {2}".format(name, argv[0], error.strerror),
                                    hint="Install it or set its path.", stage=name)
            if index > 0:
                upstream.close()
            _widen(proc.stdout)
            upstream = proc.stdout
            names.append(name)
            procs.append(proc)
        if deadline is not None:
            expiry = deadline.on_expiry(lambda: _kill_all(procs))
        if on_start is not None:
            on_start([(name, proc.pid) for name, proc in zip(names, procs)])
        source = procs[-1].stdout
        with modes.create(dest_path) as out:
            created = True
            while True:
                data = source.read(chunk_size)
                if not data:
                    break
                digest.update(data)
                out.write(data)
                size += len(data)
            out.flush()
            os.fsync(out.fileno())
        source.close()
        _check_statuses(names, procs, stderr_files)
        return size, digest.hexdigest()
    except BaseException as error:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait()
        if created:
            os.unlink(dest_path)
        if deadline is not None and deadline.expired():
            raise deadline.error(" | ".join(names) or "the dump")
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunbookError("No space left on the device writing {0} (after {1} bytes).".format(dest_path, size),
                               hint="Free space there or set backup_dir to a larger file system; "
                                    "the partial file was removed.", cause="disk_full")
        if isinstance(error, OSError):
            raise RunbookError("Cannot write {0}: {1}".format(dest_path, error.strerror or error), cause="io")
        raise
    finally:
        if expiry is not None:
            deadline.forget(expiry)
        for err in stderr_files:
            err.close()
        for proc in procs:
            if proc.stdout and not proc.stdout.closed:
                proc.stdout.close()


def hash_alongside(chunks, digest, depth=4):
    """Yield `chunks` unchanged while another thread feeds them to `digest`.

    hashlib lets go of the GIL while it hashes a large buffer, so the SHA-256
    of one chunk runs on another core while this thread fetches the next (a
    download is mostly Python code holding the GIL). At most `depth` chunks
    wait for the hasher. The digest is complete once the generator is exhausted.
    """
    pending = queue.Queue(maxsize=depth)

    def hasher():
        while True:
            data = pending.get()
            if data is None:
                return
            digest.update(data)

    worker = threading.Thread(target=hasher)
    worker.daemon = True
    worker.start()
    try:
        for data in chunks:
            pending.put(data)
            yield data
    finally:
        pending.put(None)
        worker.join()


def _discard(source, chunk_size):
    """Read a pipe to its end without copying it into Python where the kernel allows; return the byte count.

    The output still has to be produced and read (a decompressor that cannot
    write its last block fails), but splicing it into /dev/null keeps the bytes,
    and the GIL, away from the thread that is downloading and hashing the input.
    """
    total = len(source.read1(chunk_size))  # empties the reader's buffer, so the descriptor is exact
    if not total:
        return 0
    splice = getattr(os, "splice", None)  # Python 3.10+ on Linux
    if splice is not None:
        with open(os.devnull, "wb") as devnull:
            try:
                while True:
                    moved = splice(source.fileno(), devnull.fileno(), chunk_size)
                    if not moved:
                        return total
                    total += moved
            except OSError as error:
                if error.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
    buffer = bytearray(chunk_size)
    while True:
        count = source.readinto(buffer)
        if not count:
            return total
        total += count


def stream_through(chunks, stages, on_output, env=None, chunk_size=CHUNK, on_discarded=None, deadline=None):
    """Feed an iterator of byte chunks through a chain of processes.

    `on_output` receives the last stage's output chunk by chunk (or the input
    itself when `stages` is empty). When it returns DISCARD_REST, the rest of
    the output is read to its end without passing through Python and its size
    goes to `on_discarded`. The input is read to its end even if the
    processes stop early, so a caller hashing `chunks` sees every byte.
    Returns the number of input bytes; raises PipelineError naming the stage
    that failed, with its stderr. When `deadline` (a deadline.Deadline)
    passes, the input stops, every stage is killed and its error is raised.
    """
    if not stages:
        size = 0
        for data in chunks:
            size += len(data)
            on_output(data)
        return size
    names, procs, stderr_files = [], [], []
    fed = {"size": 0, "error": None, "stop": False}
    feeder = None
    expiry = None

    def stop_all():
        fed["stop"] = True
        _kill_all(procs)

    try:
        upstream = subprocess.PIPE
        for index, (name, argv) in enumerate(stages):
            err = tempfile.TemporaryFile()
            stderr_files.append(err)
            try:
                proc = subprocess.Popen(argv, stdin=upstream, stdout=subprocess.PIPE, stderr=err, env=env,
                                        close_fds=True)
            except OSError as error:
                raise PipelineError("Cannot start {0} ({1}): {2}".format(name, argv[0], error.strerror),
                                    hint="Install it or set its path.", stage=name)
            if index == 0:
                _widen(proc.stdin)
            else:
                upstream.close()
            _widen(proc.stdout)
            upstream = proc.stdout
            names.append(name)
            procs.append(proc)
        if deadline is not None:
            expiry = deadline.on_expiry(stop_all)

        def feed():
            sink = procs[0].stdin
            try:
                for data in chunks:
                    if fed["stop"]:
                        break
                    fed["size"] += len(data)
                    if sink is not None:
                        try:
                            sink.write(data)
                        except (BrokenPipeError, ValueError):
                            sink = None  # the stage stopped reading; keep consuming the input
            except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
                fed["error"] = error
            finally:
                if procs[0].stdin and not procs[0].stdin.closed:
                    try:
                        procs[0].stdin.close()
                    except BrokenPipeError:
                        pass

        feeder = threading.Thread(target=feed)
        feeder.start()
        source = procs[-1].stdout
        while True:
            data = source.read(chunk_size)
            if not data:
                break
            if on_output(data) == DISCARD_REST:
                discarded = _discard(source, chunk_size)
                if on_discarded is not None:
                    on_discarded(discarded)
                break
        feeder.join()
        if deadline is not None:
            deadline.check(" | ".join(names))
        feed_error = fed["error"]
        if feed_error is not None:
            raise feed_error
        _check_statuses(names, procs, stderr_files)
        return fed["size"]
    except BaseException:
        stop_all()
        for proc in procs:
            proc.wait()
        if feeder is not None:
            feeder.join()
        if deadline is not None and deadline.expired():
            raise deadline.error(" | ".join(names))
        raise
    finally:
        if expiry is not None:
            deadline.forget(expiry)
        for err in stderr_files:
            err.close()
        for proc in procs:
            if proc.stdout and not proc.stdout.closed:
                proc.stdout.close()


def copy_to_file(source_path, dest_path, chunk_size=CHUNK, modes=PRIVATE):
    """Copy a file, returning (size, sha256 hex); same guarantees (and modes) as run_to_file."""
    digest = hashlib.sha256()
    size = 0
    created = False
    try:
        with open(source_path, "rb") as src, modes.create(dest_path) as out:
            created = True
            while True:
                data = src.read(chunk_size)
                if not data:
                    break
                digest.update(data)
                out.write(data)
                size += len(data)
        return size, digest.hexdigest()
    except OSError as error:
        if created:
            os.unlink(dest_path)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunbookError("No space left on the device writing {0}.".format(dest_path),
                               hint="Free space there or set backup_dir to a larger file system.", cause="disk_full")
        raise RunbookError("Cannot copy {0}: {1}".format(source_path, error.strerror or error), cause="io")
