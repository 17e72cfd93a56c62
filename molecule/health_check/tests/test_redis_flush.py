"""redis_flush.yml on a real Debian host: Debian's redis-server and python3-redis, over the podman connection.

tests/integration/test_redis_flush.py proves the engine against redis-servers on the
controller; this proves the role where it runs in production - on the cache host,
with the distribution's Redis library - and that it deletes nothing without the opt-in.
"""
import json
import os

import pytest
import testinfra.utils.ansible_runner
from harness.playbook import run_playbook

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = ["podman://" + name for name in RUNNER.get_hosts("all")]

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
PLAYBOOK = os.path.join(PROJECT, "playbooks", "redis_flush.yml")
CACHE = RUNNER.get_hosts("redis_servers")[0]
FLUSHED_DB, KEPT_DB = 3, 0


def flush(tmp_path, *args, **variables):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"redis_servers": {"hosts": {CACHE: {
        "ansible_connection": "containers.podman.podman", "ansible_host": CACHE}}}}}}))
    return run_playbook(PLAYBOOK, variables, str(inventory), *args)


def keys(host, db):
    return int(host.check_output("redis-cli -n %s DBSIZE", str(db)))


@pytest.fixture
def cache_host(tmp_path):
    host = testinfra.get_host("podman://" + CACHE)
    host.run_expect([0], "systemctl start redis-server")
    for db in (FLUSHED_DB, KEPT_DB):
        host.run_expect([0], "redis-cli -n %s FLUSHDB", str(db))
        for index in range(5):
            host.run_expect([0], "redis-cli -n %s SET molecule:%s %s", str(db), str(index), str(index))
    return host


def test_without_the_opt_in_nothing_is_deleted(cache_host, tmp_path):
    code, output = flush(tmp_path, redis_flush_db=FLUSHED_DB)
    assert code != 0, output
    assert "Add -e redis_flush_confirm=true to flush" in output
    assert keys(cache_host, FLUSHED_DB) == 5


def test_check_mode_counts_the_keys_and_deletes_nothing(cache_host, tmp_path):
    code, output = flush(tmp_path, "--check", redis_flush_db=FLUSHED_DB)
    assert code == 0, output
    assert keys(cache_host, FLUSHED_DB) == 5
    assert "Would run FLUSHDB ASYNC on Redis at localhost:6379: database 3 holds 5 keys" in output, output


def test_the_confirmed_flush_empties_that_database_only(cache_host, tmp_path):
    code, output = flush(tmp_path, redis_flush_db=FLUSHED_DB, redis_flush_confirm=True)
    assert code == 0, output
    assert "database 3 went from 5 keys to 0" in output, output
    assert keys(cache_host, FLUSHED_DB) == 0
    assert keys(cache_host, KEPT_DB) == 5
