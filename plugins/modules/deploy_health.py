#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: deploy_health
short_description: Judge each application's last deployment from the records on the host
version_added: 0.2.0
description:
  - Reads the newest deployment record of each application (written by the deploy role through
    M(ops.runbook.deploy_record)) and judges it as a C(pass) / C(warn) / C(fail) check with the observed value, the
    threshold and a sentence.
  - C(deployed) passes; C(rolled_back) (a gate failed and the previous release or images are back and proven) and
    C(failed) (it failed before anything changed) warn with the record's sentence; C(rollback_failed) fails; a run
    left C(in_progress) for more than O(stale_minutes) fails (it died half-way), a younger one passes.
  - Read-only.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.checks
options:
  records_dir:
    description: Directory of the deployment records.
    type: path
    default: /var/lib/ops-runbook/deploys
  applications:
    description: The applications to judge; unset means every application with records.
    type: list
    elements: str
  stale_minutes:
    description: Minutes after which a deployment still C(in_progress) is taken for dead.
    type: float
    default: 60
attributes:
  check_mode:
    support: full
    description: It only reads, so check mode runs it in full.
  diff_mode:
    support: none
    description: Nothing changes.
seealso:
  - module: ops.runbook.deploy_record
  - module: ops.runbook.host_health
"""

EXAMPLES = r"""
- name: Judge the last deployment of every application on the host
  ops.runbook.deploy_health:
  become: true

- name: Judge one application's, reporting without failing the task
  ops.runbook.deploy_health:
    applications: [bmi-health-tracker]
    fail_on: never
"""

RETURN = r"""
checks:
  description:
    - One check per application (C(name) C(deployment <application>), C(status), C(observed_value) - the outcome, or
      the minutes in progress - C(threshold), C(output), C(outcome), C(record), C(deploy_id)).
  returned: always
  type: list
  elements: dict
status:
  description: Worst status of the checks.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.deploy_health import DEFAULT_STALE_MINUTES, run_deploy_health
from ansible_collections.ops.runbook.plugins.module_utils.deploy_record import DEFAULT_RECORDS_DIR


def argument_spec():
    return dict(
        records_dir=dict(type="path", default=DEFAULT_RECORDS_DIR),
        applications=dict(type="list", elements="str"),
        stale_minutes=dict(type="float", default=DEFAULT_STALE_MINUTES),
    )


def run(params, check_mode, log):
    return run_deploy_health(params)


def main():
    run_module(argument_spec(), run, checks=True, supports_check_mode=True)


if __name__ == "__main__":
    main()
