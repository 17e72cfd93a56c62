"""pg_health benchmark: the health checks against the same queries run directly with psql.

Everything is measured in one run on this machine against a throwaway
PostgreSQL cluster of tests/harness (free loopback port, pg_stat_statements
preloaded, pgbench data), and every timing is reported as a ratio to the
baseline measured in the same run: psql running exactly the SQL that
run_health() sent, recorded from the engine itself, over one connection.

Run it through scripts/bench pg_health, which installs what it needs first.
See bench/README.md. The exit status is 0 whenever the benchmark ran:
benchmarks report, tests assert.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from harness.postgres import PostgresServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.ops.runbook.plugins.module_utils import pg_health  # noqa: E402
from ansible_collections.ops.runbook.plugins.module_utils.postgres import libpq_environment  # noqa: E402

DATABASE = "benchdb"
SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "max_connections": "50"}

# run_health() in a child process of its own, timed without the interpreter's start.
ENGINE_CHILD = r"""
import json, sys, time
from ansible_collections.ops.runbook.plugins.module_utils.pg_health import run_health

with open(sys.argv[1]) as handle:
    options = json.load(handle)
start = time.monotonic()
result = run_health(options)
print(json.dumps({"seconds": time.monotonic() - start, "status": result["status"]}))
"""


def recorded_statements(options):
    """The SQL run_health() sends, in order, with its parameters bound, read from its own cursors."""
    import psycopg2.extensions

    statements = []

    class RecordingCursor(psycopg2.extensions.cursor):
        def execute(self, query, params=None):
            try:
                return super(RecordingCursor, self).execute(query, params)
            finally:
                statements.append(self.query.decode("utf-8"))

    original = pg_health.connect

    def recording_connect(params, database):
        conn = original(params, database)
        conn.cursor_factory = RecordingCursor
        return conn

    pg_health.connect = recording_connect
    try:
        pg_health.run_health(options)
    finally:
        pg_health.connect = original
    return statements


def timed(args, env=None):
    started = time.monotonic()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode not in (0, 2):  # ansible exits 2 when a check fails; still a complete run
        raise RuntimeError("{0} failed: {1}{2}".format(args[0], done.stdout[-2000:], done.stderr[-2000:]))
    return seconds, done


def prepare(server, scale):
    server.create_database(DATABASE)
    server.run_client([os.path.join(server.bindir, "pgbench"), "-i", "-q", "-s", str(scale), DATABASE])
    server.execute("CREATE EXTENSION pg_stat_statements", database=DATABASE)
    server.run_client([os.path.join(server.bindir, "pgbench"), "-n", "-T", "3", "-c", "4", DATABASE])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each line, round-robin; the median counts")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale of the database checked")
    parser.add_argument("--json", help="also write every figure as JSON to this file")
    parser.add_argument("--workdir", help="where the server lives (default: system temp)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="ops-runbook-bench-health-", dir=args.workdir)
    os.chmod(workdir, 0o755)  # the server runs as postgres and must reach its directory
    server = PostgresServer(os.path.join(workdir, "pg"), settings=SETTINGS)
    try:
        server.start()
        print("preparing {0} (pgbench scale {1}, pg_stat_statements, a short pgbench run)...".format(
            DATABASE, args.scale))
        prepare(server, args.scale)
        options = server.conn_params(DATABASE)
        options.pop("login_db")
        options.update(database=DATABASE, min_table_size_mb=0)
        statements = recorded_statements(options)
        sql_file = os.path.join(workdir, "health.sql")
        with open(sql_file, "w") as handle:
            handle.write("\n".join(s.rstrip().rstrip(";") + ";" for s in statements) + "\n")
        options_file = os.path.join(workdir, "options.json")
        with open(options_file, "w") as handle:
            json.dump(options, handle)
        os.chmod(options_file, 0o600)

        psql_env = libpq_environment(options, DATABASE, application="ops.runbook-bench")
        psql = [shutil.which("psql") or os.path.join(server.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-f", sql_file, "-o", os.devnull]
        engine_env = dict(os.environ, PYTHONPATH=COLLECTIONS)
        engine = [sys.executable, "-c", ENGINE_CHILD, options_file]
        # The password reaches the module through PGPASSWORD (its documented fallback), not the command line.
        module_args = dict((k, v) for k, v in options.items() if k != "login_password")
        ansible_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                           PATH=VENV_BIN + os.pathsep + os.environ["PATH"], PGPASSWORD=options["login_password"])
        module = [os.path.join(VENV_BIN, "ansible"), "localhost", "-i",
                  os.path.join(ROOT, "inventories", "local", "hosts.yml"), "-m", "ops.runbook.pg_health",
                  "-a", json.dumps(module_args)]

        lines = {"psql": [], "engine": [], "engine_process": [], "module": []}
        timed(psql, psql_env)
        timed(engine, engine_env)
        for _attempt in range(args.repeat):
            lines["psql"].append(timed(psql, psql_env)[0])
            seconds, done = timed(engine, engine_env)
            lines["engine_process"].append(seconds)
            lines["engine"].append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
            lines["module"].append(timed(module, ansible_env)[0])
        medians = dict((name, statistics.median(values)) for name, values in lines.items())
        baseline = medians["psql"]
        print("")
        print("pg_health: {0} statements over one connection, {1} run(s) of each line (median)".format(
            len(statements), args.repeat))
        print("{0:<44} {1:>9} {2:>10}".format("line", "seconds", "x psql"))
        for name, label in (("psql", "a. psql -f (the same SQL, one connection)"),
                            ("engine", "b. run_health(), in its process"),
                            ("engine_process", "c. run_health(), with Python's start"),
                            ("module", "d. ansible -m ops.runbook.pg_health")):
            print("{0:<44} {1:>9.3f} {2:>10.2f}".format(label, medians[name], medians[name] / baseline))
        print("")
        print("b/a is the engine's own cost (psycopg2, Python, the checks' logic); d/a adds Ansible's start "
              "and the module's transfer.")
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"statements": len(statements), "repeat": args.repeat, "seconds": lines,
                           "median_seconds": medians,
                           "ratios_to_psql": dict((k, v / baseline) for k, v in medians.items())}, handle, indent=2)
    finally:
        server.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
