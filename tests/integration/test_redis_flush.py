"""redis_flush.yml and the flush engine against real redis-servers."""
import uuid

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.redis_flush import run_flush

from conftest import ansible_playbook

DB0_KEYS = 50
DB1_KEYS = 30


@pytest.fixture
def cache(start_redis):
    """A server with a password no other test uses, DB0_KEYS keys in db 0 and DB1_KEYS in db 1."""
    server = start_redis(password="Redis-" + uuid.uuid4().hex, settings={"maxmemory": "16mb"})
    for db, count in ((0, DB0_KEYS), (1, DB1_KEYS)):
        client = server.client(db)
        for number in range(count):
            client.set("db{0}:key:{1}".format(db, number), number)
    return server


def key_counts(server):
    return server.client(0).dbsize(), server.client(1).dbsize()


def playbook_vars(server, **extra):
    options = {"redis_flush_hosts": "localhost", "redis_host": server.host, "redis_port": server.port,
               "redis_password": server.password}
    options.update(extra)
    return options


def output(run):
    return run.stdout + run.stderr


def test_without_the_opt_in_nothing_is_deleted(cache):
    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_db=1))
    assert run.returncode != 0
    assert "Add -e redis_flush_confirm=true to flush" in output(run)
    assert "deletes every key in database 1" in output(run)
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)

    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_db=1, redis_flush_confirm=False))
    assert run.returncode != 0
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)


def test_check_mode_counts_and_deletes_nothing(cache):
    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_db=1), "--check")
    assert run.returncode == 0, output(run)
    assert "Would run FLUSHDB ASYNC on Redis at 127.0.0.1:{0}: database 1 holds {1} keys".format(
        cache.port, DB1_KEYS) in run.stdout
    assert "db0={0}, db1={1}".format(DB0_KEYS, DB1_KEYS) in run.stdout
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)


def test_flushes_exactly_the_named_database_and_never_shows_the_password(cache):
    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_db=1, redis_flush_confirm=True),
                           "-vvv")
    assert run.returncode == 0, output(run)
    assert key_counts(cache) == (DB0_KEYS, 0)
    assert "database 1 went from {0} keys to 0".format(DB1_KEYS) in run.stdout
    assert "Databases with keys now: db0={0}".format(DB0_KEYS) in run.stdout
    assert "changed: [localhost]" in run.stdout
    assert cache.password not in output(run)

    again = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_db=1, redis_flush_confirm=True))
    assert again.returncode == 0, output(again)
    assert "database 1 went from 0 keys to 0" in again.stdout
    assert "changed=0" in again.stdout


def test_the_database_must_be_named(cache):
    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_confirm=True))
    assert run.returncode != 0
    assert "Name the database to flush with -e redis_flush_db=NUMBER" in output(run)
    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_db="one", redis_flush_confirm=True))
    assert run.returncode != 0
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)


def test_every_database_only_with_its_own_opt_in(cache):
    run = ansible_playbook("redis_flush.yml", playbook_vars(
        cache, redis_flush_db=1, redis_flush_all_databases=True, redis_flush_confirm=True))
    assert run.returncode != 0
    assert "drop one of them" in output(run)
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)

    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_flush_all_databases=True))
    assert run.returncode != 0
    assert "deletes every key in every database" in output(run)
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)

    run = ansible_playbook("redis_flush.yml", playbook_vars(
        cache, redis_flush_all_databases=True, redis_flush_confirm=True))
    assert run.returncode == 0, output(run)
    assert "Ran FLUSHALL ASYNC" in run.stdout and "every database went from {0} keys to 0".format(
        DB0_KEYS + DB1_KEYS) in run.stdout
    assert key_counts(cache) == (0, 0)


def test_the_connection_s_database_is_not_the_one_flushed(cache):
    """redis_db (ops.runbook.redis, for the health check) never chooses what a flush empties."""
    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_db=2, redis_flush_db=1,
                                                            redis_flush_confirm=True))
    assert run.returncode == 0, output(run)
    assert key_counts(cache) == (DB0_KEYS, 0)

    run = ansible_playbook("redis_flush.yml", playbook_vars(cache, redis_db=1, redis_flush_all_databases=True,
                                                            redis_flush_confirm=True))
    assert run.returncode == 0, output(run)
    assert "Ran FLUSHALL ASYNC" in run.stdout
    assert key_counts(cache) == (0, 0)


def test_a_wrong_password_fails_clearly_and_deletes_nothing(cache):
    run = ansible_playbook("redis_flush.yml", dict(playbook_vars(cache, redis_flush_db=1, redis_flush_confirm=True),
                                                   redis_password="Wrong-" + uuid.uuid4().hex))
    assert run.returncode != 0
    assert "rejected the password of the default user" in output(run)
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)


def test_a_replica_is_refused_with_its_master_named(cache, start_redis):
    replica = start_redis(password=cache.password, replicaof=(cache.host, cache.port),
                          master_password=cache.password)
    with pytest.raises(RunbookError) as refused:
        run_flush(replica.params(db=1))
    assert refused.value.details["cause"] == "read_only"
    assert "is a replica of 127.0.0.1:{0}".format(cache.port) in str(refused.value)
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)


def test_a_database_beyond_the_server_s_databases_is_named(cache):
    with pytest.raises(RunbookError) as missing:
        run_flush(cache.params(db=16))
    assert missing.value.details["cause"] == "invalid_db"
    assert "Database 16 does not exist" in str(missing.value)


def test_an_empty_database_is_no_change(cache):
    result = run_flush(cache.params(db=5))
    assert result["changed"] is False and result["keys_before"] == 0 and result["flushed"] is True
    assert key_counts(cache) == (DB0_KEYS, DB1_KEYS)
