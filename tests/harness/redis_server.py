"""A throwaway redis-server (Debian's package) on a free loopback port.

A plain process with its own directory and config (a password, no
daemonizing, no snapshots unless asked): never the system service. Start a
replica by passing `replicaof=(host, port)` and the master's password; with
`tls=True` it also listens with TLS on `tls_port`, with a certificate for
127.0.0.1 signed by its own CA (`ca_file`).
"""
import datetime
import ipaddress
import os
import shutil
import subprocess
import time

import redis

from .ports import free_ports

PASSWORD = "harness-redis-pw"


def redis_server_binary():
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(path):
        raise RuntimeError("redis-server not found; run scripts/bootstrap (it installs the Debian package redis-server)")
    return path


def _config_value(value):
    if value == "":
        return '""'
    return str(value)


class RedisServer:
    def __init__(self, base_dir, password=PASSWORD, settings=None, replicaof=None, master_password=None,
                 tls=False):
        self.base_dir = os.path.abspath(base_dir)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.socket_path = os.path.join(self.base_dir, "redis.sock")
        self.log_file = os.path.join(self.base_dir, "redis.log")
        self.config_file = os.path.join(self.base_dir, "redis.conf")
        self.password = password
        self.host = "127.0.0.1"
        self.port, self.tls_port = free_ports(2)
        self.tls = tls
        self.ca_file = os.path.join(self.base_dir, "ca.pem")
        # No 5 s wait for more replicas before a full sync (repl-diskless-sync-delay).
        self.settings = {"save": "", "appendonly": "no", "maxmemory": "0", "maxmemory-policy": "noeviction",
                         "repl-diskless-sync-delay": "0"}
        self.settings.update(settings or {})
        self.replicaof = replicaof
        self.master_password = master_password
        self.process = None

    def write_config(self):
        lines = [
            "bind {0}".format(self.host),
            "port {0}".format(self.port),
            "unixsocket {0}".format(self.socket_path),
            "unixsocketperm 700",
            "daemonize no",
            "supervised no",
            "dir {0}".format(self.data_dir),
            "logfile {0}".format(self.log_file),
            "databases 16",
        ]
        if self.password:
            lines.append("requirepass {0}".format(self.password))
        if self.replicaof:
            lines.append("replicaof {0} {1}".format(*self.replicaof))
            if self.master_password:
                lines.append("masterauth {0}".format(self.master_password))
        if self.tls:
            cert, key = self._make_certificates()
            lines += ["tls-port {0}".format(self.tls_port), "tls-cert-file {0}".format(cert),
                      "tls-key-file {0}".format(key), "tls-ca-cert-file {0}".format(self.ca_file),
                      "tls-auth-clients no"]
        for key, value in self.settings.items():
            lines.append("{0} {1}".format(key, _config_value(value)))
        with open(self.config_file, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def _make_certificates(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        def name(text):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

        def write(path, data):
            with open(path, "wb") as handle:
                handle.write(data)

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(name("ops.runbook test CA")).issuer_name(name("ops.runbook test CA"))
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(self.host)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(self.host))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_file = os.path.join(self.base_dir, "server.pem")
        key_file = os.path.join(self.base_dir, "server.key")
        write(self.ca_file, ca.public_bytes(serialization.Encoding.PEM))
        write(cert_file, cert.public_bytes(serialization.Encoding.PEM))
        write(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        return cert_file, key_file

    def start(self, timeout=20):
        os.makedirs(self.data_dir, exist_ok=True)
        self.write_config()
        self.process = subprocess.Popen([redis_server_binary(), self.config_file], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("redis-server exited with {0}: {1}".format(self.process.returncode, self.log_tail()))
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer within {0} s: {1}".format(timeout, self.log_tail()))

    def log_tail(self, lines=20):
        try:
            with open(self.log_file) as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, db=0, **kwargs):
        return redis.Redis(host=self.host, port=self.port, password=self.password, db=db, socket_timeout=10,
                           **kwargs)

    def params(self, **extra):
        """Connection options of the collection's Redis modules for this server."""
        options = {"login_host": self.host, "login_port": self.port, "login_password": self.password}
        options.update(extra)
        return options

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def crash(self):
        """Die at once, as on a lost host: no shutdown save, no waiting for replicas."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
