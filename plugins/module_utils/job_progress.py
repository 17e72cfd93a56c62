# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A long job's progress, where a watcher can read it while the job runs.

A module cannot stream output: Ansible shows its result when it ends. A role
therefore runs a long step with `async` and waits for it with the
`ops.runbook.job_progress` action (plugins/action/job_progress.py), which reads
the file `Progress` writes (with this module, `progress_result`) and prints its
line in the job log. The job says what it does (`say`), and probes
(`watch`, e.g. the bytes a dump has written, the lock it waits for) are asked
every `interval` seconds; each tick writes the file again, with the time
elapsed, so the job log moves even while nothing else does.

The file is JSON ({"line", "seq", "elapsed_seconds", "time"}), replaced
atomically; it is removed when the job ends.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile
import threading
import time

from .common import isoformat, utc_now

DEFAULT_INTERVAL = 5


def rate(num_bytes, seconds):
    return num_bytes / seconds if seconds > 0 else 0.0


class Progress(object):
    """Progress lines of one job, written to `path` (None: nowhere) every `interval` seconds."""

    def __init__(self, path=None, interval=DEFAULT_INTERVAL, clock=time.monotonic):
        self.path = path
        self.interval = max(1, int(interval or DEFAULT_INTERVAL))
        self._clock = clock
        self._started = clock()
        self._line = "starting"
        self._seq = 0
        self._probes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def elapsed(self):
        return self._clock() - self._started

    def start(self):
        if self.path and self._thread is None:
            self._write()
            self._thread = threading.Thread(target=self._tick, name="progress")
            self._thread.daemon = True
            self._thread.start()
        return self

    def say(self, line):
        """The job's current step; written at once."""
        with self._lock:
            self._line = line
        self._write()

    def watch(self, probe):
        """Ask probe() (a line, or None for nothing new) at every tick until forget(probe)."""
        with self._lock:
            self._probes.append(probe)
        return probe

    def forget(self, probe):
        with self._lock:
            if probe in self._probes:
                self._probes.remove(probe)

    def line(self):
        """The line a tick writes: the newest probe's line, else the last step said."""
        with self._lock:
            probes = list(self._probes)
            line = self._line
        for probe in reversed(probes):
            try:
                found = probe()
            except Exception as error:  # noqa: BLE001 - a probe must never disturb the job it watches
                found = "(progress unknown: {0})".format(error)
            if found:
                return found
        return line

    def _tick(self):
        while not self._stop.wait(self.interval):
            self._write(self.line())

    def _write(self, line=None):
        if not self.path:
            return
        with self._lock:
            self._seq += 1
            document = {"line": line if line is not None else self._line, "seq": self._seq,
                        "elapsed_seconds": round(self.elapsed(), 1), "time": isoformat(utc_now())}
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            handle, temporary = tempfile.mkstemp(prefix=".progress.", dir=directory)
            with os.fdopen(handle, "w") as out:
                json.dump(document, out)
            os.rename(temporary, self.path)
        except (IOError, OSError):
            pass  # progress is for people watching; the job itself goes on

    def stop(self):
        """End the ticks and remove the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def read_progress(path):
    """The progress file's document ({"line", "seq", "elapsed_seconds", "time"}); {} when there is none
    (the job has not written it yet, or has ended and removed it) or it cannot be read."""
    try:
        with open(path) as handle:
            document = json.load(handle)
    except (IOError, OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def progress_result(params):
    """The job_progress module's result: what the job's progress file says now."""
    document = read_progress(params["progress_file"]) if params.get("progress_file") else {}
    return {"changed": False, "progress": document, "msg": document.get("line") or "no progress reported yet"}
