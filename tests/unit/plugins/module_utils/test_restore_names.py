"""Names restore makes from a database's name stay within PostgreSQL's 63 bytes and never equal it."""
import datetime

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import pg_restore as restore

MOMENT = datetime.datetime(2026, 2, 24, 2, 0, 5)


@pytest.mark.parametrize("target", ["bmidb", "x" * 63, "\u00e9" * 31 + "x", "\u6570" * 21, "a b 'c'"])
def test_the_replaced_databases_name_fits_and_differs_from_the_target(target):
    previous = restore._previous_name(target, MOMENT)
    assert len(previous.encode("utf-8")) <= 63
    assert previous != target and previous.endswith("_pre_restore_20260224020005")
    assert target.startswith(previous[:-len("_pre_restore_20260224020005")])
