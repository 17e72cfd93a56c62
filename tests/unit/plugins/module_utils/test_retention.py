import datetime

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.catalog import manifest_problem, manifest_time
from ansible_collections.ops.runbook.plugins.module_utils.retention import CLOCK_TOLERANCE, decide, select_for_deletion

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


# -- sets dated in the future, damaged sets (issue 12, defect 1) -------------

def test_a_set_that_finished_in_the_future_is_neither_deleted_nor_counted():
    sets = days_ago(1, 2, 3) + [("future", NOW + datetime.timedelta(days=365 * 70))]
    # Counted as the newest it would push set-1 out with keep_count 1.
    assert select_for_deletion(sets, NOW, keep_days=0, keep_count=1) == ["set-2", "set-3"]


def test_a_set_within_the_clock_tolerance_is_an_ordinary_set():
    almost_now = NOW + CLOCK_TOLERANCE - datetime.timedelta(seconds=1)
    assert select_for_deletion(days_ago(1) + [("skew", almost_now)], NOW, keep_days=0, keep_count=1) == ["set-1"]


def record(set_id, finished_at, started_at=None, valid=True, complete=True, reason=None):
    return {"backup_id": set_id, "location": "/b/" + set_id, "complete": complete, "valid": valid, "reason": reason,
            "started_at": started_at or finished_at, "finished_at": finished_at if valid else None}


def test_decide_orders_by_manifest_end_time_not_by_name():
    # "b-old" sorts after "a-new" by name, but its manifest says it finished earlier.
    records = [record("a-new", NOW - datetime.timedelta(hours=1)), record("b-old", NOW - datetime.timedelta(days=2))]
    assert decide(records, NOW, keep_days=0, keep_count=1)["delete"] == ["b-old"]


def test_decide_reports_a_future_set_and_keeps_every_good_newest_set():
    year_2099 = datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc)
    records = [record("good-1", NOW - datetime.timedelta(hours=1)), record("good-2", NOW - datetime.timedelta(days=1)),
               record("from-2099", year_2099)]
    decision = decide(records, NOW, keep_days=0, keep_count=1)
    assert decision["delete"] == ["good-2"]
    assert decision["keep"] == ["good-1"]
    assert [f["backup_id"] for f in decision["future"]] == ["from-2099"]
    assert "2099-01-01T00:00:00Z" in decision["future"][0]["reason"]
    assert len(decision["warnings"]) == 1 and "/b/from-2099" in decision["warnings"][0]


def test_decide_judges_a_set_whose_name_is_in_the_future_but_whose_manifest_is_not_as_future():
    skewed = record("named-2099", NOW - datetime.timedelta(hours=2),
                    started_at=datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc))
    decision = decide([record("good", NOW), skewed], NOW, keep_days=0, keep_count=1)
    assert decision["delete"] == [] and [f["backup_id"] for f in decision["future"]] == ["named-2099"]
    assert "its name says" in decision["future"][0]["reason"]


def test_decide_never_counts_nor_deletes_an_invalid_set():
    records = [record("damaged", None, started_at=NOW, valid=False, reason="its manifest is not valid"),
               record("good-1", NOW - datetime.timedelta(hours=1)), record("good-2", NOW - datetime.timedelta(days=9))]
    decision = decide(records, NOW, keep_days=7, keep_count=2)
    assert decision["delete"] == [] and decision["keep"] == ["good-1", "good-2"]
    assert decision["invalid"] == [{"backup_id": "damaged", "location": "/b/damaged",
                                    "reason": "its manifest is not valid"}]
    assert "not a valid backup: its manifest is not valid" in decision["warnings"][0]


def test_decide_leaves_incomplete_sets_to_the_caller():
    decision = decide([record("running", None, started_at=NOW, complete=False, valid=False), record("good", NOW)],
                      NOW, keep_count=0, keep_days=0)
    assert decision == {"delete": [], "keep": ["good"], "invalid": [], "future": [], "warnings": []}


def test_decide_with_only_invalid_and_future_sets_deletes_nothing():
    records = [record("bad", None, started_at=NOW, valid=False, reason="x"),
               record("future", NOW + datetime.timedelta(hours=1))]
    assert decide(records, NOW, keep_days=0, keep_count=0)["delete"] == []


# -- what makes a manifest fit its set ---------------------------------------

def good_manifest(**changes):
    document = {"backup_id": "db-20260224T020000Z", "database": "db", "finished_at": "2026-02-24T02:01:00Z",
                "dump_file": "db.dump.zst", "size_bytes": 10,
                "files": [{"name": "db.dump.zst", "role": "dump", "size": 10, "sha256": "0" * 64}]}
    document.update(changes)
    return document


def test_a_fitting_manifest_has_no_problem():
    assert manifest_problem(good_manifest(), "db", "db-20260224T020000Z") is None
    assert manifest_time("2026-02-24T02:01:00Z") == datetime.datetime(2026, 2, 24, 2, 1, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("changes,words", [
    ({"backup_id": "db-20250101T000000Z"}, "belongs to another set"),
    ({"database": "other"}, "another database"),
    ({"finished_at": "yesterday"}, "finished_at"),
    ({"finished_at": "2026-02-24T02:01:00"}, "finished_at"),  # no time zone: cannot be ordered safely
    ({"finished_at": None}, "finished_at"),
    ({"dump_file": "../../etc/passwd"}, "no dump file"),
    ({"dump_file": None}, "no dump file"),
    ({"size_bytes": "10"}, "dump size"),
    ({"size_bytes": -1}, "dump size"),
    ({"size_bytes": True}, "dump size"),
    ({"files": []}, "does not hold the dump"),
    ({"files": "db.dump.zst"}, "does not hold the dump"),
    ({"size_bytes": 11}, "does not hold the dump"),
])
def test_a_manifest_that_does_not_fit_its_set_says_why(changes, words):
    assert words in manifest_problem(good_manifest(**changes), "db", "db-20260224T020000Z")
