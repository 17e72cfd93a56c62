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
