# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What systemd and its journal say about units, read through systemctl and journalctl.

`SystemdUnit` is one of the restart targets of service_restart.py (compose.py has the
other); `snapshot()` reduces `systemctl show` to the few facts that tell a
running service from one that died or restarted behind our back: its state,
main PID, restart counter and the moment it last became active.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from .commands import display, run
from .common import RunbookError

SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "Result", "MainPID", "NRestarts",
                   "ActiveEnterTimestamp", "ActiveEnterTimestampMonotonic", "InvocationID",
                   "ExecMainStatus", "ExecMainCode", "UnitFileState")
# States from which a unit does not come back by itself; a unit that Restart=
# brings back is "activating" (sub-state "auto-restart") in between.
TERMINAL_STATES = ("inactive", "failed")


def unit_name(name):
    """`nginx` -> `nginx.service`; names that already carry a unit type are kept."""
    known = (".service", ".socket", ".target", ".timer", ".mount", ".path", ".scope", ".slice")
    return name if name.endswith(known) else name + ".service"


def parse_show(text):
    properties = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            properties[key] = value
    return properties


def _integer(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def snapshot_from_properties(properties):
    """The facts a restart is judged by, from `systemctl show` properties."""
    active_state = properties.get("ActiveState", "unknown")
    pid = _integer(properties.get("MainPID"))
    return {
        "exists": properties.get("LoadState") not in ("not-found", None),
        "active": active_state == "active",
        "terminal": active_state in TERMINAL_STATES,
        "state": active_state,
        "detail": properties.get("SubState", ""),
        "result": properties.get("Result", ""),
        "pid": pid or None,
        "restarts": _integer(properties.get("NRestarts")),
        "since": _integer(properties.get("ActiveEnterTimestampMonotonic")) or None,
        "since_text": properties.get("ActiveEnterTimestamp", ""),
        "exit_status": _integer(properties.get("ExecMainStatus")),
        "load_state": properties.get("LoadState", ""),
        "unit_file_state": properties.get("UnitFileState", ""),
    }


class SystemdUnit:
    """A systemd unit as a restart target."""

    kind = "systemd"

    def __init__(self, name, runner=run):
        self.name = unit_name(name)
        self.label = self.name
        self._run = runner

    def _systemctl(self, *args):
        return self._run(["systemctl"] + list(args), timeout=120)

    def properties(self):
        argv = ["show", self.name, "--no-pager"]
        for prop in SHOW_PROPERTIES:
            argv += ["-p", prop]
        result = self._systemctl(*argv)
        if not result.ok:
            raise RunbookError("`systemctl show {0}` failed: {1}".format(self.name, result.output()),
                               hint="Is systemd running this host (PID 1)?", cause="systemctl")
        return parse_show(result.stdout)

    def snapshot(self):
        return snapshot_from_properties(self.properties())

    def restart(self):
        return self._systemctl("restart", self.name)

    def reload(self):
        return self._systemctl("reload", self.name)

    def describe_action(self, verb):
        return "systemctl {0} {1}".format(verb, self.name)

    def logs(self, lines):
        result = self._run(["journalctl", "-u", self.name, "-n", str(lines), "--no-pager", "-o", "short-iso"],
                           timeout=60)
        return [line for line in result.stdout.splitlines() if line.strip() and not line.startswith("-- ")]


def failed_units(runner=run):
    """Names of the units systemd lists as failed."""
    result = runner(["systemctl", "list-units", "--state=failed", "--all", "--plain", "--no-legend", "--no-pager"],
                    timeout=60)
    if not result.ok:
        raise RunbookError("`systemctl list-units --state=failed` failed: {0}".format(result.output()),
                           cause="systemctl")
    names = []
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] == "\u25cf":
            words = words[1:]
        if words:
            names.append(words[0])
    return names


def _message(entry):
    """MESSAGE of a journal entry as text (journalctl gives binary messages as a list of bytes)."""
    message = entry.get("MESSAGE")
    if isinstance(message, list):
        return bytes(b & 0xFF for b in message if isinstance(b, int)).decode("utf-8", "replace")
    return message if isinstance(message, str) else ""


def journal_entries(since, matches=(), units=(), kernel=False, runner=run, timeout=120):
    """Journal entries since `since` (any time journalctl accepts, e.g. "24 hours ago") as dicts.

    `units` are OR-ed (`-u a -u b`); `matches` are field matches joined with `+`
    (OR) as journalctl's own syntax; `kernel` reads the kernel ring buffer's
    messages only. Each entry has `time` (µs since the epoch), `priority`,
    `unit`, `identifier` and `message`.
    """
    argv = ["journalctl", "--no-pager", "-o", "json", "--since", since]
    if kernel:
        argv.append("-k")
    for unit in units:
        argv += ["-u", unit_name(unit)]
    for index, match in enumerate(matches):
        if index:
            argv.append("+")
        argv.append(match)
    result = runner(argv, timeout=timeout)
    if not result.ok:
        text = result.output()
        hint = "Give the time as journalctl --since accepts it, e.g. '24 hours ago' or '2026-02-24 02:00'." \
            if "timestamp" in text.lower() else "Run as root or as a member of systemd-journal or adm."
        raise RunbookError("`{0}` failed: {1}".format(display(argv), text), hint=hint, cause="journal")
    entries = []
    for line in result.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        entries.append({
            "time": _integer(entry.get("__REALTIME_TIMESTAMP")) or 0,
            "priority": _integer(entry.get("PRIORITY")),
            "unit": entry.get("_SYSTEMD_UNIT") or entry.get("UNIT") or "",
            "subject_unit": entry.get("UNIT") or "",
            "identifier": entry.get("SYSLOG_IDENTIFIER") or "",
            "transport": entry.get("_TRANSPORT") or "",
            "message": _message(entry),
        })
    return entries
