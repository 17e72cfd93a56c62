# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job's overall deadline: after it, whatever the job waits on is stopped.

`Deadline(seconds, what)` starts counting when it is created. Work that can
hang registers a way to stop it (`on_expiry(callback)`: kill a pipeline's
processes, cancel a query); when the time is up a timer thread calls every
callback once, and `check()` raises a RunbookError with cause "deadline" that
names the job, the option and what it was waiting for. Callbacks registered
after expiry run at once. `cancel()` stops the timer when the job ends.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

from .common import RunbookError


class Deadline(object):
    def __init__(self, seconds, what, option="job_timeout", clock=time.monotonic):
        self.seconds = seconds
        self.what = what
        self.option = option
        self._clock = clock
        self._end = None if seconds is None else clock() + max(0, seconds)
        self._callbacks = {}
        self._next = 0
        self._lock = threading.Lock()
        self._expired = threading.Event()
        self._timer = None
        if self._end is not None:
            self._timer = threading.Timer(max(0, seconds), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def remaining(self):
        """Seconds left (never negative); infinity without a deadline."""
        if self._end is None:
            return float("inf")
        return max(0.0, self._end - self._clock())

    def expired(self):
        return self._expired.is_set() or (self._end is not None and self._clock() >= self._end)

    def error(self, waiting_for=None):
        return RunbookError(
            "{0} did not finish within its deadline of {1} s ({2}){3}; what it was doing was stopped.".format(
                self.what, self.seconds, self.option, ", waiting for " + waiting_for if waiting_for else ""),
            hint="Find out why it was slow (the server, the network, a lock) or raise {0}.".format(self.option),
            cause="deadline", deadline=self.seconds)

    def check(self, waiting_for=None):
        """Raise the deadline's error once it has passed."""
        if self.expired():
            raise self.error(waiting_for)

    def on_expiry(self, callback):
        """Call `callback()` when the deadline passes (at once if it has); returns a handle for forget()."""
        with self._lock:
            handle = self._next
            self._next += 1
            if not self._expired.is_set():
                self._callbacks[handle] = callback
                return handle
        _quietly(callback)
        return handle

    def forget(self, handle):
        with self._lock:
            self._callbacks.pop(handle, None)

    def _expire(self):
        with self._lock:
            self._expired.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            _quietly(callback)

    def cancel(self):
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()
        return False


def _quietly(callback):
    try:
        callback()
    except Exception:  # noqa: BLE001 - stopping something that already ended is not an error
        pass
