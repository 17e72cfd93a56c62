"""systemd hosts reached over SSH, as real fleets and AWX reach them: the fleet benchmark's default transport.

The hosts are containers of an image derived once from the project's host image (tests/harness/hostimage.py)
with openssh-server added, tagged by the base image's tag so it is reused until the base changes. The base
image's packages stay as they are: adding sshd there would rebuild every molecule host.

Each container runs on the host's network (house rule: host networking or none) in its own UTS namespace, so
systemd in it cannot rename this machine, and its sshd listens on 127.0.0.1 only, on a free port of its own,
root login with the run's ed25519 key only. The key, the sshd settings and the SSH control sockets live in the
benchmark's temporary work directory; nothing of them is kept in the repository or in the image.
"""
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile

from health_check_bench import checkout_id, podman, say, start_hosts
from harness import hostimage
from harness.ports import free_ports, wait_for_port

REPOSITORY = "localhost/ops-runbook-debian12-sshd"
# Part of the tag, after the base image's tag: raise it whenever BUILD_SCRIPT changes the image.
BUILD_VERSION = "1"
# policy-rc.d keeps the package's scripts from starting sshd while it installs: the build container shares the
# host's network, where a default sshd would listen on port 22 of every address. ssh.service is left disabled;
# the benchmark starts it once each container's own settings are in place.
BUILD_SCRIPT = """\
printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server
rm -f /usr/sbin/policy-rc.d
systemctl disable ssh.service
rm -rf /var/lib/apt/lists/*
"""
SSHD_CONFIG = """\
# Fleet benchmark host: loopback only, its own port, root with the run's key only.
Port {port}
ListenAddress 127.0.0.1
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
"""
KEY_NAME = "id_ed25519"
# Ansible's own default ssh_args, written out so the inventory says what is measured: one master connection per
# host (ControlMaster/ControlPersist) carries every module of the run.
SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s"
# The hosts' keys are made afresh with every image build and the hosts are containers of this run: nothing to
# remember between runs. In the temporary inventory only, never in ansible.cfg.
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"


def image_name(base):
    return "{0}:{1}-{2}".format(REPOSITORY, base.rsplit(":", 1)[1], BUILD_VERSION)


def ensure_image(base):
    """Name of the SSH host image derived from `base`, built first when it does not exist yet."""
    name = image_name(base)
    os.makedirs(hostimage.CACHE_DIR, exist_ok=True)
    with open(os.path.join(hostimage.CACHE_DIR, ".sshd-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not hostimage.image_exists(name):
            _build(base, name)
    return name


def _build(base, name):
    builder = "fleet-bench-{0}-sshd-image".format(checkout_id())
    say("building {0}: {1} with openssh-server".format(name, base))
    podman("rm", "-f", builder, check=False)
    try:
        # Host networking for apt only; packages come through the same archive cache as the molecule hosts'.
        built = podman("run", "--name", builder, "--network", "host", "--uts=private",
                       "-v", hostimage.apt_archives_dir() + ":/var/cache/apt/archives",
                       base, "sh", "-ec", BUILD_SCRIPT, check=False)
        if built.returncode != 0:
            raise RuntimeError("installing openssh-server into {0} failed (exit {1}):\n{2}".format(
                base, built.returncode, "\n".join((built.stdout + built.stderr).splitlines()[-20:])))
        podman("commit", "--quiet", "--change", "LABEL=org.ops-runbook.definition=" + name.rsplit(":", 1)[1],
               builder, name)
    finally:
        podman("rm", "-f", builder, check=False)
    listing = podman("images", "--noheading", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY, check=False)
    for stale in listing.stdout.split():
        if stale != name:
            podman("rmi", stale, check=False)  # one a container still uses stays; that is fine


def make_key(workdir):
    """Path of a fresh ed25519 private key in workdir; its public half is beside it (.pub)."""
    path = os.path.join(workdir, KEY_NAME)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops-runbook-fleet-bench", "-f", path],
                   check=True, capture_output=True)
    return path


def start(image, names, workdir, key):
    """Start the hosts with sshd on free loopback ports; returns {name: port}."""
    hostname = socket.gethostname()
    ports = dict(zip(names, free_ports(len(names))))
    config_dir = os.path.join(workdir, "sshd")
    os.makedirs(config_dir, exist_ok=True)
    options = {}
    for name, port in ports.items():
        config = os.path.join(config_dir, name + ".conf")
        with open(config, "w") as handle:
            handle.write(SSHD_CONFIG.format(port=port))
        options[name] = ["--network", "host", "--uts=private",
                         "-v", config + ":/etc/ssh/sshd_config.d/ops-runbook-bench.conf:ro",
                         "-v", key + ".pub:/root/.ssh/authorized_keys:ro"]
    start_hosts(image, names, options)
    if socket.gethostname() != hostname:
        raise RuntimeError("starting the hosts renamed this machine from {0} to {1}".format(
            hostname, socket.gethostname()))
    for name, port in ports.items():
        started = podman("exec", name, "systemctl", "start", "ssh.service", check=False)
        if started.returncode != 0 or not wait_for_port(port, 30):
            status = podman("exec", name, "systemctl", "status", "--no-pager", "ssh.service", check=False)
            raise RuntimeError("sshd did not start in {0} on 127.0.0.1:{1}:\n{2}{3}".format(
                name, port, started.stderr, status.stdout))
    return ports


def inventory(ports, key):
    """The inventory of the hosts, as a dict for JSON."""
    hosts = dict((name, {"ansible_port": port}) for name, port in ports.items())
    return {"all": {"hosts": hosts, "vars": {
        "ansible_connection": "ansible.builtin.ssh", "ansible_host": "127.0.0.1", "ansible_user": "root",
        "ansible_ssh_private_key_file": key, "ansible_ssh_args": SSH_ARGS,
        "ansible_ssh_common_args": SSH_COMMON_ARGS, "ansible_python_interpreter": "/usr/bin/python3"}}}


@contextlib.contextmanager
def connections(workdir):
    """Environment for one ansible-playbook run whose SSH connections are opened by the run and closed after it.

    Each run gets a fresh control socket directory, so every run pays for its own connections, as every AWX job
    (a fresh container) does, and no master outlives the run.
    """
    directory = tempfile.mkdtemp(prefix="cp-", dir=workdir)
    try:
        yield {"ANSIBLE_SSH_CONTROL_PATH_DIR": directory}
    finally:
        for socket_name in os.listdir(directory):
            subprocess.run(["ssh", "-o", "ControlPath=" + os.path.join(directory, socket_name), "-O", "exit",
                            "127.0.0.1"], capture_output=True, check=False, timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
