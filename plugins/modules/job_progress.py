#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: job_progress
short_description: Wait for an async job and show its progress in the job log while it runs
version_added: 0.2.0
description:
  - A module cannot print while it runs, so a long backup, verification or restore run the usual way shows
    nothing in the job log (AWX, C(ansible-playbook)) for minutes. The collection's roles start such a step with
    C(async) (and C(poll) 0) and wait for it with this action.
  - Every O(interval) seconds it asks C(ansible.builtin.async_status) whether the job has finished and reads
    O(progress_file), which the job's engine rewrites every few seconds (for example M(ops.runbook.pg_backup)'s
    O(ops.runbook.pg_backup#module:progress_file) - bytes dumped, parts uploaded, the lock C(pg_dump) waits for);
    each new line is printed in the job log after the host and O(label).
  - When the job ends, its result becomes this task's result (failed when the job failed), and the job's status
    file is removed.
  - Runs with the task's connection and C(become) settings - give it the same C(become_user) as the async task.
  - Run as a module without its action (C(ansible.legacy) lookups, tests), it only reads O(progress_file) once and
    returns RV(progress).
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  jid:
    description: The C(ansible_job_id) the async task returned.
    type: str
    required: true
  results_file:
    description:
      - The C(results_file) the async task returned. Where the job keeps its status is then taken from it; unset, it
        is the C(async_dir) shell option expanded on the host, as M(ansible.builtin.async_status) does - which
        expands C(~) to the user's home in the password database, while the async task wrote under C($HOME).
    type: str
    version_added: 0.2.0
  progress_file:
    description: The job's progress file on the host. Unset, or not readable yet, means no progress lines.
    type: path
  label:
    description: Printed before each progress line, e.g. the database's name.
    type: str
  interval:
    description: Seconds between two looks at the job.
    type: float
    default: 5
  timeout:
    description: Stop waiting (and fail) after this many seconds; C(0) means the job's own C(async) limit applies.
    type: float
    default: 0
attributes:
  check_mode:
    support: full
    description: It only reads; the async job itself decides what check mode means.
notes:
  - The action runs C(ansible.builtin.async_status) and this module (which reads O(progress_file)) on the host.
"""

EXAMPLES = r"""
- name: Start the backup
  ops.runbook.pg_backup:
    database: bmidb
    progress_file: /var/backups/postgresql/.progress-bmidb.json
  async: 21900
  poll: 0
  register: backup_job

- name: Wait for the backup, showing its progress
  ops.runbook.job_progress:
    jid: "{{ backup_job.ansible_job_id }}"
    results_file: "{{ backup_job.results_file }}"
    progress_file: /var/backups/postgresql/.progress-bmidb.json
    label: bmidb
  register: backup
"""

RETURN = r"""
msg:
  description:
    - The job's own result is returned as it is, e.g. M(ops.runbook.pg_backup)'s C(msg) and C(summary).
    - Run as a module alone, the progress line.
  returned: when the job returns one
  type: str
progress:
  description: Run as a module alone, the progress file's document - C(line), C(seq), C(elapsed_seconds), C(time).
  returned: when run without the action
  type: dict
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.job_progress import progress_result


def argument_spec():
    return dict(
        jid=dict(type="str", required=True),
        results_file=dict(type="str"),
        progress_file=dict(type="path"),
        label=dict(type="str"),
        interval=dict(type="float", default=5),
        timeout=dict(type="float", default=0),
    )


def run(params, check_mode, log):
    return progress_result(params)


def main():
    run_module(argument_spec(), run, supports_check_mode=True)


if __name__ == "__main__":
    main()
