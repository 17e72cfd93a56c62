# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host-wide lock so two backup runs never interleave."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import time

from .common import RunbookError


class HostLock(object):
    """An flock(2) on `path`, waited for at most `timeout` seconds.

    The kernel releases it when the holder dies, so a crashed run never
    leaves a stale lock behind.
    """

    def __init__(self, path, timeout=300, poll=0.5, mode=0o600):
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self.mode = mode  # of a lock file this creates: not writable by others, whatever the umask
        self._handle = None

    def acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), self.mode)
        handle = os.fdopen(fd, "r+")
        deadline = time.monotonic() + max(0, self.timeout)
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError):
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    handle.close()
                    raise RunbookError(
                        "Another backup run holds the lock {0} ({1}); waited {2} s.".format(
                            self.path, holder, self.timeout),
                        hint="Let it finish, or raise lock_timeout to wait longer.", cause="locked")
                time.sleep(self.poll)
        handle.seek(0)
        handle.truncate()
        handle.write("pid {0} since {1}\n".format(os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        handle.flush()
        self._handle = handle
        return self

    def release(self):
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
