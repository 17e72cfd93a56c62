#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: container_state
short_description: Stop or start containers and docker compose services, saying which it changed
version_added: 0.2.0
description:
  - Stops or starts plain containers (C(docker stop), C(docker start)) and services of one docker compose project
    (C(docker compose stop), C(docker compose start)), as runbook 004's "Database Recovery" does around a restore
    (C(docker-compose stop backend frontend), restore, C(docker-compose start backend frontend)).
  - Looks first and acts only on those not yet in the wanted state, so C(changed) is true only when something was
    stopped or started, and returns their names (RV(changed_compose_services), RV(changed_containers)), so a playbook
    that stops the application starts again exactly what was running, and leaves alone what was already stopped.
  - When a stop command fails, every target that was running before is returned as changed with the failure, so
    the playbook's C(always) section starts them again.
  - A compose service counts as running when one of its containers runs (or restarts, or is paused); it counts as
    started when all of its containers run. A compose service without any container cannot be started and fails
    with what to do; O(state=started) never creates containers (that is C(docker compose up)). A name that is not a
    service of the project (C(docker compose config --services)) is refused before anything is stopped.
  - Commands run through the docker CLI against O(docker_host); Docker Compose v1 is refused.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.docker
  - ops.runbook.docker.compose_project
options:
  state:
    description:
      - C(stopped) stops those that run; C(started) starts those that do not.
    type: str
    choices: [stopped, started]
    required: true
  containers:
    description: Plain containers, by name or ID.
    type: list
    elements: str
    default: []
  compose_services:
    description:
      - Services of the compose project selected by O(compose_project_dir), O(compose_files) and
        O(compose_project_name), stopped or started with one compose command (compose orders them by their
        dependencies).
      - Compose services are stopped before O(containers) and started after them.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Looks at every target and returns the commands it would run (RV(commands)); runs none of them.
  diff_mode:
    support: none
    description: A stop or start has no diff.
seealso:
  - module: ops.runbook.service_restart
    description: >-
      Proves a started container or compose service healthy (O(ops.runbook.service_restart#module:state=verified)).
"""

EXAMPLES = r"""
- name: Stop the application services
  ops.runbook.container_state:
    state: stopped
    compose_services: [backend, frontend]
    compose_project_dir: /opt/formula-pm
    compose_files: [/opt/formula-pm/docker-compose.prod.yml]
  register: app_stopped

- name: Start again what was running
  ops.runbook.container_state:
    state: started
    compose_services: "{{ app_stopped.changed_compose_services }}"
    compose_project_dir: /opt/formula-pm
    compose_files: [/opt/formula-pm/docker-compose.prod.yml]
  when: app_stopped.changed_compose_services | length > 0

- name: Stop a plain container on a private engine
  ops.runbook.container_state:
    state: stopped
    containers: [blogengine-worker]
    docker_host: unix:///run/docker.sock
"""

RETURN = r"""
state:
  description: The requested state.
  returned: always
  type: str
  sample: stopped
before:
  description: Every target as found, with C(kind) (C(compose_service) or C(container)), C(name) and C(state).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "compose_service", "name": "backend", "state": "running"}]
after:
  description: Every target after the commands ran, as RV(before).
  returned: when something was changed, not in check mode
  type: list
  elements: dict
changed_compose_services:
  description:
    - The compose services stopped or started (in check mode, that would be); on a failed stop, every one that was
      running before.
  returned: always
  type: list
  elements: str
  sample: [backend, frontend]
changed_containers:
  description: The plain containers stopped or started, as RV(changed_compose_services).
  returned: always
  type: list
  elements: str
commands:
  description: The commands run (in check mode, that would run), in order.
  returned: always
  type: list
  elements: str
  sample: ["docker compose --project-directory /opt/formula-pm stop backend frontend"]
msg:
  description: What was done, naming every target.
  returned: always
  type: str
  sample: Stopped backend, frontend.
log:
  description: The commands as they ran.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.container_state import VERBS, run_container_state
from ansible_collections.ops.runbook.plugins.module_utils.docker import (
    compose_project_argument_spec, docker_common_argument_spec)


def argument_spec():
    spec = docker_common_argument_spec()
    spec.update(compose_project_argument_spec())
    spec.update(
        state=dict(type="str", choices=sorted(VERBS), required=True),
        containers=dict(type="list", elements="str", default=[]),
        compose_services=dict(type="list", elements="str", default=[]),
    )
    return spec


def run(params, check_mode, log):
    return run_container_state(params, check_mode=check_mode, log=log)


def main():
    run_module(argument_spec(), run, progress=True, supports_check_mode=True)


if __name__ == "__main__":
    main()
