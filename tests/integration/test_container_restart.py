"""Restarts with proof for compose services and plain containers, on the private Docker engine.

Everything runs through playbooks/service_restart.yml (role and module ops.runbook.service_restart,
the engine reached through the ops.runbook.docker role's variables), as an operator runs it:
- a compose backend restarts with its downtime measured, a new start of the same container, and its
  health URL healthy with its dependencies; check mode before it changes nothing;
- a backend that dies three seconds after its restart fails the first host with its last log lines,
  and the rollout stops there (the second host is never touched);
- a plain container passes, one whose healthcheck turns unhealthy fails with the probe's output, and
  Docker Compose v1 is refused with a clear message.
"""
import json
import os
import socket
import sys

import pytest

from harness.docker import BUSYBOX_IMAGE
from harness.runner import run_playbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, "playbooks", "service_restart.yml")
TASK = "Restart each service and verify it"
DIES_AFTER_THREE_SECONDS = ["sh", "-c", "echo starting; echo boom >&2; sleep 3; exit 1"]


@pytest.fixture
def postgres_port():
    """A port that accepts TCP connections, standing in for the PostgreSQL the backend checks."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def restart(engine, tmp_path, services, hosts=("compose1",), check=False, **extra):
    """Run service_restart.yml on `hosts` (all this machine); (exit status, {host: [item results]}, output)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "ansible_become_method": "su"}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"compose_hosts": {"hosts": {
        host: local for host in hosts}}}}}))
    variables = dict({"service_restart_hosts": "compose_hosts", "service_restart_services": services,
                      "docker_host": engine.docker_host}, **extra)
    # Under ansible-runner, as AWX runs it: the item results are read from the job events.
    run = run_playbook(PLAYBOOK, variables, inventory=str(inventory), args=["--check"] if check else [],
                       env=engine.env, timeout=180)
    results = {}
    for event in run.events:
        data = event.get("event_data", {})
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task", "").endswith(TASK):
            results[data["host"]] = data["res"]["results"]
    assert run.status in ("successful", "failed"), run.stdout[-3000:]
    return run.returncode, results, run.stdout


def started(engine, container):
    """(id, StartedAt) of a container."""
    return tuple(engine.docker("inspect", "-f", "{{.Id}} {{.State.StartedAt}}", container).stdout.split())


def test_a_compose_backend_restarts_with_proof_and_check_mode_changes_nothing(compose_app_factory, postgres_port,
                                                                              tmp_path):
    app = compose_app_factory(postgres_port=postgres_port)
    backend = app.container_id("backend")
    before = started(app.engine, backend)
    service = {"compose_service": "backend", "compose_project_dir": app.project_dir,
               "compose_project_name": app.project_name, "port": app.backend_port, "health_url": app.health_url,
               "expect_json": {"dependencies.redis.status": "healthy", "dependencies.postgres.status": "healthy"},
               "settle_seconds": 3}

    code, results, output = restart(app.engine, tmp_path, [service], check=True)
    assert code == 0, output
    plan = results["compose1"][0]
    assert plan["changed"] and plan["msg"].startswith("Would docker compose -p {0} --project-directory {1} "
                                                      "restart -t 10 backend".format(app.project_name,
                                                                                     app.project_dir)), plan["msg"]
    assert started(app.engine, backend) == before

    code, results, output = restart(app.engine, tmp_path, [service])
    assert code == 0, output
    result = results["compose1"][0]
    assert result["kind"] == "compose" and result["status"] == "pass", result["msg"]
    assert result["downtime_seconds"] > 0
    after = started(app.engine, backend)
    assert after[0] == before[0] and after[1] != before[1], "the same container, started again"
    assert (result["before"]["since"], result["after"]["since"]) == (before[1], after[1])
    assert result["after"]["health"] == "healthy"
    checks = {check["name"]: check for check in result["checks"]}
    assert [checks[name]["status"] for name in ("active", "stable", "port", "health")] == ["pass"] * 4
    assert checks["health"]["response"]["dependencies"]["postgres"]["status"] == "healthy"
    assert "with the same container id and no restart" in checks["stable"]["output"]


def test_a_compose_service_that_dies_after_its_restart_fails_with_its_last_log_lines_and_stops_the_rollout(
        compose_app_factory, tmp_path):
    app = compose_app_factory(backend_command=DIES_AFTER_THREE_SECONDS,
                              services={"backend": {"healthcheck": {"disable": True}, "restart": "no"},
                                        "frontend": None}, wait=False)
    service = {"compose_service": "backend", "compose_project_dir": app.project_dir,
               "compose_project_name": app.project_name, "settle_seconds": 5, "timeout": 20}

    code, results, output = restart(app.engine, tmp_path, [service], hosts=("compose1", "compose2"))
    assert code != 0
    assert list(results) == ["compose1"], "the rollout stops at the first unhealthy host"
    message = results["compose1"][0]["msg"]
    assert "compose service backend did not stay up: it is exited, exit status 1" in message
    tail = message.split("\nLast log lines of compose service backend:\n", 1)[1]
    assert "boom" in tail and "starting" in tail


def test_plain_containers_and_compose_v1(docker_engine, tmp_path):
    names = ["ops-rb-restart-" + suffix + "-" + tmp_path.name[-6:] for suffix in ("web", "sick")]
    web, sick = names
    docker_engine.docker("run", "-d", "--init", "--name", web, BUSYBOX_IMAGE, "sh", "-c", "echo web up; sleep 600")
    docker_engine.docker("run", "-d", "--init", "--name", sick, "--health-cmd",
                         "echo no /tmp/ready, probe failed; test -f /tmp/ready", "--health-interval", "1s",
                         "--health-retries", "2", BUSYBOX_IMAGE, "sleep", "600")
    fake_v1 = tmp_path / "docker-compose"
    fake_v1.write_text("#!/bin/sh\necho 'docker-compose version 1.29.2, build unknown'\n")
    fake_v1.chmod(0o755)
    try:
        before = started(docker_engine, web)
        code, results, output = restart(
            docker_engine, tmp_path, [{"container": web, "settle_seconds": 2, "stop_timeout": 2},
                                      {"container": sick, "settle_seconds": 2},
                                      {"compose_service": "backend", "compose_project_dir": str(tmp_path)}],
            docker_compose_command=str(fake_v1))
        assert code != 0
        passed, unhealthy, refused = results["compose1"]

        assert passed.get("failed") is not True and passed["kind"] == "container", passed["msg"]
        assert passed["msg"].startswith("container {0} was restarted and verified".format(web))
        after = started(docker_engine, web)
        assert after[0] == before[0] and after[1] != before[1]

        assert unhealthy["failed"]
        assert "{0} unhealthy: no /tmp/ready, probe failed".format(sick) in unhealthy["msg"], unhealthy["msg"]
        assert "\nLast log lines of container {0}:".format(sick) in unhealthy["msg"]

        assert refused["failed"]
        assert refused["msg"].startswith("Docker Compose v1 (docker-compose version 1.29.2, build unknown) is not "
                                         "supported"), refused["msg"]
        assert "set compose_command to `docker compose`" in refused["msg"]
    finally:
        docker_engine.docker("rm", "-f", *names, check=False)
