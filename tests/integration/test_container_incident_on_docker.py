"""The P1 incident response on a container host, on the real private dockerd (tests/integration/conftest.py).

A busybox container limited to 32 MiB (no swap) whose PID 1 (`dd` with a 64 MiB buffer, exec'ed by the shell) is
killed by the kernel's OOM killer: container_incident names the OOM kill, exit 137 and the last log line;
incident_service_down.yml restarts it through service_restart, proves it stays up, and writes a timeline that
names the OOM kill. The container's writable layer keeps a marker, so the restarted PID 1 runs a small loop
instead of allocating again.
"""
import glob
import json
import time
import uuid

from harness.docker import BUSYBOX_IMAGE
from conftest import ansible_module, ansible_playbook, module_result

# PID 1 allocates 64 MiB once; after a restart it finds /oomed and waits (ending on SIGTERM at once).
OOM_SCRIPT = ("if [ -e /oomed ]; then echo recovered; trap 'exit 0' TERM; while :; do sleep 1; done; fi; "
              "touch /oomed; echo 'allocating 64 MiB'; exec dd if=/dev/zero of=/dev/null bs=64M")


def start_oom_container(engine):
    name = "oom-{0}".format(uuid.uuid4().hex[:8])
    engine.docker("run", "-d", "--name", name, "-m", "32m", "--memory-swap", "32m", BUSYBOX_IMAGE, "sh", "-c",
                  OOM_SCRIPT)
    deadline = time.monotonic() + 15
    while engine.docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true":
        assert time.monotonic() < deadline, "the container was not OOM-killed"
        time.sleep(0.1)
    return name


def test_oom_killed_container_is_diagnosed_restarted_and_documented(docker_engine, tmp_path):
    engine = docker_engine
    name = start_oom_container(engine)
    try:
        state = json.loads(engine.docker("inspect", "--format", "{{json .State}}", name).stdout)
        # The kernel killed PID 1 itself: the container stopped, SIGKILL's status, the engine's flag.
        assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 137, True)

        diagnosis = module_result(ansible_module("ops.runbook.container_incident", dict(
            engine.params(), containers=[name, "no-such-" + name], log_lines=5, since="5m"), env=engine.env))
        assert not diagnosis.get("failed"), diagnosis.get("msg")
        found, absent = diagnosis["containers"]
        assert found["down"] and found["state"] == "exited" and found["exit_code"] == 137
        assert found["oom_killed"] and found["oom_events"] >= 1
        assert found["memory_limit_bytes"] == 32 * 1024 * 1024
        assert found["logs"] and found["logs"][-1].endswith("allocating 64 MiB")
        assert "killed by the OOM killer" in found["reason"]
        assert absent["state"] == "missing" and absent["down"]

        report_dir = tmp_path / "incidents"
        run = ansible_playbook("incident_service_down.yml", {
            "incident_hosts": "localhost", "incident_containers": [name], "incident_remediate": True,
            "incident_categories": ["disk"], "incident_disk_mounts": [str(tmp_path)],
            "incident_report_dir": str(report_dir), "incident_container_since": "5m",
            "incident_settle_seconds": 2, "incident_timeout": 30,
            "docker_host": engine.docker_host}, env=engine.env)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]

        after = json.loads(engine.docker("inspect", "--format", "{{json .State}}", name).stdout)
        assert after["Running"] and after["StartedAt"] > state["StartedAt"]
        assert engine.docker("logs", "--tail", "1", name).stdout.strip() == "recovered"
        [record_path] = glob.glob(str(report_dir / "incident-localhost-*.json"))
        with open(record_path) as handle:
            record = json.load(handle)
        assert record["outcome"] == "resolved", record["summary"]
        whats = [(event["phase"], event["what"], event["status"]) for event in record["events"]]
        assert ("diagnose", "Found: container " + name, "fail") in whats
        assert ("remediate", "Restart container {0} with verification".format(name), "pass") in whats
        assert ("verify", "Checked again: container " + name, "pass") in whats
        [markdown_path] = glob.glob(str(report_dir / "incident-localhost-*.md"))
        with open(markdown_path) as handle:
            markdown = handle.read()
        assert "killed by the OOM killer" in markdown and "exit code 137" in markdown
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_a_killed_compose_service_is_found_restarted_and_checked_again(compose_app, tmp_path):
    app = compose_app
    before = app.container_id("frontend")
    app.compose("kill", "frontend")
    report_dir = tmp_path / "incidents"
    run = ansible_playbook("incident_service_down.yml", {
        "incident_hosts": "localhost", "incident_compose_services": ["frontend", "redis"],
        "incident_compose_project_dir": app.project_dir, "incident_compose_project_name": app.project_name,
        "incident_remediate": True, "incident_categories": ["disk"], "incident_disk_mounts": [str(tmp_path)],
        "incident_report_dir": str(report_dir), "incident_settle_seconds": 2, "incident_timeout": 60,
        "incident_service_checks": {"frontend": {"port": app.frontend_port}},
        "docker_host": app.engine.docker_host}, env=app.engine.env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert app.container_id("frontend") == before
    state = json.loads(app.engine.docker("inspect", "--format", "{{json .State}}", before).stdout)
    assert state["Running"] and not state["OOMKilled"]
    [record_path] = glob.glob(str(report_dir / "incident-localhost-*.json"))
    with open(record_path) as handle:
        record = json.load(handle)
    assert record["outcome"] == "resolved", record["summary"]
    whats = [(event["phase"], event["what"], event["status"]) for event in record["events"]]
    assert ("diagnose", "Found: compose service frontend", "fail") in whats
    assert ("diagnose", "Checked: compose service redis", "pass") in whats
    assert ("remediate", "Restart compose service frontend with verification", "pass") in whats
    assert ("verify", "Checked again: compose service frontend", "pass") in whats
