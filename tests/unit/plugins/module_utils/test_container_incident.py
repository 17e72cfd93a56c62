"""container_incident: the judgement of one container from `docker inspect` and `oom` events, and the parsing.

Pure logic; the real engine is exercised by tests/integration/test_container_incident_on_docker.py.
"""
import pytest

from ansible_collections.ops.runbook.plugins.module_utils import container_incident as ci
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.docker import Docker

ID = "c53c3e4932684f967bfa825eb71e4a622b0f9dc418c3e3c03a1d7cfda5be999f"
# dockerd 20.10's `docker events --filter event=oom --format '{{json .}}'`
EVENT = ('{"status":"oom","id":"%s","from":"localhost/ops-runbook-busybox:1","Type":"container","Action":"oom",'
         '"Actor":{"ID":"%s","Attributes":{"image":"localhost/ops-runbook-busybox:1","name":"oomer"}},'
         '"scope":"local","time":1796490866,"timeNano":1796490866887220659}' % (ID, ID))
STARTED, FINISHED = "2026-12-05T17:14:26.841241622Z", "2026-12-05T17:14:26.889177468Z"


def inspected(status="exited", oom=True, exit_code=137, started=STARTED, finished=FINISHED, health=None, **state):
    document = {"Id": ID, "Name": "/oomer", "RestartCount": 0, "HostConfig": {"Memory": 32 * 1024 * 1024},
                "State": dict(Status=status, Running=status == "running", OOMKilled=oom, ExitCode=exit_code,
                              StartedAt=started, FinishedAt=finished, Restarting=False, Error="", **state)}
    if health:
        document["State"]["Health"] = health
    return document


def test_times_and_events_are_parsed():
    assert ci.parse_time(STARTED) == pytest.approx(1796490866.841241622)
    assert ci.parse_time("2026-12-05T18:14:26+01:00") == 1796490866
    assert ci.parse_time("0001-01-01T00:00:00Z") is None
    [event] = ci.parse_events(EVENT + "\n")
    assert (event["id"], event["name"], event["action"]) == (ID, "oomer", "oom")
    assert event["time"] == pytest.approx(1796490866.887220659)


def test_logs_of_both_streams_in_time_order():
    stdout = "2026-12-05T17:14:26.1Z one\n2026-12-05T17:14:28.1Z three\n"
    stderr = "2026-12-05T17:14:27.1Z two\n"
    assert ci.merge_logs(stdout, stderr, 2) == ["2026-12-05T17:14:27.1Z two", "2026-12-05T17:14:28.1Z three"]


def test_an_oom_killed_container_is_down_with_its_exit_code_and_last_log_line():
    verdict = ci.judge(inspected(), ci.parse_events(EVENT), ["2026-12-05T17:14:26Z allocating 64M"])
    assert verdict["down"] and verdict["oom_killed"] and verdict["exit_code"] == 137
    assert verdict["reason"] == ("container oomer is exited; exit code 137; killed by the OOM killer (memory limit "
                                 "32.0 MiB); 1 OOM kill event(s) in the searched period; last log line: "
                                 "2026-12-05T17:14:26Z allocating 64M.")


def test_the_sticky_flag_of_a_running_container_is_no_oom_kill():
    later = "2026-12-05T17:14:32.051875329Z"
    verdict = ci.judge(inspected("running", exit_code=0, started=later), ci.parse_events(EVENT))
    assert not verdict["down"] and not verdict["oom_killed"]


def test_a_later_normal_exit_is_not_blamed_on_the_sticky_flag():
    verdict = ci.judge(inspected(exit_code=0, started="2026-12-05T17:20:00Z", finished="2026-12-05T17:30:00Z"), [])
    assert verdict["down"] and not verdict["oom_killed"]
    # The flag with exit 137 after the last start, without events (they aged out), is the last stop.
    assert ci.judge(inspected(), [])["oom_killed"]


def test_an_oom_kill_inside_a_running_container_since_its_start_needs_a_restart():
    verdict = ci.judge(inspected("running", exit_code=0, started="2026-12-05T17:00:00Z"), ci.parse_events(EVENT))
    assert verdict["down"] and verdict["oom_killed"]
    assert "OOM killer killed a process in it since it started" in verdict["reason"]


def test_an_unhealthy_container_reports_its_probe():
    health = {"Status": "unhealthy", "Log": [{"ExitCode": 1, "Output": "wget: server returned error: 503\n"}]}
    verdict = ci.judge(inspected("running", oom=False, exit_code=0, health=health), [], kind="compose_service",
                       name="backend")
    assert verdict["down"] and verdict["health_output"] == "wget: server returned error: 503"
    assert verdict["reason"].startswith("compose service backend is unhealthy; its health probe exited 1")


class Runner:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, timeout=None, env=None):
        self.calls.append(argv)
        for prefix, (rc, out, err) in self.answers:
            if argv[:len(prefix)] == prefix:
                return Result(argv, rc, out, err)
        raise AssertionError("unexpected command {0}".format(argv))


def test_missing_containers_and_compose_services_are_down():
    runner = Runner([
        (["docker", "version"], (0, "20.10.24\n", "")),
        (["docker", "events"], (0, "", "")),
        (["docker", "inspect"], (1, "", "Error: No such object: ghost")),
        (["docker", "compose", "version"], (0, "2.40.3\n", "")),
        (["docker", "compose", "--project-directory", "/srv/app", "ps"], (1, "", "no such service: worker")),
    ])
    result = ci.run_diagnosis({"containers": ["ghost"], "compose_services": ["worker"],
                               "compose_project_dir": "/srv/app", "log_lines": 5}, Docker({}, runner=runner))
    assert [(item["target"], item["state"]) for item in result["down"]] == [
        ("container ghost", "missing"), ("compose service worker", "missing")]
    events = [argv for argv in runner.calls if argv[1] == "events"][0]
    assert "--until" in events and "event=oom" in events
