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

Thresholds have one model, `Limits`, that every check engine uses. Each engine
declares its known thresholds (`Limit`: default warn and fail levels, and
which way is worse); the caller's `{name: {warn: X, fail: Y}}` is laid over
them:
- shape: every threshold is a mapping with `warn` and/or `fail`; a check may
  have only one of them. `null` switches a level off. A bare number is refused,
  since it cannot say which level it sets.
- merge: a given level replaces only that level (`{warn: 70}` keeps the
  default fail limit).
- order: the merged warn limit must not be beyond the fail limit in the
  threshold's direction (a check warns before it fails); equal is allowed.
- boundary: a value breaches a limit only when it is strictly beyond it, as
  the runbooks' "alert above 80 %" says: 80 % is within a limit of 80, 80.1 %
  breaches it. For a threshold where lower is worse (cache hit rate,
  certificate days left) 30 days left is within a limit of 30, 29.9 breach it.
- names: a threshold the engine does not know is refused, and the error lists
  the ones it knows.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .common import RunbookError

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


# -- thresholds ------------------------------------------------------------

HIGHER = "higher"  # a larger value is worse: disk use, latency, lag
LOWER = "lower"  # a smaller value is worse: cache hit rate, days a certificate has left
LEVELS = ("warn", "fail")


class Limit(object):
    """One threshold an engine knows: its default levels and which way is worse.

    `spelled` names the levels in error messages when they are module options
    of their own (`{"warn": "warn_days", "fail": "fail_days"}`).
    """

    def __init__(self, warn=None, fail=None, worse=HIGHER, spelled=None):
        if worse not in (HIGHER, LOWER):
            raise ValueError("worse must be {0!r} or {1!r}, not {2!r}".format(HIGHER, LOWER, worse))
        self.warn = warn
        self.fail = fail
        self.worse = worse
        self.spelled = spelled or {}


def beyond(observed, limit, worse=HIGHER):
    """True when `observed` breaches `limit`: strictly beyond it. A value equal to the limit does not breach it."""
    if observed is None or limit is None:
        return False
    return observed > limit if worse == HIGHER else observed < limit


def grade(observed, levels, worse=HIGHER):
    """pass / warn / fail of `observed` against {"warn": x, "fail": y} (a level None or missing never breaches).

    An observed value of None (nothing measured yet) passes; a check that
    could not be made is `unchecked`, not graded.
    """
    if beyond(observed, levels.get("fail"), worse):
        return FAIL
    if beyond(observed, levels.get("warn"), worse):
        return WARN
    return PASS


def levels_of(threshold):
    """(warn, fail) numbers of a check's reported threshold, each None when it has none.

    A threshold is a dict with `warn` and/or `fail`, one number (the one limit,
    read as the fail level: min_free_bytes, max_age_hours), or anything else (a
    string such as "decompresses and lists"), which has no numbers.
    """
    if isinstance(threshold, dict):
        return plain_number(threshold.get("warn")), plain_number(threshold.get("fail"))
    return None, plain_number(threshold)


def plain_number(value):
    """`value` as a float when it is a plain number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _as_number(value, label):
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                pass
    raise RunbookError("{0} must be a number, not {1!r}.".format(label, value), cause="invalid")


class Limits(object):
    """The thresholds of one engine: the `known` Limits with the caller's `overrides` laid over them.

    `option` is the module option the overrides come from ("thresholds"; empty
    when each threshold is an option of its own), used to name them in errors;
    `context` starts every error ("Endpoint api: ").
    """

    def __init__(self, known, overrides=None, option="thresholds", context=""):
        self.known = known
        self.option = option
        self.context = context
        self._levels = dict((name, {"warn": limit.warn, "fail": limit.fail}) for name, limit in known.items())
        overrides = {} if overrides is None else overrides
        if not isinstance(overrides, dict):
            raise RunbookError("{0}{1} must be a mapping of threshold names to {{warn: X, fail: Y}}, not {2!r}.".format(
                context, option or "thresholds", overrides), hint=self._known_names(), cause="invalid")
        unknown = sorted(str(name) for name in overrides if name not in known)
        if unknown:
            raise RunbookError("{0}Unknown threshold{1} {2}{3}.".format(
                context, "s" if len(unknown) > 1 else "", ", ".join(unknown),
                " in {0}".format(option) if option else ""), hint=self._known_names(), cause="invalid")
        for name in sorted(overrides):
            self._levels[name].update(self._given(name, overrides[name]))
            self._check_order(name)

    def _known_names(self):
        return "Known thresholds: {0}.".format(", ".join(sorted(self.known)))

    def label(self, name, level=None):
        """How the caller wrote a threshold or one of its levels: thresholds.disk_used_percent.warn, warn_days."""
        if level is not None and level in self.known[name].spelled:
            return self.known[name].spelled[level]
        parts = [part for part in (self.option, name, level) if part]
        return ".".join(parts)

    def _given(self, name, value):
        if not isinstance(value, dict):
            raise RunbookError("{0}{1} must be a mapping with warn and/or fail, not {2!r}.".format(
                self.context, self.label(name), value),
                hint="Write {warn: X, fail: Y}; a level left out keeps its default, null switches it off.",
                cause="invalid")
        extra = sorted(str(level) for level in value if level not in LEVELS)
        if extra:
            raise RunbookError("{0}{1} has unknown level{2} {3}: use warn and fail.".format(
                self.context, self.label(name), "s" if len(extra) > 1 else "", ", ".join(extra)), cause="invalid")
        return dict((level, _as_number(value[level], self.context + self.label(name, level))) for level in value)

    def _check_order(self, name):
        warn, fail = self._levels[name]["warn"], self._levels[name]["fail"]
        if beyond(warn, fail, self.known[name].worse):
            worse = self.known[name].worse
            raise RunbookError(
                "{0}{1} ({2:g}) is {3} {4} ({5:g}).".format(
                    self.context, self.label(name, "warn"), warn, "above" if worse == HIGHER else "below",
                    self.label(name, "fail"), fail),
                hint="A check warns before it fails: a {0} {1} is worse, so {2} must be {3} {4}.".format(
                    "higher" if worse == HIGHER else "lower", name, self.label(name, "warn"),
                    "at most" if worse == HIGHER else "at least", self.label(name, "fail")),
                cause="invalid")

    def __getitem__(self, name):
        """{"warn": x, "fail": y} of a threshold, a level None when it is off."""
        return dict(self._levels[name])

    def grade(self, name, observed):
        """pass / warn / fail of `observed` against the threshold `name` (strictly beyond a limit breaches it)."""
        return grade(observed, self._levels[name], self.known[name].worse)

    def threshold(self, name):
        """The threshold a check reports: the levels that are set ({} when none is)."""
        return dict((level, value) for level, value in self._levels[name].items() if value is not None)
