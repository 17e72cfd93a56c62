"""Stopping and starting containers and compose services: what is looked at, what is changed, what is reported.

A fake runner answers the docker and compose commands; the real engine is exercised by
tests/integration/test_restore_compose.py.
"""
import json

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import container_state
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

COMPOSE = ["docker", "compose"]
PROJECT = COMPOSE + ["-p", "app", "--project-directory", "/srv/app"]


def ps_line(service, state):
    return json.dumps({"ID": service[:3], "Name": "app-{0}-1".format(service), "Service": service, "State": state})


class Engine:
    """Answers like a Docker engine whose containers are in `states`, and records every command."""

    def __init__(self, services=None, containers=None, fail=None):
        self.services = dict(services or {})
        self.containers = dict(containers or {})
        self.fail = fail
        self.calls = []

    def __call__(self, argv, timeout=None, env=None):
        self.calls.append(argv)
        if argv == COMPOSE + ["version", "--short"]:
            return Result(argv, 0, "2.40.3\n", "")
        if self.fail and argv[-len(self.fail):] == self.fail:
            return Result(argv, 1, "", "Error response from daemon: boom")
        if argv[:len(PROJECT)] == PROJECT:
            verb, names = argv[len(PROJECT)], argv[len(PROJECT) + 1:]
            if verb == "config":
                return Result(argv, 0, "\n".join(sorted(self.services)) + "\n", "")
            if verb == "ps":
                names = names[3:]
                return Result(argv, 0, "\n".join(ps_line(name, self.services[name]) for name in names
                                                 if self.services.get(name)), "")
            for name in names:
                self.services[name] = "exited" if verb == "stop" else "running"
            return Result(argv, 0, "", "")
        if argv[:3] == ["docker", "inspect", "--type"]:
            return Result(argv, 0, json.dumps([{"Name": "/" + name, "Id": name + "0" * 10,
                                                "State": {"Status": self.containers[name]}}
                                               for name in argv[4:]]), "")
        if argv[1] in ("stop", "start"):
            for name in argv[2:]:
                self.containers[name] = "exited" if argv[1] == "stop" else "running"
            return Result(argv, 0, "\n".join(argv[2:]), "")
        raise AssertionError("unexpected command {0}".format(argv))

    def changes(self):
        return [argv for argv in self.calls if "stop" in argv or "start" in argv]


def params(state, services=(), containers=()):
    return {"state": state, "compose_services": list(services), "containers": list(containers),
            "compose_project_dir": "/srv/app", "compose_files": [], "compose_project_name": "app"}


def test_stop_stops_only_what_runs_and_names_it():
    engine = Engine(services={"backend": "running", "frontend": "exited"}, containers={"worker": "running"})
    result = container_state.run_container_state(params("stopped", ["backend", "frontend"], ["worker"]),
                                                 runner=engine)
    assert engine.changes() == [PROJECT + ["stop", "backend"], ["docker", "stop", "worker"]]
    assert result["changed"] is True
    assert result["changed_compose_services"] == ["backend"] and result["changed_containers"] == ["worker"]
    assert result["msg"] == "Stopped backend, worker; frontend already stopped."
    assert [item["state"] for item in result["after"]] == ["exited", "exited", "exited"]


def test_a_second_stop_changes_nothing():
    engine = Engine(services={"backend": "exited"}, containers={"worker": "exited"})
    result = container_state.run_container_state(params("stopped", ["backend"], ["worker"]), runner=engine)
    assert engine.changes() == []
    assert result["changed"] is False and result["commands"] == []
    assert result["msg"] == "backend, worker already stopped."


def test_start_starts_plain_containers_before_the_compose_services():
    engine = Engine(services={"backend": "exited", "frontend": "running"}, containers={"db": "exited"})
    result = container_state.run_container_state(params("started", ["backend", "frontend"], ["db"]), runner=engine)
    assert engine.changes() == [["docker", "start", "db"], PROJECT + ["start", "backend"]]
    assert result["changed_compose_services"] == ["backend"] and result["changed_containers"] == ["db"]


def test_check_mode_returns_the_commands_and_runs_none():
    engine = Engine(services={"backend": "running", "frontend": "running"})
    result = container_state.run_container_state(params("stopped", ["backend", "frontend"]), check_mode=True,
                                                 runner=engine)
    assert engine.changes() == []
    assert result["changed"] is True and "after" not in result
    assert result["commands"] == ["docker compose -p app --project-directory /srv/app stop backend frontend"]
    assert result["msg"] == "Would stop backend, frontend."


def test_a_service_with_one_of_two_replicas_down_is_started():
    assert container_state.needs_change("started", ["running", "exited"])
    assert container_state.needs_change("stopped", ["running", "exited"])
    assert not container_state.needs_change("stopped", ["exited", "created"])
    assert container_state.needs_change("stopped", ["restarting"])


def test_a_compose_service_without_a_container_cannot_be_started():
    engine = Engine(services={"backend": None})
    with pytest.raises(RunbookError) as caught:
        container_state.run_container_state(params("started", ["backend"]), runner=engine)
    assert caught.value.details["cause"] == "no_container"
    assert "docker compose up -d" in str(caught.value)
    assert engine.changes() == []


def test_a_failed_stop_names_everything_that_ran_before_so_it_is_started_again():
    engine = Engine(services={"backend": "running", "frontend": "exited"}, containers={"worker": "running"},
                    fail=["stop", "worker"])
    with pytest.raises(RunbookError) as caught:
        container_state.run_container_state(params("stopped", ["backend", "frontend"], ["worker"]), runner=engine)
    assert caught.value.details["changed_compose_services"] == ["backend"]
    assert caught.value.details["changed_containers"] == ["worker"]
    assert "docker stop worker" in str(caught.value)


def test_nothing_named_is_refused():
    with pytest.raises(RunbookError) as caught:
        container_state.run_container_state(params("stopped"), runner=Engine())
    assert caught.value.details["cause"] == "no_targets"


def test_targets_are_looked_at_in_the_order_given():
    engine = Engine(containers={"worker": "running"})
    found = container_state.ContainerState(params("stopped", containers=["worker"]), runner=engine).observe()
    assert found == [("container", "worker", ["running"])]
    assert container_state.compose_service_states(["backend"], [{"Service": "other", "State": "running"}]) == {
        "backend": []}


def test_a_misspelt_compose_service_is_refused_with_the_project_s_services():
    engine = Engine(services={"backend": "running", "frontend": "running"})
    with pytest.raises(RunbookError) as caught:
        container_state.run_container_state(params("stopped", ["backend", "fronted"]), runner=engine)
    assert caught.value.details["cause"] == "unknown_service"
    assert "no service fronted; its services are backend, frontend" in str(caught.value)
    assert engine.changes() == []
