#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: deploy_record
short_description: Write and read the record a deployment or rollback leaves on its host
version_added: 0.2.0
description:
  - One JSON file per deployment under C(<records_dir>/<application>/) (the format of the C(deploy_record) module
    utility, shared by the release and compose engines) - who, when, from which release to which, each gate's evidence
    as a health check (C(pass)/C(warn)/C(fail), observed value, threshold, sentence) and the outcome.
  - O(action=start) writes a new record in state C(in_progress) and returns it (its C(id) names it in later calls);
    O(action=gate) adds one gate's evidence; O(action=finish) sets the outcome; each rewrite is atomic.
  - O(action=read) returns the application's records, newest first, and the newest finished deployment.
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  application:
    description: The application's name, one path component, e.g. C(bmi-health-tracker).
    type: str
    required: true
  records_dir:
    description: Directory of the records.
    type: path
    default: /var/lib/ops-runbook/deploys
  action:
    description: What to do, see the description.
    type: str
    choices: [start, gate, finish, read]
    default: read
  kind:
    description: C(release) or C(compose) (O(action=start)).
    type: str
    choices: [release, compose]
    default: release
  source:
    description: What was live before, e.g. a dict with C(release) set to C(20261206T101500Z-v1) (O(action=start)).
    type: dict
  target:
    description: What is deployed, with C(release) or C(images) (O(action=start)).
    type: dict
  operation:
    description: C(deploy) or C(rollback), kept in the record's C(to) as C(operation) (O(action=start)).
    type: str
    choices: [deploy, rollback]
    default: deploy
  record_id:
    description: The C(id) O(action=start) returned (O(action=gate) and O(action=finish)).
    type: str
  gate:
    description:
      - One gate's evidence - C(name), C(status) (C(pass), C(warn), C(fail)), C(observed), C(threshold) and
        C(message) (O(action=gate)).
    type: dict
  outcome:
    description: The outcome (O(action=finish)).
    type: str
    choices: [deployed, rolled_back, rollback_failed, failed]
  summary:
    description: The outcome's sentence, kept as the record's C(message) (O(action=finish)).
    type: str
    default: ""
  keep:
    description: With O(action=finish), delete all but this many of the application's records (never one in progress).
    type: int
    default: 50
  count:
    description: Records O(action=read) returns.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: O(action=start) returns the record it would write; nothing is written. O(action=read) reads.
  diff_mode:
    support: none
    description: The record is the report.
seealso:
  - module: ops.runbook.release
"""

EXAMPLES = r"""
- name: Record the deployment's start
  ops.runbook.deploy_record:
    application: bmi-health-tracker
    action: start
    source: {release: 20261206T101500Z-v1}
    target: {release: 20261206T111500Z-v2}
  register: record

- name: Record a gate
  ops.runbook.deploy_record:
    application: bmi-health-tracker
    action: gate
    record_id: "{{ record.record.id }}"
    gate: {name: build, status: pass, observed: built, threshold: built, message: The release built.}

- name: Find the release to roll back to
  ops.runbook.deploy_record:
    application: bmi-health-tracker
  register: history
"""

RETURN = r"""
record:
  description: The record written (O(action=start), O(action=gate), O(action=finish)).
  returned: when written
  type: dict
path:
  description: The record's file.
  returned: when written
  type: str
records:
  description: The newest O(count) records, newest first (O(action=read)).
  returned: with action read
  type: list
  elements: dict
last_deployed:
  description: The newest record whose outcome is C(deployed), or null (O(action=read)).
  returned: with action read
  type: dict
"""

from ansible_collections.ops.runbook.plugins.module_utils import deploy_record as records
from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


def argument_spec():
    return dict(
        application=dict(type="str", required=True),
        records_dir=dict(type="path", default=records.DEFAULT_RECORDS_DIR),
        action=dict(type="str", choices=["start", "gate", "finish", "read"], default="read"),
        kind=dict(type="str", choices=list(records.KINDS), default="release"),
        source=dict(type="dict"),
        target=dict(type="dict"),
        operation=dict(type="str", choices=["deploy", "rollback"], default="deploy"),
        record_id=dict(type="str"),
        gate=dict(type="dict"),
        outcome=dict(type="str", choices=[o for o in records.OUTCOMES if o != "in_progress"]),
        summary=dict(type="str", default=""),
        keep=dict(type="int", default=50),
        count=dict(type="int", default=10),
    )


def _find(params):
    found, _problems = records.load_records(params["records_dir"], params["application"])
    for record in found:
        if record.get("id") == params["record_id"]:
            record.pop("path", None)
            return record
    raise RunbookError("There is no deployment record {0} of {1} in {2}.".format(
        params["record_id"], params["application"], params["records_dir"]))


def run(params, check_mode, log):
    action = params["action"]
    if action == "read":
        found, problems = records.load_records(params["records_dir"], params["application"])
        return {"records": found[:params["count"]], "last_deployed": records.latest(found, ("deployed",)),
                "warnings": problems}
    if action == "start":
        target = dict(params["target"] or {}, operation=params["operation"])
        record = records.new_record(params["application"], params["kind"], params["source"] or {}, target)
        if check_mode:
            return {"record": record, "path": records.record_path(params["records_dir"], record)}
        return {"changed": True, "record": record, "path": records.write_record(params["records_dir"], record)}
    if not params["record_id"]:
        raise RunbookError("action={0} needs the record's id (record_id) from action=start.".format(action))
    if check_mode:
        return {"record": None, "path": None}
    record = _find(params)
    if action == "gate":
        gate = params["gate"] or {}
        records.add_gate(record, gate.get("name", "gate"), gate.get("status", "pass"), gate.get("observed"),
                         gate.get("threshold"), gate.get("message", ""))
    else:
        if not params["outcome"]:
            raise RunbookError("action=finish needs the outcome.")
        records.finish(record, params["outcome"], params["summary"])
    path = records.write_record(params["records_dir"], record)
    if action == "finish":
        records.prune(params["records_dir"], params["application"], params["keep"])
    return {"changed": True, "record": record, "path": path}


def main():
    run_module(argument_spec(), run, supports_check_mode=True,
               required_if=[("action", "gate", ("record_id", "gate")), ("action", "finish", ("record_id", "outcome"))])


if __name__ == "__main__":
    main()
