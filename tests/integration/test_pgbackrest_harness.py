"""The pgBackRest stack of the harness and the collection's one pgBackRest helper (module_utils/pgbackrest.py),
on real parts: PostgreSQL archiving through pgBackRest 2.45 into SeaweedFS over TLS."""
import os

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pgbackrest import PgBackRest


def test_the_stack_archives_wal_and_lists_its_full_backup(pgbackrest_stack):
    info = PgBackRest(pgbackrest_stack.module_params()).info()
    assert info["status"]["code"] == 0
    assert [backup["type"] for backup in info["backup"]] == ["full"]
    pgbackrest_stack.write_marker("harness")
    segment = pgbackrest_stack.switch_wal()
    assert any(os.path.basename(key).startswith(segment + "-") for key in pgbackrest_stack.wal_keys())


@pytest.mark.parametrize("setting, value, cause, words", [
    ("repo1-s3-key-secret", "a-wrong-secret-value", "s3_credentials", "refused pgBackRest's credentials"),
    ("repo1-s3-bucket", "no-such-bucket-here", "s3_bucket", "bucket of the pgBackRest repository does not exist"),
])
def test_a_repository_it_cannot_read_is_an_error_that_says_what_to_fix(
        pgbackrest_stack, setting, value, cause, words):
    # pgbackrest info exits 0 here and reports the failure in the stanza's status: the helper raises it.
    # The file is in the stack's directory: pytest's tmp_path is private to root, pgBackRest runs as postgres.
    config = pgbackrest_stack.write_config(os.path.join(pgbackrest_stack.base_dir, cause + ".conf"), **{setting: value})
    with pytest.raises(RunbookError) as raised:
        PgBackRest(pgbackrest_stack.module_params(pgbackrest_config=config)).info()
    assert raised.value.details["cause"] == cause
    assert words in str(raised.value)
    assert value not in str(raised.value) or setting != "repo1-s3-key-secret"
    assert pgbackrest_stack.s3.secret_key not in str(raised.value)
