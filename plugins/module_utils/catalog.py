# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup sets where they are kept: a local directory or an S3 prefix.

Both catalogs answer the same questions (which sets exist and which are
complete, read a manifest, stream a file, delete a set), so retention,
verification and restore are written once for both.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import shutil

from . import manifest as manifest_lib
from .common import RunbookError

PARTIAL_SUFFIX = ".partial"
CHUNK = 1024 * 1024


class LocalCatalog(object):
    kind = "local"

    def __init__(self, root):
        self.root = root

    def location(self, database, set_id=None, name=None):
        return os.path.join(self.root, *_components(database, set_id, name))

    def sets(self, database):
        """{backup_id: {"complete": bool, "started_at": datetime}} of `database`."""
        found = {}
        base = self.location(database)
        if not os.path.isdir(base):
            return found
        own = manifest_lib.safe_name(database)
        for name in os.listdir(base):
            parsed = manifest_lib.parse_backup_id(name)
            if parsed and parsed[0] == own and os.path.isdir(os.path.join(base, name)):
                found[name] = {"complete": os.path.isfile(os.path.join(base, name, manifest_lib.MANIFEST_NAME)),
                               "started_at": parsed[1]}
        return found

    def partials(self, database):
        """Sets still being written, or left by a run that died."""
        base = self.location(database)
        if not os.path.isdir(base):
            return []
        return sorted(os.path.join(base, n) for n in os.listdir(base)
                      if n.startswith(".") and n.endswith(PARTIAL_SUFFIX))

    def manifest(self, database, set_id):
        path = self.location(database, set_id, manifest_lib.MANIFEST_NAME)
        try:
            with open(path) as handle:
                return manifest_lib.loads(handle.read())
        except (IOError, OSError) as error:
            raise RunbookError("Cannot read the manifest {0}: {1}".format(path, error.strerror or error),
                               cause="missing_manifest")
        except ValueError as error:
            raise RunbookError("The manifest {0} is not valid: {1}".format(path, error), cause="bad_manifest")

    def chunks(self, database, set_id, name, chunk_size=CHUNK):
        path = self.location(database, set_id, name)
        try:
            with open(path, "rb") as handle:
                while True:
                    data = handle.read(chunk_size)
                    if not data:
                        return
                    yield data
        except (IOError, OSError) as error:
            raise RunbookError("Cannot read {0}: {1}".format(path, error.strerror or error), cause="missing_file")

    def file_size(self, database, set_id, name):
        """Size in bytes of a file of the set, or None when it is not there."""
        path = self.location(database, set_id, name)
        return os.path.getsize(path) if os.path.isfile(path) else None

    def delete_set(self, database, set_id):
        path = self.location(database, set_id)
        # The manifest goes first: a half-deleted set must never look complete.
        manifest_path = os.path.join(path, manifest_lib.MANIFEST_NAME)
        if os.path.exists(manifest_path):
            os.unlink(manifest_path)
        shutil.rmtree(path)


class S3Catalog(object):
    kind = "s3"

    def __init__(self, store):
        self.store = store

    def key(self, database, set_id=None, name=None):
        """The object key (or, without a name, the key prefix) of a set or a file of it."""
        return self.store.key(*_components(database, set_id, name))

    def location(self, database, set_id=None, name=None):
        return "s3://{0}/{1}{2}".format(self.store.bucket, self.key(database, set_id, name), "" if name else "/")

    def sets(self, database):
        """Like LocalCatalog.sets, with each set's object keys under "keys"."""
        root = self.key(database) + "/"
        own = manifest_lib.safe_name(database)
        found = {}
        for item in self.store.list_objects(root):
            rest = item["Key"][len(root):]
            set_id = rest.split("/", 1)[0]
            parsed = manifest_lib.parse_backup_id(set_id)
            if not parsed or parsed[0] != own:
                continue
            entry = found.setdefault(set_id, {"complete": False, "started_at": parsed[1], "keys": []})
            entry["keys"].append(item["Key"])
            if rest == set_id + "/" + manifest_lib.MANIFEST_NAME:
                entry["complete"] = True
        return found

    def partials(self, database):
        return []

    def manifest(self, database, set_id):
        key = self.key(database, set_id, manifest_lib.MANIFEST_NAME)
        try:
            return manifest_lib.loads(self.store.get_bytes(key).decode("utf-8"))
        except RunbookError as error:
            if error.details.get("code") == "NoSuchKey":
                raise RunbookError("The manifest s3://{0}/{1} does not exist.".format(self.store.bucket, key),
                                   cause="missing_manifest")
            raise
        except ValueError as error:
            raise RunbookError("The manifest s3://{0}/{1} is not valid: {2}".format(self.store.bucket, key, error),
                               cause="bad_manifest")

    def chunks(self, database, set_id, name, chunk_size=CHUNK):
        return self.store.iter_object(self.key(database, set_id, name), chunk_size)

    def file_size(self, database, set_id, name):
        """Size of an object of the set as the bucket's listing gives it (nothing is downloaded), or None."""
        key = self.key(database, set_id, name)
        for item in self.store.list_objects(key):
            if item["Key"] == key:
                return int(item.get("Size") or 0)
        return None

    def delete_set(self, database, set_id):
        keys = [item["Key"] for item in self.store.list_objects(self.key(database, set_id) + "/")]
        manifest_keys = [k for k in keys if k.endswith("/" + manifest_lib.MANIFEST_NAME)]
        self.store.delete_keys(manifest_keys)
        self.store.delete_keys([k for k in keys if k not in manifest_keys])


def _components(database, set_id=None, name=None):
    """The path components of a database's sets: its safe name, then a set id and a file name of
    the set (from its manifest, or an option), which must stay inside it."""
    parts = [manifest_lib.safe_name(database)]
    if set_id:
        if "/" in set_id or "\\" in set_id or set_id in (".", ".."):
            raise RunbookError("{0} is not a backup set id.".format(manifest_lib.shown(set_id)),
                               hint="Set ids look like <database>-<YYYYmmddTHHMMSSZ>-<hex>; list them first.",
                               cause="invalid")
        parts.append(set_id)
    if name:
        pieces = name.split("/")
        if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in pieces):
            raise RunbookError("{0} is not a file name of a backup set.".format(manifest_lib.shown(name)),
                               hint="The set's manifest names files outside the set; do not use it.",
                               cause="bad_manifest")
        parts.extend(pieces)
    return parts


# Why a manifest cannot be read (catalog.manifest's causes): the set is damaged, not the store unreachable.
SET_DAMAGE_CAUSES = ("missing_manifest", "bad_manifest")


def manifest_time(value):
    """An aware UTC datetime from a manifest's ISO 8601 time, or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(datetime.timezone.utc)


def manifest_problem(document, database, set_id):
    """Why a parsed manifest does not describe the set `set_id` of `database`, or None. Pure logic."""
    if document.get("backup_id") != set_id:
        return "its manifest belongs to another set ({0!r}), not to {1!r}".format(document.get("backup_id"), set_id)
    if document.get("database") != database:
        return "its manifest is of another database ({0!r}), not of {1!r}".format(document.get("database"), database)
    if manifest_time(document.get("finished_at")) is None:
        return "its manifest has no valid finished_at time ({0!r})".format(document.get("finished_at"))
    dump_file = document.get("dump_file")
    if not isinstance(dump_file, str) or not dump_file or "/" in dump_file or dump_file in (".", ".."):
        return "its manifest names no dump file of the set ({0!r})".format(dump_file)
    size = document.get("size_bytes")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return "its manifest gives no valid dump size ({0!r})".format(size)
    files = document.get("files")
    listed = [f for f in files if isinstance(f, dict) and f.get("name") == dump_file] if isinstance(files, list) else []
    if not listed or listed[0].get("size") != size or listed[0].get("role") != "dump":
        return "its manifest's list of files does not hold the dump {0} of {1} bytes".format(dump_file, size)
    return None


def _newest_first(record):
    """Sort key: the manifest's end time (a damaged set has only its id's start), to the second, then the id.

    To the second because a damaged set's time is its id's, which has no fraction: a set that ended at
    12:00:00.7 and one whose id says it started at 12:00:00 are ordered by their ids (start times), not
    by comparing one's end with the other's truncated start.
    """
    moment = record["finished_at"] or record["started_at"]
    return (moment.replace(microsecond=0), record["backup_id"])


def valid_sets(catalog, database):
    """Every set of `database`, newest first, with what its manifest proves about it.

    Each is a dict: backup_id, location, complete (a manifest is there), started_at (its id's time),
    valid, reason (why it is not valid, or None), and for a valid set its manifest and finished_at
    (the manifest's end time, an aware datetime; sets are ordered by it, else by their id's time).
    A valid set is complete, its manifest parses, names this set and database, and the dump is there
    with the manifest's size (a file's size, or the S3 listing's; no dump is read). A damaged set is
    returned with its reason, never raised; a store that cannot be read still raises RunbookError.
    """
    records = []
    for set_id, entry in catalog.sets(database).items():
        record = {"backup_id": set_id, "location": catalog.location(database, set_id), "complete": entry["complete"],
                  "started_at": entry["started_at"], "finished_at": None, "valid": False, "reason": None,
                  "manifest": None}
        records.append(record)
        if not entry["complete"]:
            record["reason"] = "it has no manifest: a backup still being written, or one that died"
            continue
        try:
            document = catalog.manifest(database, set_id)
        except RunbookError as error:
            if error.details.get("cause") not in SET_DAMAGE_CAUSES:
                raise
            record["reason"] = error.message
            continue
        unusable = manifest_lib.problems(document)
        problem = ("its manifest cannot be used: " + "; ".join(unusable)) if unusable else \
            manifest_problem(document, database, set_id)
        if problem is None:
            actual = catalog.file_size(database, set_id, document["dump_file"])
            if actual is None:
                problem = "its dump {0} is missing".format(document["dump_file"])
            elif actual != document["size_bytes"]:
                problem = "its dump {0} is {1} bytes, not the {2} its manifest records".format(
                    document["dump_file"], actual, document["size_bytes"])
        if problem:
            record["reason"] = problem
            continue
        record.update(valid=True, manifest=document, finished_at=manifest_time(document["finished_at"]))
    return sorted(records, key=_newest_first, reverse=True)
