#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: container_incident
short_description: Find which containers and compose services are down, and why (the P1 diagnosis)
version_added: 0.2.0
description:
  - The first look of the runbooks' P1 "service down" response on a container host (C(docker ps -a),
    C(docker inspect), C(docker logs --tail)), for the containers of O(containers) and the services of
    O(compose_services) of one compose project.
  - Each is judged once - C(exited), C(dead), C(restarting), C(created), C(unhealthy) (its health probe fails),
    C(missing) (no such container, or a compose service without a container), or running although the OOM killer
    killed a process in it since it started. Those are returned in RV(down), for a playbook to restart with
    M(ops.runbook.service_restart).
  - For each it reports the state, the exit code, whether the OOM killer stopped it, the health probe's last output,
    the restart count, the last O(log_lines) log lines and a sentence for the incident timeline.
  - An OOM kill is judged from the engine's C(oom) events since O(since) (C(docker events --filter event=oom)), or
    from the C(OOMKilled) flag only while the container is stopped with exit code 137 and stopped after its last
    start - dockerd keeps the flag true after the container is started again.
  - Only reads; check mode runs the same diagnosis.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.docker
  - ops.runbook.docker.compose_project
options:
  containers:
    description: Names (or ids) of plain containers the incident is about.
    type: list
    elements: str
    default: []
  compose_services:
    description: Services of the compose project selected by O(compose_project_dir), O(compose_files) and O(compose_project_name).
    type: list
    elements: str
    default: []
  log_lines:
    description: Number of last log lines (both streams, with timestamps) kept for each container. C(0) reads no logs.
    type: int
    default: 20
  since:
    description: Start of the search for OOM kill events, as C(docker events --since) takes it (C(1h), C(30m), a timestamp).
    type: str
    default: 1h
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same diagnosis.
  diff_mode:
    support: none
    description: Nothing changes.
notes:
  - At least one of O(containers) and O(compose_services) must name something.
  - A compose service with several replicas is judged by its first container that is down (else its first one).
seealso:
  - module: ops.runbook.service_restart
  - module: ops.runbook.disk_cleanup
"""

EXAMPLES = r"""
- name: Find what is down on the compose host
  ops.runbook.container_incident:
    compose_services: [backend, frontend, redis]
    compose_project_dir: /opt/formula-pm
    log_lines: 30
  register: diagnosis

- name: Restart each container that is down, with proof
  ops.runbook.service_restart:
    container: "{{ item.name }}"
  loop: "{{ diagnosis.down | selectattr('kind', 'equalto', 'container') }}"
"""

RETURN = r"""
containers:
  description:
    - One entry per container or compose service, in the order given - C(kind) (C(container) or C(compose_service)),
      C(name), C(target) (C(container NAME) or C(compose service NAME)), C(container) (its container's name), C(id),
      C(state) (C(running), C(exited), C(dead), C(restarting), C(created), C(missing), ...), C(health), C(health_output)
      and C(health_exit_code) (the last probe), C(exit_code), C(oom_killed), C(oom_events) (in the searched period),
      C(memory_limit_bytes), C(restart_count), C(started_at), C(finished_at), C(error), C(logs) (the last lines),
      C(down) (needs a restart) and C(reason) (the sentence for the timeline).
  returned: always
  type: list
  elements: dict
  sample:
    - {"kind": "container", "name": "bmi-backend", "target": "container bmi-backend", "state": "exited",
       "exit_code": 137, "oom_killed": true, "restart_count": 0, "down": true,
       "logs": ["2026-12-05T03:12:09.114Z allocating cache"],
       "reason": "container bmi-backend is exited; exit code 137; killed by the OOM killer (memory limit 512.0 MiB)."}
down:
  description: The entries of RV(containers) that are down, to loop over.
  returned: always
  type: list
  elements: dict
sentences:
  description: The C(reason) of every entry, for the incident timeline.
  returned: always
  type: list
  elements: str
engine_version:
  description: The Docker engine's version (it answered).
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.container_incident import run_diagnosis
from ansible_collections.ops.runbook.plugins.module_utils.docker import (
    compose_project_argument_spec, docker_common_argument_spec)


def argument_spec():
    spec = dict(
        containers=dict(type="list", elements="str", default=[]),
        compose_services=dict(type="list", elements="str", default=[]),
        log_lines=dict(type="int", default=20),
        since=dict(type="str", default="1h"),
    )
    spec.update(docker_common_argument_spec())
    spec.update(compose_project_argument_spec())
    return spec


def run(params, check_mode, log):
    return run_diagnosis(params)


def main():
    run_module(argument_spec(), run, supports_check_mode=True)


if __name__ == "__main__":
    main()
