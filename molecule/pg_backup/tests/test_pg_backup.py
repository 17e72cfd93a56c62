"""The pg_backup role's host, checked from outside, then its scheduled job run once for real.

The backup set is checked against the contract in docs/architecture.md: the
layout `<backup_dir>/<database>/<backup_id>/` and the manifest's `database`,
`backup_id`, `files` ({name, size, sha256}), `tables`, `format`, `compression`.
"""
import glob
import hashlib
import json
import os

import pytest
import testinfra.utils.ansible_runner

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

DATABASE = "bmidb"
BACKUP_DIR = "/var/backups/postgresql"
CONFIG = "/etc/ops-runbook/pg_backup.json"
CREDENTIALS = "/etc/ops-runbook/pg_backup.credentials.json"
LOG = "/var/log/ops-runbook/pg_backup.log"
SERVICE = "ops-runbook-pg-backup.service"
TIMER = "ops-runbook-pg-backup.timer"
VERIFY_SERVICE = "ops-runbook-pg-verify.service"
VERIFY_TIMER = "ops-runbook-pg-verify.timer"
CONFIG_FILES = ["/etc/nginx/sites-available/bmi-health-tracker", "/etc/hostname"]


def psql(host, sql, database=DATABASE):
    return host.check_output("runuser -u postgres -- psql -XtA -d %s -c %s", database, sql)


def backup_sets(host):
    listing = host.run("ls -1 %s", "{}/{}".format(BACKUP_DIR, DATABASE))
    return sorted(name for name in listing.stdout.split() if not name.startswith("."))


ENGINE_DIR = "/usr/local/lib/ops-runbook/ops_runbook_utils"  # the runbook_engine role's install
MODULE_UTILS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "module_utils")


def test_runbook_engine_installed_the_collection_engine_exactly(host):
    """The runbook_engine role (imported by pg_backup) installs every module_utils file as is, and nothing else."""
    expected = {}
    for path in glob.glob(os.path.join(MODULE_UTILS, "*.py")):
        if not path.endswith("__init__.py"):
            with open(path, "rb") as handle:
                expected[os.path.basename(path)] = hashlib.sha256(handle.read()).hexdigest()
    installed = host.check_output("cd %s && sha256sum *.py", ENGINE_DIR).splitlines()
    found = dict((line.split()[1], line.split()[0]) for line in installed)
    found.pop("__init__.py", None)
    assert found == expected
    for name in expected:
        engine_file = host.file("{}/{}".format(ENGINE_DIR, name))
        assert (engine_file.user, engine_file.mode) == ("root", 0o644)


@pytest.mark.parametrize("package", ["postgresql-client", "python3-psycopg2", "python3-boto3", "zstd", "gzip"])
def test_package_installed(host, package):
    assert host.package(package).is_installed


def test_timer_enabled_and_active(host):
    timer = host.service(TIMER)
    assert timer.is_enabled
    assert timer.is_running
    assert "02:00:00" in host.check_output("systemctl show -p TimersCalendar --value %s", TIMER)


def test_weekly_verification_timer_enabled_and_active(host):
    timer = host.service(VERIFY_TIMER)
    assert timer.is_enabled
    assert timer.is_running
    assert "Sun *-*-* 04:00:00" in host.check_output("systemctl show -p TimersCalendar --value %s", VERIFY_TIMER)
    unit = host.file("/etc/systemd/system/" + VERIFY_SERVICE).content_string
    assert "ExecStart=/usr/local/bin/ops-runbook-pg-backup --verify --config {} --credentials {}".format(
        CONFIG, CREDENTIALS) in unit


def test_units_pass_systemd_verification(host):
    host.run_expect([0], "systemd-analyze verify /etc/systemd/system/%s /etc/systemd/system/%s "
                    "/etc/systemd/system/%s /etc/systemd/system/%s", SERVICE, TIMER, VERIFY_SERVICE, VERIFY_TIMER)


def test_service_runs_as_backup_user_and_logs_to_file(host):
    show = host.check_output("systemctl show -p Type -p User -p IOSchedulingClass %s", SERVICE)
    assert "Type=oneshot" in show
    assert "User=postgres" in show
    assert "IOSchedulingClass=3" in show
    # systemctl show drops the file name of append: outputs, so read the unit itself.
    unit = host.file("/etc/systemd/system/" + SERVICE).content_string.splitlines()
    assert "StandardOutput=append:" + LOG in unit
    assert "StandardError=append:" + LOG in unit
    assert any(line.startswith("ExecStart=/usr/local/bin/ops-runbook-pg-backup --config {} --credentials {}".format(
        CONFIG, CREDENTIALS)) for line in unit)


def test_config_file(host):
    config = host.file(CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "postgres", 0o640)
    jobs = json.loads(config.content_string)["jobs"]
    assert [job["database"] for job in jobs] == [DATABASE]
    job = jobs[0]
    assert job["globals"] is True
    assert job["config_files"] == CONFIG_FILES
    assert job["backup_dir"] == BACKUP_DIR
    assert (job["format"], job["compression"], job["keep_days"]) == ("custom", "zstd", 7)
    assert None not in job.values()
    assert not {"login_password", "aws_secret_key", "aws_session_token", "aws_access_key"} & set(job)
    verify = json.loads(config.content_string)["verify"]
    assert (verify["max_age_hours"], verify["restore_test"]) == (26, True)


def test_credentials_file(host):
    credentials = host.file(CREDENTIALS)
    assert (credentials.user, credentials.group, credentials.mode) == ("postgres", "postgres", 0o600)
    assert json.loads(credentials.content_string) == {}


def test_engine_and_command_installed(host):
    engine = host.file("/usr/local/lib/ops-runbook/ops_runbook_utils")
    assert engine.is_directory
    assert {"__init__.py", "pg_backup_cli.py", "pg_backup.py"} <= set(engine.listdir())
    command = host.file("/usr/local/bin/ops-runbook-pg-backup")
    assert (command.user, command.mode) == ("root", 0o755)


def test_backup_dir_and_log(host):
    backup_dir = host.file(BACKUP_DIR)
    assert (backup_dir.user, backup_dir.group, backup_dir.mode) == ("postgres", "postgres", 0o750)
    log = host.file(LOG)
    assert (log.user, log.group, log.mode) == ("postgres", "postgres", 0o640)
    log_dir = host.file(os.path.dirname(LOG))
    assert (log_dir.user, log_dir.group, log_dir.mode) == ("root", "postgres", 0o750)
    assert host.file("/etc/logrotate.d/ops-runbook-pg-backup").contains("create 0640 postgres postgres")


def test_jobs_give_the_backups_to_the_group(host):
    """pg_backup_group is each job's backup_group: sets are 0640/0750 with that group, whatever the umask."""
    jobs = json.loads(host.file(CONFIG).content_string)["jobs"]
    assert {job["backup_group"] for job in jobs} == {"postgres"}


def test_role_refuses_an_out_of_range_option_before_replacing_the_config(host):
    """The template's validation is the engine's normalize: an invalid level never reaches the schedule."""
    bad = json.loads(host.file(CONFIG).content_string)
    bad["jobs"][0]["compression_level"] = 99
    host.run_expect([0], "printf '%%s' %s > /tmp/pg_backup.bad.json", json.dumps(bad))
    result = host.run("/usr/local/bin/ops-runbook-pg-backup --validate --config /tmp/pg_backup.bad.json")
    assert result.rc == 1
    assert "compression_level is 99" in result.stderr
    host.run_expect([0], "/usr/local/bin/ops-runbook-pg-backup --validate --config %s", CONFIG)


def test_check_mode_uses_the_default_config(host):
    """Without --config, the command reads the files the schedule uses, and --check writes nothing."""
    before = backup_sets(host)
    host.run_expect([0], "runuser -u postgres -- /usr/local/bin/ops-runbook-pg-backup --check")
    assert backup_sets(host) == before


@pytest.fixture(scope="module")
def scheduled_run(host):
    """Start the schedule's service once, as the timer would, and return the set it wrote."""
    before = set(backup_sets(host))
    log_lines_before = len(host.file(LOG).content_string.splitlines())
    started = host.run("systemctl start %s", SERVICE)
    log_lines = host.file(LOG).content_string.splitlines()[log_lines_before:]
    assert started.rc == 0, "{} failed: {}{}\nlog:\n{}".format(
        SERVICE, started.stdout, started.stderr, "\n".join(log_lines))
    new_sets = sorted(set(backup_sets(host)) - before)
    assert len(new_sets) == 1, "expected one new backup set, found {}".format(new_sets)
    set_dir = "{}/{}/{}".format(BACKUP_DIR, DATABASE, new_sets[0])
    manifest = json.loads(host.file(set_dir + "/manifest.json").content_string)
    return {"backup_id": new_sets[0], "dir": set_dir, "manifest": manifest, "log": log_lines}


def test_service_succeeded(host, scheduled_run):
    show = host.check_output("systemctl show -p Result -p ExecMainStatus %s", SERVICE)
    assert "Result=success" in show
    assert "ExecMainStatus=0" in show


def test_manifest_describes_the_set(scheduled_run):
    manifest = scheduled_run["manifest"]
    assert manifest["database"] == DATABASE
    assert manifest["backup_id"] == scheduled_run["backup_id"]
    assert scheduled_run["backup_id"].startswith(DATABASE + "-")
    assert (manifest["format"], manifest["compression"]) == ("custom", "zstd")


def test_every_file_of_the_set_matches_the_manifest(host, scheduled_run):
    names = []
    for entry in scheduled_run["manifest"]["files"]:
        path = "{}/{}".format(scheduled_run["dir"], entry["name"])
        assert host.file(path).size == entry["size"], path
        assert host.check_output("sha256sum %s", path).split()[0] == entry["sha256"], path
        names.append(entry["name"])
    assert DATABASE + ".dump.zst" in names
    assert "globals.sql.zst" in names
    for config_file in CONFIG_FILES:
        basename = config_file.rsplit("/", 1)[1]
        assert any(n.startswith("config/") and n.endswith(basename) for n in names), (config_file, names)


def test_dump_is_a_readable_archive(host, scheduled_run):
    dump = "{}/{}.dump.zst".format(scheduled_run["dir"], DATABASE)
    listing = host.check_output("zstd -dc %s | pg_restore --list", dump)
    assert "TABLE DATA public measurements" in listing
    assert "TABLE DATA audit events" in listing


def test_manifest_row_counts_match_the_database(host, scheduled_run):
    tables = psql(host, "SELECT schemaname || '.' || relname FROM pg_stat_user_tables").split()
    counts = {table: int(psql(host, 'SELECT count(*) FROM "{}"."{}"'.format(*table.split(".", 1))))
              for table in tables}
    assert counts["public.measurements"] == 1234
    assert scheduled_run["manifest"]["tables"] == counts


def test_set_belongs_to_the_backup_user(host, scheduled_run):
    assert host.file(scheduled_run["dir"]).user == "postgres"


def test_set_is_readable_by_the_user_and_group_only(host, scheduled_run):
    database_dir = host.file(os.path.dirname(scheduled_run["dir"]))
    assert (database_dir.user, database_dir.group, database_dir.mode) == ("postgres", "postgres", 0o750)
    set_dir = host.file(scheduled_run["dir"])
    assert (set_dir.group, set_dir.mode) == ("postgres", 0o750)
    for entry in scheduled_run["manifest"]["files"] + [{"name": "manifest.json"}]:
        found = host.file("{}/{}".format(scheduled_run["dir"], entry["name"]))
        assert (found.user, found.group, found.mode) == ("postgres", "postgres", 0o640), entry["name"]
    assert host.file(scheduled_run["dir"] + "/config").mode == 0o750


def test_log_has_the_run(scheduled_run):
    results = []
    for line in scheduled_run["log"]:
        try:
            results.append(json.loads(line))
        except ValueError:
            continue
    assert [r.get("backup_id") for r in results if isinstance(r, dict)] == [scheduled_run["backup_id"]]


def test_weekly_verification_restores_the_backup_and_passes(host, scheduled_run):
    """The verification unit, started as its timer would, proves the new set restores with its row counts."""
    log_lines_before = len(host.file(LOG).content_string.splitlines())
    started = host.run("systemctl start %s", VERIFY_SERVICE)
    log_lines = host.file(LOG).content_string.splitlines()[log_lines_before:]
    assert started.rc == 0, "{} failed:\n{}".format(VERIFY_SERVICE, "\n".join(log_lines))
    results = [json.loads(line) for line in log_lines if line.startswith("{")]
    assert [(r["backup_id"], r["status"]) for r in results] == [(scheduled_run["backup_id"], "pass")]
    assert any("restore: pass" in line for line in log_lines), log_lines
    assert "verification of {} passed".format(DATABASE) in "\n".join(log_lines)
    leftovers = psql(host, "SELECT count(*) FROM pg_database WHERE datname LIKE 'ops_runbook_verify_%'", "postgres")
    assert leftovers == "0"
