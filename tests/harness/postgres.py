"""A throwaway PostgreSQL cluster on a free loopback port.

The cluster accepts password (SCRAM) logins over TCP, so wrong-password paths
are real, and trust over its private Unix socket for the harness itself.
initdb refuses to run as root, so as root the cluster runs as `postgres`.
"""
import glob
import os
import pwd
import shutil
import subprocess
import time

from . import pg_binaries
from .ports import free_ports

SUPERUSER = "postgres"


def pg_bindir(version=None):
    """Directory of PostgreSQL server binaries.

    Without a version: the newest installed by the system's packages (Debian 12:
    15), which most of the suite runs on. With a major version (14 to 18): the
    build cached by pg_binaries, fetched on first use.
    """
    if version is not None:
        return pg_binaries.bindir(version)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql; "
                           "run scripts/bootstrap (it installs the Debian package postgresql)")
    return os.path.dirname(found[-1])


class PostgresServer:
    def __init__(self, base_dir, password="harness-superuser-pw", port=None, settings=None, version=None):
        self.base_dir = os.path.abspath(base_dir)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.socket_dir = os.path.join(self.base_dir, "sock")
        self.log_file = os.path.join(self.base_dir, "postgres.log")
        self.password = password
        self.port = port or free_ports(1)[0]
        self.host = "127.0.0.1"
        self.version = version
        self.bindir = pg_bindir(version)
        self.settings = {"fsync": "off", "synchronous_commit": "off",
                         "full_page_writes": "off", "max_connections": "50"}
        self.settings.update(settings or {})
        self._as_root = os.geteuid() == 0

    # -- process control -------------------------------------------------
    def _run(self, args, check=True, **kwargs):
        if self._as_root:
            args = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] + args
        return subprocess.run(args, check=check, capture_output=True, text=True, **kwargs)

    def _chown(self, path):
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def init(self):
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        self._chown(self.base_dir)
        os.makedirs(self.socket_dir, exist_ok=True)
        self._chown(self.socket_dir)
        pwfile = os.path.join(self.base_dir, "pwfile")
        with open(pwfile, "w") as handle:
            handle.write(self.password + "\n")
        self._chown(pwfile)
        try:
            self._run([os.path.join(self.bindir, "initdb"), "-D", self.data_dir, "-U", SUPERUSER,
                       "--auth-local=trust", "--auth-host=scram-sha-256",
                       "--pwfile=" + pwfile, "-E", "UTF8", "--locale=C.UTF-8"])
        finally:
            os.unlink(pwfile)
        return self

    def start(self):
        if not os.path.isdir(self.data_dir):
            self.init()
        options = "-p {} -k {} -c listen_addresses={}".format(self.port, self.socket_dir, self.host)
        for key, value in self.settings.items():
            options += " -c {}={}".format(key, value)
        env = None
        if self.version is not None:
            # The cached builds' libpqwalreceiver.so looks for libpq in the build's own prefix
            # (RUNPATH /opt/postgresql/lib), so a standby would load the system's older libpq and
            # reject the connection options its pg_basebackup wrote.
            env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(os.path.dirname(self.bindir), "lib"))
        result = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data_dir, "-o", options,
                            "-l", self.log_file, "-w", "-t", "60", "start"], check=False, env=env)
        if result.returncode != 0:
            raise RuntimeError("PostgreSQL did not start: {}{}\n{}".format(
                result.stdout, result.stderr, self.log_tail()))
        return self

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data_dir, "-m", mode,
                       "-w", "-t", "60", "stop"], check=False)

    def pid(self):
        """The postmaster's process id while the server runs, else None."""
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as handle:
                return int(handle.readline())
        except (OSError, ValueError):
            return None

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, lines=30):
        try:
            with open(self.log_file) as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    # -- access ----------------------------------------------------------
    def conn_params(self, database="postgres", user=SUPERUSER, password=None):
        """Connection options in the shape the collection's modules take."""
        return {"login_host": self.host, "login_port": self.port, "login_user": user,
                "login_password": self.password if password is None else password,
                "login_db": database}

    def connect(self, database="postgres", autocommit=True):
        import psycopg2

        conn = psycopg2.connect(host=self.socket_dir, port=self.port, user=SUPERUSER, dbname=database)
        conn.autocommit = autocommit
        return conn

    def execute(self, sql, database="postgres", params=None):
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def client_env(self):
        """Environment for libpq clients (psql, pgbench) run as the harness."""
        env = dict(os.environ, PGHOST=self.socket_dir, PGPORT=str(self.port), PGUSER=SUPERUSER)
        env.pop("PGPASSWORD", None)
        return env

    def run_client(self, args, check=True, stdin=None):
        return subprocess.run(args, env=self.client_env(), check=check, stdin=stdin,
                              capture_output=True, text=True)

    # -- data ------------------------------------------------------------
    def create_database(self, name, owner=None):
        self.execute('CREATE DATABASE "{}"{}'.format(name, ' OWNER "{}"'.format(owner) if owner else ""))

    def create_role(self, name, password, superuser=False):
        self.execute('CREATE ROLE "{}" LOGIN {} PASSWORD %s'.format(
            name, "SUPERUSER" if superuser else ""), params=(password,))

    def load_sample_data(self, database, scale=1, incompressible_mb=0):
        """pgbench tables at `scale`, the runbook's `measurements` table and,
        optionally, a table of random bytes that compresses poorly."""
        self.run_client([os.path.join(self.bindir, "pgbench"), "-i", "-q", "-s", str(scale), database])
        self.execute("""
            CREATE TABLE measurements (
                id bigserial PRIMARY KEY,
                user_id integer NOT NULL,
                weight_kg numeric(5,1) NOT NULL,
                height_cm numeric(5,1) NOT NULL,
                bmi numeric(4,1) GENERATED ALWAYS AS (weight_kg / ((height_cm / 100) ^ 2)) STORED,
                measured_at timestamptz NOT NULL DEFAULT now()
            );
            INSERT INTO measurements (user_id, weight_kg, height_cm, measured_at)
            SELECT g % 500, 50 + (g % 60), 150 + (g % 45), now() - g * interval '1 minute'
            FROM generate_series(1, 5000) AS g;
        """, database=database)
        if incompressible_mb:
            # 1 kB of random bytes per row: about incompressible_mb MB on disk.
            self.execute("""
                CREATE EXTENSION IF NOT EXISTS pgcrypto;
                CREATE TABLE blobs (id integer PRIMARY KEY, payload bytea NOT NULL);
            """, database=database)
            rows = incompressible_mb * 1024
            batch = 100000
            for start in range(0, rows, batch):
                self.execute("INSERT INTO blobs SELECT g, gen_random_bytes(1024) "
                             "FROM generate_series(%s, %s) AS g",
                             database=database, params=(start + 1, min(start + batch, rows)))
        self.execute("ANALYZE", database=database)

    def row_counts(self, database):
        """Exact row count of every ordinary table, keyed 'schema.table'."""
        tables = self.execute("""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg_toast%%'
        """, database=database)
        counts = {}
        for schema, table in tables:
            counts["{}.{}".format(schema, table)] = self.execute(
                'SELECT count(*) FROM "{}"."{}"'.format(schema, table), database=database)[0][0]
        return counts

    def start_standby(self, base_dir, slot="standby1", user="replicator", password="harness-replication-pw"):
        """A streaming standby of this (running) server, started on its own free port.

        Creates a replication role, then `pg_basebackup -R` with a physical
        replication slot (created by pg_basebackup), so stopping the standby
        leaves WAL retained on this primary as in production.
        """
        if not self.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", params=(user,)):
            self.execute('CREATE ROLE "{}" LOGIN REPLICATION PASSWORD %s'.format(user), params=(password,))
        standby = PostgresServer(base_dir, password=self.password, settings=self.settings, version=self.version)
        os.makedirs(standby.base_dir, exist_ok=True)
        os.chmod(standby.base_dir, 0o755)
        standby._chown(standby.base_dir)
        os.makedirs(standby.socket_dir, exist_ok=True)
        standby._chown(standby.socket_dir)
        env = dict(os.environ, PGPASSWORD=password)
        args = [os.path.join(self.bindir, "pg_basebackup"), "-h", self.host, "-p", str(self.port), "-U", user,
                "-D", standby.data_dir, "-R", "-X", "stream", "-C", "-S", slot, "--checkpoint=fast"]
        result = standby._run(args, check=False, env=env)
        if result.returncode != 0:
            raise RuntimeError("pg_basebackup failed: {}{}".format(result.stdout, result.stderr))
        standby.primary = self
        standby.slot = slot
        return standby.start()

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self._run([os.path.join(self.bindir, "pg_isready"), "-h", self.socket_dir,
                                "-p", str(self.port)], check=False)
            if result.returncode == 0:
                return True
            time.sleep(0.2)
        return False
