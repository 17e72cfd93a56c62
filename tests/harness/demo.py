"""The embedded default: run playbooks/backup.yml against a local PostgreSQL
with sample data and a local S3 store, then show where the backup went.

Run through scripts/demo, which installs what this needs first.
"""
import argparse
import grp
import json
import os
import shutil
import subprocess
import sys
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


def show_result(s3, prefix):
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
    print("  local copy   {}".format(os.path.join(DEMO, "backups", DATABASE, manifest["backup_id"])))
    print("  size         {} bytes (database {} bytes)".format(manifest["size_bytes"], manifest["database_size_bytes"]))
    print("  sha256       {}".format(manifest["sha256"]))
    print("  duration     {:.2f} s to dump, count rows and write the set ({} to {})".format(
        manifest["duration_seconds"], manifest["started_at"], manifest["finished_at"]))
    print("  tables       {}".format(", ".join("{}={}".format(t, n) for t, n in sorted(manifest["tables"].items()))))
    print("  manifest     s3://{}/{}".format(BUCKET, manifests[-1]))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=int, default=5, help="pgbench scale of the sample data (5 = about 80 MB)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave PostgreSQL and S3 running after the backup, until Ctrl-C")
    args, playbook_args = parser.parse_known_args(argv)

    shutil.rmtree(DEMO, ignore_errors=True)
    os.makedirs(DEMO)
    pg = PostgresServer(os.path.join(DEMO, "postgres"))
    s3 = SeaweedS3(os.path.join(DEMO, "s3"))
    try:
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
            "pg_backup_dir": os.path.join(DEMO, "backups"),
            "pg_backup_s3_prefix": prefix,
            "pg_backup_globals": True,
            "pg_backup_group": grp.getgrgid(os.getegid()).gr_name,
        }
        extra_path = os.path.join(DEMO, "extra-vars.json")
        with os.fdopen(os.open(extra_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            json.dump(extra, handle, indent=2)
        rc = run_playbook(extra_path, playbook_args)
        if rc != 0:
            print("backup.yml failed (exit {})".format(rc), file=sys.stderr)
            return rc
        if "--check" in playbook_args or "-C" in playbook_args:
            say("check mode: backup.yml reported its plan above and wrote nothing")
        else:
            rc = show_result(s3, prefix + "/" + DATABASE)
        if args.keep_running:
            print("\nPostgreSQL: psql 'host=127.0.0.1 port={} user=postgres dbname={}' (password in {})".format(
                pg.port, DATABASE, extra_path))
            print("S3: {} (keys in {}). Ctrl-C stops both.".format(s3.endpoint_url, extra_path))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return rc
    finally:
        s3.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
