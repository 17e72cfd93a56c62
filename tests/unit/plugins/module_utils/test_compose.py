"""Containers and compose services as restart targets: the commands they run and how they read the answers.

The judgement runs here on a simulated engine and clock; tests/integration/test_container_restart.py runs it on
a real Docker engine.
"""
import json

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import compose, service_restart as service
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.docker import Docker


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def inspect(cid="abc123", status="running", pid=100, started="2026-02-24T02:00:00.1Z", restarts=0, health=None,
            probe=None, name="/formula-backend-1", exit_code=None):
    state = {"Status": status, "Running": status == "running", "Restarting": status == "restarting", "Pid": pid,
             "StartedAt": started, "ExitCode": exit_code if exit_code is not None else (0 if status == "running" else 1)}
    if health:
        state["Health"] = {"Status": health, "Log": [{"ExitCode": 1, "Output": probe}] if probe else []}
    return {"Id": cid + "0" * 58, "Name": name, "State": state, "RestartCount": restarts}


def test_snapshot_of_a_running_container_with_its_identity():
    snap = compose.snapshot_from_inspect([inspect(health="healthy", restarts=2)])
    assert snap["active"] and not snap["terminal"]
    assert (snap["container_id"], snap["pid"], snap["restarts"], snap["since"], snap["detail"]) == \
        ("abc123000000", "100", 2, "2026-02-24T02:00:00.1Z", "healthy")


def test_replicas_are_judged_together():
    second = inspect("def456", status="restarting", restarts=5, name="/formula-backend-2")
    snap = compose.snapshot_from_inspect([inspect("abc123"), second])
    assert not snap["active"] and not snap["terminal"]
    assert (snap["restarts"], snap["state"], snap["container_id"]) == (5, "restarting,running",
                                                                       "abc123000000,def456000000")


def test_a_starting_healthcheck_is_not_active_yet_and_unhealthy_is_final_with_the_probe_output():
    assert not compose.snapshot_from_inspect([inspect(health="starting")])["active"]
    assert not compose.snapshot_from_inspect([inspect(health="starting")])["terminal"]
    snap = compose.snapshot_from_inspect([inspect(health="unhealthy", probe="wget: server returned error: 503\n")])
    assert snap["terminal"] and not snap["active"]
    assert snap["detail"] == "formula-backend-1 unhealthy: wget: server returned error: 503 (exit 1)"


def test_an_exited_or_absent_service_is_terminal():
    snap = compose.snapshot_from_inspect([inspect(status="exited", pid=0, exit_code=137)])
    assert snap["terminal"] and (snap["exit_status"], snap["pid"]) == (137, None)
    assert compose.snapshot_from_inspect([])["state"] == "absent"


def test_docker_logs_streams_are_merged_in_time_order():
    stdout = "2026-02-24T02:00:01.000000000Z starting\n2026-02-24T02:00:04.000000000Z exiting\n"
    stderr = "2026-02-24T02:00:02.000000000Z boom\n"
    assert [line.split(" ", 1)[1] for line in compose.merge_log_streams(stdout, stderr)] == \
        ["starting", "boom", "exiting"]


def test_ps_output_of_old_and_new_compose_versions():
    lines = "\n".join(json.dumps({"ID": cid, "Service": "backend"}) for cid in ("abc123", "def456"))
    assert [item["ID"] for item in compose.parse_ps(json.dumps([{"ID": "abc123"}]))] == ["abc123"]
    assert [item["ID"] for item in compose.parse_ps(lines)] == ["abc123", "def456"]
    assert compose.parse_ps("") == []


class FakeEngine:
    """A docker CLI whose container follows `timeline(seconds since the restart)`; records every command."""

    def __init__(self, clock, timeline, before=None, compose_version="2.40.3"):
        self.clock = clock
        self.timeline = timeline
        self.before = before or inspect(started="2026-02-24T01:00:00Z", pid=50)
        self.restarted_at = None
        self.compose_version = compose_version
        self.commands = []

    def current(self):
        return self.before if self.restarted_at is None else self.timeline(self.clock() - self.restarted_at)

    def __call__(self, argv, timeout=None, env=None):
        self.commands.append(list(argv))
        if argv[:3] == ["docker", "compose", "version"]:
            return Result(argv, 0, self.compose_version + "\n", "")
        if "restart" in argv:
            self.restarted_at = self.clock()
            return Result(argv, 0, "", "")
        if argv[:2] == ["docker", "inspect"]:
            if argv[-1] == "missing":
                return Result(argv, 1, "", "Error: No such container: missing")
            return Result(argv, 0, json.dumps([self.current()]), "")
        if "ps" in argv:
            return Result(argv, 0, json.dumps({"ID": self.current()["Id"][:12], "Service": "backend"}), "")
        if "logs" in argv:
            return Result(argv, 0, "2026-02-24T02:00:01.000000000Z starting\n",
                          "2026-02-24T02:00:02.000000000Z boom\n")
        raise AssertionError("unexpected command {0}".format(argv))

    @property
    def actions(self):
        return [argv for argv in self.commands if "restart" in argv or "kill" in argv]


def run(clock, engine, check_mode=False, **options):
    opts = dict(compose_service="backend", compose_project_dir="/opt/formula-pm", compose_project_name="formula",
                settle_seconds=4, timeout=15, poll_interval=0.5, docker_host="unix:///run/test.sock")
    opts.update(options)
    return service.run_service(opts, check_mode=check_mode, runner=engine, clock=clock, sleep=clock.sleep,
                               tcp=lambda host, port, timeout: None)


def test_the_restart_commands_carry_the_project_the_stop_timeout_and_the_engine():
    clock = Clock()
    calls = []

    def engine(argv, timeout=None, env=None):
        calls.append((argv, env))
        return FakeEngine(clock, lambda t: inspect(health="healthy"))(argv, timeout, env)
    result = run(clock, engine, stop_timeout=30, compose_files=["/opt/formula-pm/prod.yml"])
    assert not result["failed"], result["msg"]
    project = ["docker", "compose", "-f", "/opt/formula-pm/prod.yml", "-p", "formula",
               "--project-directory", "/opt/formula-pm"]
    assert [argv for argv, _env in calls if "restart" in argv] == [project + ["restart", "-t", "30", "backend"]]
    assert project + ["ps", "--all", "--format", "json", "backend"] in [argv for argv, _env in calls]
    assert all(env == {"DOCKER_HOST": "unix:///run/test.sock"} for _argv, env in calls)
    assert result["kind"] == "compose" and result["target"] == "compose service backend"
    assert "the same container id and no restart" in result["msg"]


def test_a_compose_service_that_dies_after_its_restart_fails_with_its_last_log_lines():
    clock = Clock()
    engine = FakeEngine(clock, lambda t: inspect(started="2026-02-24T02:00:00Z") if t < 3 else
                        inspect(status="exited", pid=0, started="2026-02-24T02:00:00Z"))
    result = run(clock, engine)
    assert result["failed"]
    assert "compose service backend did not stay up: it is exited" in result["msg"]
    assert result["msg"].endswith("Last log lines of compose service backend:\n"
                                  "2026-02-24T02:00:01.000000000Z starting\n2026-02-24T02:00:02.000000000Z boom")


def test_a_container_restarted_by_its_restart_policy_fails_on_the_counter_and_start_time():
    clock = Clock()
    engine = FakeEngine(clock, lambda t: inspect(pid=200, started="2026-02-24T02:00:00Z") if t < 2 else
                        inspect(pid=300, restarts=1, started="2026-02-24T02:00:03Z"))
    result = run(clock, engine, compose_service=None, container="web")
    assert result["failed"]
    assert "container web did not stay up: its restart counter went from 0 to 1 and its main PID changed" \
        in result["msg"]
    assert ["docker", "restart", "-t", "10", "web"] in engine.actions


def test_a_replaced_container_fails_on_its_id():
    clock = Clock()
    engine = FakeEngine(clock, lambda t: inspect() if t < 2 else inspect("fff999"))
    result = run(clock, engine)
    assert "its container id changed from abc123000000 to fff999000000" in result["msg"]


def test_an_unhealthy_container_fails_at_once_with_its_probe_output():
    clock = Clock()
    engine = FakeEngine(clock, lambda t: inspect(health="starting") if t < 1 else
                        inspect(health="unhealthy", probe="connection refused"))
    result = run(clock, engine, container="web", compose_service=None)
    assert result["failed"] and clock.now < 1003
    assert "container web is running (formula-backend-1 unhealthy: connection refused (exit 1))" in result["msg"]
    assert "Last log lines of container web:" in result["msg"]


def test_a_healthy_restart_waits_for_the_healthcheck_and_measures_the_downtime():
    clock = Clock()
    engine = FakeEngine(clock, lambda t: inspect(health="starting") if t < 2 else inspect(health="healthy"))
    result = run(clock, engine, container="web", compose_service=None)
    assert not result["failed"], result["msg"]
    assert result["downtime_seconds"] == 2.0
    assert result["after"]["health"] == "healthy"


def test_check_mode_plans_and_touches_nothing():
    clock = Clock()
    engine = FakeEngine(clock, lambda t: inspect())
    result = run(clock, engine, check_mode=True, container="web", compose_service=None, stop_timeout=3)
    assert result["changed"] and not engine.actions
    assert result["msg"].startswith("Would docker restart -t 3 web; then verify within 15 s: active and unchanged "
                                    "(same container id, no restart) for 4 s.")


def test_a_missing_container_fails_clearly():
    result = run(Clock(), FakeEngine(Clock(), None), container="missing", compose_service=None)
    assert result["failed"] and result["msg"] == "container missing does not exist on this host: check the name."


def test_compose_v1_is_refused_before_anything_runs():
    clock = Clock()
    engine = FakeEngine(clock, lambda t: inspect(), compose_version="1.29.2")
    with pytest.raises(Exception, match="Docker Compose v1 .* is not supported"):
        run(clock, engine)
    assert not engine.actions


def test_exactly_one_target_and_a_sane_stop_timeout():
    for options in ({"container": "a", "compose_service": "b"}, {"name": "a", "container": "b"}, {}):
        with pytest.raises(Exception, match="exactly one service"):
            service.normalize(options)
    with pytest.raises(Exception, match="stop_timeout must be 0 or more"):
        service.normalize({"container": "a", "stop_timeout": -1})


def test_a_container_target_runs_every_command_through_docker():
    target = compose.Container("web", Docker({"docker_command": "sudo docker"}), stop_timeout=5)
    assert target.argv("restart") == ["sudo", "docker", "restart", "-t", "5", "web"]
    assert target.argv("reload") == ["sudo", "docker", "kill", "-s", "HUP", "web"]
    assert target.argv("logs", 7) == ["sudo", "docker", "logs", "--timestamps", "--tail", "7", "web"]
