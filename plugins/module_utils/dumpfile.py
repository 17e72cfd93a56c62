# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The programs that write and read dumps, found once, and loading a dump into a database."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import shutil
import subprocess
import time

from .common import RunbookError
from .pipeline import stream_through
from .postgres import connect, conninfo, endpoint, libpq_environment, server_info

DECOMPRESSORS = {"zstd": ["zstd", "-q", "-dc"], "gzip": ["gzip", "-dc"]}


# Where each major version's programs are installed side by side: Debian and Ubuntu (postgresql-common,
# apt.postgresql.org), and RHEL and its rebuilds (the PGDG repository's postgresqlNN packages).
INSTALLED_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
# `pg_dump --version` prints "pg_dump (PostgreSQL) " and the server's version string: a release (17.2, 9.6.24),
# a pre-release (18beta1, 17rc1, 19devel), then a packager's build in parentheses on most distributions
# ("15.6 (Debian 15.6-0+deb12u1)", "16.2 (Homebrew)"). The release is recorded, the build is not.
_VERSION_OUTPUT = re.compile(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*(?:(?:devel|alpha|beta|rc)\d*)?)")
_versions = {}


def tool_version(path):
    """The version a PostgreSQL program reports (`pg_dump --version`), e.g. '17.2' or '18beta1', or None."""
    try:
        key = (os.path.realpath(path), os.stat(path).st_mtime)
    except OSError:
        return None
    if key not in _versions:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False,
                                 timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _versions[key] = parse_version_output(out)
    return _versions[key]


def parse_version_output(text):
    """The version in a PostgreSQL program's `--version` output ('15.6', '18beta1'), or None."""
    match = _VERSION_OUTPUT.search(text or "")
    return match.group(1) if match else None


def major_version(version):
    """The major version of '17.2', '9.6.24', '15.18-0+deb12u1' or a server_version_num (170002), or None."""
    if version is None:
        return None
    if isinstance(version, int):
        return version // 10000 if version >= 100000 else version // 10000 + version // 100 % 100 / 10.0
    match = re.match(r"\s*(\d+)(?:\.(\d+))?", str(version))
    if not match:
        return None
    major = int(match.group(1))
    return major if major >= 10 or match.group(2) is None else float("{0}.{1}".format(major, match.group(2)))


def _is_wrapper(path):
    # Debian's /usr/bin/pg_dump is pg_wrapper, which picks a version per call from the environment and the
    # local clusters: the version it reports is not necessarily the one that runs. The real programs are
    # searched in INSTALLED_GLOBS instead.
    return os.path.basename(os.path.realpath(path)) == "pg_wrapper"


def installed_dirs():
    """The bin directories of the PostgreSQL versions installed side by side (INSTALLED_GLOBS)."""
    found = []
    for pattern in INSTALLED_GLOBS:
        found.extend(sorted(glob.glob(pattern)))
    return found


def find_tool(name, minimum=None, pg_bin_dir=None, search_path=None, candidates=None, why=None):
    """(path, version) of the PostgreSQL program `name` of major version `minimum` or newer.

    pg_bin_dir, when set, is the only place looked at. Otherwise the program on
    `search_path` (default: PATH) if it is new enough, else the newest new-enough
    one in the directories `candidates` (default: installed_dirs()), by the
    version each program reports. `why` says what needs the version, for the
    message when none is new enough.
    """
    why = why or "the PostgreSQL {0} server".format(minimum)
    if pg_bin_dir:
        path = os.path.join(pg_bin_dir, name)
        if not os.access(path, os.X_OK):
            raise RunbookError("{0} was not found in pg_bin_dir {1}.".format(name, pg_bin_dir),
                               hint=_install_hint(minimum), cause="missing_tool")
        version = tool_version(path)
        if minimum is not None and (major_version(version) is None or major_version(version) < minimum):
            raise RunbookError(
                "{0} in pg_bin_dir {1} is version {2}, but {3} needs {0} {4} or newer.".format(
                    name, pg_bin_dir, version or "unknown", why, minimum),
                hint=_install_hint(minimum, pg_bin_dir=True), cause="old_tool", tool_version=version,
                required_major=minimum)
        return path, version
    seen = []
    on_path = shutil.which(name, path=search_path)
    ordered = ([on_path] if on_path and not _is_wrapper(on_path) else [])
    ordered += sorted((os.path.join(d, name) for d in (installed_dirs() if candidates is None else candidates)
                       if os.access(os.path.join(d, name), os.X_OK)),
                      key=lambda p: major_version(tool_version(p)) or 0, reverse=True)
    looked_at = set()
    for path in ordered:
        version = tool_version(path)
        if version is None or os.path.realpath(path) in looked_at:
            continue
        looked_at.add(os.path.realpath(path))
        if minimum is None or major_version(version) >= minimum:
            return path, version
        seen.append("{0} {1}".format(path, version))
    if not seen:
        raise RunbookError("{0} is not installed on this host.".format(name), hint=_install_hint(minimum),
                           cause="missing_tool", required_major=minimum)
    raise RunbookError(
        "{0} {1} or newer is needed for {2}, but this host has only older ones: {3}. An older {0} refuses "
        "the server or the dump, or misses objects.".format(name, minimum, why, ", ".join(seen)),
        hint=_install_hint(minimum), cause="old_tool", required_major=minimum, found=seen)


def _install_hint(minimum, pg_bin_dir=False):
    if minimum is None:
        return "Install the PostgreSQL client package (postgresql-client) or set pg_bin_dir."
    return ("Install postgresql-client-{0} (Debian/Ubuntu, from apt.postgresql.org) or postgresql{0} (RHEL, from the "
            "PGDG repository), or a newer version, and {1} its bin directory (e.g. /usr/lib/postgresql/{0}/bin)."
            .format(minimum, "point pg_bin_dir at" if pg_bin_dir else "ops.runbook finds it in PATH or in"))


def pg_tool(opts, name, minimum=None, why=None):
    """Path of a PostgreSQL client program at least as new as PostgreSQL `minimum` (a major version).

    From pg_bin_dir when set (refused when older), else from PATH when new
    enough, else the newest installed version that is (find_tool).
    """
    return find_tool(name, minimum, pg_bin_dir=opts.get("pg_bin_dir"), why=why)[0]


def server_needs(server, where):
    """(minimum major, why) for client programs that talk to `server` (postgres.server_info)."""
    major = major_version(server["version_num"])
    return major, "the PostgreSQL {0} server at {1}".format(server["version"], where)


def reader_needs(manifest, server=None, where=None):
    """(minimum major, why) for reading a set's dump, and loading it into `server` when given.

    pg_restore cannot read the archives of a newer pg_dump, and a client must be
    at least as new as the server it loads into.
    """
    needs = []
    written = manifest.get("pg_dump_version")
    if major_version(written) is not None:
        needs.append((major_version(written), "the dump written by pg_dump {0}".format(
            re.split(r"[\s-]", str(written))[0])))
    if server is not None:
        needs.append(server_needs(server, where))
    if not needs:
        return None, None
    return max(needs, key=lambda need: need[0])


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


def restore_into(opts, catalog, database, set_id, manifest, target, keep_owners=True, deadline=None):
    """Stream a set's dump into the existing, empty database `target`; returns seconds.

    When `deadline` (a deadline.Deadline) passes, the restore's programs are killed and its error raised.

    `target` reaches the programs only as conninfo(target): any name is just a name.

    keep_owners=False restores every object as the connecting user, for scratch
    copies on servers that lack the original roles.
    """
    conn = connect(opts, target)
    try:
        server = server_info(conn)
    finally:
        conn.close()
    minimum, why = reader_needs(manifest, server, endpoint(opts))
    stages = decompress_stages(manifest["compression"])
    env = libpq_environment(opts, target, "ops.runbook restore")
    if manifest["format"] == "custom":
        argv = [pg_tool(opts, "pg_restore", minimum, why), "--no-password", "--exit-on-error", "--dbname", conninfo(target)]
        if not keep_owners:
            argv.append("--no-owner")
        stages.append(("pg_restore", argv))
    else:
        stages.append(("psql", [pg_tool(opts, "psql", minimum, why), "--no-password", "--no-psqlrc", "--quiet",
                                "--set", "ON_ERROR_STOP=1", "--dbname", conninfo(target)]))
    started = time.monotonic()
    stream_through(catalog.chunks(database, set_id, manifest["dump_file"]), stages, lambda data: None, env=env,
                   deadline=deadline)
    return time.monotonic() - started
