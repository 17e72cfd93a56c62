# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backup sets a retention policy deletes. Pure logic, no I/O.

A set is kept while it is among the newest `keep_count` sets OR younger than
`keep_days`; with both limits set, a set goes only when both say it is old.
Sets are ordered by their manifest's end time, never by their names.

Only valid sets count: complete (manifest present), the manifest readable and
naming the set and database it sits in, the dump there with the manifest's
size (catalog.valid_sets decides that). The newest valid set is never
deleted, whatever the limits. A set that is not valid is never counted and
never deleted: it is reported, for a person to look at. A set dated in the
future (its id's time or its manifest's end time later than now plus
CLOCK_TOLERANCE: a host with a skewed clock, or a forged or damaged set) is
reported too, and neither deleted nor used to judge the others, so it can
neither push good sets out nor take a place among the kept ones.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

# How far ahead of this host's clock a set may be dated before it counts as
# "in the future": clocks of hosts sharing a prefix drift by seconds, not minutes.
CLOCK_TOLERANCE = datetime.timedelta(minutes=5)


def is_future(moment, now, tolerance=CLOCK_TOLERANCE):
    """Whether `moment` (an aware datetime, or None) lies beyond `now` plus the tolerance."""
    return moment is not None and moment > now + tolerance


def select_for_deletion(sets, now, keep_days=None, keep_count=None, tolerance=CLOCK_TOLERANCE):
    """Return the ids to delete from `sets`, a list of (backup_id, finished_at).

    Only valid sets belong in `sets`. With neither limit set, nothing is deleted.
    A set that finished in the future is neither deleted nor counted.
    """
    if (keep_days is not None and keep_days < 0) or (keep_count is not None and keep_count < 0):
        raise ValueError("retention limits cannot be negative")
    if keep_days is None and keep_count is None:
        return []
    present = [item for item in sets if not is_future(item[1], now, tolerance)]
    newest_first = sorted(present, key=lambda item: (item[1], item[0]), reverse=True)
    doomed = []
    for index, (set_id, finished_at) in enumerate(newest_first):
        if index == 0:
            continue
        kept_by_count = keep_count is not None and index < keep_count
        kept_by_age = keep_days is not None and now - finished_at < datetime.timedelta(days=keep_days)
        if not (kept_by_count or kept_by_age):
            doomed.append(set_id)
    return doomed


def _stamp(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def future_reason(record, now, tolerance=CLOCK_TOLERANCE):
    """Why a set is dated in the future, or None. `record` as catalog.valid_sets returns it."""
    for label, moment in (("its name says it started", record.get("started_at")),
                          ("its manifest says it finished", record.get("finished_at"))):
        if is_future(moment, now, tolerance):
            return "{0} at {1}, later than this host's clock ({2}) allows".format(label, _stamp(moment), _stamp(now))
    return None


def decide(records, now, keep_days=None, keep_count=None, tolerance=CLOCK_TOLERANCE):
    """Retention's whole answer for one place, from catalog.valid_sets records.

    Returns {"delete": [ids], "keep": [ids], "invalid": [...], "future": [...], "warnings": [sentences]},
    where invalid and future list {"backup_id", "location", "reason"}. Incomplete sets (no manifest)
    are left to the caller, as before: they are neither counted nor deleted here.
    """
    invalid, future, valid = [], [], []
    for record in records:
        if not record.get("complete"):
            continue
        if not record.get("valid"):
            invalid.append(_report(record, record.get("reason") or "it is not a valid backup set"))
            continue
        reason = future_reason(record, now, tolerance)
        if reason:
            future.append(_report(record, reason))
            continue
        valid.append(record)
    delete = select_for_deletion([(r["backup_id"], r["finished_at"]) for r in valid], now, keep_days, keep_count,
                                 tolerance)
    keep = [r["backup_id"] for r in sorted(valid, key=lambda r: (r["finished_at"], r["backup_id"]), reverse=True)
            if r["backup_id"] not in delete]
    warnings = ["Backup set {0} is dated in the future: {1}. Retention neither deletes it nor counts it; check the "
                "clock of the host that wrote it, then keep or delete it by hand.".format(item["location"],
                                                                                          item["reason"])
                for item in future]
    warnings += ["Backup set {0} is not a valid backup: {1}. Retention neither counts it nor deletes it; inspect "
                 "it and delete it by hand.".format(item["location"], item["reason"]) for item in invalid]
    return {"delete": delete, "keep": keep, "invalid": sorted(invalid, key=lambda i: i["backup_id"]),
            "future": sorted(future, key=lambda i: i["backup_id"]), "warnings": warnings}


def _report(record, reason):
    return {"backup_id": record["backup_id"], "location": record.get("location") or record["backup_id"],
            "reason": reason}
