# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports that outlive the job: copy report files to an S3 report location (the report_upload job).

In AWX a playbook's `localhost` is the job's container, which goes when the job
ends; a health report, a verification report or an incident timeline written
there must also go where it survives. Each file is uploaded with S3Store (the
one S3 path) under PREFIX/NAME/STAMP/FILE, with the content type a browser or
node_exporter needs, and its location is returned as s3://, as a URL on the
endpoint and, when asked, as a presigned URL.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket

from .common import RunbookError, human_size, utc_now
from .s3 import S3Store, join_key

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".prom": "text/plain; version=0.0.4; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
DEFAULT_TYPE = "application/octet-stream"
# A report is a page or a document, never a backup: larger files are refused rather than read into memory.
MAX_REPORT_BYTES = 64 * 1024 * 1024


def content_type(path):
    return CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), DEFAULT_TYPE)


def stamp(moment):
    return moment.strftime("%Y%m%dT%H%M%SZ")


def report_keys(paths, prefix, name, moment):
    """{path: key}: every file of one run under PREFIX/NAME/STAMP/, by its file name."""
    folder = join_key(prefix, name, stamp(moment))
    keys = {}
    for path in paths:
        key = join_key(folder, os.path.basename(path))
        if key in keys.values():
            raise RunbookError("Two reports have the file name {0}: {1}.".format(
                os.path.basename(path), ", ".join(p for p in paths if os.path.basename(p) == os.path.basename(path))),
                hint="Give each report of one upload its own file name.", cause="invalid")
        keys[path] = key
    return keys


def _where_kept(paths):
    return "The report{0} still on {1}: {2}.".format("s are" if len(paths) > 1 else " is", socket.getfqdn(),
                                                     ", ".join(paths))


def upload_reports(params, check_mode=False, now=None, store=None):
    """Upload params["paths"] to the report location; in check mode, say where they would go."""
    if not params.get("s3_bucket"):
        raise RunbookError("s3_bucket is not set: there is no report location to upload to.",
                           hint="Set report_store_s3_bucket (the ops.runbook.report_store role) or s3_bucket.",
                           cause="invalid")
    paths = list(params["paths"])
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise RunbookError("No report file at {0} on {1}.".format(", ".join(missing), socket.getfqdn()),
                           hint="Upload the reports on the host that wrote them (delegate_to).", cause="invalid")
    moment = now or utc_now()
    keys = report_keys(paths, params.get("s3_prefix") or "", params["name"], moment)
    store = store or S3Store(params)
    objects = []
    for path in paths:
        size = os.path.getsize(path)
        if size > MAX_REPORT_BYTES:
            raise RunbookError("{0} is {1}, more than a report may be ({2}).".format(
                path, human_size(size), human_size(MAX_REPORT_BYTES)), cause="invalid")
        key = keys[path]
        item = {"path": path, "key": key, "uri": "s3://{0}/{1}".format(store.bucket, key), "url": store.url(key),
                "size_bytes": size, "content_type": content_type(path)}
        objects.append(item)
    if check_mode:
        return {"changed": False, "objects": objects,
                "msg": ["Would upload {0} to {1}".format(item["path"], item["uri"]) for item in objects]}
    for item in objects:
        with open(item["path"], "rb") as handle:
            data = handle.read()
        try:
            store.put_bytes(item["key"], data, content_type=item["content_type"])
        except RunbookError as error:
            raise RunbookError("Uploading the report {0} to {1} failed: {2} {3}".format(
                item["path"], item["uri"], error.message, _where_kept(paths)), hint=error.hint, cause="s3_upload")
        if params.get("presign_seconds"):
            item["presigned_url"] = store.presigned_url(item["key"], params["presign_seconds"])
    lines = []
    for item in objects:
        line = "{0} -> {1} ({2})".format(os.path.basename(item["path"]), item["uri"], item["url"])
        if item.get("presigned_url"):
            line += " readable for {0} s at {1}".format(params["presign_seconds"], item["presigned_url"])
        lines.append(line)
    folder = join_key(params.get("s3_prefix") or "", params["name"], stamp(moment))
    return {"changed": True, "objects": objects, "msg": lines, "location": "s3://{0}/{1}".format(store.bucket, folder)}
