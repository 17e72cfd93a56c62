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

import json
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


def complete_sets(catalog, database):
    """(backup_id, started_at) of every complete set, for retention and freshness."""
    return [(set_id, entry["started_at"]) for set_id, entry in catalog.sets(database).items() if entry["complete"]]


def dump_json(document):
    return json.dumps(document, indent=2, sort_keys=True)
