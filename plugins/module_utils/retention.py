# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backup sets a retention policy deletes. Pure logic, no I/O.

A set is kept while it is among the newest `keep_count` sets OR younger than
`keep_days`; with both limits set, a set goes only when both say it is old.
The newest complete set is never deleted, whatever the limits, and
incomplete sets are never counted as backups.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime


def select_for_deletion(sets, now, keep_days=None, keep_count=None):
    """Return the ids to delete from `sets`, a list of (backup_id, finished_at).

    Only complete sets belong in `sets`. With neither limit set, nothing is deleted.
    """
    if keep_days is None and keep_count is None:
        return []
    if (keep_days is not None and keep_days < 0) or (keep_count is not None and keep_count < 0):
        raise ValueError("retention limits cannot be negative")
    newest_first = sorted(sets, key=lambda item: item[1], reverse=True)
    doomed = []
    for index, (set_id, finished_at) in enumerate(newest_first):
        if index == 0:
            continue
        kept_by_count = keep_count is not None and index < keep_count
        kept_by_age = keep_days is not None and now - finished_at < datetime.timedelta(days=keep_days)
        if not (kept_by_count or kept_by_age):
            doomed.append(set_id)
    return doomed
