# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A docker compose service as a restart target, through the `docker compose` CLI.

The runbooks restart containers with `docker-compose restart backend`. This is
the same action with the same judgement as a systemd unit (service_restart.py): a
snapshot of the service's containers (running, PID, restart count, start time)
taken before, during and after, so a container that dies or restarts a second
later is caught. The commands are built here and run through commands.run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import shlex

from .commands import display, run
from .common import RunbookError

TERMINAL_STATES = ("exited", "dead", "created", "absent")


def parse_ps(text):
    """Containers listed by `docker compose ps --format json`.

    Compose before 2.21 prints one JSON array, later versions one object per line.
    """
    text = text.strip()
    if not text:
        return []
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, list):
        return [item for item in document if isinstance(item, dict)]
    if isinstance(document, dict):
        return [document]
    containers = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise RunbookError("docker compose ps printed something that is not JSON: {0}".format(line[:200]),
                               hint="Use Docker Compose v2 (the `docker compose` plugin).", cause="compose")
        if isinstance(item, dict):
            containers.append(item)
    return containers


def parse_inspect(text):
    """{id: (State dict, RestartCount)} from `docker inspect` JSON."""
    try:
        document = json.loads(text)
    except ValueError:
        raise RunbookError("docker inspect printed something that is not JSON: {0}".format(text.strip()[:200]),
                           cause="compose")
    states = {}
    for item in document if isinstance(document, list) else []:
        states[item.get("Id", "")] = (item.get("State") or {}, item.get("RestartCount") or 0)
    return states


def snapshot_from_containers(containers, inspected):
    """The facts a restart is judged by (as systemd.snapshot_from_properties), for every replica together."""
    if not containers:
        return {"exists": True, "active": False, "terminal": True, "state": "absent", "detail": "no container",
                "result": "", "pid": None, "restarts": None, "since": None, "since_text": "", "exit_status": None}
    states, pids, restarts, started, healths, exits = [], [], 0, [], [], []
    for container in sorted(containers, key=lambda item: item.get("Name", "")):
        cid = container.get("ID", "")
        state, count = next((value for key, value in inspected.items() if cid and key.startswith(cid)), ({}, 0))
        status = state.get("Status") or container.get("State", "unknown")
        if state.get("Restarting"):
            status = "restarting"
        states.append(status)
        pids.append(state.get("Pid") or 0)
        restarts += int(count or 0)
        started.append(state.get("StartedAt", ""))
        health = (state.get("Health") or {}).get("Status") or container.get("Health") or ""
        healths.append(health)
        exits.append(state.get("ExitCode", container.get("ExitCode")))
    running = all(status == "running" for status in states)
    # A container whose own HEALTHCHECK has not passed yet is still starting.
    settled_health = all(health in ("", "healthy") for health in healths)
    return {
        "exists": True,
        "active": running and settled_health,
        "terminal": all(status in TERMINAL_STATES for status in states),
        "state": "running" if running else ",".join(sorted(set(states))),
        "detail": ",".join(sorted(set(h for h in healths if h))) or ",".join(states),
        "result": "",
        "pid": ",".join(str(pid) for pid in pids),
        "restarts": restarts,
        "since": ",".join(started),
        "since_text": ",".join(started),
        "exit_status": next((code for code in exits if code), 0),
    }


class ComposeService:
    """One service of a docker compose project as a restart target."""

    kind = "compose"

    def __init__(self, service, project_dir=None, files=(), project_name=None, command="docker compose",
                 docker_command="docker", runner=run):
        self.service = service
        self.project_dir = project_dir
        self.files = list(files or [])
        self.project_name = project_name
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        self.docker = shlex.split(docker_command) if isinstance(docker_command, str) else list(docker_command)
        self.label = "compose service {0}".format(service)
        self._run = runner

    def base_argv(self):
        argv = list(self.command)
        for path in self.files:
            argv += ["-f", path]
        if self.project_name:
            argv += ["-p", self.project_name]
        if self.project_dir:
            argv += ["--project-directory", self.project_dir]
        return argv

    def argv(self, action, lines=20):
        commands = {
            "restart": ["restart", self.service],
            "reload": ["kill", "-s", "HUP", self.service],
            "ps": ["ps", "--all", "--format", "json", self.service],
            "logs": ["logs", "--no-color", "--timestamps", "--tail", str(lines), self.service],
        }
        return self.base_argv() + commands[action]

    def inspect_argv(self, container_ids):
        return self.docker + ["inspect", "--type", "container"] + list(container_ids)

    def _checked(self, argv):
        result = self._run(argv, timeout=300)
        if not result.ok:
            raise RunbookError("`{0}` failed: {1}".format(display(argv), result.output()),
                               hint="Is the Docker engine running, and is this the project's directory?",
                               cause="compose")
        return result

    def snapshot(self):
        containers = parse_ps(self._checked(self.argv("ps")).stdout)
        ids = [item.get("ID") for item in containers if item.get("ID")]
        inspected = parse_inspect(self._checked(self.inspect_argv(ids)).stdout) if ids else {}
        return snapshot_from_containers(containers, inspected)

    def restart(self):
        return self._run(self.argv("restart"), timeout=300)

    def reload(self):
        return self._run(self.argv("reload"), timeout=120)

    def describe_action(self, verb):
        return display(self.argv(verb))

    def logs(self, lines):
        result = self._run(self.argv("logs", lines), timeout=60)
        return [line for line in result.stdout.splitlines() if line.strip()]
