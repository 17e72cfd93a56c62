"""pgbackrest_stanza's decisions, against a fake pgbackrest CLI: which commands run, and which errors stop it.

The real commands against a real repository are tests/integration/test_pgbackrest_stanza_module.py's.
"""
import json

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest_stanza import ensure_stanza

PARAMS = {"pgbackrest_stanza": "main", "pgbackrest_config": "/etc/pgbackrest/pgbackrest.conf", "check": True}


class FakeRepository:
    """`pgbackrest info/stanza-create/check` of one stanza; `repo_error` is a repository status pgBackRest reports."""

    def __init__(self, exists, repo_error=None):
        self.exists = exists
        self.repo_error = repo_error
        self.commands = []

    def __call__(self, argv, timeout=None, env=None):
        command = argv[-2] if argv[-1].startswith("--output") else argv[-1]
        self.commands.append(command)
        if command == "info":
            if self.repo_error:
                status, repo = {"code": 99, "message": "other"}, [{"status": {"code": 99, "message": self.repo_error}}]
            elif self.exists:
                status, repo = {"code": 2, "message": "no valid backups"}, []
            else:
                status = {"code": 1, "message": "missing stanza path"}
                repo = [{"status": dict(status)}]
            return Result(argv, 0, json.dumps([{"name": "main", "status": status, "repo": repo, "cipher": "none",
                                                "backup": [], "archive": []}]), "")
        if command == "stanza-create":
            self.exists = True
        return Result(argv, 0, "", "")


def run(repository, check_mode=False, **params):
    return ensure_stanza(dict(PARAMS, **params), check_mode, lambda line: None,
                         backrest=PgBackRest(dict(PARAMS, **params), runner=repository, euid=1000))


def test_a_missing_stanza_is_created_then_checked():
    repository = FakeRepository(exists=False)
    result = run(repository)
    assert repository.commands == ["info", "stanza-create", "check", "info"]
    assert (result["changed"], result["created"], result["check_passed"]) == (True, True, True)


def test_an_existing_stanza_is_only_checked():
    repository = FakeRepository(exists=True)
    result = run(repository)
    assert repository.commands == ["info", "check", "info"]
    assert (result["changed"], result["created"], result["existed"]) == (False, False, True)


def test_check_mode_reads_and_plans_only():
    repository = FakeRepository(exists=False)
    result = run(repository, check_mode=True)
    assert repository.commands == ["info"]
    assert result["changed"] is True and result["created"] is False and result["check_passed"] is None
    assert result["msg"].startswith("Check mode: would create the stanza main")


def test_check_can_be_left_out():
    repository = FakeRepository(exists=True)
    result = run(repository, check=False)
    assert repository.commands == ["info", "info"]
    assert result["check_passed"] is None and result["plan"] == []


def test_a_repository_it_cannot_read_is_never_taken_for_a_missing_stanza():
    """Wrong keys must fail the task, not lead to a stanza-create into a store that refuses them."""
    repository = FakeRepository(exists=False, repo_error="[HostConnectError] unable to connect to 'localhost:1': "
                                                         "[111] Connection refused")
    with pytest.raises(RunbookError) as raised:
        run(repository)
    assert raised.value.details["cause"] == "s3_unreachable"
    assert repository.commands == ["info"]


class UnsupportedVersion(FakeRepository):
    """pgBackRest 2.45 on a PostgreSQL 16 cluster: `stanza-create` reads pg_control and refuses it."""

    def __call__(self, argv, timeout=None, env=None):
        if argv[-1] == "stanza-create":
            self.commands.append("stanza-create")
            return Result(argv, 46, "", "ERROR: [046]: unexpected control version = 1300 and catalog version = 202307071\n"
                                        "            HINT: is this version of PostgreSQL supported?\n")
        return super().__call__(argv, timeout, env)


def test_a_postgresql_version_pgbackrest_does_not_know_fails_naming_the_versions_and_the_fix():
    repository = UnsupportedVersion(exists=False)
    with pytest.raises(RunbookError) as raised:
        run(repository)
    assert raised.value.details["cause"] == "pg_version_unsupported"
    assert str(raised.value).startswith("This pgBackRest does not support the cluster's PostgreSQL version")
    assert "unexpected control version = 1300" in str(raised.value)
    assert "supports PostgreSQL up to 15" in raised.value.hint and "apt.postgresql.org" in raised.value.hint
    assert repository.commands == ["info", "stanza-create"]
