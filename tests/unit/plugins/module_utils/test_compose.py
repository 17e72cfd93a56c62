"""The docker compose target: the commands it runs and how it reads their answers.

There is no Docker engine on the machines this is tested on, so the commands
are checked as built and the parsers against output shaped like Compose v2's.
"""
import json

from ansible_collections.ops.runbook.plugins.module_utils import compose
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result


def service(**kwargs):
    options = dict(project_dir="/opt/formula-pm", files=["/opt/formula-pm/docker-compose.prod.yml"],
                   project_name="formula")
    options.update(kwargs)
    return compose.ComposeService("backend", **options)


def test_commands_carry_the_project_and_the_service():
    target = service()
    base = ["docker", "compose", "-f", "/opt/formula-pm/docker-compose.prod.yml", "-p", "formula",
            "--project-directory", "/opt/formula-pm"]
    assert target.argv("restart") == base + ["restart", "backend"]
    assert target.argv("reload") == base + ["kill", "-s", "HUP", "backend"]
    assert target.argv("ps") == base + ["ps", "--all", "--format", "json", "backend"]
    assert target.argv("logs", 50) == base + ["logs", "--no-color", "--timestamps", "--tail", "50", "backend"]
    assert target.inspect_argv(["abc", "def"]) == ["docker", "inspect", "--type", "container", "abc", "def"]


def test_the_legacy_docker_compose_binary_and_no_project_options():
    target = compose.ComposeService("frontend", command="docker-compose")
    assert target.argv("restart") == ["docker-compose", "restart", "frontend"]
    assert target.label == "compose service frontend"


PS_V2_ARRAY = json.dumps([{"ID": "abc123", "Name": "formula-backend-1", "Service": "backend", "State": "running",
                           "Health": "healthy", "ExitCode": 0}])
PS_V2_LINES = "\n".join(json.dumps(item) for item in [
    {"ID": "abc123", "Name": "formula-backend-1", "Service": "backend", "State": "running", "Health": ""},
    {"ID": "def456", "Name": "formula-backend-2", "Service": "backend", "State": "restarting", "Health": ""},
])


def test_ps_output_of_old_and_new_compose_versions():
    assert [item["ID"] for item in compose.parse_ps(PS_V2_ARRAY)] == ["abc123"]
    assert [item["ID"] for item in compose.parse_ps(PS_V2_LINES)] == ["abc123", "def456"]
    assert compose.parse_ps("") == []


def inspect(cid, status="running", pid=100, started="2026-02-24T02:00:00.1Z", restarts=0, health=None):
    state = {"Status": status, "Running": status == "running", "Restarting": status == "restarting", "Pid": pid,
             "StartedAt": started, "ExitCode": 0 if status == "running" else 1}
    if health:
        state["Health"] = {"Status": health}
    return {"Id": cid + "0" * 58, "State": state, "RestartCount": restarts}


def test_snapshot_of_a_running_service():
    containers = compose.parse_ps(PS_V2_ARRAY)
    inspected = compose.parse_inspect(json.dumps([inspect("abc123", health="healthy", restarts=2)]))
    snap = compose.snapshot_from_containers(containers, inspected)
    assert snap["active"] and not snap["terminal"]
    assert (snap["pid"], snap["restarts"], snap["since"]) == ("100", 2, "2026-02-24T02:00:00.1Z")


def test_snapshot_of_a_restarting_replica_is_not_active():
    containers = compose.parse_ps(PS_V2_LINES)
    replicas = [inspect("abc123"), inspect("def456", status="restarting", restarts=5)]
    inspected = compose.parse_inspect(json.dumps(replicas))
    snap = compose.snapshot_from_containers(containers, inspected)
    assert not snap["active"] and not snap["terminal"]
    assert snap["restarts"] == 5


def test_a_container_whose_healthcheck_is_starting_is_not_active_yet():
    inspected = compose.parse_inspect(json.dumps([inspect("abc123", health="starting")]))
    assert not compose.snapshot_from_containers(compose.parse_ps(PS_V2_ARRAY), inspected)["active"]


def test_an_exited_or_absent_service_is_terminal():
    inspected = compose.parse_inspect(json.dumps([inspect("abc123", status="exited", pid=0)]))
    assert compose.snapshot_from_containers(compose.parse_ps(PS_V2_ARRAY), inspected)["terminal"]
    assert compose.snapshot_from_containers([], {})["state"] == "absent"


def test_snapshot_runs_ps_then_inspects_the_listed_containers():
    calls = []

    def runner(argv, timeout=None, env=None):
        calls.append(argv)
        if "ps" in argv:
            return Result(argv, 0, PS_V2_ARRAY, "")
        return Result(argv, 0, json.dumps([inspect("abc123")]), "")
    snap = service(runner=runner).snapshot()
    assert snap["active"]
    assert calls[1] == ["docker", "inspect", "--type", "container", "abc123"]
