"""Real PostgreSQL and real S3 (SeaweedFS), started once per session by the harness; Redis servers per test;
a private Docker engine per session with a compose application per test."""
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from harness.docker import ComposeApp, DockerEngine
from harness.pgbackrest import PgBackRestStack, tls_store
from harness.postgres import PostgresServer
from harness.redis_server import RedisServer
from harness.runner import RECORD_VARIABLE
from harness.runner import run_playbook as run_under_runner
from harness.s3 import SeaweedS3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATABASE = "bmidb"
BACKUP_ROLE = "backup_operator"
BACKUP_PASSWORD = "Secr3t-" + uuid.uuid4().hex


def pytest_configure(config):
    """Every playbook run of the session (harness.runner) is recorded in one file; test_zz_runner_coverage.py
    reads it to prove that each playbook of playbooks/ ran under ansible-runner."""
    if not os.environ.get(RECORD_VARIABLE):
        handle, path = tempfile.mkstemp(prefix="ops-rb-runner-record-", suffix=".jsonl")
        os.close(handle)
        os.environ[RECORD_VARIABLE] = path
        config.add_cleanup(lambda: os.unlink(path) if os.path.exists(path) else None)


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def pg():
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    server = PostgresServer(tempfile.mkdtemp(prefix="ops-runbook-it-pg-")).start()
    server.create_database(DATABASE)
    server.load_sample_data(DATABASE, scale=1, incompressible_mb=4)
    server.create_role(BACKUP_ROLE, BACKUP_PASSWORD, superuser=True)
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def s3():
    store = SeaweedS3(tempfile.mkdtemp(prefix="ops-runbook-it-s3-")).start()
    yield store
    store.destroy()


@pytest.fixture
def bucket(s3):
    return s3.create_bucket("it-" + uuid.uuid4().hex[:12])


@pytest.fixture
def options(pg, s3, bucket, tmp_path):
    """pg_backup options for bmidb, backing up to tmp_path and the test's own bucket."""
    opts = pg.conn_params(DATABASE, user=BACKUP_ROLE, password=BACKUP_PASSWORD)
    opts.update(s3.s3_params(bucket, "it"))
    opts.update(database=DATABASE, backup_dir=str(tmp_path / "backups"))
    return opts


@pytest.fixture
def scratch(pg):
    """Databases of the test's own, copied from bmidb; they and their restored copies are dropped afterwards."""
    names = []

    def make(name):
        pg.execute('CREATE DATABASE "{}" TEMPLATE "{}"'.format(name, DATABASE))
        names.append(name)
        return name

    yield make
    for name in names:
        for row in pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", params=(name + "%",)):
            pg.execute('DROP DATABASE "{}" WITH (FORCE)'.format(row[0]))


def s3_keys(s3, bucket, prefix=""):
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def local_entries(backup_dir, database=DATABASE):
    path = os.path.join(backup_dir, database)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def ansible_playbook(playbook, extra_vars, *args, check=False, env=None, inventory=None):
    """Run a playbook of this checkout with the local inventory, as AWX does: under ansible-runner, from a
    private data directory (harness.runner). Returns a harness.runner.RunnerResult: returncode, stdout and
    stderr as subprocess.CompletedProcess has them (ansible-playbook's standard error is in stdout, as on a
    terminal), and status, events and artifact_data (the set_stats data) as AWX reads them.

    `env`: more environment variables, e.g. a Docker engine's (harness.docker.DockerEngine.env).
    `check`: raise subprocess.CalledProcessError when the playbook fails.
    """
    result = run_under_runner(os.path.join("playbooks", playbook), extra_vars, inventory=inventory, args=args,
                              env=env)
    if check:
        result.check_returncode()
    return result


# Engine options -> the variables the playbooks take: the connection roles' (ops.runbook.postgres,
# ops.runbook.s3) and the pg_backup role's.
PLAYBOOK_VARIABLES = dict(
    {name: "postgres_" + name for name in ("login_host", "login_port", "login_user", "login_password")},
    s3_bucket="s3_bucket", s3_endpoint_url="s3_endpoint_url", s3_region="s3_region",
    aws_access_key="s3_access_key", aws_secret_key="s3_secret_key",
    **{name: "pg_backup_" + name for name in ("s3_prefix", "keep_days", "keep_count", "s3_keep_days", "s3_keep_count",
                                              "format", "compression", "globals", "config_files")})


def playbook_vars(options):
    """The variables backup.yml, verify_backups.yml and restore.yml take, from engine options."""
    extra = {PLAYBOOK_VARIABLES[k]: v for k, v in options.items() if k in PLAYBOOK_VARIABLES}
    extra["pg_backup_databases"] = [options["database"]]
    extra["pg_backup_dir"] = options["backup_dir"]
    return extra


@pytest.fixture
def start_redis():
    """Start throwaway redis-servers (keywords of harness.redis_server.RedisServer); all stop after the test."""
    started = []

    def start(**kwargs):
        # Short paths: a Unix socket path must stay under 108 bytes.
        server = RedisServer(tempfile.mkdtemp(prefix="ops-rb-redis-"), **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.destroy()


# The health, session and maintenance tests need settings the backup tests'
# server does not have (pg_stat_statements preloaded, WAL archiving, few
# connections so the connection thresholds can be reached for real) and a
# streaming standby, so they get a cluster of their own.
HEALTH_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "archive_mode": "on",
    "max_connections": "20",
    "shared_buffers": "16MB",
    "autovacuum": "off",
}
APP_ROLE = "bmi_user"
APP_PASSWORD = "App-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def health_primary():
    server = PostgresServer(tempfile.mkdtemp(prefix="ops-runbook-it-health-"), settings=HEALTH_SETTINGS).start()
    # Not a command-line setting like the others: tests change it with ALTER SYSTEM.
    server.execute("ALTER SYSTEM SET archive_command = '/bin/true'")
    server.execute("SELECT pg_reload_conf()")
    server.create_role(APP_ROLE, APP_PASSWORD)
    server.create_database(DATABASE, owner=APP_ROLE)
    server.execute("CREATE EXTENSION pg_stat_statements", database=DATABASE)
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def health_standby(health_primary):
    standby = health_primary.start_standby(tempfile.mkdtemp(prefix="ops-runbook-it-standby-"))
    yield standby
    standby.destroy()


def ansible_module(module, args, *flags, env=None):
    """Run one module of this checkout on localhost with the ansible CLI; returns CompletedProcess.

    `env`: more environment variables, e.g. a Docker engine's (harness.docker.DockerEngine.env).
    """
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    environ["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + environ["PATH"]
    environ.update(env or {})
    return subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-i",
         os.path.join(ROOT, "inventories", "local", "hosts.yml"), "-m", module, "-a", json.dumps(args)] + list(flags),
        cwd=ROOT, env=environ, capture_output=True, text=True, check=False)


def module_result(run):
    """The module's result from `ansible_module` output (the json stdout callback)."""
    text = run.stdout if run.stdout.startswith("{") else run.stdout[run.stdout.index("\n{") + 1:]
    document = json.loads(text)
    return document["plays"][0]["tasks"][0]["hosts"]["localhost"]


class Sessions:
    """Client sessions held open for a test, closed (or found gone) at its end."""

    def __init__(self, server):
        self.server = server
        self.conns = []
        self.threads = []

    def open(self, application="it-session", user=None, password=None, database=DATABASE):
        import psycopg2

        if user is None:
            conn = psycopg2.connect(host=self.server.socket_dir, port=self.server.port, user="postgres",
                                    dbname=database, application_name=application)
        else:
            conn = psycopg2.connect(host=self.server.host, port=self.server.port, user=user, password=password,
                                    dbname=database, application_name=application)
        conn.autocommit = True
        self.conns.append(conn)
        return conn

    def pid(self, conn):
        return conn.get_backend_pid()

    def idle_in_transaction(self, **kwargs):
        conn = self.open(**kwargs)
        conn.autocommit = False
        conn.cursor().execute("SELECT 1")
        return conn

    def run_in_background(self, conn, sql):
        """Start `sql` on `conn` in a thread; the session is `active` until it ends."""
        import threading

        def run():
            try:
                conn.cursor().execute(sql)
            except Exception:  # ended by the test: that is the point
                pass

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)
        return thread

    def alive(self, pid):
        return bool(self.server.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", params=(pid,)))

    def close(self):
        pids = [conn.get_backend_pid() for conn in self.conns if not conn.closed]
        if pids:
            self.server.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
                                params=(pids,))
        for thread in self.threads:
            thread.join(10)
        for conn in self.conns:
            try:
                conn.close()
            except Exception:
                pass


@pytest.fixture
def sessions(health_primary):
    held = Sessions(health_primary)
    yield held
    held.close()


@pytest.fixture
def scratch_db(health_primary):
    """A database of the test's own on the health cluster, owned by the application role."""
    name = "scratch_" + uuid.uuid4().hex[:10]
    health_primary.create_database(name, owner=APP_ROLE)
    yield name
    health_primary.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)".format(name))


def eventually(probe, timeout=15, interval=0.1):
    """The first truthy value of probe() within `timeout` seconds, else the last value."""
    import time

    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    return value


@pytest.fixture(scope="session")
def docker_engine():
    """A private dockerd with harness.docker's BUSYBOX_IMAGE and APP_IMAGE loaded; stopped at the session's end."""
    engine = DockerEngine()
    try:
        engine.start()
        engine.load_images()
    except Exception as error:
        engine.stop()
        # A test that needs containers must not pass, or be skipped, without them.
        pytest.fail("the private Docker engine did not start: {}".format(error), pytrace=False)
    yield engine
    engine.stop()


@pytest.fixture
def compose_app_factory(docker_engine):
    """Make and start compose applications (keywords of harness.docker.ComposeApp, and start=False to only
    write the project); every one is taken down (`down --volumes`) after the test."""
    apps = []

    def make(start=True, wait=True, **kwargs):
        app = ComposeApp(docker_engine, tempfile.mkdtemp(prefix="ops-rb-compose-"), **kwargs)
        apps.append(app)
        return app.up(wait=wait) if start else app

    yield make
    for app in reversed(apps):
        app.down()
        shutil.rmtree(os.path.dirname(app.project_dir), ignore_errors=True)


@pytest.fixture
def compose_app(compose_app_factory):
    """The runbook-004-shaped compose application, up and healthy (backend, frontend, redis; no PostgreSQL)."""
    return compose_app_factory()


# -- pgBackRest: WAL archiving to S3 over TLS -------------------------------------------------------------

@pytest.fixture(scope="session")
def tls_s3():
    """A SeaweedFS store serving S3 over HTTPS as `localhost` (certificate from a LocalCA; .ca_file to trust it),
    for pgBackRest, which talks to S3 over TLS only. Shared by every test that needs it."""
    base = tempfile.mkdtemp(prefix="ops-runbook-it-tls-s3-")
    os.chmod(base, 0o755)
    store = tls_store(base).start()
    yield store
    store.destroy()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbackrest_stack_factory(tls_s3):
    """make(**kwargs) -> a started PgBackRestStack (PostgreSQL archiving through pgBackRest into its own bucket
    of the TLS store); every stack made is destroyed at the end of the session. Tests that break a stack
    (delete WAL, stop PostgreSQL) make their own."""
    made = []

    def make(stanza="it", **kwargs):
        bucket = tls_s3.create_bucket("pgbr-" + uuid.uuid4().hex[:12])
        stack = PgBackRestStack(tempfile.mkdtemp(prefix="ops-runbook-it-pgbr-"), tls_s3, bucket, stanza=stanza,
                                **kwargs)
        made.append(stack)
        return stack.start()

    yield make
    for stack in made:
        stack.destroy()


@pytest.fixture(scope="session")
def pgbackrest_stack(pgbackrest_stack_factory):
    """One shared stack with a full backup: read it, back it up, write markers; do not break it."""
    stack = pgbackrest_stack_factory()
    stack.backup("full")
    return stack
