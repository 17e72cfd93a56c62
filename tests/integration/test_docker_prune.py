"""disk_cleanup's docker rule on the real private dockerd: it frees what check mode predicted, never volumes.

The engine is the session's (tests/integration/conftest.py `docker_engine`). The test leaves stopped containers
with data in their writable layers, a dangling image (the same tag built twice, each build with its own random
layer) and a named volume with data, next to a running container whose image must stay.
"""
import uuid

from harness.docker import BUSYBOX_IMAGE
from conftest import ansible_module, module_result

# Docker prints every size to three or four significant digits (`2.1MB` in `system df -v`, `2.097MB` in
# `Total reclaimed space`): each item may differ by up to 0.5 % between the two, so 2 % (plus 10 kB for
# sizes printed in whole kB) covers the rounding and nothing else.
TOLERANCE = 0.02
SLACK_BYTES = 10000


def run_cleanup(engine, *flags):
    args = dict(engine.params(), rules=[{"name": "docker", "type": "docker"}])
    result = module_result(ansible_module("ops.runbook.disk_cleanup", args, *flags, env=engine.env))
    assert not result.get("failed"), result.get("msg")
    return result["rules"][0]


def test_prune_frees_what_check_mode_predicted_and_never_touches_volumes(docker_engine, tmp_path):
    engine = docker_engine
    tag = "localhost/prune-junk-{0}:1".format(uuid.uuid4().hex[:8])
    volume = "prune-data-{0}".format(uuid.uuid4().hex[:8])
    running = "prune-keeper-{0}".format(uuid.uuid4().hex[:8])
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM {0}\nRUN head -c 3000000 /dev/urandom > /blob\n".format(BUSYBOX_IMAGE))
    first = engine.docker("build", "-q", "-t", tag, str(context), timeout=120).stdout.strip().splitlines()[-1]
    second = engine.docker("build", "-q", "--no-cache", "-t", tag, str(context), timeout=120).stdout.strip().splitlines()[-1]
    assert first != second
    stopped = []
    for index in range(2):
        name = "prune-stopped-{0}-{1}".format(index, uuid.uuid4().hex[:6])
        engine.docker("run", "--name", name, BUSYBOX_IMAGE, "sh", "-c", "head -c 1500000 /dev/urandom > /junk")
        stopped.append(name)
    engine.docker("volume", "create", volume)
    engine.docker("run", "--rm", "-v", volume + ":/data", BUSYBOX_IMAGE, "sh", "-c",
                  "echo precious > /data/keep; head -c 1000000 /dev/urandom > /data/big")
    engine.docker("run", "-d", "--name", running, tag, "sleep", "600")
    try:
        plan = run_cleanup(engine, "--check")
        assert plan["action"] == "would prune"
        planned_containers = {item["name"] for item in plan["containers"]}
        assert set(stopped) <= planned_containers and running not in planned_containers
        assert first in {item["id"] for item in plan["images"]}
        assert second not in {item["id"] for item in plan["images"]}
        assert plan["bytes"] >= 2 * 1500000 + 3000000
        # check mode changed nothing
        assert engine.docker("ps", "-a", "-q", "--filter", "name=" + stopped[0]).stdout.strip()

        done = run_cleanup(engine)
        assert done["action"] == "pruned"
        assert abs(done["bytes"] - plan["bytes"]) <= TOLERANCE * plan["bytes"] + SLACK_BYTES, (done, plan)
        for name in stopped:
            assert not engine.docker("ps", "-a", "-q", "--filter", "name=^{0}$".format(name)).stdout.strip()
        assert engine.docker("image", "inspect", first, check=False).returncode != 0
        # the image in use and the volume with its data are untouched
        assert engine.docker("image", "inspect", tag).returncode == 0
        assert engine.docker("inspect", "--format", "{{.State.Running}}", running).stdout.strip() == "true"
        assert engine.docker("volume", "inspect", volume).returncode == 0
        data = engine.docker("run", "--rm", "-v", volume + ":/data", BUSYBOX_IMAGE, "sh", "-c",
                             "cat /data/keep; wc -c < /data/big").stdout.split()
        assert data == ["precious", "1000000"]
        assert "volume" not in done["command"]
    finally:
        engine.docker("rm", "-f", running, *stopped, check=False)
        engine.docker("volume", "rm", "-f", volume, check=False)
        engine.docker("rmi", "-f", tag, check=False)
