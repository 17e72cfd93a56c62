"""The Docker connection helper: which engine it aims at, and how it turns failures into advice.

Pure logic with a fake runner; the real engine is exercised by the container integration tests.
"""
import pytest

from ansible_collections.ops.runbook.plugins.module_utils import docker
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


class Runner:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, timeout=None, env=None):
        self.calls.append((argv, env))
        for prefix, (rc, out, err) in self.answers:
            if argv[:len(prefix)] == prefix:
                return Result(argv, rc, out, err)
        raise AssertionError("unexpected command {0}".format(argv))


def test_docker_host_goes_to_the_environment_of_every_command():
    runner = Runner([(["docker", "version"], (0, "20.10.24\n", ""))])
    engine = docker.Docker({"docker_host": "unix:///srv/d.sock"}, runner=runner)
    assert engine.server_version() == "20.10.24"
    assert runner.calls[0][1] == {"DOCKER_HOST": "unix:///srv/d.sock"}


def test_no_docker_host_leaves_the_environment_alone():
    runner = Runner([(["sudo", "docker", "ps"], (0, "", ""))])
    docker.Docker({"docker_command": "sudo docker"}, runner=runner).docker("ps")
    assert runner.calls[0][1] is None


@pytest.mark.parametrize("stderr, cause", [
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
     "docker_unreachable"),
    ("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
     "docker_permission"),
    ("Error: No such container: backend", "no_such_container"),
    ("something else broke", "docker_command"),
])
def test_failures_name_their_cause(stderr, cause):
    runner = Runner([(["docker"], (1, "", stderr))])
    with pytest.raises(RunbookError) as caught:
        docker.Docker(runner=runner).docker("inspect", "backend")
    assert caught.value.details["cause"] == cause
    assert "docker inspect backend" in str(caught.value)


@pytest.mark.parametrize("text, major", [("2.40.3", 2), ("v2.24.6", 2), ("5.6.1", 5), ("1.29.2", 1), ("", None),
                                         ("Usage: docker-compose", None)])
def test_compose_major(text, major):
    assert docker.compose_major(text) == major


def test_compose_v1_is_refused_with_what_to_install():
    runner = Runner([(["docker-compose", "version"], (0, "1.29.2\n", ""))])
    engine = docker.Docker({"compose_command": "docker-compose"}, runner=runner)
    with pytest.raises(RunbookError) as caught:
        engine.compose_project_argv("/opt/app")
    assert caught.value.details["cause"] == "compose_v1"
    assert "v1 (1.29.2) is not supported" in str(caught.value)
    assert "docker compose" in caught.value.hint


def test_a_missing_compose_plugin_is_its_own_error():
    runner = Runner([(["docker", "compose"], (1, "", "docker: 'compose' is not a docker command."))])
    with pytest.raises(RunbookError) as caught:
        docker.Docker(runner=runner).compose_project_argv()
    assert caught.value.details["cause"] == "compose_missing"


def test_compose_v2_project_options_and_version_asked_once():
    runner = Runner([(["docker", "compose", "version"], (0, "2.40.3\n", ""))])
    engine = docker.Docker(runner=runner)
    argv = engine.compose_project_argv("/opt/app", ["/opt/app/prod.yml"], "formula")
    assert argv == ["docker", "compose", "-f", "/opt/app/prod.yml", "-p", "formula", "--project-directory", "/opt/app"]
    engine.compose_project_argv("/opt/app")
    assert len(runner.calls) == 1


def test_inspect_of_nothing_runs_nothing():
    runner = Runner([])
    assert docker.Docker(runner=runner).inspect([None, ""]) == []


def test_compose_project_params_select_one_project():
    params = {"compose_project_dir": "/opt/app", "compose_files": ["/opt/app/prod.yml"], "compose_project_name": "app"}
    expected = {"project_dir": "/opt/app", "files": ["/opt/app/prod.yml"], "project_name": "app"}
    assert docker.compose_project_params(params) == expected
    names = {"compose_project_dir", "compose_files", "compose_project_name"}
    assert set(docker.compose_project_argument_spec()) == names
