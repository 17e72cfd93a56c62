# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which containers and compose services are down, and why: the P1 diagnosis on a container host.

The runbooks start a container incident with `docker ps -a`, `docker logs --tail`
and `docker inspect`; this engine does the same through `Docker` and judges each
named container (or compose service) once: exited, dead, restarting, created,
unhealthy, missing, or OOM-killed since it started. For each it keeps what the
on-call engineer reads first - the state, the exit code, whether the OOM killer
stopped it, the health probe's last output, the restart count and the last log
lines - and a sentence for the incident timeline.

dockerd 20.10 keeps `OOMKilled=true` after the container is started again, so an
OOM kill is judged from the engine's `oom` events since `since`, or from the
flag only while the container is stopped and its FinishedAt is after its
StartedAt (the flag then describes its last stop). It only reads.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from .common import RunbookError, human_size
from .compose import parse_ps
from .docker import Docker, compose_project_params, explain_failure, parse_json_lines, parse_time

DOWN_STATES = ("exited", "dead", "restarting", "created", "missing")
PROBE_OUTPUT_LIMIT = 300
# Seconds an `oom` event may lie outside StartedAt..FinishedAt (the engine stamps them separately).
EVENT_SLACK = 2.0


def parse_events(text):
    """`docker events --format '{{json .}}'` lines as [{id, name, action, time}] (time in epoch seconds)."""
    events = []
    for item in parse_json_lines(text, "docker events"):
        actor = item.get("Actor") or {}
        nanos = item.get("timeNano")
        events.append({"id": item.get("id") or actor.get("ID") or "",
                       "name": (actor.get("Attributes") or {}).get("name", ""),
                       "action": item.get("Action") or item.get("status") or "",
                       "time": nanos / 1e9 if nanos else float(item.get("time") or 0)})
    return events


def merge_logs(stdout, stderr, lines):
    """The last `lines` lines of `docker logs --timestamps` from both streams, in time order."""
    merged = [line for line in (stdout.splitlines() + stderr.splitlines()) if line.strip()]
    merged.sort(key=lambda line: line.split(" ", 1)[0])
    return merged[-lines:] if lines else []


def _probe(health):
    log = (health or {}).get("Log") or []
    if not log:
        return None, ""
    last = log[-1]
    output = " ".join(str(last.get("Output") or "").split())
    return last.get("ExitCode"), output[:PROBE_OUTPUT_LIMIT]


def judge(inspected, oom_events=(), logs=(), kind="container", name=None):
    """One container's diagnosis from its `docker inspect` document and its `oom` events.

    Returns the facts, `down` (true when it needs a restart) and `reason`, the
    sentence for the timeline.
    """
    state = inspected.get("State") or {}
    container = (inspected.get("Name") or "").lstrip("/")
    name = name or container
    target = "{0} {1}".format("compose service" if kind == "compose_service" else "container", name)
    status = state.get("Status") or "unknown"
    if state.get("Restarting"):
        status = "restarting"
    running = status == "running"
    health = (state.get("Health") or {}).get("Status") or ""
    probe_exit, probe_output = _probe(state.get("Health"))
    started, finished = parse_time(state.get("StartedAt")), parse_time(state.get("FinishedAt"))
    ids = {inspected.get("Id") or ""}
    events = [event for event in oom_events if event["id"] in ids]
    last_event = max((event["time"] for event in events), default=None)
    exit_code = state.get("ExitCode")
    oom_since_start = last_event is not None and (started is None or last_event >= started)
    if running:
        oom_killed = False
    elif events:
        oom_killed = (started is None or last_event >= started - EVENT_SLACK) and (
            finished is None or last_event <= finished + EVENT_SLACK)
    else:
        # No event in the searched period: the flag describes the last stop only when that stop came after
        # the last start and ended as a SIGKILL does; the flag alone survives later starts.
        oom_killed = bool(state.get("OOMKilled")) and exit_code == 137 and finished is not None and (
            started is None or finished >= started)
    limit = (inspected.get("HostConfig") or {}).get("Memory") or 0
    limit_text = " (memory limit {0})".format(human_size(limit)) if limit else ""
    restarts = int(inspected.get("RestartCount") or 0)

    if not running:
        parts = ["{0} is {1}".format(target, status)]
        if status in ("exited", "dead") and exit_code is not None:
            parts.append("exit code {0}".format(exit_code))
        if oom_killed:
            parts.append("killed by the OOM killer{0}".format(limit_text))
        if state.get("Error"):
            parts.append("error: {0}".format(state["Error"]))
        down = True
    elif health == "unhealthy":
        parts = ["{0} is unhealthy".format(target)]
        if probe_output or probe_exit is not None:
            parts.append("its health probe exited {0}: {1}".format(probe_exit, probe_output or "(no output)"))
        down = True
    elif oom_since_start:
        parts = ["{0} is running but the OOM killer killed a process in it since it started{1}".format(
            target, limit_text)]
        down = True
    else:
        parts = ["{0} is running{1}".format(target, ", " + health if health else "")]
        down = False
    if events:
        parts.append("{0} OOM kill event(s) in the searched period".format(len(events)))
    if restarts:
        parts.append("restarted {0} time(s) by its restart policy".format(restarts))
    logs = list(logs)
    if down and logs:
        parts.append("last log line: {0}".format(logs[-1]))
    return {
        "kind": kind,
        "name": name,
        "target": target,
        "container": container,
        "id": (inspected.get("Id") or "")[:12],
        "state": status,
        "health": health,
        "health_output": probe_output,
        "health_exit_code": probe_exit,
        "exit_code": exit_code,
        "oom_killed": oom_killed or (running and oom_since_start),
        "oom_events": len(events),
        "memory_limit_bytes": limit,
        "restart_count": restarts,
        "started_at": state.get("StartedAt") or "",
        "finished_at": state.get("FinishedAt") or "",
        "error": state.get("Error") or "",
        "logs": logs,
        "down": down,
        "reason": "; ".join(parts) + ".",
    }


def missing(kind, name, why):
    target = "{0} {1}".format("compose service" if kind == "compose_service" else "container", name)
    return {"kind": kind, "name": name, "target": target, "container": "", "id": "", "state": "missing",
            "health": "", "health_output": "", "health_exit_code": None, "exit_code": None, "oom_killed": False,
            "oom_events": 0, "memory_limit_bytes": 0, "restart_count": 0, "started_at": "", "finished_at": "",
            "error": "", "logs": [], "down": True, "reason": "{0} is missing: {1}.".format(target, why)}


class ContainerIncident:
    """The diagnosis of named containers and compose services on one Docker engine."""

    def __init__(self, params, docker=None):
        self.params = params
        self.docker = docker or Docker(params)
        self.lines = int(params.get("log_lines") or 0)

    def oom_events(self):
        result = self.docker.docker("events", "--since", self.params.get("since") or "1h", "--until", "0s",
                                    "--filter", "type=container", "--filter", "event=oom",
                                    "--format", "{{json .}}")
        return parse_events(result.stdout)

    def logs(self, reference):
        result = self.docker.docker_result("logs", "--timestamps", "--tail", str(self.lines), reference)
        return merge_logs(result.stdout, result.stderr, self.lines) if result.ok else []

    def inspect(self, reference):
        try:
            found = self.docker.inspect([reference])
        except RunbookError as error:
            if error.details.get("cause") == "no_such_container":
                return None
            raise
        return found[0] if found else None

    def compose_containers(self, service):
        """The container ids of one compose service; None when the project does not define it."""
        argv = self.docker.compose_project_argv(**compose_project_params(self.params)) + [
            "ps", "--all", "--format", "json", service]
        result = self.docker.run(argv)
        if not result.ok:
            if "no such service" in result.output().lower():
                return None
            raise explain_failure(argv, result)
        return [item.get("ID") for item in parse_ps(result.stdout) if item.get("ID")]

    def diagnose_one(self, kind, name, events):
        if kind == "container":
            inspected = self.inspect(name)
            if inspected is None:
                return missing(kind, name, "the engine has no container of that name")
            return judge(inspected, events, self.logs(inspected["Id"]) if self.lines else [], kind, name)
        ids = self.compose_containers(name)
        if ids is None:
            return missing(kind, name, "the compose project does not define it")
        if not ids:
            return missing(kind, name, "it has no container (`docker compose up -d {0}` creates it)".format(name))
        judged = []
        for container_id in ids:
            inspected = self.inspect(container_id)
            if inspected is not None:
                judged.append((inspected, judge(inspected, events, (), kind, name)))
        if not judged:
            return missing(kind, name, "its containers are gone")
        inspected, chosen = next((pair for pair in judged if pair[1]["down"]), judged[0])
        if chosen["down"] and self.lines:
            chosen = judge(inspected, events, self.logs(inspected["Id"]), kind, name)
        chosen["replicas"] = len(judged)
        return chosen

    def run(self):
        containers = list(self.params.get("containers") or [])
        services = list(self.params.get("compose_services") or [])
        if not containers and not services:
            raise RunbookError("No containers or compose services were named.",
                               hint="Give containers (names or ids) and/or compose_services.", cause="invalid")
        version = self.docker.server_version()
        events = self.oom_events()
        entries = [self.diagnose_one("container", name, events) for name in containers]
        entries += [self.diagnose_one("compose_service", name, events) for name in services]
        down = [entry for entry in entries if entry["down"]]
        msg = "{0} of {1} down: {2}".format(len(down), len(entries), " ".join(
            entry["reason"] for entry in down)) if down else "All {0} container(s)/service(s) are up.".format(
            len(entries))
        return {"containers": entries, "down": down, "sentences": [entry["reason"] for entry in entries],
                "engine_version": version, "msg": msg, "changed": False}


def run_diagnosis(params, docker=None):
    """The module's engine: the diagnosis of params' containers and compose services."""
    return ContainerIncident(params, docker).run()
