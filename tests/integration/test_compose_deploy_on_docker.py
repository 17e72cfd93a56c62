"""deploy.yml and rollback.yml around a compose application (runbook 004) on the private Docker engine.

The application is the harness's runbook-004-shaped compose project (backend with a healthcheck and a /health
that checks its dependencies, frontend, redis), whose backend and frontend run images built here, offline, in
three versions: v2 arrives as an archive (`docker load`, no registry) with a migration on the harness
PostgreSQL, so a pre-deploy backup is taken first (local and the test's S3 bucket); v3's backend answers
/health with 503, so it never turns healthy and the deployment rolls itself back to v2 without touching the
frontend. rollback.yml then returns to v1 leaving the migrated data alone, and restores the pre-deploy backup
only when asked (deploy_data_rollback).
"""
import json
import os
import sys
import time

import pytest
from conftest import BACKUP_PASSWORD, ansible_playbook, playbook_vars

from harness.docker import APP_IMAGE, BACKEND_SCRIPT, BUSYBOX_IMAGE
from harness.postgres import pg_bindir

BACKEND = "localhost/opsrb-deploy-backend"
FRONTEND = "localhost/opsrb-deploy-frontend"
BROKEN_BACKEND = r'''
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "unhealthy", "dependencies": {"database": {"status": "unhealthy"}}}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", int(os.environ["BACKEND_PORT"])), Handler).serve_forever()
'''


def build(engine, directory, tag, base, files, version):
    os.makedirs(directory, exist_ok=True)
    lines = ["FROM " + base, "LABEL org.opencontainers.image.version=" + version]
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as handle:
            handle.write(text)
        lines.append("COPY {0} /opt/app/{0}".format(name))
    with open(os.path.join(directory, "Dockerfile"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    engine.docker("build", "-q", "-t", tag, directory, timeout=120)
    return engine.docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


@pytest.fixture(scope="module")
def versions(docker_engine, tmp_path_factory):
    """{version: {"backend": id, "frontend": id, "archive": path}}; the `latest` tags name v1 at the end."""
    base = tmp_path_factory.mktemp("deploy-images")
    found = {}
    for version in ("v1", "v2", "v3"):
        script = BROKEN_BACKEND if version == "v3" else BACKEND_SCRIPT
        found[version] = {
            "backend": build(docker_engine, str(base / version / "backend"), "{0}:{1}".format(BACKEND, version),
                             APP_IMAGE, {"backend.py": script}, version),
            "frontend": build(docker_engine, str(base / version / "frontend"), "{0}:{1}".format(FRONTEND, version),
                              BUSYBOX_IMAGE, {"version": version + "\n"}, version)}
    for version in ("v2", "v3", "v1"):
        for repository in (BACKEND, FRONTEND):
            docker_engine.docker("tag", "{0}:{1}".format(repository, version), repository + ":latest")
        if version != "v1":
            archive = str(base / "{0}.tar".format(version))
            docker_engine.docker("save", "-o", archive, BACKEND + ":latest", FRONTEND + ":latest", timeout=120)
            found[version]["archive"] = archive
    return found


@pytest.fixture
def small_database(pg):
    """A small database of the test's own (one table): the backup and the restore stay quick. Dropped afterwards,
    with the copies a restore leaves."""
    name = "deploy_app"
    pg.execute('CREATE DATABASE "{0}"'.format(name))
    pg.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric); "
               "INSERT INTO orders SELECT i, i * 1.5 FROM generate_series(1, 1000) AS i", database=name)
    yield name
    for row in pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", params=(name + "%",)):
        pg.execute('DROP DATABASE "{0}" WITH (FORCE)'.format(row[0]))


def image_of(engine, reference):
    return engine.docker("image", "inspect", "--format", "{{.Id}}", reference).stdout.strip()


def service_state(app, service):
    document = json.loads(app.engine.docker("inspect", "--type", "container", app.container_id(service)).stdout)[0]
    return {"id": document["Id"], "image": document["Image"], "status": document["State"]["Status"],
            "health": (document["State"].get("Health") or {}).get("Status")}


def run_playbook(engine, name, extra, *flags):
    """deploy.yml / rollback.yml with the engine's environment; (CompletedProcess, JSON report)."""
    env = dict(engine.env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", PGPASSWORD=BACKUP_PASSWORD)
    started = time.monotonic()
    run = ansible_playbook(name, extra, *flags, env=env)
    print("{0} {1}: {2:.1f} s".format(name, " ".join(flags), time.monotonic() - started))
    try:
        return run, json.loads(run.stdout[run.stdout.index("{"):])
    except ValueError:
        pytest.fail("{0} printed no JSON (rc {1}): {2}{3}".format(name, run.returncode, run.stdout[-3000:],
                                                                  run.stderr[-2000:]))


def task_result(report, name):
    found = [task["hosts"]["localhost"] for play in report["plays"] for task in play["tasks"]
             if task["task"]["name"].split(" : ")[-1] == name and "localhost" in task["hosts"]]
    assert found, "task {0!r} did not run".format(name)
    return found[-1]


def records(directory, application):
    path = os.path.join(directory, application)
    found = []
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name)) as handle:
            found.append(json.load(handle))
    return found


def marker_exists(pg, database):
    return bool(pg.execute("SELECT to_regclass('public.deploy_marker') IS NOT NULL", database=database)[0][0])


def test_v1_to_v2_with_a_migration_v3_rolls_itself_back_and_rollback_restores_data_only_when_asked(
        pg, s3, bucket, options, small_database, docker_engine, compose_app_factory, versions, tmp_path):
    started = time.monotonic()
    database = small_database
    app = compose_app_factory(postgres_port=pg.port, services={
        "backend": {"image": BACKEND + ":latest", "command": ["python3", "/opt/app/backend.py"], "volumes": []},
        "frontend": {"image": FRONTEND + ":latest"}})
    assert service_state(app, "backend")["image"] == versions["v1"]["backend"]
    records_dir = str(tmp_path / "deploys")
    login = pg.conn_params(database)
    connection = dict(playbook_vars(options))
    connection.pop("pg_backup_databases")
    extra = dict(
        connection, deploy_hosts="localhost", deploy_method="compose", deploy_application="shop",
        deploy_records_dir=records_dir, docker_host=docker_engine.docker_host,
        docker_compose_command="docker compose", deploy_compose_project_dir=app.project_dir,
        deploy_compose_files=[app.compose_file], deploy_compose_project_name=app.project_name,
        deploy_compose_pull=False, deploy_compose_health_timeout=30, deploy_compose_poll_interval=0.5,
        deploy_compose_services=[{"name": "backend", "health_url": app.health_url},
                                 {"name": "frontend", "smoke_urls": [app.frontend_url], "smoke_command": [
                                     sys.executable, "-c", "import urllib.request; urllib.request.urlopen({0!r}, "
                                     "timeout=5)".format(app.frontend_url + "health")]}])
    migrate = dict(deploy_data_database=database, deploy_data_migrate_command=[
        os.path.join(pg_bindir(), "psql"), "-v", "ON_ERROR_STOP=1", "-h", login["login_host"], "-p",
        str(login["login_port"]), "-U", options["login_user"], "-d", database, "-c",
        "CREATE TABLE deploy_marker (version text); INSERT INTO deploy_marker VALUES ('v2')"])

    # Check mode: the plan, nothing changed, no record, no backup.
    before = {service: service_state(app, service) for service in ("backend", "frontend")}
    run, report = run_playbook(docker_engine, "deploy.yml", dict(extra, **migrate, deploy_compose_release="v2",
                                                                 deploy_compose_image_archives=[
                                                                     versions["v2"]["archive"]]), "--check")
    assert run.returncode == 0, run.stdout[-4000:]
    plan = task_result(report, "Show the plan")["msg"]
    assert any("Load images from" in line for line in plan) and any("migration" in line for line in plan), plan
    assert {service: service_state(app, service) for service in ("backend", "frontend")} == before
    assert not os.path.exists(os.path.join(records_dir, "shop"))
    assert not marker_exists(pg, database)
    assert not s3.client().list_objects_v2(Bucket=bucket).get("Contents")

    # v1 -> v2 from an archive, with a migration: the pre-deploy backup first.
    run, report = run_playbook(docker_engine, "deploy.yml", dict(extra, **migrate, deploy_compose_release="v2",
                                                                 deploy_compose_image_archives=[
                                                                     versions["v2"]["archive"]]))
    assert run.returncode == 0, json.dumps(report)[-6000:]
    v2 = {service: service_state(app, service) for service in ("backend", "frontend")}
    assert {s: v2[s]["image"] for s in v2} == {s: versions["v2"][s] for s in v2}
    assert v2["backend"]["health"] == "healthy"
    assert marker_exists(pg, database)
    [deployed] = records(records_dir, "shop")
    assert deployed["outcome"] == "deployed" and deployed["to"]["release"] == "v2"
    assert deployed["from"]["images"]["backend"] == versions["v1"]["backend"]
    assert [g["status"] for g in deployed["gates"]] == ["pass"] * len(deployed["gates"])
    assert {"deploy:backend:container", "deploy:backend:health_url", "deploy:frontend:container",
            "deploy:frontend:smoke1", "deploy:frontend:smoke_command", "migrate"} <= {g["name"] for g in deployed["gates"]}
    backup_id = deployed["data_backup"]["backup_id"]
    assert backup_id and deployed["data_backup"]["database"] == database
    keys = [item["Key"] for item in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    [manifest_key] = [key for key in keys if key.endswith(backup_id + "/manifest.json")]
    manifest = json.loads(s3.client().get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["kind"] == "pre-deploy"
    assert manifest["labels"] == {"application": "shop", "deploy_id": deployed["id"], "release": "v2"}
    # The images v1 ran are kept from pruning by a tag naming the deployment.
    assert image_of(docker_engine, "{0}:keep-{1}".format(BACKEND, deployed["id"])) == versions["v1"]["backend"]

    # v3: its backend never turns healthy; v2 is back by itself, the frontend's container untouched.
    run, report = run_playbook(docker_engine, "deploy.yml", dict(extra, deploy_compose_release="v3",
                                                                 deploy_compose_image_archives=[
                                                                     versions["v3"]["archive"]]))
    assert run.returncode != 0
    failed = task_result(report, "Deploy the new images, one service at a time, gated by health")
    assert failed["failed"] and failed["failed_service"] == "backend" and failed["failed_gate"] == "container"
    assert "backend's container gate" in failed["msg"] and "previous images are back" in failed["msg"], failed["msg"]
    after = {service: service_state(app, service) for service in ("backend", "frontend")}
    assert after["backend"]["image"] == versions["v2"]["backend"] and after["backend"]["health"] == "healthy"
    assert after["backend"]["id"] != v2["backend"]["id"]
    assert after["frontend"] == v2["frontend"]
    # No later `up` can start v3 by mistake: the compose file's references name v2 again.
    assert image_of(docker_engine, BACKEND + ":latest") == versions["v2"]["backend"]
    assert image_of(docker_engine, FRONTEND + ":latest") == versions["v2"]["frontend"]
    rolled = records(records_dir, "shop")[-1]
    assert rolled["outcome"] == "rolled_back" and rolled["to"]["release"] == "v3"
    gates = {g["name"]: g for g in rolled["gates"]}
    assert gates["deploy:backend:container"]["status"] == "fail"
    assert "unhealthy" in gates["deploy:backend:container"]["message"]
    assert gates["restore:backend:container"]["status"] == "pass"
    assert gates["restore:backend:health_url"]["status"] == "pass"
    assert not any(name.startswith("deploy:frontend") for name in gates)
    assert marker_exists(pg, database)

    # rollback.yml: back past the v2 deployment to v1; the migrated data stays without the opt-in.
    run, report = run_playbook(docker_engine, "rollback.yml", extra)
    assert run.returncode == 0, json.dumps(report)[-6000:]
    plan = task_result(report, "Show the plan")["msg"]
    assert "Data: left as it is (a code rollback never touches data); the pre-deploy backup {0}".format(
        backup_id) in plan[-1]
    assert {s: service_state(app, s)["image"] for s in ("backend", "frontend")} == {
        s: versions["v1"][s] for s in ("backend", "frontend")}
    assert service_state(app, "backend")["health"] == "healthy"
    assert marker_exists(pg, database)
    code_only = records(records_dir, "shop")[-1]
    assert code_only["operation"] == "rollback" and code_only["rollback_of"] == deployed["id"]
    assert code_only["outcome"] == "deployed" and not code_only["data_restore"]

    # With the opt-in, naming the v2 deployment: exactly its pre-deploy set comes back.
    run, report = run_playbook(docker_engine, "rollback.yml", dict(
        extra, deploy_data_rollback=True, deploy_compose_rollback_record=deployed["id"],
        pg_restore_settle_seconds=2, pg_restore_service_timeout=30))
    assert run.returncode == 0, json.dumps(report)[-6000:]
    assert task_result(report, "Restore the backup")["backup_id"] == backup_id
    assert not marker_exists(pg, database)
    assert pg.execute("SELECT count(*) FROM orders", database=database)[0][0] == 1000
    assert service_state(app, "backend")["health"] == "healthy"
    with_data = records(records_dir, "shop")[-1]
    assert with_data["data_restore"]["backup_id"] == backup_id and with_data["outcome"] == "deployed"
    print("compose deploy scenario: {0:.1f} s".format(time.monotonic() - started))
