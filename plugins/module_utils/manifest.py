# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup-set naming, layout and the manifest that proves a set is complete.

The same layout serves a local directory and an S3 prefix:
`<database>/<backup_id>/<files>` with `manifest.json` written last.
Verification and restore read only what is defined here.

A database name is data: in paths, keys, file names and ids it appears only
as `safe_name(database)`, never as given; the manifest keeps the real name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re
import secrets
import string

from .common import RunbookError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
EXTENSIONS = {"zstd": ".zst", "gzip": ".gz", "none": ""}
FORMAT_EXTENSIONS = {"custom": ".dump", "plain": ".sql"}
# `<safe database name>-<UTC second>-<writer>`: the writer part, random per run, keeps the
# sets of several hosts backing up a database of the same name in the same second apart.
# Ids of older releases have no writer part; they are still sets.
WRITER_HEX_DIGITS = 8
_ID_PATTERN = re.compile(r"^(?P<database>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<writer>[0-9a-f]{6,8}))?$")
# What PostgreSQL can name a database: at most NAMEDATALEN - 1 bytes, never a NUL.
MAX_NAME_BYTES = 63
_READABLE = frozenset(string.ascii_letters + string.digits + "_-.")


def check_database_name(database):
    """Refuse, before anything is written, a name no PostgreSQL database can have."""
    if not isinstance(database, str) or not database:
        raise RunbookError("No database was named.", hint="Set database.", cause="invalid")
    if "\x00" in database or len(database.encode("utf-8")) > MAX_NAME_BYTES:
        raise RunbookError(
            "The database name {0} cannot be a PostgreSQL database name: it is {1} bytes long{2}; PostgreSQL "
            "names have at most {3} bytes and no NUL character.".format(
                shown(database), len(database.encode("utf-8")), ", with a NUL" if "\x00" in database else "",
                MAX_NAME_BYTES),
            hint="Check the database option.", cause="invalid")
    return database


def safe_name(database):
    """A database name as one path or key component: the same name for the same database, everywhere.

    Letters, digits, `_`, `-` and `.` (not first) stay; every other byte of the
    name's UTF-8 (`/`, `%`, spaces, quotes, non-ASCII letters, a leading `.`)
    becomes %XX. The result is ASCII, never empty, never `.` or `..`, never
    contains `/`, and two names never share one.
    """
    check_database_name(database)
    out = []
    for index, char in enumerate(database):
        if char in _READABLE and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend("%{0:02X}".format(byte) for byte in bytearray(char.encode("utf-8")))
    return "".join(out)


def shown(name):
    """A name as messages show it: plain if readable, else quoted with escapes, so that
    control characters, quotes or look-alike text in a name cannot fake a message."""
    if name and all(c in _READABLE for c in name):
        return name
    return repr(name)


def quoted(name):
    """A name in quotes as messages show it: 'name' if readable, else Python's escaped form."""
    if name and all(c in _READABLE for c in name) and "'" not in name:
        return "'{0}'".format(name)
    return repr(name)


def new_writer():
    """The random part of one run's backup id (also this writer's mark in the manifest)."""
    return secrets.token_hex(WRITER_HEX_DIGITS // 2)


def backup_id(database, moment, writer=None):
    """The id of a set of `database` started at `moment` by `writer` (random when not given)."""
    return "{0}-{1}-{2}".format(safe_name(database), moment.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT),
                                writer or new_writer())


def parse_backup_id(value):
    """(safe database name, UTC datetime) of a backup id, or None if it is not one.

    The database part is the safe_name() form: compare it with safe_name(database).
    """
    match = _ID_PATTERN.match(value)
    if not match:
        return None
    moment = datetime.datetime.strptime(match.group("stamp"), STAMP_FORMAT)
    return match.group("database"), moment.replace(tzinfo=datetime.timezone.utc)


def dump_file_name(database, dump_format, compression):
    return safe_name(database) + FORMAT_EXTENSIONS[dump_format] + EXTENSIONS[compression]


def globals_file_name(compression):
    return "globals.sql" + EXTENSIONS[compression]


def config_file_name(path):
    """A config file's place in the set: its absolute path, flattened."""
    return "config/" + path.strip("/").replace("/", "__")


def end_stamp(moment):
    """A set's end time for its manifest, to the millisecond: retention, verification and restore order
    sets by it, and two sets can end in the same second (two hosts, or back-to-back runs)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build(backup_id_value, database, started_at, finished_at, files, **facts):
    """The manifest document. `files` lists {name, role, size, sha256[, source]}."""
    dump = [f for f in files if f["role"] == "dump"][0]
    document = {
        "manifest_version": MANIFEST_VERSION,
        "backup_id": backup_id_value,
        "database": database,
        "started_at": started_at,
        "finished_at": finished_at,
        "files": files,
        "dump_file": dump["name"],
        "size_bytes": dump["size"],
        "sha256": dump["sha256"],
        "total_size_bytes": sum(f["size"] for f in files),
    }
    document.update(facts)
    return document


def dumps(document):
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def loads(text):
    try:
        document = json.loads(text)
    except RecursionError:  # nested deeper than the parser goes: not a manifest this tool wrote
        raise ValueError("it is nested too deeply to be read")
    if not isinstance(document, dict) or "backup_id" not in document or "files" not in document:
        raise ValueError("not an ops.runbook backup manifest")
    return document


# What retention, verification and restore read from a manifest; a manifest without one of these is damaged.
REQUIRED_FIELDS = ("backup_id", "database", "files", "dump_file", "size_bytes", "sha256", "format", "compression")


def problems(document):
    """What makes a parsed manifest unusable for retention, verification and restore, as sentences (empty when none)."""
    if not isinstance(document, dict):
        return ["it is not a JSON object"]
    problems = ["it has no {0}".format(field) for field in REQUIRED_FIELDS if field not in document]
    if problems:
        return problems
    for field in ("backup_id", "database", "dump_file", "sha256"):
        if not isinstance(document[field], str) or not document[field]:
            problems.append("its {0} is not a name".format(field))
    if not _is_size(document["size_bytes"]):
        problems.append("its size_bytes is not a size")
    if document["format"] not in FORMAT_EXTENSIONS:
        problems.append("its format {0!r} is unknown".format(document["format"]))
    if document["compression"] not in EXTENSIONS:
        problems.append("its compression {0!r} is unknown".format(document["compression"]))
    files = document["files"]
    if not isinstance(files, list) or not all(isinstance(f, dict) and _safe_name(f.get("name")) and
                                              _is_size(f.get("size")) for f in files):
        problems.append("its file list is damaged (each file needs a name inside the set and a size)")
    elif document["dump_file"] not in [f["name"] for f in files]:
        problems.append("its dump_file {0!r} is not among its files".format(document["dump_file"]))
    tables = document.get("tables")
    if tables is not None and not (isinstance(tables, dict) and all(
            isinstance(t, str) and _is_size(n) for t, n in tables.items())):
        problems.append("its table row counts are damaged")
    return problems


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _safe_name(name):
    """A file name inside a set: relative, without . or .. steps (a manifest never points outside its set)."""
    if not isinstance(name, str) or not name or "\x00" in name or name.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))
