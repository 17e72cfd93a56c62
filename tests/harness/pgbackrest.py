"""A PostgreSQL cluster archiving its WAL with pgBackRest to a SeaweedFS store over TLS.

The stack is the real thing, on loopback: Debian's pgbackrest (2.45), a
PostgresServer with archive_mode on and archive_command calling
`pgbackrest archive-push`, and a SeaweedS3 serving HTTPS as `localhost` with a
certificate from a LocalCA (pgBackRest talks to S3 over TLS only and checks the
host name). Everything pgBackRest writes (log, lock, spool) stays in the
stack's directory; the configuration file is the cluster owner's, mode 0600.

    stack = PgBackRestStack(base_dir, s3, ca_file, bucket).start()
    stack.backup("full"); stack.write_marker("before"); stack.switch_wal()
"""
import os
import pwd
import shutil
import subprocess
import time

from .postgres import PostgresServer
from .s3 import SeaweedS3
from .tls import LocalCA

STANZA = "it"


def pgbackrest_binary():
    found = shutil.which("pgbackrest")
    if not found:
        raise RuntimeError("pgbackrest is not installed; run scripts/bootstrap (it installs Debian's pgbackrest)")
    return found


def tls_store(base_dir, days=30):
    """A SeaweedS3 (not started) in base_dir/s3 serving HTTPS as `localhost`, with a certificate from a LocalCA in
    base_dir/ca whose CA file the postgres user (pgBackRest) can read; `.ca_file` trusts it."""
    ca = LocalCA(os.path.join(base_dir, "ca"))
    cert, key = ca.issue("s3", days)[:2]
    os.chmod(ca.directory, 0o755)
    os.chmod(ca.cert, 0o644)
    return SeaweedS3(os.path.join(base_dir, "s3"), tls=(cert, key, ca.cert))


class PgBackRestStack:
    def __init__(self, base_dir, s3, bucket, stanza=STANZA, repo_path=None, archive_timeout=60,
                 repo_options=None):
        """s3: a started SeaweedS3 with tls; bucket: an existing bucket; repo_path: the repository's
        prefix in the bucket (default /<stanza>); repo_options: extra [global] settings."""
        pgbackrest_binary()
        self.base_dir = os.path.abspath(base_dir)
        self.s3 = s3
        self.bucket = bucket
        self.stanza = stanza
        self.repo_path = repo_path or "/" + stanza
        self.archive_timeout = archive_timeout
        self.repo_options = dict(repo_options or {})
        self.config_path = os.path.join(self.base_dir, "pgbackrest.conf")
        self.log_path = os.path.join(self.base_dir, "log")
        self.pg = PostgresServer(os.path.join(self.base_dir, "pg"))
        self._as_root = os.geteuid() == 0

    # -- set-up -------------------------------------------------------------
    def global_settings(self, **overrides):
        settings = {
            "repo1-type": "s3", "repo1-s3-endpoint": "localhost", "repo1-storage-port": str(self.s3.s3_port),
            "repo1-s3-uri-style": "path", "repo1-s3-region": self.s3.region, "repo1-s3-bucket": self.bucket,
            "repo1-s3-key": self.s3.access_key, "repo1-s3-key-secret": self.s3.secret_key,
            "repo1-storage-ca-file": self.s3.ca_file, "repo1-path": self.repo_path,
            "repo1-retention-full": "2", "compress-type": "zst", "compress-level": "1",
            "log-path": self.log_path, "lock-path": os.path.join(self.base_dir, "lock"),
            "spool-path": os.path.join(self.base_dir, "spool"), "log-level-console": "warn",
            "log-level-file": "info", "archive-timeout": "30", "io-timeout": "10", "start-fast": "y",
        }
        settings.update(self.repo_options)
        settings.update(overrides)
        return settings

    def write_config(self, path=None, **overrides):
        """Write a configuration (the stack's own unless `path`); overrides change [global] settings."""
        path = path or self.config_path
        lines = ["[global]"] + ["{}={}".format(k, v) for k, v in self.global_settings(**overrides).items()]
        lines += ["", "[{}]".format(self.stanza), "pg1-path=" + self.pg.data_dir,
                  "pg1-port={}".format(self.pg.port), "pg1-socket-path=" + self.pg.socket_dir, "pg1-user=postgres"]
        with open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        self._chown(path)
        return path

    def _chown(self, path):
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self):
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        self._chown(self.base_dir)
        for sub in ("log", "lock", "spool"):
            os.makedirs(os.path.join(self.base_dir, sub), exist_ok=True)
            self._chown(os.path.join(self.base_dir, sub))
        self.pg.init()
        self.write_config()
        with open(os.path.join(self.pg.data_dir, "postgresql.conf"), "a") as handle:
            handle.write("\n# pgBackRest (tests/harness/pgbackrest.py)\narchive_mode = on\n"
                         "archive_command = '{} --config={} --stanza={} archive-push %p'\n"
                         "archive_timeout = {}\nwal_level = replica\nmax_wal_senders = 3\n".format(
                             pgbackrest_binary(), self.config_path, self.stanza, self.archive_timeout))
        self.pg.start()
        self.run("stanza-create")
        self.run("check")
        self.pg.execute("CREATE TABLE markers (id serial PRIMARY KEY, label text NOT NULL, "
                        "written_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        return self

    def destroy(self):
        self.pg.destroy()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- pgBackRest ----------------------------------------------------------
    def argv(self, *args, config=None):
        argv = [pgbackrest_binary(), "--config=" + (config or self.config_path), "--stanza=" + self.stanza]
        argv += list(args)
        if self._as_root:
            argv = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + argv
        return argv

    def run(self, *args, check=True, timeout=300, config=None):
        result = subprocess.run(self.argv(*args, config=config), capture_output=True, text=True, timeout=timeout,
                                env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"), cwd=self.base_dir,
                                check=False)
        if check and result.returncode != 0:
            raise RuntimeError("pgbackrest {} failed ({}): {}{}".format(
                " ".join(args), result.returncode, result.stdout, result.stderr))
        return result

    def backup(self, kind="full"):
        self.run("backup", "--type=" + kind)

    def module_params(self, **overrides):
        """The shared pgBackRest options of the collection's modules for this stack."""
        params = {"pgbackrest_stanza": self.stanza, "pgbackrest_config": self.config_path,
                  "pgbackrest_user": "postgres"}
        params.update(overrides)
        return params

    # -- data and WAL -------------------------------------------------------
    def write_marker(self, label):
        """Insert a marker row; its commit time (clock_timestamp, UTC) is returned."""
        return self.pg.execute("INSERT INTO markers (label) VALUES (%s) RETURNING written_at", params=(label,))[0][0]

    def markers(self, server=None):
        return [row[0] for row in (server or self.pg).execute("SELECT label FROM markers ORDER BY id")]

    def switch_wal(self, timeout=60):
        """Close the current WAL segment and wait until pgBackRest archived it; its name is returned."""
        segment = self.pg.execute("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            archived = self.pg.execute("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
            if archived and archived[:24] >= segment:
                return segment
            time.sleep(0.2)
        raise RuntimeError("WAL segment {} was not archived within {} s; log:\n{}".format(
            segment, timeout, self.pg.log_tail()))

    def wal_keys(self):
        """The S3 keys of every archived WAL segment of the stanza, in order."""
        prefix = "{}/archive/{}/".format(self.repo_path.strip("/"), self.stanza)
        keys = []
        paginator = self.s3.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(key for key in keys if os.path.basename(key)[:24].isalnum() and "-" in os.path.basename(key))

    def delete_wal(self, segment):
        """Delete the archived copy of one WAL segment (its 24-character name) from the store; the key is returned."""
        for key in self.wal_keys():
            if os.path.basename(key).startswith(segment + "-"):
                self.s3.client().delete_object(Bucket=self.bucket, Key=key)
                return key
        raise RuntimeError("segment {} is not in the archive: {}".format(segment, self.wal_keys()))
