"""restore.yml around a compose application (runbook 004's "Database Recovery") on the private Docker engine.

The application is the harness's runbook-004-shaped compose project; its backend's /health checks the
real harness PostgreSQL by TCP, which the restore replaces a database of, from a real backup in the real
S3 store (SeaweedFS). The order is proven from the containers' own clocks (State.FinishedAt of the stop,
State.StartedAt of the start) against the restore task's start and end, as ansible.posix.json reports them.
"""
import datetime
import json
import os
import re
import uuid

import pytest
from conftest import ansible_playbook, playbook_vars

from harness.docker import BUSYBOX_IMAGE

from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup

SERVICES = ["backend", "frontend"]


def moment(text):
    """A UTC datetime from Docker's RFC 3339 (nanoseconds) or Ansible's ISO 8601 time."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00"))
    return datetime.datetime.fromisoformat(text)


def container_state(app, service=None, container=None):
    """The state of a compose service's container, or of a plain container."""
    name = container or app.container_id(service)
    document = json.loads(app.engine.docker("inspect", "--type", "container", name).stdout)[0]
    return {"id": document["Id"], "status": document["State"]["Status"],
            "health": (document["State"].get("Health") or {}).get("Status"),
            "started": moment(document["State"]["StartedAt"]), "finished": moment(document["State"]["FinishedAt"])}


def restore(engine, extra, *flags):
    """restore.yml with the engine's environment (DOCKER_CONFIG holds the compose plugin), and its report as JSON."""
    run = ansible_playbook("restore.yml", extra, *flags,
                           env=dict(engine.env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
    try:
        return run, json.loads(run.stdout[run.stdout.index("{"):])
    except ValueError:
        pytest.fail("restore.yml printed no JSON (rc {0}): {1}{2}".format(
            run.returncode, run.stdout[-3000:], run.stderr[-2000:]))


def task_results(report, name):
    """[(result, duration)] of every run of the task called `name` on localhost."""
    return [(task["hosts"]["localhost"], task["task"]["duration"])
            for play in report["plays"] for task in play["tasks"]
            # A role's task is named "ROLE : NAME".
            if task["task"]["name"].split(" : ")[-1] == name and "localhost" in task["hosts"]]


def only(report, name):
    found = task_results(report, name)
    assert len(found) == 1, "task {0!r} ran {1} times".format(name, len(found))
    return found[0]


@pytest.fixture
def worker(docker_engine):
    """A plain container (not of the compose project) of the application, running."""
    name = "opsrb-worker-" + uuid.uuid4().hex[:8]
    docker_engine.docker("run", "-d", "--name", name, "--init", "--network", "host", BUSYBOX_IMAGE, "sleep", "600")
    yield name
    docker_engine.docker("rm", "--force", name, check=False)


@pytest.fixture
def app_restore(pg, options, scratch, docker_engine, compose_app_factory):
    """A compose app whose backend depends on the real PostgreSQL, a backed-up database, and restore.yml's variables."""
    source = scratch("src_compose")
    backup = run_backup(dict(options, database=source))
    pg.execute("DELETE FROM measurements", database=source)
    app = compose_app_factory(postgres_port=pg.port)
    extra = dict(playbook_vars(options), pg_restore_database=source, pg_restore_overwrite=True,
                 docker_host=docker_engine.docker_host, docker_compose_command="docker compose",
                 pg_restore_compose_services=SERVICES, pg_restore_compose_project_dir=app.project_dir,
                 pg_restore_compose_files=[app.compose_file], pg_restore_compose_project_name=app.project_name,
                 pg_restore_app_health_url=app.health_url, pg_restore_service_timeout=30,
                 pg_restore_settle_seconds=2)
    return source, backup, app, extra


def test_check_mode_plans_the_stop_and_touches_nothing_then_the_restore_stops_and_proves_the_backend(
        pg, docker_engine, app_restore, worker):
    source, backup, app, extra = app_restore
    extra = dict(extra, pg_restore_containers=[worker])
    before = {service: container_state(app, service) for service in SERVICES}
    before[worker] = container_state(app, container=worker)

    planned, report = restore(docker_engine, extra, "--check")
    assert planned.returncode == 0, planned.stdout[-3000:]
    plan, _plan_task = only(report, "Show the plan")
    assert "Compose services and containers stopped during the restore and started again: backend, frontend, " \
        + worker in " ".join(plan["msg"])
    stop, _task = only(report, "Stop the application's compose services and containers")
    assert stop["msg"] == "Would stop backend, frontend, {0}.".format(worker)
    assert stop["commands"][0].endswith("stop backend frontend") and stop["commands"][1].endswith("stop " + worker)
    assert {service: container_state(app, service) for service in SERVICES} == {
        service: before[service] for service in SERVICES}
    assert container_state(app, container=worker) == before[worker]
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 0

    restored, report = restore(docker_engine, extra)
    assert restored.returncode == 0, json.dumps(report)[-4000:]
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 5000
    result, duration = only(report, "Restore the backup")
    assert result["backup_id"] == backup["backup_id"]
    restore_started, restore_ended = moment(duration["start"]), moment(duration["end"])
    for service in SERVICES + [worker]:
        after = container_state(app, container=worker) if service == worker else container_state(app, service)
        # The same container, stopped before the restore began and started after it ended.
        assert after["id"] == before[service]["id"] and after["status"] == "running"
        assert before[service]["started"] < after["finished"] < restore_started, service
        assert after["started"] > restore_ended, service
    assert container_state(app, "backend")["health"] == "healthy"

    verified = task_results(report, "Verify the application's compose services stay up and healthy")
    assert [item["status"] for item in verified[0][0]["results"]] == ["pass", "pass"]
    verified = task_results(report, "Verify the application's containers stay up and healthy")
    assert [(item["target"], item["status"]) for item in verified[0][0]["results"]] == [
        ("container " + worker, "pass")]
    health, _task = only(report, "Check that the application answers healthy, with its dependencies")
    assert health["status"] == "pass"
    dependency = [check for check in health["checks"] if check["name"] == "application:dependency:postgres"]
    assert [check["status"] for check in dependency] == ["pass"]


def test_a_restore_that_fails_after_the_stop_starts_the_backend_again(pg, docker_engine, app_restore, tmp_path):
    source, _backup, app, extra = app_restore
    before = container_state(app, "backend")
    # The safety backup of the database being replaced cannot be written: the restore fails after the
    # application was stopped, before the database is touched.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    extra = dict(extra, pg_restore_backup_dir=os.path.join(str(blocker), "backups"),
                 pg_restore_compose_services=["backend"])

    failed, report = restore(docker_engine, extra)
    assert failed.returncode != 0
    result, duration = only(report, "Restore the backup")
    assert result.get("failed") and "before the restore failed" in result["msg"]
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 0

    after = container_state(app, "backend")
    assert after["id"] == before["id"] and after["status"] == "running" and after["health"] == "healthy"
    assert before["started"] < after["finished"] < moment(duration["start"])
    assert after["started"] > moment(duration["end"])
    started, _task = only(report, "Start the application's compose services and containers again")
    assert started["changed_compose_services"] == ["backend"]
    health, _task = only(report, "Check that the application answers healthy, with its dependencies")
    assert health["status"] == "pass"
