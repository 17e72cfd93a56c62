#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: report_upload
short_description: Keep report files where they outlive the job - upload them to an S3 report location
version_added: 0.2.0
description:
  - Uploads report files (a health check's HTML, JSON, Prometheus text and Markdown, a verification report, an
    incident timeline) to O(s3_bucket) under C(S3_PREFIX/NAME/STAMP/FILE), where C(STAMP) is the upload's UTC time
    (C(20261206T031500Z)), so every run's reports are kept side by side. In AWX the controller (C(localhost)) is the
    job's container, and files written there vanish when the job ends.
  - Each object gets the content type a reader needs (C(text/html) for the self-contained HTML page, so a browser
    shows it). Files stay where they are.
  - Returns each object's C(s3://) URI, its URL on the endpoint and, with O(presign_seconds), a presigned URL that
    lets anyone holding it read the report for that long without credentials.
  - A failed upload fails the task, naming the object, the cause, and where the report files still are.
  - Check mode says where each file would go and uploads nothing.
  - The C(ops.runbook.report_store) role calls it with the C(report_store_*) variables.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.s3
options:
  paths:
    description: Report files on the host the module runs on; their file names must differ.
    type: list
    elements: path
    required: true
  name:
    description: What the reports are, a folder under O(s3_prefix) (C(health-check), C(backup-verification)).
    type: str
    required: true
  presign_seconds:
    description:
      - Also return (and show) a presigned URL of each object, valid this many seconds. C(0) means none.
      - Anyone who reads the job log can open the report during that time; leave it C(0) where that is too much.
    type: int
    default: 0
notes:
  - O(s3_bucket) is required here; it is the bucket of the reports, which may be the backups' bucket.
  - O(s3_sse), O(s3_sse_kms_key_id) and O(s3_storage_class) apply to the reports as to backups; the part size and
    concurrency options are accepted but unused (a report is one request).
"""

EXAMPLES = r"""
- name: Keep the health report in S3
  ops.runbook.report_upload:
    paths:
      - /var/tmp/ops-runbook/health-check.html
      - /var/tmp/ops-runbook/health-check.json
    name: health-check
    s3_bucket: ops-reports
    s3_prefix: runbook
    s3_endpoint_url: https://s3.internal.example.com
    presign_seconds: 86400
  delegate_to: localhost
  register: report_upload

- name: Show where the reports are
  ansible.builtin.debug:
    msg: "{{ report_upload.msg }}"
"""

RETURN = r"""
objects:
  description: One entry per file, in the order of O(paths).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The local file.
      type: str
    key:
      description: The object's key.
      type: str
      sample: runbook/health-check/20261206T031500Z/health-check.html
    uri:
      description: The object as C(s3://BUCKET/KEY).
      type: str
    url:
      description: The object's URL on the endpoint (path style on an S3-compatible store).
      type: str
    presigned_url:
      description: A URL that reads the object without credentials until it expires.
      returned: when O(presign_seconds) is more than 0 and not in check mode
      type: str
    size_bytes:
      description: The file's size.
      type: int
    content_type:
      description: The object's content type.
      type: str
location:
  description: The C(s3://) folder of this upload.
  returned: success, not in check mode
  type: str
  sample: s3://ops-reports/runbook/health-check/20261206T031500Z
msg:
  description: One line per file - where it went (or would go, in check mode).
  returned: always
  type: list
  elements: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.report_upload import upload_reports
from ansible_collections.ops.runbook.plugins.module_utils.s3 import import_boto3, s3_common_argument_spec


def argument_spec():
    spec = s3_common_argument_spec()
    spec.update(
        paths=dict(type="list", elements="path", required=True),
        name=dict(type="str", required=True),
        presign_seconds=dict(type="int", default=0),
    )
    return spec


def run(params, check_mode, log):
    return upload_reports(params, check_mode)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, requires=(import_boto3,))


if __name__ == "__main__":
    main()
