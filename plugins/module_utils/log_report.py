# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The on-call engineer's log report: last lines and error lines since a time, from every kind of source.

What the runbooks have people type one source at a time (`journalctl -u
bmi-backend --since "24 hours ago" | grep -i error`, `tail -50
/var/log/nginx/error.log`, `tail -100 /var/log/postgresql/*.log`, `docker
logs`, `docker-compose logs backend`) as one read-only pass over systemd
units, log files, containers and compose services. Each source becomes one
check in the collection's vocabulary: its error lines since `since` graded
against the `error_lines` threshold (health.Limits), and a source that could
not be read (no such unit, file or container, no permission, no systemd, no
Docker engine) a failed check that says why - never a pass with no lines.

Every source is read from its end and only as far back as needed: a window of
at most `scan_lines` lines since `since`, in which errors are counted; the
last `lines` of it are shown. Files are read backwards in blocks and the
reading stops at the first line older than `since` (when the file's lines
carry a time this module can read: ISO 8601 as PostgreSQL, journald and
Docker write it, nginx's error log, the common log format, syslog), so a
multi-gigabyte log costs what its last hour costs. Lines are redacted
(common.redact) and cut to `max_line_length` before they are returned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import errno
import glob
import os
import re
import time

from . import health
from .commands import display, run
from .common import RunbookError, isoformat, redact, utc_now
from .docker import Docker, compose_project_params, explain_failure
from .ranges import Range, check_ranges
from .systemd import unit_name

DEFAULT_SINCE = "1h"
DEFAULT_LINES = 50
DEFAULT_SCAN_LINES = 10000
DEFAULT_MAX_LINE_LENGTH = 500
# The words of the levels nginx (error, crit, alert, emerg), PostgreSQL (ERROR, FATAL, PANIC), syslog and
# most application loggers write for trouble, Python's tracebacks, and the kernel's and runtimes' OOM.
DEFAULT_ERROR_PATTERN = (r"\b(?:error|fatal|panic|crit|critical|alert|emerg)\b|traceback|\boom\b|out of memory"
                         r"|oom-kill")
# Reading a file backwards stops after this many bytes even when the window is not complete: one
# line without a newline must not pull a multi-gigabyte file into memory.
MAX_SCAN_BYTES = 64 * 1024 * 1024
BLOCK_SIZE = 64 * 1024

KINDS = ("unit", "file", "container", "compose_service")
RANGES = {
    "lines": Range(low=0, high=100000),
    "scan_lines": Range(low=1, high=10000000),
    "max_line_length": Range(low=20, high=1000000),
}
THRESHOLDS = {
    # Error lines since `since` in one source: any error warns, none fails by default.
    "error_lines": health.Limit(warn=0, fail=None),
}

LOG_REPORT_DEFAULTS = {
    "units": [], "files": [], "containers": [], "compose_services": [], "since": DEFAULT_SINCE,
    "lines": DEFAULT_LINES, "scan_lines": DEFAULT_SCAN_LINES, "error_pattern": DEFAULT_ERROR_PATTERN,
    "max_line_length": DEFAULT_MAX_LINE_LENGTH, "thresholds": {}, "host_label": None,
}


def log_report_argument_spec():
    """The options of ops.runbook.log_report besides the docker and compose-project ones."""
    return dict(
        units=dict(type="list", elements="str", default=[]),
        files=dict(type="list", elements="path", default=[]),
        containers=dict(type="list", elements="str", default=[]),
        compose_services=dict(type="list", elements="str", default=[]),
        since=dict(type="str", default=DEFAULT_SINCE),
        lines=dict(type="int", default=DEFAULT_LINES),
        scan_lines=dict(type="int", default=DEFAULT_SCAN_LINES),
        error_pattern=dict(type="str", default=DEFAULT_ERROR_PATTERN),
        max_line_length=dict(type="int", default=DEFAULT_MAX_LINE_LENGTH),
        thresholds=dict(type="dict", default={}),
        host_label=dict(type="str"),
    )


# -- since -----------------------------------------------------------------

_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text, now=None):
    """The moment `since` names, as an aware UTC datetime: a duration back from now, or an ISO 8601 time.

    Durations: `90s`, `30m`, `1h`, `2d`, `1w`, or combined (`1h30m`). Times: `2026-12-05T14:00:00Z`,
    `2026-12-05 14:00+01:00`, `2026-12-05`; a time without a zone is UTC.
    """
    now = now or utc_now()
    value = (text or "").strip()
    if _DURATION.match(value.lower()):
        seconds = sum(int(count) * _SECONDS[unit] for count, unit in _DURATION_PART.findall(value.lower()))
        return now - datetime.timedelta(seconds=seconds)
    moment = _parse_iso_option(value)
    if moment is None:
        raise RunbookError("since is {0!r}: give a duration back from now (30m, 1h, 2d, 1h30m) or an ISO 8601 "
                           "time (2026-12-05T14:00:00Z; UTC unless it names a zone).".format(text),
                           hint="Nothing was read.", cause="invalid")
    if moment > now:
        raise RunbookError("since ({0}) is in the future: there is nothing to read after it.".format(isoformat(moment)),
                           hint="Give a past time, or a duration such as 1h.", cause="invalid")
    return moment


def _parse_iso_option(value):
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        text += "T00:00:00"
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


# -- the time of a log line --------------------------------------------------

_ISO_LINE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
                       r"(?:\s?(Z|[+-]\d{2}(?::?\d{2})?\b|UTC\b|GMT\b))?")
_NGINX_LINE = re.compile(r"^(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})\b")
_CLF_TIME = re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\]")
_SYSLOG_LINE = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) ")
_MONTHS = dict((name, number) for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1))


def _epoch(fields, offset_seconds):
    """Seconds since the epoch of (y, mo, d, h, mi, s): UTC shifted by `offset_seconds`, or local time when None."""
    try:
        datetime.datetime(*fields)  # refuses 2026-13-45, which mktime and timegm would roll over
        if offset_seconds is None:
            return time.mktime(tuple(fields) + (0, 0, -1))
        return calendar.timegm(tuple(fields) + (0, 0, 0)) - offset_seconds
    except (ValueError, OverflowError):
        return None


def _zone_offset(zone):
    """Seconds east of UTC of a zone as written in a line; None (local time) when it names none we know."""
    if not zone:
        return None
    if zone in ("Z", "UTC", "GMT"):
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)


def line_time(line, now=None):
    """When a log line was written (seconds since the epoch), or None when it carries no time this can read.

    ISO 8601 at the start (PostgreSQL's default prefix `2026-12-05 14:00:01.123 UTC`, journalctl
    short-iso, docker --timestamps, most application loggers); nginx's error log (`2026/12/05
    14:00:01`, the host's local time); the common log format (`[05/Dec/2026:14:00:01 +0000]`, access
    logs); syslog (`Dec  5 14:00:01`, local time, this year). A time without a zone is local time, as
    the program that wrote it used.
    """
    match = _ISO_LINE.match(line)
    if match:
        fields = [int(group) for group in match.groups()[:6]]
        return _epoch(fields, _zone_offset(match.group(8)))
    match = _NGINX_LINE.match(line)
    if match:
        return _epoch([int(group) for group in match.groups()], None)
    match = _CLF_TIME.search(line, 0, 200)
    if match and match.group(2) in _MONTHS:
        day, month, year, hour, minute, second = (int(match.group(1)), _MONTHS[match.group(2)], int(match.group(3)),
                                                  int(match.group(4)), int(match.group(5)), int(match.group(6)))
        offset = (3600 * int(match.group(8)) + 60 * int(match.group(9))) * (-1 if match.group(7) == "-" else 1)
        return _epoch([year, month, day, hour, minute, second], offset)
    match = _SYSLOG_LINE.match(line)
    if match and match.group(1) in _MONTHS:
        now = now or utc_now()
        fields = [_MONTHS[match.group(1)], int(match.group(2)), int(match.group(3)), int(match.group(4)),
                  int(match.group(5))]
        moment = _epoch([now.year] + fields, None)
        if moment is not None and moment > now.timestamp() + 86400:  # December's lines read in January
            moment = _epoch([now.year - 1] + fields, None)
        return moment
    return None


# -- reading a file from its end -------------------------------------------

class Window(object):
    """The lines of one source read for the report: those since `since` within the scan limit, oldest first.

    `timed`: the lines carry times this module reads, so `since` was applied to them.
    `complete`: the window reaches back to `since` (or to the start of the source); False when the scan
    limit cut it, so error counts are "at least".
    """

    def __init__(self, lines, timed, complete, bytes_read=None):
        self.lines = lines
        self.timed = timed
        self.complete = complete
        self.bytes_read = bytes_read


def tail_file(path, since_epoch, scan_lines, block_size=BLOCK_SIZE, max_bytes=MAX_SCAN_BYTES, now=None):
    """The Window of a file: read backwards in blocks until a line older than `since_epoch`, or `scan_lines` lines.

    Only the blocks at the end are read; a line older than `since_epoch` ends the reading, and so does
    the scan limit or `max_bytes`. Lines without a time of their own (a traceback, a DETAIL line)
    belong to the timed line above them.
    """
    lines = []
    seen_older = False
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        partial = b""
        bytes_read = 0
        first_block = True
        while position > 0 and len(lines) <= scan_lines and not seen_older and bytes_read < max_bytes:
            size = min(block_size, position)
            position -= size
            handle.seek(position)
            chunk = handle.read(size) + partial
            bytes_read += size
            if first_block and chunk.endswith(b"\n"):
                chunk = chunk[:-1]
            first_block = False
            pieces = chunk.split(b"\n")
            partial = pieces.pop(0) if position > 0 else b""
            block_lines = [piece.decode("utf-8", "replace").rstrip("\r") for piece in pieces]
            if since_epoch is not None:
                seen_older = any(_older(line, since_epoch, now) for line in block_lines)
            lines[:0] = block_lines
    started_at_beginning = position == 0
    return _window(lines, since_epoch, scan_lines, seen_older or started_at_beginning, bytes_read, now)


def _older(line, since_epoch, now):
    moment = line_time(line, now)
    return moment is not None and moment < since_epoch


def _window(lines, since_epoch, scan_lines, reached_start, bytes_read=None, now=None):
    """Lines since `since_epoch` (oldest first), untimed lines going with the timed line above them."""
    times = [line_time(line, now) for line in lines]
    timed = any(moment is not None for moment in times)
    if timed and since_epoch is not None:
        kept = []
        keep = None  # lines above the first timed one go with it
        pending = []
        for line, moment in zip(lines, times):
            if moment is not None:
                keep = moment >= since_epoch
                if keep:
                    kept.extend(pending)
                pending = []
            if keep is None:
                pending.append(line)
            elif keep:
                kept.append(line)
        lines = kept + pending
    complete = reached_start and len(lines) <= scan_lines
    return Window(lines[-scan_lines:], timed, complete, bytes_read)


# -- the sources -------------------------------------------------------------

class Unreadable(Exception):
    """A source that could not be read: `reason` says why and what to do."""

    def __init__(self, reason):
        super(Unreadable, self).__init__(reason)
        self.reason = reason


def read_unit(name, since, scan_lines, runner=run):
    """The journal Window of a systemd unit: `journalctl -u UNIT --since S -o short-iso --no-pager -n SCAN`."""
    unit = unit_name(name)
    argv = ["journalctl", "-u", unit, "--since", "@{0}".format(int(since.timestamp())), "-o", "short-iso",
            "--no-pager", "-n", str(scan_lines)]
    try:
        result = runner(argv, timeout=120)
    except RunbookError as error:
        raise Unreadable("{0} This host has no systemd journal to read.".format(error.message))
    if not result.ok:
        raise Unreadable("`{0}` failed (exit {1}): {2}".format(display(argv), result.rc, result.output(400)))
    stderr = result.stderr.lower()
    if "no journal files were found" in stderr:
        raise Unreadable("journalctl found no journal files: systemd-journald does not keep a journal on this host "
                         "(is systemd running as PID 1?).")
    if "not seeing messages from other users" in stderr:
        raise Unreadable("journalctl shows this user only its own messages, not those of {0}: run the task with "
                         "become, or as a member of the systemd-journal or adm group.".format(unit))
    lines = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith("-- ")]
    if not lines and not _unit_known(unit, runner):
        raise Unreadable("No unit {0} on this host (systemctl knows no such unit) and no journal entries of it."
                         .format(unit))
    return Window(lines, True, len(lines) < scan_lines)


def _unit_known(unit, runner):
    try:
        result = runner(["systemctl", "show", unit, "--no-pager", "-p", "LoadState"], timeout=60)
    except RunbookError as error:
        raise Unreadable("{0} There are no entries of {1} in the journal either.".format(error.message, unit))
    if not result.ok:
        raise Unreadable("`systemctl show {0}` failed: {1} (is systemd running as PID 1?); there are no entries of it "
                         "in the journal either.".format(unit, result.output(300)))
    return "LoadState=not-found" not in result.stdout


def expand_files(patterns):
    """(name, path or None) for every file the paths and shell patterns name; None for a pattern without a match."""
    found = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(path for path in glob.glob(pattern) if not os.path.isdir(path))
            found.extend((path, path) for path in matches)
            if not matches:
                found.append((pattern, None))
        else:
            found.append((pattern, pattern))
    return found


def read_file(path, since, scan_lines, now=None):
    if path is None:
        raise Unreadable("No file matches this pattern.")
    if os.path.isdir(path):
        raise Unreadable("{0} is a directory, not a log file; name the files (a pattern such as {0}/*.log works)."
                         .format(path))
    try:
        return tail_file(path, since.timestamp(), scan_lines, now=now)
    except (IOError, OSError) as error:
        if error.errno == errno.EACCES:
            raise Unreadable("Permission denied reading {0}: run the task with become.".format(path))
        raise Unreadable("{0}.".format(error.strerror or error))


def read_container(engine, name, since, scan_lines):
    """`docker logs --since S --tail SCAN --timestamps NAME`: stdout and stderr merged in time order."""
    argv = ["logs", "--since", str(int(since.timestamp())), "--tail", str(scan_lines), "--timestamps", name]
    try:
        result = engine.docker_result(*argv)
    except RunbookError as error:
        raise Unreadable(str(error))
    if not result.ok:
        raise Unreadable(str(explain_failure(engine.docker_argv + argv, result)))
    lines = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if line]
    # --timestamps starts every line with the same RFC 3339 form, so sorting by it merges the two streams.
    lines.sort(key=lambda line: line.split(" ", 1)[0])
    return Window(lines, True, len(lines) < scan_lines)


def read_compose_service(engine, project, service, since, scan_lines):
    """`compose logs --no-color --since S --tail SCAN --timestamps SERVICE` of a service that has a container."""
    try:
        base = engine.compose_project_argv(**project)
        listed = engine.run(base + ["ps", "--all", "--quiet", service])
        if not listed.ok:
            raise Unreadable(str(explain_failure(listed.argv, listed)))
        if not listed.stdout.strip():
            raise Unreadable("Compose service {0} has no container (never created, or removed by `down`): "
                             "`{1}` lists none.".format(service, display(listed.argv)))
        argv = base + ["logs", "--no-color", "--since", str(int(since.timestamp())), "--tail", str(scan_lines),
                       "--timestamps", service]
        result = engine.run(argv)
    except RunbookError as error:
        raise Unreadable(str(error))
    if not result.ok:
        raise Unreadable(str(explain_failure(argv, result)))
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    lines.sort(key=_compose_time)
    return Window(lines, True, len(lines) < scan_lines * max(1, _replicas(lines)))


def _compose_time(line):
    # "backend-1  | 2026-12-05T14:00:01.123456789Z message": replicas are interleaved by their time.
    head, sep, rest = line.partition("| ")
    return rest.split(" ", 1)[0] if sep else line


def _replicas(lines):
    return len(set(line.partition("|")[0].strip() for line in lines))


# -- judging and rendering ---------------------------------------------------

def _cut(line, length):
    line = redact(line)
    if len(line) <= length:
        return line
    return "{0}... [{1} more characters]".format(line[:length], len(line) - length)


def judge(name, kind, window, opts, limits, pattern, since):
    """The check of one source that was read."""
    errors = [line for line in window.lines if pattern.search(line)]
    count = len(errors)
    status = limits.grade("error_lines", count)
    shown = [_cut(line, opts["max_line_length"]) for line in window.lines[-opts["lines"]:]] if opts["lines"] else []
    threshold = limits.threshold("error_lines")
    when = "since {0}".format(isoformat(since)) if window.timed else "in its last lines (they carry no time this " \
        "report reads, so since was not applied)"
    output = "{0} {1}: {2}{3} error line{4} in {5} line{6} {7}".format(
        kind_label(kind), name, "" if window.complete else "at least ", count, "" if count == 1 else "s",
        len(window.lines), "" if len(window.lines) == 1 else "s", when)
    if status != health.PASS:
        level = "fail" if status == health.FAIL else "warn"
        output += " (above the {0} limit of {1:g})".format(level, threshold[level])
    if not window.complete:
        output += "; only the last {0} lines were scanned: raise scan_lines to count them all".format(
            len(window.lines))
    output += "."
    return health.check(name, status, count, threshold, output, unit="error lines", kind=kind, readable=True,
                        lines=shown, line_count=len(window.lines), error_count=count, complete=window.complete,
                        timed=window.timed,
                        first_error=_cut(errors[0], opts["max_line_length"]) if errors else None,
                        last_error=_cut(errors[-1], opts["max_line_length"]) if errors else None)


def kind_label(kind):
    return {"unit": "Unit", "file": "File", "container": "Container", "compose_service": "Compose service"}[kind]


def could_not_read(name, kind, reason, limits):
    return health.unchecked(name, "Could not read {0} {1}: {2}".format(kind_label(kind).lower(), name, reason),
                            threshold=limits.threshold("error_lines"), unit="error lines", kind=kind, readable=False,
                            reason=reason, lines=[], line_count=0, error_count=None, complete=False, timed=False,
                            first_error=None, last_error=None)


_ORDER = {health.FAIL: 0, health.WARN: 1, health.PASS: 2}


def errors_first(checks):
    """The checks with the failing ones first, then warnings, each by error count (most first)."""
    return sorted(checks, key=lambda item: (_ORDER[item["status"]], -(item.get("error_count") or 0)))


def render_text(result, title=None):
    """The report as a person reads it: a summary line, then each source, errors first, with its last lines."""
    counts = result["counts"]
    out = ["{0}: {1} - {2} source{3} since {4}: {5} fail, {6} warn, {7} pass".format(
        title or "Logs", result["status"].upper(), len(result["checks"]), "" if len(result["checks"]) == 1 else "s",
        result["since"], counts["fail"], counts["warn"], counts["pass"])]
    for item in errors_first(result["checks"]):
        out.append("")
        out.append("[{0}] {1}".format(item["status"].upper(), item["output"]))
        if item.get("first_error") and item["error_count"] > 1:
            out.append("  first error: {0}".format(item["first_error"]))
        if item.get("last_error"):
            out.append("  last error:  {0}".format(item["last_error"]))
        if item["lines"]:
            out.append("  last {0} line{1}:".format(len(item["lines"]), "" if len(item["lines"]) == 1 else "s"))
            out.extend("    " + line for line in item["lines"])
    return "\n".join(out)


def run_log_report(options, runner=run, now=None):
    """Read every source; {"status", "counts", "checks", "since", "report", "msg"} (checks in the order given)."""
    opts = dict(LOG_REPORT_DEFAULTS)
    opts.update(dict((key, value) for key, value in options.items() if value is not None))
    check_ranges(opts, RANGES)
    now = now or utc_now()
    since = parse_since(opts["since"], now)
    limits = health.Limits(THRESHOLDS, opts["thresholds"])
    try:
        pattern = re.compile(opts["error_pattern"], re.IGNORECASE)
    except re.error as error:
        raise RunbookError("error_pattern {0!r} is not a regular expression: {1}.".format(opts["error_pattern"], error),
                           hint="Python's re syntax, matched case-insensitively anywhere in a line.", cause="invalid")
    if not any(opts[name] for name in ("units", "files", "containers", "compose_services")):
        raise RunbookError("No log source given.", hint="Name units, files, containers or compose_services.",
                           cause="invalid")

    engine = Docker(options, runner=runner)
    project = compose_project_params(options)
    readers = []
    readers += [(unit_name(name), "unit", lambda name=name: read_unit(name, since, opts["scan_lines"], runner))
                for name in opts["units"]]
    readers += [(label, "file", lambda path=path: read_file(path, since, opts["scan_lines"], now))
                for label, path in expand_files(opts["files"])]
    readers += [(name, "container", lambda name=name: read_container(engine, name, since, opts["scan_lines"]))
                for name in opts["containers"]]
    readers += [(name, "compose_service",
                 lambda name=name: read_compose_service(engine, project, name, since, opts["scan_lines"]))
                for name in opts["compose_services"]]
    checks = []
    for name, kind, read in readers:
        try:
            checks.append(judge(name, kind, read(), opts, limits, pattern, since))
        except Unreadable as unreadable:
            checks.append(could_not_read(name, kind, unreadable.reason, limits))
    if opts["host_label"]:
        for item in checks:
            item["host"] = opts["host_label"]
    result = {"status": health.worst(checks), "counts": health.counts(checks), "checks": checks,
              "since": isoformat(since), "error_pattern": opts["error_pattern"]}
    result["report"] = render_text(result, "Logs of {0}".format(opts["host_label"]) if opts["host_label"] else None)
    return result
