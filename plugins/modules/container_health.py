#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: container_health
short_description: The morning health check of a host's containers and compose services, as pass / warn / fail checks
version_added: 0.2.0
description:
  - Checks the containers and compose services the inventory expects on a host, the way the runbooks do with
    C(docker-compose ps), C(docker stats) and C(docker logs --since=24h | grep -i error), and reports every finding as
    a C(pass), C(warn) or C(fail) check with the observed value, the threshold and a sentence. Changes nothing.
  - C(container:NAME) - the container is running. Exited, dead or restarting fails with its exit code and the reason,
    an OOM kill when the engine reported one during its last run.
  - C(container_health:NAME) - its healthcheck status. C(unhealthy) fails (with the last healthcheck output),
    C(starting) warns, a container without a healthcheck passes and says so.
  - C(container_restarts:NAME) - restarts since O(since), from the engine's C(start) events (a container created in
    the window is not counted for its first start); docker's own restart count is returned beside it.
  - C(container_oom_kills:NAME) - OOM kills since O(since), from the engine's C(oom) events. Docker's C(OOMKilled)
    flag is not used, since it stays true after a restart.
  - C(container_memory:NAME) - memory in use against the container's memory limit (a container without a limit
    passes and says so); C(container_cpu:NAME) - CPU use as C(docker stats) shows it, as a percentage of the
    container's CPU limit when it has one.
  - C(container_log_errors:NAME) - lines of its logs since O(since) that match O(log_error_pattern), counted, the
    newest three quoted.
  - A container of O(containers) that does not exist, or a service of O(compose_projects) without a container,
    fails, naming it.
  - An engine that does not answer, or a compose that cannot list a project, makes every expected container or
    service a C(fail) with C(unchecked=true) saying why and what to do; never a pass.
  - A compose service's checks are named C(PROJECT/SERVICE), e.g. C(container:formula-pm/backend).
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.checks
  - ops.runbook.docker
options:
  containers:
    description: Names (or ids) of plain containers that must be running, e.g. C([bmi-api]).
    type: list
    elements: str
    default: []
  compose_projects:
    description: Compose projects whose services must be running. At least one of O(containers) and this is needed.
    type: list
    elements: dict
    default: []
    suboptions:
      project_dir:
        description: The project's directory (C(--project-directory)).
        type: path
      files:
        description: Compose files (C(-f)), in order; empty means compose's own lookup in O(compose_projects[].project_dir).
        type: list
        elements: path
        default: []
      project_name:
        description: The project name (C(-p)); unset means compose's default (the directory's name).
        type: str
      services:
        description: Services that must each have a running container. Empty means every service compose lists.
        type: list
        elements: str
        default: []
  since:
    description:
      - Start of the window for restarts, OOM kills and log error lines, normally the time since the last check.
      - A duration (C(24h), C(90m), C(1h30m), C(2d)), an ISO 8601 time (C(2026-12-05T06:00:00Z); no zone means UTC)
        or Unix seconds.
    type: str
    default: 24h
  thresholds:
    description:
      - "Limits by name, each C({warn: X, fail: Y}). A level left out keeps its default; C(null) switches a level off."
      - "A value breaches a limit only when it is strictly above it, as the runbooks' C(> 85 %) says."
      - "Defaults (the runbooks'): C(memory_used_percent) 85/95 (of the container's limit), C(cpu_used_percent)
        80/95, C(restarts) 0/3, C(oom_kills) -/0 (the first kill fails), C(log_errors) 0/-."
      - A name this module does not know is refused, and the error lists the known ones. The
        C(ops.runbook.thresholds_for) filter takes this module's names out of a dictionary shared by several
        modules, such as the inventory's C(runbook_thresholds).
    type: dict
    default: {}
  log_error_pattern:
    description:
      - Python regular expression that makes a log line an error. The default matches C(error), C(fatal),
        C(critical), C(panic) and C(traceback) as words in any case, C(out of memory) and C(OOM).
    type: str
    default: (?i)\b(error|fatal|critical|panic|traceback)\b|out of memory|\boom\b
  host_label:
    description: Host name put on every check, e.g. C({{ inventory_hostname }}). Unset means the host's own name.
    type: str
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs every check.
  diff_mode:
    support: none
    description: Nothing is changed.
notes:
  - Using the Docker socket needs root or membership in the C(docker) group; use C(become).
  - The module is in the C(ops.runbook.docker) action group; the role C(ops.runbook.docker) sets its connection
    options once per play through C(module_defaults).
seealso:
  - module: ops.runbook.host_health
  - module: ops.runbook.health_report
"""

EXAMPLES = r"""
- name: Check the containers of the Formula PM compose application
  ops.runbook.container_health:
    compose_projects:
      - project_dir: /opt/formula-pm
        files: [/opt/formula-pm/docker-compose.prod.yml]
        services: [backend, frontend, redis, postgres]
    since: 24h
    thresholds: "{{ runbook_thresholds | ops.runbook.thresholds_for('container_health') }}"
    host_label: "{{ inventory_hostname }}"
    fail_on: never
  become: true
  register: container_health

- name: Fail at once when the API container is not healthy
  ops.runbook.container_health:
    containers: [blog-api]
    thresholds:
      memory_used_percent: {warn: 70}
"""

RETURN = r"""
checks:
  description:
    - Every finding; each has C(name), C(status) (C(pass), C(warn), C(fail)), C(observed_value), C(threshold),
      C(output) (a sentence), C(host), C(container) (the name in the check's name), for compose services
      C(compose_project) and C(compose_service), and for measurements C(observed_unit).
    - Names are C(container:NAME), C(container_health:NAME), C(container_restarts:NAME), C(container_oom_kills:NAME),
      C(container_memory:NAME), C(container_cpu:NAME), C(container_log_errors:NAME).
    - A check that could not be made has C(unchecked=true) (and C(status) C(fail)).
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "container_oom_kills:formula-pm/backend", "status": "fail", "observed_value": 1,
       "observed_unit": "kills", "threshold": {"fail": 0}, "host": "app1", "container": "formula-pm/backend",
       "output": "formula-pm/backend was OOM-killed 1 times since 2026-12-04T06:00:00Z, last at 2026-12-05T03:12:09Z:
       it needs more memory than its limit, or leaks."}
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: fail
counts:
  description: Number of checks per status.
  returned: always
  type: dict
  sample: {"pass": 12, "warn": 1, "fail": 1}
facts:
  description:
    - C(since) (the window's start, UTC), C(engine_version), C(missing) (expected containers and services not found),
      C(containers) (by name - id, status, exit code, start and finish times, docker's restart count and
      C(OOMKilled) flag, restarts and OOM kills in the window, memory used and limit, CPU, error line count).
  returned: always
  type: dict
unchecked:
  description: Names of the checks that could not be made.
  returned: always
  type: list
  elements: str
host:
  description: The host name on the checks.
  returned: always
  type: str
time:
  description: When the check finished (UTC, ISO 8601).
  returned: always
  type: str
msg:
  description: One line naming every check that is not passing (the Nagios status line).
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils import health_report as report
from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.container_health import DEFAULTS, collect
from ansible_collections.ops.runbook.plugins.module_utils.docker import docker_common_argument_spec


def argument_spec():
    spec = docker_common_argument_spec()
    spec.update(
        containers=dict(type="list", elements="str", default=[]),
        compose_projects=dict(type="list", elements="dict", default=[], options=dict(
            project_dir=dict(type="path"),
            files=dict(type="list", elements="path", default=[]),
            project_name=dict(type="str"),
            services=dict(type="list", elements="str", default=[]),
        )),
        since=dict(type="str", default=DEFAULTS["since"]),
        thresholds=dict(type="dict", default={}),
        log_error_pattern=dict(type="str", default=DEFAULTS["log_error_pattern"]),
        host_label=dict(type="str"),
    )
    return spec


def run(params, check_mode, log):
    params = dict(params)
    params.pop("fail_on")
    result = collect(params)
    result.update(changed=False, msg=report.render_nagios(result["checks"], service="CONTAINER_HEALTH")[0])
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
