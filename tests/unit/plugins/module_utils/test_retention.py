import datetime

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.retention import select_for_deletion

NOW = datetime.datetime(2026, 2, 24, 2, 0, tzinfo=datetime.timezone.utc)


def days_ago(*ages):
    return [("set-{0}".format(age), NOW - datetime.timedelta(days=age)) for age in ages]


def test_no_limits_delete_nothing():
    assert select_for_deletion(days_ago(0, 10, 100), NOW) == []


def test_keep_days_deletes_older_sets():
    assert select_for_deletion(days_ago(0, 3, 8, 30), NOW, keep_days=7) == ["set-8", "set-30"]


def test_keep_count_deletes_beyond_count():
    assert select_for_deletion(days_ago(0, 1, 2, 3), NOW, keep_count=2) == ["set-2", "set-3"]


def test_both_limits_keep_what_either_keeps():
    # set-2 is beyond the count but young enough; set-10 is old and beyond the count.
    assert select_for_deletion(days_ago(0, 1, 2, 10), NOW, keep_days=7, keep_count=2) == ["set-10"]


@pytest.mark.parametrize("limits", [{"keep_days": 0}, {"keep_count": 0}, {"keep_days": 0, "keep_count": 0}])
def test_newest_set_survives_any_limit(limits):
    sets = days_ago(40, 20, 9)
    assert select_for_deletion(sets, NOW, **limits) == ["set-20", "set-40"]


def test_order_of_input_does_not_matter():
    assert select_for_deletion(list(reversed(days_ago(0, 8, 9))), NOW, keep_days=7) == ["set-8", "set-9"]


def test_negative_limits_are_refused():
    with pytest.raises(ValueError):
        select_for_deletion(days_ago(0), NOW, keep_days=-1)
