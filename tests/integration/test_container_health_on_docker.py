"""Container health on the private Docker engine: a real OOM kill, a healthy compose app, missing services.

ops.runbook.container_health runs through the ansible CLI, and the morning health check
(health_check.yml) through ansible-playbook with an inventory whose compose_hosts group names the
expected services, both pointed at the session's engine by docker_host and its environment.
"""
import json
import os
import subprocess
import time
import uuid

import pytest
from conftest import ROOT, ansible_module, eventually, module_result

from harness.docker import BUSYBOX_IMAGE

# PID 1 (the shell) holds 100 MB in a variable: the 32 MiB limit kills it, so the container dies of it. A marker
# file makes the next start of the same container sleep instead, as a fixed service would after its restart.
HUNGRY = 'if [ -e /ran-once ]; then exec sleep 300; fi; touch /ran-once; x=$(head -c 100000000 /dev/zero | tr "\\0" a)'


@pytest.fixture
def engine_env(docker_engine, monkeypatch):
    """The ansible processes of the test talk to the session's engine (DOCKER_HOST, the compose plugin)."""
    for name, value in docker_engine.env.items():
        monkeypatch.setenv(name, value)
    return docker_engine


@pytest.fixture
def container(docker_engine):
    """Start busybox containers (docker run arguments); all are removed after the test."""
    names = []

    def run(*args, name=None):
        name = name or "opsrb-" + uuid.uuid4().hex[:8]
        names.append(name)
        docker_engine.docker("run", "--detach", "--name", name, "--network", "none", *args)
        return name

    yield run
    if names:
        docker_engine.docker("rm", "--force", *names, check=False)


def container_health(**args):
    result = module_result(ansible_module("ops.runbook.container_health", dict({"fail_on": "never"}, **args)))
    return result, {item["name"]: item for item in result.get("checks", [])}


def state_of(engine, name):
    return engine.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}",
                         name).stdout.strip()


def test_a_container_oom_killed_for_real_fails_and_the_sticky_flag_does_not(engine_env, container):
    name = container("--memory", "32m", "--memory-swap", "32m", BUSYBOX_IMAGE, "sh", "-c", HUNGRY)
    assert eventually(lambda: state_of(engine_env, name) == "exited 137 true", timeout=20), state_of(engine_env, name)

    result, checks = container_health(containers=[name], since="10m")
    state, kills = checks["container:" + name], checks["container_oom_kills:" + name]
    assert state["status"] == "fail" and "exit code 137" in state["output"], state
    assert "OOM killer" in state["output"] and state["oom_killed"] is True, state
    assert kills["status"] == "fail" and kills["observed_value"] == 1, kills
    assert result["facts"]["containers"][name]["memory_limit_bytes"] == 32 * 1024 ** 2

    # Restarted, it runs again; docker still says OOMKilled=true, but no kill happened since the restart.
    time.sleep(1.1)
    after_kill = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    engine_env.docker("start", name)
    assert eventually(lambda: state_of(engine_env, name) == "running 0 true", timeout=10), state_of(engine_env, name)
    result, checks = container_health(containers=[name], since=after_kill)
    assert checks["container:" + name]["status"] == "pass", checks["container:" + name]
    assert checks["container_oom_kills:" + name]["status"] == "pass", checks["container_oom_kills:" + name]
    assert result["facts"]["containers"][name]["oom_killed_flag"] is True
    memory = checks["container_memory:" + name]
    assert memory["status"] == "pass" and memory["threshold"] == {"warn": 85, "fail": 95}, memory


def test_error_lines_in_the_logs_are_counted_and_a_few_quoted(engine_env, container):
    # The engine stamps each stream's lines as it reads them: the last line comes a moment later, to be the newest.
    script = "for i in 1 2 3 4 5; do echo \"ERROR request $i failed\"; echo \"GET /ok $i\"; done; " \
             "sleep 0.3; echo 'Traceback (most recent call last):' >&2; exec sleep 300"
    name = container(BUSYBOX_IMAGE, "sh", "-c", script)
    assert eventually(lambda: "Traceback" in engine_env.docker("logs", name).stderr, timeout=10)
    result, checks = container_health(containers=[name], since="5m",
                                      thresholds={"log_errors": {"warn": 0, "fail": 10}})
    errors = checks["container_log_errors:" + name]
    assert errors["status"] == "warn" and errors["observed_value"] == 6, errors
    assert len(errors["lines"]) == 3 and "Traceback" in errors["lines"][0], errors
    assert errors["threshold"] == {"warn": 0, "fail": 10}
    assert checks["container:" + name]["status"] == "pass"


def test_an_engine_that_does_not_answer_fails_as_unchecked(tmp_path, engine_env):
    result, checks = container_health(containers=["backend"], docker_host="unix://{0}/no.sock".format(tmp_path),
                                      compose_projects=[{"project_name": "formula-pm", "services": ["frontend"]}])
    assert result["status"] == "fail"
    assert sorted(checks) == ["container:backend", "container:formula-pm/frontend"]
    for check in checks.values():
        assert check["status"] == "fail" and check["unchecked"] is True, check
        assert "does not answer" in check["output"] and "docker_host" in check["output"], check


def write_inventory(path, app, services):
    inventory = {"all": {"children": {"compose_hosts": {
        "hosts": {"localhost": {"ansible_connection": "local",
                                "ansible_python_interpreter": "{{ ansible_playbook_python }}"}},
        "vars": {"health_check_compose_projects": [{
            "project_dir": app.project_dir, "project_name": app.project_name, "services": services}]},
    }}}}
    path.write_text(json.dumps(inventory))
    return str(path)


def health_check_playbook(tmp_path, inventory, engine):
    extra = {"health_check_hosts": "compose_hosts", "health_check_categories": ["disk"],
             "health_check_become": False, "health_check_report_dir": str(tmp_path / "report"),
             "health_check_container_since": "10m", "docker_host": engine.docker_host}
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + env["PATH"]
    run = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", inventory,
                          os.path.join(ROOT, "playbooks", "health_check.yml"), "-e", "@" + str(extra_file)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    with open(str(tmp_path / "report" / "health-check.json")) as handle:
        return run, json.load(handle)["checks"]


def test_the_morning_check_of_a_healthy_compose_app_passes(tmp_path, engine_env, compose_app):
    inventory = write_inventory(tmp_path / "hosts.json", compose_app, ["backend", "frontend", "redis"])
    run, checks = health_check_playbook(tmp_path, inventory, engine_env)
    containers = {name: found[0] for name, found in checks.items() if name.startswith("localhost:container")}
    assert len(containers) == 3 * 7, sorted(containers)
    assert {item["status"] for item in containers.values()} == {"pass"}, [
        item["output"] for item in containers.values() if item["status"] != "pass"]
    backend = containers["localhost:container_health:{0}/backend".format(compose_app.project_name)]
    assert backend["observedValue"] == "healthy", backend
    assert run.returncode == 0, run.stdout[-3000:]


def test_a_missing_and_a_stopped_service_fail_the_morning_check(tmp_path, engine_env, compose_app):
    compose_app.compose("stop", "frontend")
    project = compose_app.project_name
    inventory = write_inventory(tmp_path / "hosts.json", compose_app, ["backend", "frontend", "redis", "worker"])
    run, checks = health_check_playbook(tmp_path, inventory, engine_env)
    assert run.returncode != 0
    missing = checks["localhost:container:{0}/worker".format(project)][0]
    assert missing["status"] == "fail" and "worker" in missing["output"], missing
    stopped = checks["localhost:container:{0}/frontend".format(project)][0]
    assert stopped["status"] == "fail" and stopped["observedValue"] == "exited", stopped
    assert checks["localhost:container:{0}/backend".format(project)][0]["status"] == "pass"
    assert "container:{0}/worker".format(project) in run.stdout
