# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup-set naming, layout and the manifest that proves a set is complete.

The same layout serves a local directory and an S3 prefix:
`<database>/<backup_id>/<files>` with `manifest.json` written last.
Verification and restore read only what is defined here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
EXTENSIONS = {"zstd": ".zst", "gzip": ".gz", "none": ""}
FORMAT_EXTENSIONS = {"custom": ".dump", "plain": ".sql"}
_ID_PATTERN = re.compile(r"^(?P<database>.+)-(?P<stamp>\d{8}T\d{6}Z)$")


def backup_id(database, moment):
    return "{0}-{1}".format(database, moment.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT))


def parse_backup_id(value):
    """(database, UTC datetime) of a backup id, or None if it is not one."""
    match = _ID_PATTERN.match(value)
    if not match:
        return None
    moment = datetime.datetime.strptime(match.group("stamp"), STAMP_FORMAT)
    return match.group("database"), moment.replace(tzinfo=datetime.timezone.utc)


def dump_file_name(database, dump_format, compression):
    return database + FORMAT_EXTENSIONS[dump_format] + EXTENSIONS[compression]


def globals_file_name(compression):
    return "globals.sql" + EXTENSIONS[compression]


def config_file_name(path):
    """A config file's place in the set: its absolute path, flattened."""
    return "config/" + path.strip("/").replace("/", "__")


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
    document = json.loads(text)
    if not isinstance(document, dict) or "backup_id" not in document or "files" not in document:
        raise ValueError("not an ops.runbook backup manifest")
    return document
