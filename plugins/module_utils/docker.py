# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every engine reaches a Docker engine: one connection helper for the docker and compose CLIs.

The runbooks drive containers with the CLI (`docker ps`, `docker logs`,
`docker restart`, `docker-compose restart backend`), and so do the engines:
through `commands.run`, with DOCKER_HOST from the `docker_host` option (or the
environment), so a test can point them at a private daemon and a fake runner
can stand in for unit tests. The options are defined once here
(`docker_common_argument_spec`) and documented once (doc fragment
ops.runbook.docker); every failure of the daemon becomes a RunbookError that
says what happened and what to do. Docker Compose v1 (`docker-compose` 1.x)
is refused: it cannot list services as JSON.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re
import shlex

from .commands import display
from .commands import run as run_command
from .common import RunbookError

DEFAULTS = {"docker_host": None, "docker_command": "docker", "compose_command": "docker compose",
            "docker_timeout": 60}


def docker_common_argument_spec():
    """The options of the ops.runbook.docker action group (doc fragment ops.runbook.docker)."""
    return dict(
        docker_host=dict(type="str", fallback=(_env_fallback, ["DOCKER_HOST"])),
        docker_command=dict(type="str", default=DEFAULTS["docker_command"]),
        compose_command=dict(type="str", default=DEFAULTS["compose_command"]),
        docker_timeout=dict(type="int", default=DEFAULTS["docker_timeout"]),
    )


def compose_project_argument_spec():
    """The options that select one compose project (doc fragment ops.runbook.docker.compose_project)."""
    return dict(
        compose_project_dir=dict(type="path"),
        compose_files=dict(type="list", elements="path", default=[]),
        compose_project_name=dict(type="str"),
    )


def compose_project_params(params):
    """project_dir, files and project_name for Docker.compose_project_argv from a module's params."""
    return dict(project_dir=params.get("compose_project_dir"), files=params.get("compose_files") or (),
                project_name=params.get("compose_project_name"))


def _env_fallback(*names):
    # Imported lazily so this file stays importable without ansible (the host-side jobs, the tests).
    from ansible.module_utils.basic import env_fallback
    return env_fallback(*names)


def _words(command):
    return shlex.split(command) if isinstance(command, str) else list(command)


def explain_failure(argv, result):
    """A RunbookError for a failed docker/compose command: what the daemon said and what to do."""
    text = result.output(1200)
    lowered = text.lower()
    if "cannot connect to the docker daemon" in lowered or "is the docker daemon running" in lowered:
        return RunbookError("The Docker engine does not answer (`{0}`): {1}".format(display(argv), text),
                            hint="Start it (`systemctl start docker`) or set docker_host to its socket.",
                            cause="docker_unreachable")
    if "permission denied" in lowered and "docker" in lowered and ".sock" in lowered:
        return RunbookError("Not allowed to use the Docker socket (`{0}`): {1}".format(display(argv), text),
                            hint="Run the task with become, or as a member of the docker group.",
                            cause="docker_permission")
    if "no such container" in lowered or "no such object" in lowered:
        return RunbookError("No such container (`{0}`): {1}".format(display(argv), text),
                            hint="Check the name with `docker ps --all`.", cause="no_such_container")
    return RunbookError("`{0}` failed (exit {1}): {2}".format(display(argv), result.rc, text),
                        cause="docker_command")


def compose_major(version_text):
    """The major version of Docker Compose from `... version --short` (v prefix allowed), or None."""
    match = re.search(r"v?(\d+)\.(\d+)", version_text or "")
    return int(match.group(1)) if match else None


def parse_time(text):
    """Unix seconds of a time docker prints (RFC 3339 with nanoseconds); None for docker's zero time or nothing."""
    if not text or text.startswith("0001-01-01"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", text.strip())
    if not match:
        return None
    moment = datetime.datetime.fromisoformat(match.group(1) + (match.group(3) or "Z").replace("Z", "+00:00"))
    return moment.timestamp() + float("0." + (match.group(2) or "0"))


def parse_json_lines(text, what):
    """One JSON object per line (`--format '{{json .}}'`)."""
    items = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise RunbookError("{0} printed something that is not JSON: {1}".format(what, line[:200]),
                               cause="docker_command")
        if isinstance(item, dict):
            items.append(item)
    return items


class Docker:
    """The docker and compose CLIs aimed at one engine (docker_host), through commands.run."""

    def __init__(self, params=None, runner=run_command):
        opts = dict(DEFAULTS)
        opts.update({key: value for key, value in (params or {}).items() if key in DEFAULTS and value is not None})
        self.host = opts["docker_host"]
        self.docker_argv = _words(opts["docker_command"])
        self.compose_argv = _words(opts["compose_command"])
        self.timeout = opts["docker_timeout"]
        self._run = runner
        self._compose_checked = False

    def env(self):
        return {"DOCKER_HOST": self.host} if self.host else None

    def run(self, argv, timeout=None):
        """Run one command against the engine; a non-zero status is a Result, not an error."""
        return self._run(list(argv), timeout=timeout or self.timeout, env=self.env())

    def checked(self, argv, timeout=None):
        result = self.run(argv, timeout=timeout)
        if not result.ok:
            raise explain_failure(argv, result)
        return result

    def docker(self, *args, **kwargs):
        """`docker ARGS`, raising RunbookError on failure."""
        return self.checked(self.docker_argv + list(args), **kwargs)

    def docker_result(self, *args, **kwargs):
        """`docker ARGS` as a Result, whatever its status."""
        return self.run(self.docker_argv + list(args), **kwargs)

    def server_version(self):
        """The engine's version (proves the daemon answers), e.g. 20.10.24."""
        return self.docker("version", "--format", "{{.Server.Version}}").stdout.strip()

    def inspect(self, names):
        """`docker inspect` of containers as a list of dicts ([] for no names)."""
        names = [name for name in names if name]
        if not names:
            return []
        text = self.docker("inspect", "--type", "container", *names).stdout
        try:
            document = json.loads(text)
        except ValueError:
            raise RunbookError("docker inspect printed something that is not JSON: {0}".format(text.strip()[:200]),
                               cause="docker_command")
        return [item for item in document if isinstance(item, dict)] if isinstance(document, list) else []

    def compose_project_argv(self, project_dir=None, files=(), project_name=None):
        """The compose CLI with the options that select one project."""
        self.require_compose_v2()
        argv = list(self.compose_argv)
        for path in files or ():
            argv += ["-f", path]
        if project_name:
            argv += ["-p", project_name]
        if project_dir:
            argv += ["--project-directory", project_dir]
        return argv

    def require_compose_v2(self):
        """Refuse Docker Compose v1 (and a compose that does not run at all) with a clear message."""
        if self._compose_checked:
            return
        argv = self.compose_argv + ["version", "--short"]
        result = self.run(argv, timeout=30)
        major = compose_major(result.stdout) if result.ok else None
        if major is None:
            raise RunbookError("Docker Compose does not answer `{0}`: {1}".format(display(argv), result.output(400)),
                               hint="Install Docker Compose v2 (the `docker compose` plugin) or set compose_command.",
                               cause="compose_missing")
        if major < 2:
            raise RunbookError("Docker Compose v1 ({0}) is not supported: `{1}` cannot list services as JSON."
                               .format(result.stdout.strip(), " ".join(self.compose_argv)),
                               hint="Install Docker Compose v2 (the `docker compose` plugin, package "
                                    "docker-compose-plugin) and set compose_command to `docker compose`.",
                               cause="compose_v1")
        self._compose_checked = True
