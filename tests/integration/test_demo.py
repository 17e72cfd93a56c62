"""scripts/demo --keep-running stops its servers on SIGTERM and leaves nothing in the shared /tmp."""
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from conftest import ROOT

READY = re.compile(r"ready: PostgreSQL \(pid (\d+)\) and S3 \(pid (\d+)\) keep running")
SYSTEM_TMP = "/tmp"


def alive(pid):
    """A process that exists and is not a zombie waiting for a parent that will never reap it."""
    try:
        with open("/proc/{0}/stat".format(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_until_ready(proc, timeout):
    """The demo's output up to its ready line, and the PostgreSQL and S3 pids it names.

    Reads the pipe's bytes as they come (os.read), never through a buffered readline: a readline
    after select() can take several lines into Python's buffer, and the ready line left there
    would never wake select() again.
    """
    received = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=1):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            received += chunk.decode("utf-8", "replace")
            ready = READY.search(received)
            if ready:
                return received, int(ready.group(1)), int(ready.group(2))
    raise AssertionError("scripts/demo never said it was ready:\n" + received[-3000:])


def weed_ports(pid):
    """The ports of the demo's SeaweedFS, from its command line: weed names the sockets it puts in /tmp by them."""
    with open("/proc/{0}/cmdline".format(pid)) as handle:
        args = handle.read().split("\0")
    return {arg.split("=", 1)[1] for arg in args if re.match(r"-[a-z0-9.]*port[a-z.]*=[1-9]\d*$", arg)}


@pytest.fixture
def private_dirs():
    """A TMPDIR for the demo and a demo directory, both in this run's temp dir; PostgreSQL must reach the latter."""
    tmpdir = tempfile.mkdtemp(prefix="demo-tmp-")
    demo_dir = tempfile.mkdtemp(prefix="demo-")
    os.chmod(demo_dir, 0o755)
    yield tmpdir, demo_dir
    shutil.rmtree(tmpdir, ignore_errors=True)
    shutil.rmtree(demo_dir, ignore_errors=True)


def test_demo_stops_its_servers_on_sigterm_and_leaves_nothing_in_tmp(private_dirs):
    tmpdir, demo_dir = private_dirs
    before = set(os.listdir(SYSTEM_TMP))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["TMPDIR"] = tmpdir
    proc = subprocess.Popen([os.path.join(ROOT, "scripts", "demo"), "--keep-running", "--scale", "1",
                             "--demo-dir", demo_dir], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, pg_pid, s3_pid = read_until_ready(proc, timeout=600)
        assert "Backup bmidb-" in output
        assert alive(pg_pid) and alive(s3_pid)
        # PostgreSQL names its socket and lock file by its port.
        ports = weed_ports(s3_pid) | set(re.findall(r"starting PostgreSQL on 127\.0\.0\.1:(\d+)", output))
        # The demo's own temp dir is in the TMPDIR it was given, not in /tmp.
        assert [entry for entry in os.listdir(tmpdir) if entry.startswith("ops-runbook-demo-")]

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest, _stderr = proc.communicate(timeout=60)
        assert time.monotonic() - started < 30, "the demo took {0:.0f} s to stop".format(time.monotonic() - started)
        assert proc.returncode == 0, output + rest
        assert "stopping PostgreSQL and S3" in rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    deadline = time.monotonic() + 10
    while (alive(pg_pid) or alive(s3_pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pg_pid) and not alive(s3_pid)
    assert os.listdir(tmpdir) == []
    # Other processes may write to /tmp meanwhile: only what bears the demo's names counts.
    gained = set(os.listdir(SYSTEM_TMP)) - before
    demo_names = [name for name in gained
                  if name.startswith("ops-runbook-demo-")
                  or name.endswith(".{0}".format(s3_pid))
                  or any(re.search(r"\b{0}\b".format(port), name) for port in ports)]
    assert not demo_names, "scripts/demo left in /tmp: {0}".format(sorted(demo_names))
