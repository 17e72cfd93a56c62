# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups readable by their owner (and a configured group) only, whatever the umask.

Files are created 0600 (0640 with a group) and directories 0700 (0750): each
is created owner-only, given its group, and only then opened up to the group,
before a byte is written into it, so no moment exists where another user could
read it. The process's umask plays no part: a job started by cron (umask 022)
or by a shell with umask 000 writes the same modes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd

from .common import RunbookError


def current_user():
    """The name of the user this process runs as (its uid when it has no name)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def resolve_group(group):
    """The gid of `group` (a name or a number) that this process may give its files; RunbookError if none."""
    try:
        entry = grp.getgrgid(int(group)) if str(group).isdigit() else grp.getgrnam(str(group))
    except (KeyError, ValueError):
        raise RunbookError("backup_group is {0!r}, a group that does not exist on this host.".format(group),
                           hint="Create the group, name an existing one, or leave backup_group unset for files "
                                "readable by their owner only. Nothing was done.", cause="invalid")
    gid = entry.gr_gid
    if os.geteuid() != 0 and gid != os.getegid() and gid not in os.getgroups():
        raise RunbookError(
            "backup_group is {0!r}, but user {1} is not a member of it, so cannot give it the backup files.".format(
                entry.gr_name, current_user()),
            hint="Add the user to the group (and start a new session), or run the backup as a member. "
                 "Nothing was done.", cause="invalid")
    return gid


class FileModes(object):
    """The modes (and group) of what an engine creates: 0600/0700, or 0640/0750 with a group."""

    def __init__(self, group=None):
        self.group = group
        self.gid = resolve_group(group) if group is not None else None
        self.file = 0o640 if self.gid is not None else 0o600
        self.dir = 0o750 if self.gid is not None else 0o700

    def _grant(self, path, fd=None):
        if self.gid is not None:
            if fd is None:
                os.chown(path, -1, self.gid)
            else:
                os.fchown(fd, -1, self.gid)
        if fd is None:
            os.chmod(path, self.dir)
        else:
            os.fchmod(fd, self.file)

    def mkdir(self, path):
        """Create the directory `path` (its parent must exist) with the directory mode."""
        os.mkdir(path, 0o700)
        try:
            self._grant(path)
        except BaseException:
            os.rmdir(path)
            raise

    def create(self, path):
        """A new file `path` (which must not exist), open for binary writing, with the file mode."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            self._grant(path, fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        return os.fdopen(fd, "wb")

    def wider(self, path):
        """The permission bits `path` grants beyond the directory mode (0 when none or when it is gone)."""
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            return 0
        return mode & ~self.dir & 0o077


PRIVATE = FileModes()
