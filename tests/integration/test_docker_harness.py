"""The private Docker engine and the compose application every container test stands on."""
import os
import signal

import pytest
from conftest import eventually

from harness.docker import APP_IMAGE, BUSYBOX_IMAGE, DockerEngine
from harness.ports import wait_for_port


def test_engine_answers_on_its_own_socket(docker_engine):
    version = docker_engine.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    assert version.startswith("20.10")
    assert docker_engine.docker_host == "unix://" + docker_engine.socket
    assert docker_engine.env["DOCKER_HOST"] == docker_engine.docker_host
    info = docker_engine.docker("info", "--format", "{{.DockerRootDir}} {{.Driver}} {{.CgroupDriver}}").stdout
    assert info.split() == [docker_engine.data_root, "overlay2", "cgroupfs"]


def test_both_images_are_loaded_and_run(docker_engine):
    for image in (BUSYBOX_IMAGE, APP_IMAGE):
        assert docker_engine.docker("image", "inspect", image).returncode == 0
    busybox = docker_engine.docker("run", "--rm", "--network", "host", BUSYBOX_IMAGE,
                                   "sh", "-c", "which httpd nc wget dd sleep")
    assert len(busybox.stdout.split()) == 5
    app = docker_engine.docker("run", "--rm", "--network", "host", APP_IMAGE,
                               "sh", "-c", "python3 --version && redis-server --version")
    assert "Python 3.11" in app.stdout and "Redis server" in app.stdout


def test_compose_is_v2_and_the_docker_plugin(docker_engine):
    result = docker_engine.docker("compose", "version", "--short")
    assert int(result.stdout.strip().lstrip("v").split(".")[0]) >= 2


def test_compose_app_is_healthy_until_redis_stops(compose_app):
    status, document = compose_app.health()
    assert status == 200, document
    assert document["status"] == "healthy"
    assert document["dependencies"]["redis"]["status"] == "healthy"
    assert document["dependencies"]["postgres"]["status"] == "skipped"
    assert wait_for_port(compose_app.frontend_port, 1)
    states = compose_app.compose("ps", "--format", "{{.Service}} {{.State}} {{.Health}}").stdout
    assert sorted(states.splitlines()) == ["backend running healthy", "frontend running healthy",
                                           "redis running healthy"]
    backend_id = compose_app.container_id("backend")
    assert docker_engine_inspect(compose_app, backend_id, "{{.HostConfig.NetworkMode}} {{.HostConfig.Init}}") == \
        "host true"

    compose_app.compose("stop", "redis")

    status, document = compose_app.health()
    assert status == 503, document
    assert document["status"] == "unhealthy"
    assert document["dependencies"]["redis"]["status"] == "unhealthy"
    assert eventually(lambda: docker_engine_inspect(compose_app, backend_id, "{{.State.Health.Status}}")
                      == "unhealthy", timeout=10)


def test_compose_app_checks_postgres_when_given_a_port(compose_app_factory, health_primary):
    app = compose_app_factory(postgres_port=health_primary.port)
    status, document = app.health()
    assert status == 200, document
    assert document["dependencies"]["postgres"] == dict(document["dependencies"]["postgres"], status="healthy",
                                                        port=health_primary.port)


def test_a_backend_that_dies_is_reported_with_its_exit_code(compose_app_factory):
    app = compose_app_factory(backend_command=["sh", "-c", "echo dying >&2; sleep 1; exit 3"], wait=False)
    backend_id = app.container_id("backend")
    assert eventually(lambda: docker_engine_inspect(app, backend_id, "{{.State.Status}} {{.State.ExitCode}}")
                      == "exited 3", timeout=15)
    assert "dying" in app.compose("logs", "--no-color", "backend").stdout


@pytest.mark.parametrize("crashed", [False, True], ids=["stopped", "after-sigkill"])
def test_a_stopped_engine_leaves_nothing_behind(crashed):
    engine = DockerEngine().start().load_images([BUSYBOX_IMAGE])
    container = engine.docker("run", "--detach", "--init", "--network", "host", BUSYBOX_IMAGE,
                              "sleep", "300").stdout.strip()
    sleeper = int(engine.docker("inspect", "--format", "{{.State.Pid}}", container).stdout)
    assert engine.cgroup_dirs()
    work_dir, dockerd = engine.work_dir, engine.pid
    if crashed:
        # dockerd gone without stopping its containers: stop() must still end them and clean up.
        os.kill(dockerd, signal.SIGKILL)
    engine.stop()
    assert not os.path.exists(work_dir)
    assert not os.path.exists("/proc/{}".format(dockerd))
    assert not os.path.exists("/proc/{}".format(sleeper))
    assert engine.cgroup_dirs() == []
    with open("/proc/self/mounts") as mounts:
        assert work_dir not in mounts.read()


def docker_engine_inspect(app, container, template):
    return app.engine.docker("inspect", "--format", template, container).stdout.strip()
