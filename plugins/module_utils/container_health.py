# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The morning health check of a host's containers and compose services, as pass / warn / fail checks.

The runbooks look at containers with `docker-compose ps`, `docker stats` and
`docker logs --since=24h | grep -i error`. This engine does the same for the
containers and compose services the inventory expects, through the one Docker
helper (docker.py), and judges each one:
- its state (running; exited, dead or restarting fail with the exit code and,
  when an `oom` event falls in its last run, the OOM kill as the reason);
- its health status (unhealthy fails, starting warns, no healthcheck passes);
- restarts within the window (`start` events after its first start);
- OOM kills within the window, counted from the engine's `oom` events: the
  `OOMKilled` flag of `docker inspect` stays true after a restart, so it
  cannot tell whether a kill happened since the last check;
- memory in use against its limit, CPU (`docker stats --no-stream`);
- error lines in its logs since the window's start, with a few quoted.
An expected container or service that does not exist fails, naming it. An
engine that does not answer makes every expected check a failed, unchecked
one, never a pass. Nothing is changed; the parse_* functions are pure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import re
import socket
import time

from . import health
from .commands import run
from .common import RunbookError, human_size, isoformat, utc_now
from .compose import parse_ps
from .docker import Docker, explain_failure, parse_json_lines, parse_time

# The runbooks' "Alert Thresholds": memory above 85 %, CPU above 80 % (as `docker stats` shows them). An OOM
# kill fails from the first one; restarts and error lines warn from the first one.
THRESHOLDS = {
    "memory_used_percent": health.Limit(warn=85, fail=95),
    "cpu_used_percent": health.Limit(warn=80, fail=95),
    "restarts": health.Limit(warn=0, fail=3),
    "oom_kills": health.Limit(fail=0),
    "log_errors": health.Limit(warn=0),
}
LOG_ERROR_PATTERN = r"(?i)\b(error|fatal|critical|panic|traceback)\b|out of memory|\boom\b"
QUOTED_LINES = 3
DEFAULTS = {
    "containers": [],
    "compose_projects": [],
    "since": "24h",
    "thresholds": {},
    "log_error_pattern": LOG_ERROR_PATTERN,
    "host_label": None,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*([\d.]+)\s*([kKMGTP]?i?B)?\s*$")
_SIZE_FACTORS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
                 "KiB": 1024, "kiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4, "PiB": 1024 ** 5}
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)\s?")


def limits_from(overrides=None):
    """The container thresholds with the caller's {name: {warn, fail}} laid over them (health.Limits)."""
    return health.Limits(THRESHOLDS, overrides)


# -- parsers ---------------------------------------------------------------

def since_epoch(since, now=None):
    """The start of the window as Unix seconds, from a duration (`24h`, `90m`, `1h30m`, `2d`), an ISO 8601 time
    (a time without a zone is UTC) or Unix seconds."""
    now = time.time() if now is None else now
    text = str(since).strip()
    if _DURATION.sub("", text) == "" and text:
        return now - sum(float(number) * _UNITS[unit] for number, unit in _DURATION.findall(text))
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise RunbookError("since must be a duration such as 24h, 90m or 2d, an ISO 8601 time such as "
                           "2026-12-05T06:00:00Z, or Unix seconds, not {0!r}.".format(since), cause="invalid")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def parse_size(text):
    """Bytes of a size `docker stats` prints (324KiB, 1.5GiB, 12MB, 0B); None when it is not one."""
    match = _SIZE.match(text or "")
    if not match:
        return None
    return int(float(match.group(1)) * _SIZE_FACTORS.get(match.group(2) or "B", 1))


def parse_percent(text):
    try:
        return float(str(text).strip().rstrip("%"))
    except ValueError:
        return None


def parse_stats(text):
    """{container id prefix: {cpu_percent, memory_used_bytes}} from `docker stats --no-stream --format json`."""
    stats = {}
    for item in parse_json_lines(text, "docker stats"):
        used = parse_size(str(item.get("MemUsage", "")).split("/", maxsplit=1)[0])
        stats[item.get("ID", "")] = {"cpu_percent": parse_percent(item.get("CPUPerc")), "memory_used_bytes": used,
                                     "pids": item.get("PIDs")}
    return stats


def events_by_container(events):
    """{container id: {action: [Unix seconds, ...]}} of `docker events --format json` lines."""
    found = {}
    for event in events:
        if event.get("Type", "container") != "container":
            continue
        ident = event.get("id") or event.get("Actor", {}).get("ID")
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        moment = event.get("timeNano", 0) / 1e9 or float(event.get("time", 0))
        found.setdefault(ident, {}).setdefault(action, []).append(moment)
    return found


def stats_for(stats, container_id):
    for prefix, values in stats.items():
        if prefix and container_id.startswith(prefix):
            return values
    return None


def error_lines(text, pattern):
    """The lines of `docker logs --timestamps` output that match `pattern`, as (Unix seconds, line)."""
    regex = re.compile(pattern)
    found = []
    for line in (text or "").splitlines():
        match = _LOG_TIME.match(line)
        moment = parse_time(match.group(1)) if match else None
        message = line[match.end():] if match else line
        if regex.search(message):
            found.append((moment or 0.0, message.strip()))
    return found


def _stamp(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# -- targets ---------------------------------------------------------------

def oom_kills_per_run(ooms, starts):
    """One `oom` event time per run of the container (the first of each run), in order.

    Under cgroup v1 the engine can report several `oom` events for one kill (the
    kernel notifies each time the cgroup hits its limit), so the kills are the runs
    with an `oom` event: the events between two `start` events count once.
    """
    starts = sorted(starts)
    first_per_run = {}
    for moment in sorted(ooms):
        run = sum(1 for start in starts if start <= moment)
        first_per_run.setdefault(run, moment)
    return [first_per_run[run] for run in sorted(first_per_run)]


class Target(object):
    """One expected container: the name its checks carry, how to find it, what inspect says of it."""

    def __init__(self, label, ref, project=None, service=None):
        self.label = label
        self.ref = ref
        self.project = project
        self.service = service
        self.info = None

    def facts(self):
        facts = {"container": self.label}
        if self.project:
            facts.update(compose_project=self.project, compose_service=self.service)
        return facts


def project_name_of(project, listed):
    if project.get("project_name"):
        return project["project_name"]
    for item in listed:
        if item.get("Project"):
            return item["Project"]
    if project.get("project_dir"):
        return os.path.basename(os.path.normpath(project["project_dir"]))
    files = project.get("files") or ()
    return os.path.basename(os.path.dirname(os.path.abspath(files[0]))) if files else "compose"


def describe_project(project):
    parts = [project.get("project_name") or "", project.get("project_dir") or "",
             ", ".join(project.get("files") or ())]
    return " ".join(part for part in parts if part) or "the compose project of the working directory"


# -- the checks ------------------------------------------------------------

class ContainerHealth(object):
    """Collects the checks of one host's containers. Every method appends to self.checks and self.facts."""

    def __init__(self, opts, docker, now=None):
        self.opts = opts
        self.docker = docker
        self.thresholds = limits_from(opts.get("thresholds"))
        self.host = opts.get("host_label") or socket.gethostname()
        self.now = time.time() if now is None else now
        self.since = since_epoch(opts["since"], self.now)
        self.since_text = opts["since"]
        self.checks = []
        self.facts = {"since": _stamp(self.since), "containers": {}, "missing": []}

    def add(self, name, status, observed, threshold, output, target, unit=None, **facts):
        facts.update(target.facts())
        self.checks.append(health.check(name, status, observed, threshold, output, unit=unit, host=self.host,
                                        **facts))

    def _graded(self, kind, key, target, observed, output, unit, **facts):
        self.add("{0}:{1}".format(kind, target.label), self.thresholds.grade(key, observed), observed,
                 self.thresholds.threshold(key), output, target, unit=unit, **facts)

    def unchecked(self, target, output, name=None):
        self.checks.append(health.unchecked(name or "container:" + target.label, output, observed="unknown",
                                            threshold="running", host=self.host, **target.facts()))

    # -- finding the containers

    def targets(self):
        """The expected containers, and fails for expected services compose does not list."""
        found = [Target(name, name) for name in self.opts["containers"]]
        for project in self.opts["compose_projects"]:
            found.extend(self._project_targets(project))
        return found

    def _project_targets(self, project):
        try:
            argv = self.docker.compose_project_argv(project.get("project_dir"), project.get("files") or (),
                                                    project.get("project_name"))
            listed = parse_ps(self.docker.checked(argv + ["ps", "--all", "--format", "json"]).stdout)
        except RunbookError as error:
            name = project.get("project_name") or os.path.basename(os.path.normpath(project.get("project_dir") or
                                                                                    "compose"))
            for service in project.get("services") or ["*"]:
                target = Target("{0}/{1}".format(name, service), None, project=name, service=service)
                self.unchecked(target, "Could not list the compose services of {0}: {1}".format(
                    describe_project(project), " ".join(str(error).split())))
            return []
        name = project_name_of(project, listed)
        by_service = {}
        for item in listed:
            by_service.setdefault(item.get("Service"), []).append(item)
        expected = list(project.get("services") or sorted(service for service in by_service if service))
        targets = []
        if not expected:
            target = Target(name + "/*", None, project=name, service="*")
            self.add("container:" + target.label, health.FAIL, "missing", "running",
                     "Compose project {0} has no container at all (`docker compose ps --all` lists none): it is not "
                     "up. Start it (`docker compose up -d` in {1}).".format(name, describe_project(project)), target)
            self.facts["missing"].append(target.label)
        for service in expected:
            items = by_service.get(service, [])
            if not items:
                target = Target("{0}/{1}".format(name, service), None, project=name, service=service)
                self.facts["missing"].append(target.label)
                known = ", ".join(sorted(by_service)) or "none"
                self.add("container:" + target.label, health.FAIL, "missing", "running",
                         "Compose service {0} of project {1} has no container (`docker compose ps --all` lists: {2}). "
                         "Start it (`docker compose up -d {0}`) or check the service name.".format(
                             service, name, known), target)
                continue
            for item in sorted(items, key=lambda entry: entry.get("Name", "")):
                label = "{0}/{1}".format(name, service) if len(items) == 1 else "{0}/{1}/{2}".format(
                    name, service, item.get("Name"))
                targets.append(Target(label, item.get("ID") or item.get("Name"), project=name, service=service))
        return targets

    def inspect(self, targets):
        """Attach each target's `docker inspect`; an expected container that does not exist fails."""
        refs = [target.ref for target in targets if target.ref]
        if not refs:
            return []
        result = self.docker.docker_result("inspect", "--type", "container", *refs)
        try:
            document = json.loads(result.stdout) if result.stdout.strip() else []
        except ValueError:
            raise RunbookError("docker inspect printed something that is not JSON: {0}".format(
                result.stdout.strip()[:200]), cause="docker_command")
        if not result.ok and not document and "no such" not in result.output().lower():
            raise explain_failure(result.argv, result)
        present = []
        for target in targets:
            if not target.ref:
                continue
            for info in document:
                if info.get("Id", "").startswith(target.ref) or info.get("Name", "").lstrip("/") == target.ref:
                    target.info = info
            if target.info is None:
                self.facts["missing"].append(target.label)
                self.add("container:" + target.label, health.FAIL, "missing", "running",
                         "Container {0} does not exist on this engine (`docker inspect` finds none). Start it, or "
                         "check its name with `docker ps --all`.".format(target.ref), target)
            else:
                present.append(target)
        return present

    # -- what the engine says of them

    def events(self):
        """The engine's start, die and oom events of the window, by container id."""
        result = self.docker.docker(
            "events", "--since", "{0:.9f}".format(self.since), "--until", "{0:.9f}".format(self.now),
            "--filter", "type=container", "--filter", "event=oom", "--filter", "event=start",
            "--filter", "event=die", "--format", "{{json .}}")
        return events_by_container(parse_json_lines(result.stdout, "docker events"))

    def stats(self, targets):
        running = [target.info["Id"] for target in targets if target.info.get("State", {}).get("Running")]
        if not running:
            return {}
        # A container that stops between inspect and stats makes the command fail for all: keep what it printed.
        result = self.docker.docker_result("stats", "--no-stream", "--format", "{{json .}}", *running)
        if not result.ok and not result.stdout.strip():
            raise explain_failure(result.argv, result)
        return parse_stats(result.stdout)

    # -- one container

    def judge(self, target, events, stats):
        info = target.info
        state = info.get("State", {})
        seen = events.get(info["Id"], {})
        started = parse_time(state.get("StartedAt"))
        finished = parse_time(state.get("FinishedAt"))
        ooms = oom_kills_per_run(seen.get("oom", []), seen.get("start", []))
        facts = {"id": info["Id"][:12], "name": info.get("Name", "").lstrip("/"), "status": state.get("Status"),
                 "exit_code": state.get("ExitCode"), "started_at": state.get("StartedAt"),
                 "finished_at": state.get("FinishedAt"), "restart_count": info.get("RestartCount", 0),
                 "oom_kills": len(ooms), "oom_killed_flag": state.get("OOMKilled", False)}
        self.facts["containers"][target.label] = facts
        self.state(target, state, started, finished, ooms)
        self.health_status(target, state)
        self.restarts(target, info, seen, facts)
        self.oom_kills(target, ooms)
        usage = stats_for(stats, info["Id"]) if state.get("Running") else None
        self.memory(target, info, usage, facts)
        self.cpu(target, info, usage, facts)
        self.logs(target, facts)

    def state(self, target, state, started, finished, ooms):
        status = state.get("Status", "unknown")
        name = "container:" + target.label
        if status == "running" and not state.get("Restarting"):
            self.add(name, health.PASS, "running", "running", "{0} is running since {1}.".format(
                target.label, state.get("StartedAt", "?")[:19] + "Z"), target, exit_code=None)
            return
        code = state.get("ExitCode")
        killed = [moment for moment in ooms if started is None or moment >= started - 1]
        if killed and (finished is None or killed[-1] <= finished + 1):
            reason = "killed by the OOM killer at {0} (its memory limit was reached)".format(_stamp(killed[-1]))
        elif code == 137:
            reason = "killed (SIGKILL); no OOM kill was reported in the window"
        elif state.get("Error"):
            reason = "the engine says: {0}".format(state["Error"])
        else:
            reason = "its process ended"
        verdict = "is restarting" if state.get("Restarting") or status == "restarting" else "is {0}".format(status)
        if status == "paused":
            self.add(name, health.WARN, status, "running", "{0} is paused: its processes are frozen. Unpause it "
                     "(`docker unpause`).".format(target.label), target, exit_code=None)
            return
        self.add(name, health.FAIL, status, "running", "{0} {1}: exit code {2}, {3}{4}.".format(
            target.label, verdict, code, reason,
            ", finished at {0}".format(_stamp(finished)) if finished else ""), target, exit_code=code,
            oom_killed=bool(killed))

    def health_status(self, target, state):
        status = (state.get("Health") or {}).get("Status")
        name = "container_health:" + target.label
        if status is None:
            self.add(name, health.PASS, "none", "healthy", "{0} has no healthcheck; its state is the only "
                     "sign of health.".format(target.label), target)
            return
        log = (state.get("Health") or {}).get("Log") or []
        last = " ".join(str(log[-1].get("Output", "")).split())[:300] if log else ""
        streak = (state.get("Health") or {}).get("FailingStreak", 0)
        if status == "healthy":
            self.add(name, health.PASS, status, "healthy", "{0} is healthy.".format(target.label), target)
        elif status == "starting":
            self.add(name, health.WARN, status, "healthy", "{0} is still starting: its healthcheck has not passed "
                     "yet.".format(target.label), target)
        else:
            self.add(name, health.FAIL, status, "healthy", "{0} is {1} ({2} failed healthchecks in a row){3}".format(
                target.label, status, streak, "; last output: {0}".format(last) if last else "."), target)

    def restarts(self, target, info, seen, facts):
        created = parse_time(info.get("Created"))
        starts = len(seen.get("start", []))
        first_start_in_window = created is not None and created >= self.since
        count = max(0, starts - (1 if first_start_in_window and starts else 0))
        facts["restarts"] = count
        self._graded("container_restarts", "restarts", target, count,
                     "{0} restarted {1} times since {2} (docker's restart count: {3}).".format(
                         target.label, count, _stamp(self.since), info.get("RestartCount", 0)), unit="restarts",
                     restart_count=info.get("RestartCount", 0))

    def oom_kills(self, target, ooms):
        if ooms:
            output = "{0} was OOM-killed {1} times since {2}, last at {3}: it needs more memory than its limit, or " \
                     "leaks.".format(target.label, len(ooms), _stamp(self.since), _stamp(ooms[-1]))
        else:
            output = "No OOM kill of {0} since {1} (from the engine's oom events).".format(
                target.label, _stamp(self.since))
        self._graded("container_oom_kills", "oom_kills", target, len(ooms), output, unit="kills")

    def memory(self, target, info, usage, facts):
        limit = (info.get("HostConfig") or {}).get("Memory") or 0
        facts["memory_limit_bytes"] = limit or None
        name = "container_memory:" + target.label
        if usage is None:
            self.add(name, health.PASS, None, self.thresholds.threshold("memory_used_percent"),
                     "{0} is not running: no memory in use.".format(target.label), target, unit="percent")
            return
        used = usage["memory_used_bytes"]
        facts["memory_used_bytes"] = used
        if used is None:
            self.checks.append(health.unchecked(name, "Could not read the memory use of {0}: `docker stats` showed "
                                                      "none.".format(target.label), unit="percent", host=self.host,
                                                **target.facts()))
            return
        if not limit:
            self.add(name, health.PASS, None, self.thresholds.threshold("memory_used_percent"),
                     "{0} uses {1} of memory and has no limit.".format(target.label, human_size(used)), target,
                     unit="percent", memory_used_bytes=used)
            return
        percent = round(100.0 * used / limit, 1)
        self._graded("container_memory", "memory_used_percent", target, percent,
                     "{0} uses {1:g}% of its memory limit ({2} of {3}).".format(
                         target.label, percent, human_size(used), human_size(limit)), unit="percent",
                     memory_used_bytes=used, memory_limit_bytes=limit)

    def cpu(self, target, info, usage, facts):
        name = "container_cpu:" + target.label
        if usage is None or usage["cpu_percent"] is None:
            if usage is None:
                self.add(name, health.PASS, None, self.thresholds.threshold("cpu_used_percent"),
                         "{0} is not running: no CPU in use.".format(target.label), target, unit="percent")
            else:
                self.checks.append(health.unchecked(name, "Could not read the CPU use of {0}: `docker stats` showed "
                                                          "none.".format(target.label), unit="percent",
                                                    host=self.host, **target.facts()))
            return
        cpus = ((info.get("HostConfig") or {}).get("NanoCpus") or 0) / 1e9
        percent = round(usage["cpu_percent"] / cpus, 1) if cpus else usage["cpu_percent"]
        facts["cpu_percent"] = percent
        of = "of its {0:g} CPUs".format(cpus) if cpus else "of one CPU, as `docker stats` shows it"
        self._graded("container_cpu", "cpu_used_percent", target, percent,
                     "{0} uses {1:g}% {2}.".format(target.label, percent, of), unit="percent")

    def logs(self, target, facts):
        name = "container_log_errors:" + target.label
        result = self.docker.docker_result("logs", "--since", "{0:.9f}".format(self.since), "--timestamps",
                                           target.info["Id"])
        if not result.ok:
            self.checks.append(health.unchecked(name, "Could not read the logs of {0}: {1}. Logs are readable with "
                                                      "the json-file, local or journald logging driver.".format(
                                                          target.label, " ".join(result.output(300).split())),
                                                unit="lines", host=self.host, **target.facts()))
            return
        found = sorted(error_lines(result.stdout, self.opts["log_error_pattern"])
                       + error_lines(result.stderr, self.opts["log_error_pattern"]))
        quoted = ["{0} {1}".format(_stamp(moment), line[:300]) if moment else line[:300]
                  for moment, line in found[-QUOTED_LINES:]]
        facts["log_errors"] = len(found)
        if found:
            output = "{0} error lines in the logs of {1} since {2}; newest: {3}".format(
                len(found), target.label, _stamp(self.since), " | ".join(reversed(quoted)))
        else:
            output = "No error lines in the logs of {0} since {1}.".format(target.label, _stamp(self.since))
        self._graded("container_log_errors", "log_errors", target, len(found), output, unit="lines",
                     lines=list(reversed(quoted)))


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((key, value) for key, value in options.items() if value is not None))
    try:
        re.compile(opts["log_error_pattern"])
    except re.error as error:
        raise RunbookError("log_error_pattern is not a valid regular expression: {0}.".format(error), cause="invalid")
    if not opts["containers"] and not opts["compose_projects"]:
        raise RunbookError("Nothing to check: containers and compose_projects are both empty.",
                           hint="Name the containers or compose projects this host must run.", cause="invalid")
    since_epoch(opts["since"])
    limits_from(opts["thresholds"])
    return opts


def collect(options, runner=run, now=None):
    """Check the expected containers and compose services; returns {checks, status, counts, facts, host, time,
    unchecked}.

    An engine that does not answer (or a docker CLI that is missing) makes every
    expected container and service a failed check marked `unchecked`, with the
    reason and what to do: never a pass, never a missing row.
    """
    opts = normalize(options)
    probe = ContainerHealth(opts, Docker(options, runner=runner), now=now)
    try:
        probe.facts["engine_version"] = probe.docker.server_version()
        targets = probe.inspect(probe.targets())
        events = probe.events() if targets else {}
        stats = probe.stats(targets)
    except RunbookError as error:
        probe.checks = [item for item in probe.checks if item["status"] != health.PASS]
        expected = [Target(name, name) for name in opts["containers"]] + [
            Target("{0}/{1}".format(project.get("project_name") or os.path.basename(
                os.path.normpath(project.get("project_dir") or "compose")), service), None)
            for project in opts["compose_projects"] for service in (project.get("services") or ["*"])]
        named = set(item["name"] for item in probe.checks)
        for target in expected:
            if "container:" + target.label not in named:
                probe.unchecked(target, "Could not check {0}: {1}".format(target.label, " ".join(str(error).split())))
        targets = []
    for target in targets:
        probe.judge(target, events, stats)
    return {
        "checks": probe.checks,
        "status": health.worst(probe.checks),
        "counts": health.counts(probe.checks),
        "facts": probe.facts,
        "host": probe.host,
        "time": isoformat(utc_now()),
        "unchecked": [item["name"] for item in health.not_checked(probe.checks)],
    }
