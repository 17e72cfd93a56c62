# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The programs that write and read dumps, found once, and loading a dump into a database."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import time

from .common import RunbookError
from .pipeline import stream_through
from .postgres import conninfo, libpq_environment

DECOMPRESSORS = {"zstd": ["zstd", "-q", "-dc"], "gzip": ["gzip", "-dc"]}


def pg_tool(opts, name):
    """Path of a PostgreSQL client program: from pg_bin_dir when set, else from PATH."""
    if opts.get("pg_bin_dir"):
        path = os.path.join(opts["pg_bin_dir"], name)
        if os.access(path, os.X_OK):
            return path
        raise RunbookError("{0} was not found in pg_bin_dir {1}.".format(name, opts["pg_bin_dir"]), cause="missing_tool")
    path = shutil.which(name)
    if not path:
        raise RunbookError("{0} is not installed on this host.".format(name),
                           hint="Install the PostgreSQL client package (postgresql-client) or set pg_bin_dir.",
                           cause="missing_tool")
    return path


def program(name, package=None):
    path = shutil.which(name)
    if not path:
        raise RunbookError("{0} is not installed on this host.".format(name),
                           hint="Install the {0} package.".format(package or name), cause="missing_tool")
    return path


def decompress_stages(compression):
    """Pipeline stages that undo `compression` (none for an uncompressed dump)."""
    if compression == "none":
        return []
    argv = DECOMPRESSORS[compression]
    return [(argv[0], [program(argv[0])] + argv[1:])]


def restore_into(opts, catalog, database, set_id, manifest, target, keep_owners=True):
    """Stream a set's dump into the existing, empty database `target`; returns seconds.

    `target` reaches the programs only as conninfo(target): any name is just a name.

    keep_owners=False restores every object as the connecting user, for scratch
    copies on servers that lack the original roles.
    """
    stages = decompress_stages(manifest["compression"])
    env = libpq_environment(opts, target, "ops.runbook restore")
    if manifest["format"] == "custom":
        argv = [pg_tool(opts, "pg_restore"), "--no-password", "--exit-on-error", "--dbname", conninfo(target)]
        if not keep_owners:
            argv.append("--no-owner")
        stages.append(("pg_restore", argv))
    else:
        stages.append(("psql", [pg_tool(opts, "psql"), "--no-password", "--no-psqlrc", "--quiet",
                                "--set", "ON_ERROR_STOP=1", "--dbname", conninfo(target)]))
    started = time.monotonic()
    stream_through(catalog.chunks(database, set_id, manifest["dump_file"]), stages, lambda data: None, env=env)
    return time.monotonic() - started
