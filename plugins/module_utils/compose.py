# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A plain container or a docker compose service as a restart target.

The runbooks restart containers with `docker restart web` and
`docker-compose restart backend`. These are the same actions with the same
judgement as a systemd unit (service_restart.py): a snapshot taken from
`docker inspect` before, during and after (container id, state, health status,
restart count, start time, PID), so a container that dies, is restarted by its
restart policy or replaced a second later is caught, and one whose own
healthcheck reports `unhealthy` fails at once with the probe's last output.
Every command runs through docker.Docker (the one way to reach the engine,
which also refuses Docker Compose v1).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from .commands import display
from .common import RunbookError

TERMINAL_STATES = ("exited", "dead", "created", "absent")
ABSENT = {"exists": False, "active": False, "terminal": True, "state": "absent", "detail": "no container",
          "result": "", "pid": None, "restarts": None, "since": None, "since_text": "", "exit_status": None,
          "container_id": None, "health": None}


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


def last_probe(health):
    """The output of a healthcheck's last probe (State.Health.Log), on one line."""
    log = (health or {}).get("Log") or []
    if not log or not isinstance(log[-1], dict):
        return ""
    output = " ".join(str(log[-1].get("Output") or "").split())
    return "{0} (exit {1})".format(output[:300], log[-1].get("ExitCode")) if output else \
        "exit {0}".format(log[-1].get("ExitCode"))


def snapshot_from_inspect(documents):
    """The facts a restart is judged by (as systemd.snapshot_from_properties), from `docker inspect` documents.

    The replicas of a compose service are judged together: active when every one
    runs and reports healthy (or has no healthcheck); terminal, so the restart
    fails at once, when every one has stopped or any reports `unhealthy`.
    """
    if not documents:
        return dict(ABSENT, exists=True)
    states, healths, problems = [], [], []
    ids, pids, started, exits, restarts = [], [], [], [], 0
    for item in sorted(documents, key=lambda document: document.get("Name", "")):
        state = item.get("State") or {}
        status = "restarting" if state.get("Restarting") else state.get("Status") or "unknown"
        health = state.get("Health") or {}
        states.append(status)
        healths.append(health.get("Status") or "")
        if health.get("Status") == "unhealthy":
            problems.append("{0} unhealthy: {1}".format(item.get("Name", "").lstrip("/"), last_probe(health)))
        ids.append((item.get("Id") or "")[:12])
        pids.append(state.get("Pid") or 0)
        started.append(state.get("StartedAt") or "")
        exits.append(state.get("ExitCode"))
        restarts += int(item.get("RestartCount") or 0)
    running = all(status == "running" for status in states)
    detail = "; ".join(problems) or ",".join(sorted(set(health for health in healths if health)))
    return {
        "exists": True,
        # A container whose own healthcheck has not passed yet is still starting.
        "active": running and all(health in ("", "healthy") for health in healths),
        "terminal": all(status in TERMINAL_STATES for status in states) or bool(problems),
        "state": "running" if running else ",".join(sorted(set(states))),
        "detail": detail,
        "result": "",
        "pid": ",".join(str(pid) for pid in pids) if any(pids) else None,
        "restarts": restarts,
        "since": ",".join(started),
        "since_text": ",".join(started),
        "exit_status": 0 if running else next((code for code in exits if code), 0),
        "container_id": ",".join(ids),
        "health": ",".join(healths) or None,
    }


def merge_log_streams(stdout, stderr):
    """The lines of `docker logs --timestamps` in time order: the CLI splits the container's stdout and stderr."""
    lines = [line for line in (stdout.splitlines() + stderr.splitlines()) if line.strip()]
    return sorted(lines, key=lambda line: line.split(" ", 1)[0])


class Container:
    """One plain container (`docker run`), by name or id, as a restart target."""

    kind = "container"

    def __init__(self, name, docker, stop_timeout=10):
        self.name = name
        self.docker = docker
        self.stop_timeout = int(stop_timeout)
        self.label = "container {0}".format(name)

    def argv(self, action, lines=20):
        commands = {
            "restart": ["restart", "-t", str(self.stop_timeout), self.name],
            "reload": ["kill", "-s", "HUP", self.name],
            "logs": ["logs", "--timestamps", "--tail", str(lines), self.name],
        }
        return self.docker.docker_argv + commands[action]

    def snapshot(self):
        try:
            return snapshot_from_inspect(self.docker.inspect([self.name]))
        except RunbookError as error:
            if error.details.get("cause") == "no_such_container":
                return dict(ABSENT)
            raise

    def restart(self):
        return self.docker.run(self.argv("restart"), timeout=self.docker.timeout + self.stop_timeout)

    def reload(self):
        return self.docker.run(self.argv("reload"))

    def describe_action(self, verb):
        return display(self.argv(verb))

    def logs(self, lines):
        result = self.docker.run(self.argv("logs", lines))
        if not result.ok:
            raise RunbookError(result.output(400))
        return merge_log_streams(result.stdout, result.stderr)


class ComposeService:
    """One service of a docker compose project (every replica) as a restart target."""

    kind = "compose"

    def __init__(self, service, docker, project=None, stop_timeout=10):
        self.service = service
        self.docker = docker
        self.project = dict(project or {})
        self.stop_timeout = int(stop_timeout)
        self.label = "compose service {0}".format(service)

    def argv(self, action, lines=20):
        commands = {
            "restart": ["restart", "-t", str(self.stop_timeout), self.service],
            "reload": ["kill", "-s", "HUP", self.service],
            "ps": ["ps", "--all", "--format", "json", self.service],
            "logs": ["logs", "--no-color", "--timestamps", "--tail", str(lines), self.service],
        }
        return self.docker.compose_project_argv(**self.project) + commands[action]

    def snapshot(self):
        containers = parse_ps(self.docker.checked(self.argv("ps")).stdout)
        return snapshot_from_inspect(self.docker.inspect([item.get("ID") for item in containers]))

    def restart(self):
        return self.docker.run(self.argv("restart"), timeout=self.docker.timeout + self.stop_timeout)

    def reload(self):
        return self.docker.run(self.argv("reload"))

    def describe_action(self, verb):
        return display(self.argv(verb))

    def logs(self, lines):
        result = self.docker.run(self.argv("logs", lines))
        if not result.ok:
            raise RunbookError(result.output(400))
        return [line for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
