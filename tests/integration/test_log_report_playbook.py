"""logs.yml against real sources: nginx and PostgreSQL log files, a big file, a container and a compose service.

The files are written in a temp dir as nginx (error log, local time) and PostgreSQL (default
log_line_prefix `%m [%p] `, UTC) write them; one file is 3 GiB with a sparse start and 4 MB of old
lines before the last hour's, so only reading from the end finishes in time. The container and the
compose service run on the private dockerd (tests/harness/docker.py) and write error lines to
stdout and stderr. The playbook runs through ansible-playbook on localhost, as an operator would.
"""
import json
import os
import time

import pytest
from harness.docker import BUSYBOX_IMAGE

from conftest import ansible_playbook

SECRET = "hunter2-" + str(os.getpid())
SPARSE_BYTES = 3 * 1024 ** 3


def local(moment):
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(moment))


def utc(moment):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment)) + ".123 UTC"


@pytest.fixture
def log_files(tmp_path):
    now = time.time()
    nginx = tmp_path / "nginx" / "error.log"
    nginx.parent.mkdir()
    nginx.write_text(
        "{0} [error] 811#811: *1 connect() failed (111: Connection refused) while connecting to upstream\n"
        "{1} [notice] 811#811: signal process started\n"
        "{2} [error] 811#811: *9 upstream timed out (110: Connection timed out), upstream: "
        "\"http://127.0.0.1:3000/api?password={3}\"\n"
        "{4} [crit] 811#811: *12 SSL_do_handshake() failed\n".format(
            local(now - 7200), local(now - 1800), local(now - 1200), SECRET, local(now - 60)))
    postgres = tmp_path / "postgresql" / "postgresql-15-main.log"
    postgres.parent.mkdir()
    postgres.write_text(
        "{0} [811] FATAL:  the database system is starting up\n"
        "{1} [811] LOG:  checkpoint starting: time\n"
        "{2} [901] bmi@bmidb ERROR:  duplicate key value violates unique constraint \"users_pkey\"\n"
        "{2} [901] bmi@bmidb DETAIL:  Key (id)=(7) already exists.\n"
        "{3} [811] LOG:  checkpoint complete\n".format(utc(now - 86400), utc(now - 900), utc(now - 600), utc(now - 30)))
    big = tmp_path / "app" / "big.log"
    big.parent.mkdir()
    with open(big, "wb") as handle:
        handle.truncate(SPARSE_BYTES)  # a hole: reading it whole would read 3 GiB of zeros
        handle.seek(SPARSE_BYTES)
        old = "".join("{0} [info] old line {1} {2}\n".format(local(now - 7200 + index / 100.0), index, "z" * 60)
                      for index in range(50000))
        handle.write(old.encode())
        recent = "".join("{0} [{1}] recent line {2}\n".format(local(now - 600 + index), "error" if index % 50 == 0
                                                              else "info", index) for index in range(500))
        handle.write(recent.encode())
    assert os.path.getsize(big) > SPARSE_BYTES + 4 * 1024 * 1024
    return {"nginx": str(nginx), "postgres": str(tmp_path / "postgresql" / "*.log"), "big": str(big),
            "postgres_file": str(postgres), "missing": str(tmp_path / "nginx" / "access.log")}


@pytest.fixture
def noisy_container(docker_engine):
    name = "opsrb-logs-" + str(os.getpid())
    docker_engine.docker("run", "-d", "--name", name, "--network", "host", BUSYBOX_IMAGE, "sh", "-c",
                         "echo started; echo 'ERROR: lost the database, DATABASE_URL=postgresql://bmi:{0}@db/bmi' >&2;"
                         " echo 'GET /health 200'; exec sleep 300".format(SECRET))
    yield name
    docker_engine.docker("rm", "-f", name, check=False)


@pytest.fixture
def worker_app(compose_app_factory):
    """A compose project of one busybox worker that logs a FATAL line and stays up."""
    worker = {"image": BUSYBOX_IMAGE, "network_mode": "host", "init": True,
              "command": ["sh", "-c", "echo 'worker started'; echo 'FATAL: queue lost'; exec sleep 300"]}
    return compose_app_factory(services={"backend": None, "frontend": None, "redis": None, "worker": worker})


def wait_for_logs(engine, container, text):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run = engine.docker("logs", container, check=False)
        if text in run.stdout + run.stderr:
            return
        time.sleep(0.1)
    raise AssertionError("{0} never logged {1!r}".format(container, text))


def test_logs_playbook_reports_every_source_errors_first(docker_engine, log_files, noisy_container, worker_app,
                                                         tmp_path, monkeypatch):
    wait_for_logs(docker_engine, noisy_container, "GET /health")
    wait_for_logs(docker_engine, worker_app.container_id("worker"), "FATAL")
    for name, value in docker_engine.env.items():
        monkeypatch.setenv(name, value)
    report_dir = tmp_path / "reports"
    variables = {
        "logs_hosts": "localhost", "logs_become": False, "logs_since": "1h", "logs_lines": 5,
        "logs_files": [log_files["nginx"], log_files["postgres"], log_files["big"], log_files["missing"]],
        "logs_containers": [noisy_container, "opsrb-no-such-container"],
        "logs_compose_services": ["worker"], "logs_compose_project_dir": worker_app.project_dir,
        "logs_compose_project_name": worker_app.project_name,
        "docker_host": docker_engine.docker_host, "docker_compose_command": "docker compose",
        "logs_report_dir": str(report_dir),
    }
    started = time.monotonic()
    run = ansible_playbook("logs.yml", variables)
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    # The missing file and container fail the host (logs_fail_on: fail), after the report is shown.
    assert run.returncode == 2, output
    assert "Logs of localhost: FAIL - 7 sources since" in run.stdout
    assert SECRET not in output
    assert elapsed < 25, "the 3 GiB file must be read from its end ({0:.1f} s)".format(elapsed)

    document = json.loads((report_dir / "logs-localhost.json").read_text())
    checks = {check["name"]: check for check in document["checks"]}
    assert list(checks) == [log_files["nginx"], log_files["postgres_file"], log_files["big"], log_files["missing"],
                            noisy_container, "opsrb-no-such-container", "worker"]
    assert document["status"] == "fail" and document["counts"] == {"pass": 0, "warn": 5, "fail": 2}

    nginx = checks[log_files["nginx"]]
    assert (nginx["kind"], nginx["status"], nginx["error_count"], nginx["line_count"]) == ("file", "warn", 2, 3)
    assert "upstream timed out" in nginx["first_error"] and "password=********" in nginx["first_error"]
    assert "[crit]" in nginx["last_error"]

    postgres = checks[log_files["postgres_file"]]
    assert (postgres["error_count"], postgres["line_count"]) == (1, 4)  # yesterday's FATAL is before since
    assert postgres["lines"][-2].endswith("DETAIL:  Key (id)=(7) already exists.")

    big = checks[log_files["big"]]
    assert (big["error_count"], big["line_count"], big["complete"], big["timed"]) == (10, 500, True, True)
    assert big["lines"][-1].endswith("recent line 499")

    container = checks[noisy_container]
    assert (container["kind"], container["error_count"], container["line_count"]) == ("container", 1, 3)
    assert "postgresql://bmi:********@db/bmi" in container["first_error"]

    worker = checks["worker"]
    assert (worker["kind"], worker["status"], worker["error_count"]) == ("compose_service", "warn", 1)
    assert worker["last_error"].endswith("FATAL: queue lost")

    for name, words in ((log_files["missing"], "No such file or directory"),
                        ("opsrb-no-such-container", "No such container")):
        assert checks[name]["status"] == "fail" and checks[name]["unchecked"]
        assert checks[name]["output"].startswith("Could not read ") and words in checks[name]["output"]

    text = (report_dir / "logs-localhost.txt").read_text().splitlines()
    statuses = [line.split("]")[0] + "]" for line in text if line.startswith("[")]
    assert statuses == ["[FAIL]"] * 2 + ["[WARN]"] * 5  # errors first
    assert text[2].startswith("[FAIL] Could not read")
    assert "error lines in 500 lines" in "\n".join(text)


def test_check_mode_reads_the_same_and_writes_no_report(log_files, tmp_path):
    report_dir = tmp_path / "reports"
    run = ansible_playbook("logs.yml", {"logs_hosts": "localhost", "logs_become": False, "logs_since": "1h",
                                        "logs_files": [log_files["nginx"]], "logs_report_dir": str(report_dir)},
                           "--check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Logs of localhost: WARN - 1 source since" in run.stdout
    assert "2 error lines in 3 lines" in run.stdout
    assert not (report_dir / "logs-localhost.json").exists()


def test_a_group_missing_from_the_inventory_fails_the_run(log_files):
    run = ansible_playbook("logs.yml", {"logs_files": [log_files["nginx"]]})
    assert run.returncode != 0
    assert "matches 'app_servers'" in run.stdout and "-e logs_hosts=PATTERN" in run.stdout
