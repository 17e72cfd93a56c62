#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: service_restart
short_description: Restart, reload or only verify a service, and prove it came back healthy
version_added: 0.1.0
description:
  - Restarts or reloads a systemd unit, a plain container or a docker compose service, and then proves that it works.
    With
    O(state=verified) it only proves it, for playbooks that changed something else (packages, a password).
  - Runs the service's config test first when O(config_test) is given (for nginx C(nginx -t)); when the test fails
    the service is never touched and keeps running with its current configuration.
  - After the action the service must become active and stay active for O(settle_seconds) with the same main PID, the
    same restart counter (C(NRestarts)) and the same activation time. A service that exits two seconds after start, or
    one that systemd keeps restarting, fails here even though a single look would find it C(active).
  - Then O(port) must accept connections and O(health_url) must answer 2xx (or one of O(expect_status)) with JSON in
    which nothing is worse than healthy, all within O(timeout) - the top-level C(status) is one of C(healthy), C(pass),
    C(ok), C(up); every dependency (the entries of C(dependencies), C(services) or IETF C(checks)) is too, so a
    C(degraded) one fails; and every field of O(expect_json) holds. This is the judgement of
    M(ops.runbook.http_health), with the same O(expect_json) language.
  - A container (O(container)) or the containers of a compose service (O(compose_service)) must keep the same
    container id, the same C(RestartCount) and the same start time for O(settle_seconds), so one that exits and is
    restarted by its restart policy, or replaced, fails. A container with a healthcheck must report C(healthy); one
    that reports C(unhealthy) fails at once, with the output of its last health probe.
  - Reports the downtime (from the restart to the first healthy answer), each verification as a pass / fail health
    check, and on failure the service's last journal lines; for a container or compose service the failure message
    ends with C(Last log lines of ...) and its last O(journal_lines) log lines.
  - The container path runs C(docker restart -t STOP_TIMEOUT), C(docker kill -s HUP) to reload, C(docker inspect) and
    C(docker logs); the compose path runs C(docker compose restart -t STOP_TIMEOUT), C(kill -s HUP), C(ps) and C(logs)
    and C(docker inspect). Docker Compose v1 is refused with a message saying so.
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  name:
    description:
      - systemd unit, e.g. C(nginx) or C(bmi-backend.service).
      - Exactly one of O(name), O(container) and O(compose_service).
    type: str
    aliases: [unit]
  state:
    description:
      - C(restarted) restarts (and starts a stopped unit); C(reloaded) reloads a running one (C(systemctl reload), or
        SIGHUP for a container or compose service); C(verified) changes nothing and runs only the verification.
    type: str
    choices: [restarted, reloaded, verified]
    default: restarted
  config_test:
    description:
      - Command that validates the service's configuration, as a list of arguments or one string split like a shell
        would (no shell runs it), e.g. C([nginx, -t]) or C(sshd -t). A non-zero exit refuses the action.
    type: raw
  config_test_in_check_mode:
    description: Run O(config_test) in check mode too. Config tests only read; set false for one that does not.
    type: bool
    default: true
  port:
    description: TCP port that must accept connections on O(host) once the service is up.
    type: int
  host:
    description: Address O(port) is checked on.
    type: str
    default: 127.0.0.1
  health_url:
    description:
      - URL that must answer 2xx with healthy JSON, e.g. C(http://127.0.0.1:3000/health). A redirect is the answer,
        not followed.
    type: str
  expect_status:
    description: Status codes O(health_url) must answer with. Unset means any 2xx.
    type: list
    elements: int
  expect_json:
    description:
      - Fields the health JSON must have, as dotted paths with C(*) for every key or item
        (C(dependencies.*.status)), each with the expected value or a list of acceptable values. Strings compare
        without regard to case. A list item is named by its index or its C(name).
      - The built-in checks of the top-level C(status) and of every dependency run as well; naming C(status) here
        replaces the built-in check of the top-level status. Unset, the answer must have a top-level C(status).
    type: dict
  health_validate_certs:
    description: Validate the TLS certificate of an C(https) O(health_url).
    type: bool
    default: true
  health_ca_path:
    description: PEM file of the CA certificates to trust for an C(https) O(health_url), instead of the system's.
    type: path
  health_use_proxy:
    description:
      - Ask O(health_url) through the proxy of the E(http_proxy) and E(https_proxy) environment variables. By default
        it is asked directly, so a proxy set for downloads does not answer for the service.
    type: bool
    default: false
  health_request_timeout:
    description: Seconds one health request (or port connection) may take.
    type: float
    default: 5
  settle_seconds:
    description: How long the service must stay active, unchanged, after it is first seen active.
    type: float
    default: 5
  timeout:
    description: Seconds from the action until everything must be proven; longer than O(settle_seconds).
    type: float
    default: 60
  poll_interval:
    description: Seconds between two looks at the service.
    type: float
    default: 0.5
  journal_lines:
    description: Number of the service's last log lines returned on failure.
    type: int
    default: 20
  compose_service:
    description:
      - Service of a docker compose project to act on, e.g. C(backend); the project is chosen by
        O(compose_project_dir), O(compose_files) and O(compose_project_name). All its replicas are judged together.
    type: str
  container:
    description: Name or id of a plain container (C(docker run)) to act on, e.g. C(bmi-web).
    type: str
    version_added: 0.2.0
  stop_timeout:
    description:
      - Seconds a container has to stop on a restart before it is killed (C(docker restart -t), C(docker compose
        restart -t)). Not used for a systemd unit.
    type: int
    default: 10
    version_added: 0.2.0
extends_documentation_fragment:
  - ops.runbook.docker
  - ops.runbook.docker.compose_project
attributes:
  check_mode:
    support: full
    description:
      - Runs the config test (unless O(config_test_in_check_mode=false)) and reports what would be done and the
        service's current state; nothing is restarted. With O(state=verified) the whole verification runs.
  diff_mode:
    support: none
    description: A restart has no diff.
notes:
  - The downtime is measured from issuing the restart to the first healthy answer (health URL, else port, else the
    unit's activation); it is reported for O(state=restarted) only.
  - The container and compose paths are tested on a real Docker engine (dockerd 20.10, Docker Compose v2); the
    docker options (O(docker_host), O(compose_command), ...) come once per play through C(module_defaults) for the
    C(group/ops.runbook.docker) action group (role C(ops.runbook.docker)).
seealso:
  - module: ops.runbook.host_health
  - module: ops.runbook.http_health
"""

EXAMPLES = r"""
- name: Restart the backend and prove it is healthy
  ops.runbook.service_restart:
    name: bmi-backend
    port: 3000
    health_url: http://127.0.0.1:3000/health
  become: true

- name: Reload nginx only if its configuration passes nginx -t
  ops.runbook.service_restart:
    name: nginx
    state: reloaded
    config_test: [nginx, -t]
    port: 80
  become: true

- name: Prove the API still works after patching, changing nothing
  ops.runbook.service_restart:
    name: bmi-backend
    state: verified
    health_url: http://127.0.0.1:3000/health
    expect_json:
      status: healthy
      dependencies.database.status: healthy
    settle_seconds: 3

- name: Restart the backend container of a compose project
  ops.runbook.service_restart:
    compose_service: backend
    compose_project_dir: /opt/formula-pm
    compose_files: [/opt/formula-pm/docker-compose.prod.yml]
    health_url: https://api.example.com/health

- name: Restart a plain container and prove it stays up
  ops.runbook.service_restart:
    container: bmi-web
    port: 8080
    stop_timeout: 30
"""

RETURN = r"""
target:
  description: The service acted on, e.g. C(nginx.service), C(container bmi-web) or C(compose service backend).
  returned: always
  type: str
kind:
  description: C(systemd), C(container) or C(compose).
  returned: always
  type: str
state:
  description: The requested state.
  returned: always
  type: str
checks:
  description:
    - The verifications as health checks (C(name), C(status), C(observed_value), C(threshold), C(output),
      C(component)); names are C(config_test), C(restart)/C(reload) (only when the command failed), C(active),
      C(stable), C(port), C(health).
  returned: always
  type: list
  elements: dict
status:
  description: Worst status of the checks.
  returned: always
  type: str
downtime_seconds:
  description: Seconds from the restart to the first healthy answer; null when not measured.
  returned: always
  type: float
  sample: 1.8
before:
  description:
    - The service before the action (C(state), C(detail), C(pid), C(restarts), C(since), C(result), ...); for a
      container or compose service also C(container_id) and C(health).
  returned: always
  type: dict
after:
  description: The service at the end of the verification.
  returned: when verified
  type: dict
config_test:
  description: The config test's C(command), exit status C(rc) and C(output).
  returned: when it ran
  type: dict
journal:
  description: The service's last log lines.
  returned: on failure
  type: list
  elements: str
plan:
  description: What the run does after the config test, in order.
  returned: always
  type: list
  elements: str
started_at:
  description: When the run started (UTC, ISO 8601).
  returned: always
  type: str
finished_at:
  description: When the run finished (UTC, ISO 8601).
  returned: always
  type: str
duration_seconds:
  description: Wall time of the run.
  returned: always
  type: float
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.docker import (compose_project_argument_spec,
                                                                         docker_common_argument_spec)
from ansible_collections.ops.runbook.plugins.module_utils.service_restart import ACTIONS, DEFAULTS, run_service


def argument_spec():
    spec = dict(
        name=dict(type="str", aliases=["unit"]),
        state=dict(type="str", choices=sorted(ACTIONS), default=DEFAULTS["state"]),
        config_test=dict(type="raw"),
        config_test_in_check_mode=dict(type="bool", default=DEFAULTS["config_test_in_check_mode"]),
        port=dict(type="int"),
        host=dict(type="str", default=DEFAULTS["host"]),
        health_url=dict(type="str"),
        expect_status=dict(type="list", elements="int"),
        expect_json=dict(type="dict"),
        health_validate_certs=dict(type="bool", default=DEFAULTS["health_validate_certs"]),
        health_ca_path=dict(type="path"),
        health_use_proxy=dict(type="bool", default=DEFAULTS["health_use_proxy"]),
        health_request_timeout=dict(type="float", default=DEFAULTS["health_request_timeout"]),
        settle_seconds=dict(type="float", default=DEFAULTS["settle_seconds"]),
        timeout=dict(type="float", default=DEFAULTS["timeout"]),
        poll_interval=dict(type="float", default=DEFAULTS["poll_interval"]),
        journal_lines=dict(type="int", default=DEFAULTS["journal_lines"]),
        compose_service=dict(type="str"),
        container=dict(type="str"),
        stop_timeout=dict(type="int", default=DEFAULTS["stop_timeout"]),
    )
    spec.update(docker_common_argument_spec())
    spec.update(compose_project_argument_spec())
    return spec


def run(params, check_mode, log):
    # A service that is not proven up fails the task (`failed`): its checks prove the action, they are no report.
    return run_service(params, check_mode=check_mode)


def main():
    targets = ("name", "container", "compose_service")
    run_module(argument_spec(), run, supports_check_mode=True, required_one_of=[targets],
               mutually_exclusive=[targets])


if __name__ == "__main__":
    main()
