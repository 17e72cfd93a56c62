"""pgbackrest_stanza on real parts: PostgreSQL archiving through pgBackRest 2.45 into SeaweedFS over TLS.

The module creates a stanza only when the repository lacks it (a second run changes nothing), proves the
archive with `pgbackrest check`, plans without touching anything in check mode, and fails with a sentence
that names the cause and the fix when the store refuses the keys or does not answer, while PostgreSQL
keeps running and the secret stays out of the output.
"""
import json
import os
import shutil
import socket

import pytest
from conftest import ansible_module, module_result

from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest import PgBackRest


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def stack(pgbackrest_stack_factory):
    """A stack of its own: the tests add a stanza to its repository and write markers."""
    return pgbackrest_stack_factory(stanza="stanzamod")


def stanza_module(stack, *flags, **overrides):
    run = ansible_module("ops.runbook.pgbackrest_stanza", stack.module_params(pgbackrest_timeout=120, **overrides),
                         *flags)
    return run, module_result(run)


def fresh_stanza_config(stack, name):
    """The stack's configuration with its stanza section renamed: a stanza the repository does not hold yet.

    WAL of the cluster keeps going to the stack's own stanza, so `pgbackrest check` can only pass there;
    the new stanza is created without it (the molecule scenario proves create-then-check on a fresh host).
    """
    with open(stack.config_path) as handle:
        text = handle.read().replace("[{}]".format(stack.stanza), "[{}]".format(name))
    path = os.path.join(stack.base_dir, name + ".conf")
    with open(path, "w") as handle:
        handle.write(text)
    shutil.copymode(stack.config_path, path)
    shutil.copystat(stack.config_path, path)
    os.chown(path, os.stat(stack.config_path).st_uid, os.stat(stack.config_path).st_gid)
    return path


def stanza_status(stack, config, name):
    backrest = PgBackRest(stack.module_params(pgbackrest_stanza=name, pgbackrest_config=config))
    listed = json.loads(backrest.run("info", "--output=json").stdout)
    return listed[0]["status"]


def test_an_existing_stanza_is_checked_and_left_alone(stack):
    run, result = stanza_module(stack)
    assert run.returncode == 0, run.stdout
    assert (result["changed"], result["existed"], result["created"], result["check_passed"]) == (False, True, False, True)
    assert result["info"]["wal_max"]


def test_a_missing_stanza_is_planned_in_check_mode_then_created_once(stack):
    config = fresh_stanza_config(stack, "fresh")
    assert stanza_status(stack, config, "fresh")["code"] == 1

    run, planned = stanza_module(stack, "--check", pgbackrest_stanza="fresh", pgbackrest_config=config)
    assert run.returncode == 0, run.stdout
    assert (planned["changed"], planned["existed"], planned["created"], planned["check_passed"]) == (True, False, False, None)
    assert planned["plan"] == ["create the stanza fresh in the repository (pgbackrest stanza-create)",
                               "check that WAL reaches the repository (pgbackrest check)"]
    assert stanza_status(stack, config, "fresh")["code"] == 1, "check mode created the stanza"

    run, created = stanza_module(stack, pgbackrest_stanza="fresh", pgbackrest_config=config, check=False)
    assert run.returncode == 0, run.stdout
    assert (created["changed"], created["existed"], created["created"], created["check_passed"]) == (True, False, True, None)
    assert created["info"]["status"] == {"code": 2, "message": "no valid backups"}
    assert stanza_status(stack, config, "fresh")["code"] == 2

    run, again = stanza_module(stack, pgbackrest_stanza="fresh", pgbackrest_config=config, check=False)
    assert run.returncode == 0, run.stdout
    assert (again["changed"], again["existed"], again["created"]) == (False, True, False)


# pgBackRest retries a connection for about four times io-timeout (60 s by default) before it gives up; 2 s keeps
# the "store is down" case short.
@pytest.mark.parametrize("fault, settings, cause_words", [
    ("wrong-secret", {"repo1-s3-key-secret": "a-wrong-secret-0123456789"}, "refused pgBackRest's credentials"),
    ("store-down", {"repo1-storage-port": None, "io-timeout": "2"}, "does not answer"),
])
def test_a_store_it_cannot_use_fails_clearly_and_postgresql_keeps_running(stack, fault, settings, cause_words):
    settings = {key: value or str(free_port()) for key, value in settings.items()}  # no store on a free port
    config = stack.write_config(os.path.join(stack.base_dir, fault + ".conf"), **settings)
    postmaster = stack.pg.pid()
    run, result = stanza_module(stack, pgbackrest_config=config)
    assert run.returncode != 0
    assert result["failed"] is True
    assert cause_words in result["msg"], result["msg"]
    assert stack.s3.secret_key not in run.stdout
    assert "a-wrong-secret-0123456789" not in run.stdout
    # PostgreSQL was not stopped or restarted, and still archives into the working repository.
    assert stack.pg.pid() == postmaster
    stack.write_marker("after-" + fault)
    stack.switch_wal()
    PgBackRest(stack.module_params()).run("check")
