"""container_health's judgement of containers from inspect, stats, events and logs samples (dockerd 20.10 output).

A fake runner answers the docker and compose commands; the real engine is exercised by
tests/integration/test_container_health_on_docker.py.
"""
import json

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import container_health as ch
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

NOW = 1796490800.0  # 2026-12-05T17:13:20Z
CREATED_EARLY = "2026-12-01T08:00:00.123456789Z"


def inspect(name, cid, status="running", exit_code=0, health=None, memory=0, nano_cpus=0, oom_flag=False,
            started="2026-12-05T08:00:00.5Z", finished="0001-01-01T00:00:00Z", created=CREATED_EARLY,
            restart_count=0):
    state = {"Status": status, "Running": status in ("running", "restarting"), "Paused": status == "paused",
             "Restarting": status == "restarting", "OOMKilled": oom_flag, "Dead": status == "dead", "Pid": 0,
             "ExitCode": exit_code, "Error": "", "StartedAt": started, "FinishedAt": finished}
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 3 if health == "unhealthy" else 0,
                           "Log": [{"ExitCode": 1, "Output": "curl: (7) Failed to connect to localhost port 8080"}]}
    return {"Id": cid, "Name": "/" + name, "Created": created, "RestartCount": restart_count, "State": state,
            "HostConfig": {"Memory": memory, "NanoCpus": nano_cpus}}


def event(cid, action, seconds, name="x"):
    return json.dumps({"status": action, "id": cid, "from": "localhost/ops-runbook-busybox:1", "Type": "container",
                       "Action": action, "Actor": {"ID": cid, "Attributes": {"name": name}}, "scope": "local",
                       "time": int(seconds), "timeNano": int(seconds * 1e9)})


def stats_line(cid, name, cpu="0.00%", usage="324KiB / 64MiB"):
    return json.dumps({"BlockIO": "0B / 0B", "CPUPerc": cpu, "Container": name, "ID": cid[:12], "MemPerc": "0.49%",
                       "MemUsage": usage, "Name": name, "NetIO": "0B / 0B", "PIDs": "1"})


class Engine:
    """Answers docker commands from a fake engine's containers."""

    def __init__(self, containers=(), events=(), stats=(), logs=None, compose=None, unreachable=False):
        self.containers = list(containers)
        self.events = list(events)
        self.stats = list(stats)
        self.logs = logs or {}
        self.compose = compose
        self.unreachable = unreachable
        self.calls = []

    def __call__(self, argv, timeout=None, env=None):
        self.calls.append(argv)
        if self.unreachable:
            return Result(argv, 1, "", "Cannot connect to the Docker daemon at unix:///nope.sock. "
                                       "Is the docker daemon running?")
        if argv[:2] == ["docker", "version"]:
            return Result(argv, 0, "20.10.24+dfsg1\n", "")
        if argv[:3] == ["docker", "compose", "version"]:
            return Result(argv, 0, "2.40.3\n", "")
        if argv[:2] == ["docker", "compose"]:
            return Result(argv, 0, self.compose or "", "")
        if argv[:2] == ["docker", "inspect"]:
            refs = argv[4:]
            found = [item for item in self.containers
                     if any(item["Id"].startswith(ref) or item["Name"] == "/" + ref for ref in refs)]
            missing = [ref for ref in refs if not any(item["Id"].startswith(ref) or item["Name"] == "/" + ref
                                                      for item in found)]
            return Result(argv, 1 if missing else 0, json.dumps(found),
                          "".join("Error: No such container: {0}\n".format(ref) for ref in missing))
        if argv[:2] == ["docker", "events"]:
            return Result(argv, 0, "\n".join(self.events) + "\n", "")
        if argv[:2] == ["docker", "stats"]:
            return Result(argv, 0, "\n".join(self.stats) + "\n", "")
        if argv[:2] == ["docker", "logs"]:
            out, err = self.logs.get(argv[-1], ("", ""))
            return Result(argv, 0, out, err)
        raise AssertionError("unexpected command {0}".format(argv))


def collect(engine, **options):
    options.setdefault("since", "24h")
    options.setdefault("host_label", "app1")
    return ch.collect(options, runner=engine, now=NOW)


def by_name(result):
    return {item["name"]: item for item in result["checks"]}


CID = "2ed8850c1efbd7b09366816d5ffbb2831ddc20cce29453858470cdc1f09d568b"


def test_a_running_healthy_container_passes_every_check():
    engine = Engine([inspect("api", CID, health="healthy", memory=64 * 1024 ** 2)], stats=[stats_line(CID, "api")],
                    logs={CID: ("2026-12-05T17:00:00.1Z GET /health 200\n", "")})
    result = collect(engine, containers=["api"])
    checks = by_name(result)
    assert result["status"] == "pass", result["checks"]
    assert sorted(checks) == ["container:api", "container_cpu:api", "container_health:api", "container_log_errors:api",
                              "container_memory:api", "container_oom_kills:api", "container_restarts:api"]
    assert checks["container_memory:api"]["observed_value"] == 0.5
    assert checks["container_memory:api"]["threshold"] == {"warn": 85, "fail": 95}
    assert all(item["host"] == "app1" and item["container"] == "api" for item in result["checks"])


def test_an_oom_kill_is_judged_from_the_oom_event_and_names_the_reason():
    started, finished = "2026-12-05T17:13:02.642443933Z", "2026-12-05T17:13:03.047229018Z"
    engine = Engine([inspect("oom1", CID, status="exited", exit_code=137, oom_flag=True, memory=32 * 1024 ** 2,
                             started=started, finished=finished)],
                    events=[event(CID, "start", 1796490782.6), event(CID, "oom", 1796490783.04),
                            event(CID, "die", 1796490783.05)])
    checks = by_name(collect(engine, containers=["oom1"]))
    assert checks["container:oom1"]["status"] == "fail"
    assert "exit code 137" in checks["container:oom1"]["output"]
    assert "OOM killer" in checks["container:oom1"]["output"]
    assert checks["container:oom1"]["oom_killed"] is True
    assert checks["container_oom_kills:oom1"]["status"] == "fail"
    assert checks["container_oom_kills:oom1"]["observed_value"] == 1
    assert checks["container_oom_kills:oom1"]["threshold"] == {"fail": 0}


def test_the_sticky_oomkilled_flag_alone_is_not_an_oom_kill():
    # dockerd keeps OOMKilled=true after a restart: without an oom event in the window, nothing was killed.
    engine = Engine([inspect("api", CID, oom_flag=True, memory=64 * 1024 ** 2)], stats=[stats_line(CID, "api")])
    checks = by_name(collect(engine, containers=["api"]))
    assert checks["container_oom_kills:api"]["status"] == "pass"
    assert checks["container_oom_kills:api"]["observed_value"] == 0


def test_exit_137_without_an_oom_event_is_not_called_an_oom_kill():
    engine = Engine([inspect("api", CID, status="exited", exit_code=137, oom_flag=True,
                             finished="2026-12-05T16:00:00Z")])
    check = by_name(collect(engine, containers=["api"]))["container:api"]
    assert check["status"] == "fail" and "SIGKILL" in check["output"] and not check["oom_killed"]


@pytest.mark.parametrize("health, status", [("unhealthy", "fail"), ("starting", "warn"), ("healthy", "pass"),
                                            (None, "pass")])
def test_health_status(health, status):
    engine = Engine([inspect("api", CID, health=health)], stats=[stats_line(CID, "api")])
    check = by_name(collect(engine, containers=["api"]))["container_health:api"]
    assert check["status"] == status
    if health == "unhealthy":
        assert "Failed to connect" in check["output"]
    if health is None:
        assert check["observed_value"] == "none" and "no healthcheck" in check["output"]


def test_restarts_count_start_events_after_the_first_start_of_a_container_created_in_the_window():
    created = "2026-12-05T17:13:14Z"
    engine = Engine([inspect("rs1", CID, status="exited", exit_code=3, created=created, restart_count=3)],
                    events=[event(CID, "start", NOW - 6 + step) for step in range(4)])
    checks = by_name(collect(engine, containers=["rs1"]))
    assert checks["container_restarts:rs1"]["observed_value"] == 3
    assert checks["container_restarts:rs1"]["status"] == "warn"
    assert checks["container_restarts:rs1"]["restart_count"] == 3


def test_restarts_of_a_container_created_before_the_window_count_every_start():
    engine = Engine([inspect("api", CID)], events=[event(CID, "start", NOW - 600) for _start in range(4)],
                    stats=[stats_line(CID, "api")])
    assert by_name(collect(engine, containers=["api"]))["container_restarts:api"]["status"] == "fail"


@pytest.mark.parametrize("usage, limit, status, observed", [
    ("55MiB / 64MiB", 64 * 1024 ** 2, "warn", 85.9),
    ("54.4MiB / 64MiB", 64 * 1024 ** 2, "pass", 85.0),
    ("63MiB / 64MiB", 64 * 1024 ** 2, "fail", 98.4),
    ("1.2GiB / 7.6GiB", 0, "pass", None),
])
def test_memory_against_the_limit(usage, limit, status, observed):
    engine = Engine([inspect("api", CID, memory=limit)], stats=[stats_line(CID, "api", usage=usage)])
    check = by_name(collect(engine, containers=["api"]))["container_memory:api"]
    assert (check["status"], check["observed_value"]) == (status, observed)
    if not limit:
        assert "no limit" in check["output"]


def test_cpu_is_a_percentage_of_the_cpu_limit_when_there_is_one():
    engine = Engine([inspect("api", CID, nano_cpus=500000000)], stats=[stats_line(CID, "api", cpu="45.00%")])
    check = by_name(collect(engine, containers=["api"]))["container_cpu:api"]
    assert (check["status"], check["observed_value"]) == ("warn", 90.0)


def test_log_errors_are_counted_from_stdout_and_stderr_and_at_most_three_quoted():
    out = "".join("2026-12-05T17:0{0}:00.0Z ERROR request {0} failed\n".format(i) for i in range(5))
    err = "2026-12-05T17:09:00.0Z Traceback (most recent call last):\n2026-12-05T17:09:01.0Z all fine\n"
    engine = Engine([inspect("api", CID)], stats=[stats_line(CID, "api")], logs={CID: (out, err)})
    check = by_name(collect(engine, containers=["api"]))["container_log_errors:api"]
    assert check["status"] == "warn" and check["observed_value"] == 6
    assert len(check["lines"]) == 3 and "Traceback" in check["lines"][0]
    logs_call = [argv for argv in engine.calls if argv[:2] == ["docker", "logs"]][0]
    assert logs_call[logs_call.index("--since") + 1] == "{0:.9f}".format(NOW - 86400)


def test_a_missing_expected_container_fails_naming_it():
    engine = Engine([inspect("api", CID)], stats=[stats_line(CID, "api")])
    result = collect(engine, containers=["api", "worker"])
    check = by_name(result)["container:worker"]
    assert check["status"] == "fail" and "worker" in check["output"]
    assert result["facts"]["missing"] == ["worker"]
    assert by_name(result)["container:api"]["status"] == "pass"


COMPOSE_PS = "\n".join(json.dumps(item) for item in [
    {"ID": CID[:12], "Name": "app-backend-1", "Project": "app", "Service": "backend", "State": "running",
     "Health": "healthy", "ExitCode": 0},
    {"ID": "9a9cc03020e3", "Name": "app-redis-1", "Project": "app", "Service": "redis", "State": "running",
     "Health": "", "ExitCode": 0},
])


def test_compose_services_are_named_project_slash_service_and_a_missing_one_fails():
    redis_id = "9a9cc03020e324d522bf382397ff56826e12e91e5c47f39473b4d8756e82e6bb"
    engine = Engine([inspect("app-backend-1", CID, health="healthy"), inspect("app-redis-1", redis_id)],
                    stats=[stats_line(CID, "app-backend-1"), stats_line(redis_id, "app-redis-1")],
                    compose=COMPOSE_PS)
    result = collect(engine, compose_projects=[{"project_dir": "/srv/app", "files": [], "project_name": None,
                                                "services": ["backend", "redis", "frontend"]}])
    checks = by_name(result)
    assert checks["container:app/backend"]["status"] == "pass"
    assert checks["container:app/backend"]["compose_service"] == "backend"
    assert checks["container_health:app/backend"]["status"] == "pass"
    assert checks["container:app/redis"]["status"] == "pass"
    missing = checks["container:app/frontend"]
    assert missing["status"] == "fail" and "frontend" in missing["output"] and "backend, redis" in missing["output"]
    assert result["facts"]["missing"] == ["app/frontend"]
    ps_call = [argv for argv in engine.calls if "ps" in argv][0]
    assert ps_call == ["docker", "compose", "--project-directory", "/srv/app", "ps", "--all", "--format", "json"]


def test_every_service_compose_lists_is_expected_when_none_is_named():
    engine = Engine([inspect("app-backend-1", CID)], stats=[stats_line(CID, "app-backend-1")],
                    compose=COMPOSE_PS.splitlines()[0])
    result = collect(engine, compose_projects=[{"project_dir": "/srv/app", "services": []}])
    assert result["status"] == "pass" and "container:app/backend" in by_name(result)


def test_an_engine_that_does_not_answer_fails_every_expected_check_as_unchecked():
    result = collect(Engine(unreachable=True), containers=["api"],
                     compose_projects=[{"project_name": "app", "services": ["backend"]}])
    checks = by_name(result)
    assert sorted(checks) == ["container:api", "container:app/backend"]
    for check in checks.values():
        assert check["status"] == "fail" and check["unchecked"] is True
        assert "does not answer" in check["output"] and "docker_host" in check["output"]
    assert result["status"] == "fail"
    assert sorted(result["unchecked"]) == ["container:api", "container:app/backend"]


@pytest.mark.parametrize("since, expected", [
    ("24h", NOW - 86400), ("90m", NOW - 5400), ("1h30m", NOW - 5400), ("2d", NOW - 172800),
    ("2026-12-05T06:00:00Z", 1796450400.0), ("2026-12-05T06:00:00", 1796450400.0),
    ("2026-12-05T07:00:00+01:00", 1796450400.0), ("1796450400", 1796450400.0),
])
def test_since(since, expected):
    assert ch.since_epoch(since, now=NOW) == pytest.approx(expected)


def test_a_since_that_is_no_time_is_refused():
    with pytest.raises(RunbookError, match="since must be a duration"):
        ch.since_epoch("yesterday", now=NOW)


def test_unknown_thresholds_are_refused_with_the_known_ones():
    with pytest.raises(RunbookError) as error:
        ch.normalize({"containers": ["api"], "thresholds": {"memory_percent": {"warn": 70}}})
    assert "memory_percent" in str(error.value) and "memory_used_percent" in str(error.value)


def test_nothing_to_check_is_refused():
    with pytest.raises(RunbookError, match="Nothing to check"):
        ch.normalize({"containers": [], "compose_projects": []})


@pytest.mark.parametrize("text, size", [("324KiB", 331776), ("1.5GiB", 1610612736), ("12MB", 12000000),
                                        ("0B", 0), ("", None)])
def test_parse_size(text, size):
    assert ch.parse_size(text) == size


def test_several_oom_events_of_one_run_are_one_kill():
    # cgroup v1: the engine reported two oom events for one kill; a later run was killed once more.
    assert ch.oom_kills_per_run([10.2, 10.1, 30.5], [5.0, 20.0]) == [10.1, 30.5]
    assert ch.oom_kills_per_run([], [5.0]) == []
    assert ch.oom_kills_per_run([3.0, 3.1], []) == [3.0]
