# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one program and get (exit status, stdout, stderr) back as text.

Every engine that asks the host something (systemctl, journalctl, apt-get,
docker compose, a config test such as `nginx -t`) goes through `run`, so a
missing program or a hung one becomes a RunbookError that says which, and
tests can hand the engines a fake runner with the same signature.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess

from .common import RunbookError

DEFAULT_TIMEOUT = 60


class Result:
    """What a finished program left: its exit status and its output."""

    def __init__(self, argv, rc, stdout, stderr):
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self):
        return self.rc == 0

    def output(self, limit=4000):
        """stderr and stdout together, trimmed to the last `limit` characters (the useful end)."""
        text = "\n".join(part for part in (self.stderr.strip(), self.stdout.strip()) if part)
        return text[-limit:]


def display(argv):
    """A command as a person would type it, for messages."""
    return " ".join(word if word and not set(word) & set(" \t'\"$\\") else repr(word) for word in argv)


def run(argv, timeout=DEFAULT_TIMEOUT, env=None):
    """Run `argv` (no shell) and return a Result; a non-zero status is a Result, not an error.

    Raises RunbookError when the program does not exist or does not finish
    within `timeout` seconds (it is killed then).
    """
    environment = dict(os.environ, LC_ALL="C", LANG="C", SYSTEMD_PAGER="", SYSTEMD_COLORS="0")
    if env:
        environment.update(env)
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, env=environment, check=False)
    except FileNotFoundError:
        raise RunbookError("{0} is not installed on this host (running `{1}`).".format(argv[0], display(argv)),
                           hint="Install it, or leave out the option that needs it.", cause="missing_program",
                           program=argv[0])
    except subprocess.TimeoutExpired:
        raise RunbookError("`{0}` did not finish within {1} s and was killed.".format(display(argv), timeout),
                           cause="timeout", program=argv[0])
    return Result(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))
