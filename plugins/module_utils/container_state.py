# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stop or start containers and compose services around maintenance: the engine of ops.runbook.container_state.

Runbook 004's "Database Recovery" stops the application with
`docker-compose stop backend frontend`, restores, and starts it with
`docker-compose start backend frontend`. This engine does the same through the
one Docker helper (docker.py): it looks first, changes only what is not yet in
the wanted state (so `changed` is honest and a second run does nothing), and
returns which it changed, so a playbook starts again exactly the ones it
stopped. In check mode it returns the commands it would run and runs none.
When a stop or start command fails, everything that was running before is
reported as changed: the caller starts those again (starting a running one
does nothing).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .commands import display, run as run_command
from .common import RunbookError
from .compose import parse_ps
from .docker import Docker, compose_project_params

VERBS = {"stopped": "stop", "started": "start"}
# A container in one of these states has a process that `stop` ends; every other state (created, exited,
# dead, absent) is already stopped.
RUNNING_STATES = ("running", "restarting", "paused")


def compose_service_states(services, containers):
    """{service: [state of each of its containers]} from `compose ps --all --format json`; [] means no container."""
    states = {service: [] for service in services}
    for container in containers:
        service = container.get("Service")
        if service in states:
            states[service].append((container.get("State") or "unknown").lower())
    return states


def is_running(states):
    return any(state in RUNNING_STATES for state in states)


def needs_change(wanted, states):
    """True when a target whose containers are in `states` must be stopped or started to reach `wanted`."""
    if wanted == "stopped":
        return is_running(states)
    return not states or not all(state == "running" for state in states)


def shown_state(states):
    return ",".join(sorted(set(states))) if states else "absent"


def sentence(wanted, changed, unchanged, check_mode):
    """What the run did (or would do), naming every target."""
    verb = VERBS[wanted]
    parts = []
    if changed:
        parts.append("{0} {1}".format("Would " + verb if check_mode else wanted.capitalize(), ", ".join(changed)))
    if unchanged:
        parts.append("{0} already {1}".format(", ".join(unchanged), wanted))
    return ("; ".join(parts) or "Nothing to {0}".format(verb)) + "."


class ContainerState:
    """Plain containers and the services of one compose project, brought to `stopped` or `started`."""

    def __init__(self, params, runner=run_command):
        self.params = params
        self.docker = Docker(params, runner=runner)
        self.containers = list(params.get("containers") or [])
        self.services = list(params.get("compose_services") or [])
        self.project = compose_project_params(params)

    def observe(self):
        """[(kind, name, [states])] for every target, in the order given (compose services first)."""
        found = []
        if self.services:
            project = self.docker.compose_project_argv(**self.project)
            # compose ps answers nothing for a misspelt service, which would leave it running through the restore.
            defined = self.docker.checked(project + ["config", "--services"]).stdout.split()
            unknown = [service for service in self.services if service not in defined]
            if unknown:
                raise RunbookError("The compose project has no service {0}; its services are {1}.".format(
                    ", ".join(unknown), ", ".join(defined) or "none"),
                    hint="Check the service names, compose_project_dir and compose_files.", cause="unknown_service")
            listed = parse_ps(self.docker.checked(project + ["ps", "--all", "--format", "json"] + self.services).stdout)
            states = compose_service_states(self.services, listed)
            found += [("compose_service", service, states[service]) for service in self.services]
        if self.containers:
            inspected = self.docker.inspect(self.containers)
            by_name = {}
            for item in inspected:
                status = ((item.get("State") or {}).get("Status") or "unknown").lower()
                by_name[(item.get("Name") or "").lstrip("/")] = status
                by_name[item.get("Id") or ""] = status
            for name in self.containers:
                status = by_name.get(name) or next(
                    (value for key, value in by_name.items() if key and key.startswith(name)), None)
                found.append(("container", name, [status] if status else []))
        return found

    def commands(self, wanted, services, containers):
        """The docker/compose commands that bring `services` and `containers` to `wanted`, in order."""
        verb = VERBS[wanted]
        argvs = []
        compose = [self.docker.compose_project_argv(**self.project) + [verb] + services] if services else []
        plain = [self.docker.docker_argv + [verb] + containers] if containers else []
        # Stopped: the compose application first, as the runbook does; started: in the reverse order.
        argvs += compose + plain if wanted == "stopped" else plain + compose
        return argvs

    def run(self, wanted, check_mode=False, log=None):
        if not self.services and not self.containers:
            raise RunbookError("Nothing to {0}: no containers and no compose services were named.".format(
                VERBS[wanted]), hint="Set containers or compose_services.", cause="no_targets")
        before = self.observe()
        if wanted == "started":
            missing = [name for kind, name, states in before if kind == "compose_service" and not states]
            if missing:
                raise RunbookError(
                    "Compose service {0} has no container to start.".format(", ".join(missing)),
                    hint="Create it with `docker compose up -d SERVICE` in the project's directory, or check the "
                         "service names and compose_project_dir.", cause="no_container")
        change = [(kind, name) for kind, name, states in before if needs_change(wanted, states)]
        services = [name for kind, name in change if kind == "compose_service"]
        containers = [name for kind, name in change if kind == "container"]
        argvs = self.commands(wanted, services, containers)
        result = {
            "changed": bool(change),
            "state": wanted,
            "before": [{"kind": kind, "name": name, "state": shown_state(states)} for kind, name, states in before],
            "changed_compose_services": services,
            "changed_containers": containers,
            "commands": [display(argv) for argv in argvs],
            "msg": sentence(wanted, [name for _kind, name in change],
                            [name for kind, name, _states in before if (kind, name) not in change], check_mode),
        }
        if check_mode or not change:
            return result
        for argv in argvs:
            if log:
                log(display(argv))
            try:
                self.docker.checked(argv)
            except RunbookError as error:
                error.details.update(self._after_failure(wanted, before))
                raise
        result["after"] = [{"kind": kind, "name": name, "state": shown_state(states)}
                           for kind, name, states in self.observe()]
        return result

    @staticmethod
    def _after_failure(wanted, before):
        """What the caller must start again when a command failed midway: all that ran before a stop."""
        if wanted != "stopped":
            return {}
        running = [(kind, name) for kind, name, states in before if is_running(states)]
        return {"changed_compose_services": [name for kind, name in running if kind == "compose_service"],
                "changed_containers": [name for kind, name in running if kind == "container"]}


def run_container_state(params, check_mode=False, log=None, runner=run_command):
    return ContainerState(params, runner=runner).run(params["state"], check_mode=check_mode, log=log)
