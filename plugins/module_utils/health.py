# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one health vocabulary: pass / warn / fail.

Every check, whatever it looks at, is a dict with the check's name, its
status, the observed value, the threshold it was held against and a sentence
for a person. Reports (JSON, Prometheus, Markdown, Nagios) render these.

A check that could not be made (no systemd, no journal, no permission, an
extension that is not installed) is never a pass: `unchecked` makes it a
`fail` marked `unchecked: true`, whose sentence says what could not be
checked, why, and what to do. Reports and playbooks tell these apart from
measured failures by that field.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

PASS = "pass"
WARN = "warn"
FAIL = "fail"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}


def check(name, status, observed, threshold, output, unit=None, **facts):
    if status not in _RANK:
        raise ValueError("unknown health status {0!r}".format(status))
    result = {"name": name, "status": status, "observed_value": observed, "threshold": threshold, "output": output}
    if unit:
        result["observed_unit"] = unit
    result.update(facts)
    return result


def unchecked(name, output, observed=None, threshold=None, unit=None, **facts):
    """A check that could not be made: `fail`, marked `unchecked`, `output` saying what, why and what to do."""
    return check(name, FAIL, observed, threshold, output, unit=unit, unchecked=True, **facts)


def not_checked(checks):
    """The checks that could not be made (marked `unchecked`)."""
    return [item for item in checks if item.get("unchecked")]


def worst(checks):
    """The overall status of a list of checks (pass when there are none)."""
    status = PASS
    for item in checks:
        if _RANK[item["status"]] > _RANK[status]:
            status = item["status"]
    return status


def counts(checks):
    tally = {PASS: 0, WARN: 0, FAIL: 0}
    for item in checks:
        tally[item["status"]] += 1
    return tally


def at_least(status, level):
    """True when `status` is as bad as `level` or worse (a task's fail_on: fail, warn)."""
    return _RANK[status] >= _RANK[level]
