"""The embedded default: run playbooks/backup.yml against a local PostgreSQL
with sample data and a local S3 store, then show where the backup went.

Run through scripts/demo, which installs what this needs first. Its temporary files (ansible-playbook's,
tempfile's in every process it starts) go to a directory of its own under TMPDIR, removed when it ends; the
servers' sockets and logs stay in the demo directory. Ctrl-C or SIGTERM stops the servers and ends it.
"""
import argparse
import grp
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .postgres import PostgresServer
from .s3 import SeaweedS3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, ".demo")
BUCKET = "ops-runbook-demo"
DATABASE = "bmidb"


def say(message):
    print("==> " + message, flush=True)


def playbook_env():
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", "")
    return env


def run_playbook(extra_vars_path, extra_args):
    args = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"),
            "-i", os.path.join(ROOT, "inventories", "local", "hosts.yml"),
            os.path.join(ROOT, "playbooks", "backup.yml"), "-e", "@" + extra_vars_path] + extra_args
    say("running: " + " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in args))
    return subprocess.run(args, cwd=ROOT, env=playbook_env(), check=False).returncode


def show_result(s3, prefix, demo):
    client = s3.client()
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    manifests = sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith("/manifest.json"))
    if not manifests:
        print("no backup manifest found in s3://{}/{}".format(BUCKET, prefix), file=sys.stderr)
        return 1
    manifest = json.loads(client.get_object(Bucket=BUCKET, Key=manifests[-1])["Body"].read())
    key = manifests[-1].rsplit("/", 1)[0] + "/" + manifest["dump_file"]
    print()
    print("Backup {}".format(manifest["backup_id"]))
    print("  went to      s3://{}/{}  (S3 endpoint {})".format(BUCKET, key, s3.endpoint_url))
    print("  local copy   {}".format(os.path.join(demo, "backups", DATABASE, manifest["backup_id"])))
    print("  size         {} bytes (database {} bytes)".format(manifest["size_bytes"], manifest["database_size_bytes"]))
    print("  sha256       {}".format(manifest["sha256"]))
    print("  duration     {:.2f} s to dump, count rows and write the set ({} to {})".format(
        manifest["duration_seconds"], manifest["started_at"], manifest["finished_at"]))
    print("  tables       {}".format(", ".join("{}={}".format(t, n) for t, n in sorted(manifest["tables"].items()))))
    print("  manifest     s3://{}/{}".format(BUCKET, manifests[-1]))
    return 0


class Stopped(Exception):
    """SIGTERM arrived: stop the servers as Ctrl-C does."""


def stop_on_sigterm(_signum, _frame):
    # A second signal must not interrupt the servers' shutdown in main's finally.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped()


def wait_until_stopped(pg, s3, extra_path):
    # Inside the try: a signal that comes as soon as the ready line is read is a normal stop.
    try:
        print("\nPostgreSQL: psql 'host=127.0.0.1 port={} user=postgres dbname={}' (password in {})".format(
            pg.port, DATABASE, extra_path))
        print("S3: {} (keys in {}).".format(s3.endpoint_url, extra_path))
        say("ready: PostgreSQL (pid {}) and S3 (pid {}) keep running; Ctrl-C or kill {} stops both".format(
            pg.pid(), s3.proc.pid, os.getpid()))
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, Stopped):
        say("stopping PostgreSQL and S3")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=int, default=5, help="pgbench scale of the sample data (5 = about 80 MB)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave PostgreSQL and S3 running after the backup, until Ctrl-C or SIGTERM")
    parser.add_argument("--demo-dir", default=DEMO,
                        help="directory for the servers, the backups and extra-vars.json, emptied first "
                             "(default: .demo in the checkout)")
    args, playbook_args = parser.parse_known_args(argv)
    demo = os.path.abspath(args.demo_dir)

    shutil.rmtree(demo, ignore_errors=True)
    os.makedirs(demo)
    # PostgreSQL runs as postgres when the demo runs as root: it must reach its directory.
    os.chmod(demo, 0o755)
    run_tmp = tempfile.mkdtemp(prefix="ops-runbook-demo-")
    os.environ["TMPDIR"] = tempfile.tempdir = run_tmp
    pg = s3 = None
    try:
        signal.signal(signal.SIGTERM, stop_on_sigterm)
        pg = PostgresServer(os.path.join(demo, "postgres"))
        s3 = SeaweedS3(os.path.join(demo, "s3"))
        say("starting PostgreSQL on 127.0.0.1:{}".format(pg.port))
        pg.start()
        say("loading sample data into {} (pgbench scale {}, the runbook's measurements table)".format(
            DATABASE, args.scale))
        pg.create_database(DATABASE)
        pg.load_sample_data(DATABASE, scale=args.scale)
        say("starting the S3-compatible store (SeaweedFS) on {}".format(s3.endpoint_url))
        s3.start()
        s3.create_bucket(BUCKET)
        prefix = "backups/demo"
        # The connection (the ops.runbook.postgres and ops.runbook.s3 roles' variables) and where
        # the pg_backup role puts the sets. The backup runs as this user, who may not be in the
        # role's default group (postgres): the sets go to this user's own group.
        extra = {
            "postgres_login_host": pg.host,
            "postgres_login_port": pg.port,
            "postgres_login_user": "postgres",
            "postgres_login_password": pg.password,
            "s3_bucket": BUCKET,
            "s3_endpoint_url": s3.endpoint_url,
            "s3_region": s3.region,
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,
            "pg_backup_dir": os.path.join(demo, "backups"),
            "pg_backup_s3_prefix": prefix,
            "pg_backup_globals": True,
            "pg_backup_group": grp.getgrgid(os.getegid()).gr_name,
        }
        extra_path = os.path.join(demo, "extra-vars.json")
        with os.fdopen(os.open(extra_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            json.dump(extra, handle, indent=2)
        rc = run_playbook(extra_path, playbook_args)
        if rc != 0:
            print("backup.yml failed (exit {})".format(rc), file=sys.stderr)
            return rc
        if "--check" in playbook_args or "-C" in playbook_args:
            say("check mode: backup.yml reported its plan above and wrote nothing")
        else:
            rc = show_result(s3, prefix + "/" + DATABASE, demo)
        if args.keep_running:
            wait_until_stopped(pg, s3, extra_path)
        return rc
    except Stopped:
        say("stopped by SIGTERM")
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if s3 is not None:
            s3.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(run_tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
