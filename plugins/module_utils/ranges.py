# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every numeric option's real range, checked before an engine does anything.

Each engine's `normalize` (which the modules and the host-side jobs share)
checks its options against a table of `Range`s here, so an out-of-range value
stops the run before a directory is created, a lock taken or a connection
opened, with a message that names the option, the value and what is allowed,
and is never recorded (a manifest holds only checked values).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from .common import RunbookError


class Range(object):
    """Allowed values of one option: whole numbers (`integer`) or any finite number, within limits.

    `low` and `high` are inclusive unless `low_open` (the value must be more than `low`).
    """

    def __init__(self, low=None, high=None, integer=True, low_open=False, why=None):
        self.low = low
        self.high = high
        self.integer = integer
        self.low_open = low_open
        self.why = why

    def describe(self):
        kind = "a whole number" if self.integer else "a number"
        if self.low is not None and self.high is not None and not self.low_open:
            text = "{0} from {1} to {2}".format(kind, _show(self.low), _show(self.high))
        elif self.low is not None and self.high is not None:
            text = "{0} more than {1} and at most {2}".format(kind, _show(self.low), _show(self.high))
        elif self.low is not None:
            text = "{0} {1} {2}".format(kind, "more than" if self.low_open else "of at least", _show(self.low))
        elif self.high is not None:
            text = "{0} of at most {1}".format(kind, _show(self.high))
        else:
            text = kind
        return text + (" ({0})".format(self.why) if self.why else "")

    def convert(self, value):
        """The value as int or float if it is one in range, else None."""
        if isinstance(value, bool):
            return None  # True is an int to Python, never a level or a count to an operator
        number = value
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                try:
                    number = float(value.strip())
                except ValueError:
                    return None
        if not isinstance(number, (int, float)):
            return None
        if isinstance(number, float):
            if math.isnan(number) or math.isinf(number):
                return None
            if self.integer:
                if not number.is_integer():
                    return None
                number = int(number)
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return None
        if self.high is not None and number > self.high:
            return None
        return number


def _show(number):
    return "{0:g}".format(number) if isinstance(number, float) else str(number)


def check_ranges(opts, ranges):
    """Convert every option of `ranges` that is set in `opts` to its number, in place.

    Raises one RunbookError (cause "invalid") naming every option out of its range.
    """
    problems = []
    for name in sorted(ranges):
        value = opts.get(name)
        if value is None:
            continue
        number = ranges[name].convert(value)
        if number is None:
            problems.append({"option": name, "value": value, "allowed": ranges[name].describe()})
        else:
            opts[name] = number
    if problems:
        raise invalid(problems)
    return opts


def invalid(problems):
    """The RunbookError for a list of {option, value, allowed}."""
    sentences = ["{0} is {1!r}; it must be {2}.".format(p["option"], p["value"], p["allowed"]) for p in problems]
    return RunbookError(
        "Invalid option{0}: {1}".format("s" if len(problems) > 1 else "", " ".join(sentences)),
        hint="Nothing was done; correct the value and run again.", cause="invalid", invalid=problems)


# Options several engines share. libpq waits forever with connect_timeout 0,
# and an hour is already far beyond any answer worth waiting for.
POSTGRES = {
    "login_port": Range(1, 65535),
    "connect_timeout": Range(0, 3600, low_open=True, why="seconds; 0 would wait forever"),
}
