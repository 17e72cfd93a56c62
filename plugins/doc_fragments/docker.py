# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker engine to talk to, as C(DOCKER_HOST) takes it (C(unix:///run/docker.sock), C(ssh://user@host)).
      - Falls back to the E(DOCKER_HOST) environment variable; unset means the CLI's default (C(/var/run/docker.sock)).
    type: str
  docker_command:
    description: The docker CLI, a path or a command with arguments (C(sudo docker)).
    type: str
    default: docker
  compose_command:
    description:
      - The Docker Compose v2 CLI, C(docker compose) (the plugin) or C(docker-compose) when that is v2.
      - Docker Compose v1 (1.x) is refused with a message saying so.
    type: str
    default: docker compose
  docker_timeout:
    description: Seconds one docker or compose command may take before it is killed and the task fails.
    type: int
    default: 60
"""

    # The options that select one compose project: compose_project_argument_spec() in module_utils/docker.py.
    COMPOSE_PROJECT = r"""
options:
  compose_project_dir:
    description:
      - The compose project's directory (C(--project-directory)), e.g. C(/opt/formula-pm).
      - Compose looks for C(compose.yaml) or C(docker-compose.yml) there unless O(compose_files) names the files.
    type: path
  compose_files:
    description: Compose files (C(-f)), in order; empty means compose's own lookup in O(compose_project_dir).
    type: list
    elements: path
    default: []
  compose_project_name:
    description: The project name (C(-p)); unset means compose's default (the directory's name).
    type: str
"""
