# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point-in-time recovery with pgBackRest: the plan, the drill and the recovery.

Three steps share one plan:
- plan: parse the target (a time with its time zone, an LSN, a transaction id,
  a named restore point, or the end of the archive), choose the backup set
  from `pgbackrest info --output=json` (the newest one that finished before
  the target), the WAL range it needs and the data the recovery gives up.
  Pure functions; check mode returns this and nothing else.
- drill: restore the set plus WAL into a scratch data directory, start it on
  a free port with its own socket directory and archiving off (a drill never
  pushes WAL into the real archive), wait for it to promote at the target, run
  the caller's SQL checks, stop it and remove the directory, also on failure.
  A WAL segment the recovery needed and the archive did not have is named.
- recover: the same into a new data directory left running for inspection or,
  only with `replace_live`, into the live cluster's data directory: stop
  PostgreSQL, move the old directory aside (renamed, never deleted), restore,
  promote at the target, start, verify; on any failure put the old directory
  back and start it again (a rollback, reported as such).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re
import shutil
import socket
import tempfile
import time

from .common import RunbookError, isoformat, utc_now
from .pgbackrest import PgBackRest

TARGET_TYPES = ("time", "lsn", "xid", "name", "latest")
MODES = ("plan", "drill", "recover")
# The module's defaults (its argument spec takes them from here), so every entry point runs the same.
DEFAULTS = {
    "mode": "plan", "target_type": "latest", "target": None, "target_exclusive": False, "target_timeline": "current",
    "backup_set": None, "verify_repository": False, "scratch_dir": "/var/lib/postgresql", "restore_dir": None,
    "data_directory": None, "replace_live": False, "postgres_service": None, "postgres_log_file": None, "copy_port": 0,
    "pg_bin_dir": None, "server_settings": {}, "checks": [], "recovery_timeout": 600,
}
SEGMENT_SIZE = 16 * 1024 * 1024
# A restore point's name is at most MAXFNAMELEN - 1 bytes (pg_create_restore_point).
RESTORE_POINT_MAX = 63

_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$",
                   re.IGNORECASE)
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_SEGMENT = r"[0-9A-F]{24}"
# pgBackRest's archive-get (the restore_command) logs into PostgreSQL's log when a segment is not in the archive;
# PostgreSQL itself names a file it could not open or read.
_NOT_IN_ARCHIVE = re.compile(r"unable to find (" + _SEGMENT + r") in the archive")
_COULD_NOT = re.compile(r'could not [a-z ]+ (?:file|segment) "(?:pg_wal/)?(' + _SEGMENT + r')"')
_RESTORED = re.compile(r'restored log file "(' + _SEGMENT + r')" from archive')
_FATAL = re.compile(r"\b(?:FATAL|PANIC):\s+(.*)")


# -- targets -----------------------------------------------------------------

class Target(object):
    """A recovery target: its kind, its value as pgBackRest takes it, and for a time the moment."""

    def __init__(self, kind, value=None, moment=None, lsn=None, exclusive=False, timeline="current"):
        self.kind = kind
        self.value = value
        self.moment = moment
        self.lsn = lsn
        self.exclusive = exclusive
        self.timeline = timeline

    def restore_options(self):
        """The `pgbackrest restore` options that recover to this target and promote there."""
        if self.kind == "latest":
            # pgBackRest 2.45 refuses --target-action without a target type ([031]); at the end of the WAL
            # PostgreSQL promotes by itself.
            return ["--type=default", "--target-timeline=" + self.timeline]
        options = ["--type=" + self.kind, "--target=" + self.value]
        if self.exclusive:
            options.append("--target-exclusive")
        return options + ["--target-action=promote", "--target-timeline=" + self.timeline]

    def describe(self):
        if self.kind == "latest":
            return "the end of the archive (the newest archived WAL)"
        words = {"time": "time", "lsn": "LSN", "xid": "transaction", "name": "restore point"}[self.kind]
        text = "{0} {1}".format(words, precise(self.moment) if self.moment else self.value)
        return text + (" (stopping just before it)" if self.exclusive else "")

    def facts(self):
        facts = {"type": self.kind, "value": self.value, "exclusive": self.exclusive, "timeline": self.timeline}
        if self.moment is not None:
            facts["time"] = isoformat(self.moment)
        return facts


def precise(moment):
    """A time in UTC as ISO 8601, with its fraction of a second when it has one."""
    text = moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def parse_time(text):
    """The aware datetime of a target time; a time without a time zone is refused (it would be read in the
    server's TimeZone setting, which may not be the operator's)."""
    match = _TIME.match(str(text).strip())
    if not match:
        raise RunbookError(
            "The target time {0!r} is not a time such as 2026-12-05T10:15:00Z or 2026-12-05 11:15:00+01:00.".format(
                text), hint="Write the date, the time and its time zone (Z or +HH:MM).", cause="invalid")
    date, clock, zone = match.groups()
    if zone is None:
        raise RunbookError(
            "The target time {0!r} has no time zone: PostgreSQL would read it in the recovered server's TimeZone "
            "setting.".format(text), hint="Add Z (UTC) or the offset, e.g. +01:00.", cause="invalid")
    if len(clock) == 5:
        clock += ":00"
    if zone.upper() in ("Z", "UTC"):
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    seconds, dot, fraction = clock.partition(".")
    clock = seconds + (dot + fraction.ljust(6, "0") if fraction else "")
    try:
        return datetime.datetime.fromisoformat("{0}T{1}{2}".format(date, clock, zone))
    except ValueError as error:
        raise RunbookError("The target time {0!r} is not a valid time: {1}.".format(text, error), cause="invalid")


def parse_lsn(text):
    """An LSN written as PostgreSQL prints it (16/B374D848) as an integer."""
    match = _LSN.match(str(text).strip())
    if not match:
        raise RunbookError("The target LSN {0!r} is not an LSN such as 0/3000060.".format(text),
                           hint="Copy it from pg_current_wal_lsn() or pg_waldump.", cause="invalid")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(value):
    return "{0:X}/{1:X}".format(value >> 32, value & 0xFFFFFFFF)


def segment_name(timeline, lsn, segment_size=SEGMENT_SIZE):
    """The WAL file that holds `lsn` on `timeline` (24 hex digits, as in pg_wal and the archive)."""
    per_id = 0x100000000 // segment_size
    number = lsn // segment_size
    return "{0:08X}{1:08X}{2:08X}".format(timeline, number // per_id, number % per_id)


def parse_target(kind, value=None, exclusive=False, now=None, timeline="current"):
    """A Target from the caller's target type and value, validated, or RunbookError saying what is wrong.

    The timeline defaults to `current`, the backup's: PostgreSQL's own default, `latest`, would follow any newer
    timeline in the archive, such as one a failed or abandoned recovery promoted and archived, past the target."""
    now = now or utc_now()
    text = "" if value is None else str(value).strip()
    timeline = str(timeline or "current").strip().lower()
    if timeline not in ("current", "latest") and not timeline.isdigit():
        raise RunbookError("The target timeline {0!r} is not current, latest or a timeline number.".format(timeline),
                           cause="invalid")
    if kind not in TARGET_TYPES:
        raise RunbookError("The target type {0!r} is not one of {1}.".format(kind, ", ".join(TARGET_TYPES)),
                           cause="invalid")
    if kind == "latest":
        if text:
            raise RunbookError("A recovery to the end of the archive takes no target, but {0!r} was given.".format(
                text), hint="Leave the target out, or give its type (time, lsn, xid, name).", cause="invalid")
        return Target("latest", exclusive=False, timeline=timeline)
    if not text:
        raise RunbookError("A recovery to a {0} needs the target's value.".format(kind), cause="invalid")
    if kind == "time":
        moment = parse_time(text)
        if moment > now:
            raise RunbookError(
                "The target time {0} is in the future (now {1}): the archive cannot reach it and PostgreSQL "
                "refuses to end a recovery before its target.".format(isoformat(moment), isoformat(now)),
                hint="For the newest state, recover to the end of the archive (target type latest).", cause="invalid")
        pg_value = moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        return Target("time", pg_value, moment=moment, exclusive=exclusive, timeline=timeline)
    if kind == "lsn":
        lsn = parse_lsn(text)
        return Target("lsn", format_lsn(lsn), lsn=lsn, exclusive=exclusive, timeline=timeline)
    if kind == "xid":
        if not text.isdigit() or not 3 <= int(text) < 2 ** 64:
            raise RunbookError("The target transaction id {0!r} is not a transaction id (a whole number of at "
                               "least 3).".format(text), hint="Take it from txid_current() or the server log.",
                               cause="invalid")
        return Target("xid", str(int(text)), exclusive=exclusive, timeline=timeline)
    if len(text.encode("utf-8")) > RESTORE_POINT_MAX:
        raise RunbookError("The restore point name {0!r} is longer than PostgreSQL's {1} bytes.".format(
            text, RESTORE_POINT_MAX), hint="Use the name given to pg_create_restore_point().", cause="invalid")
    return Target("name", text, exclusive=exclusive, timeline=timeline)


# -- the backup set and the WAL it needs ----------------------------------------

# pgBackRest's stanza status codes that leave nothing to restore from.
_STANZA_PROBLEMS = {1: "its repository path is missing", 2: "it has no valid backup",
                    3: "its stanza data is missing", 4: "its repositories use different ciphers",
                    5: "the database does not match the stanza", 99: "pgBackRest reported an error"}


def stanza_of(info, stanza):
    """The stanza's entry of `pgbackrest info --output=json` (the whole list, or the entry PgBackRest.info()
    returns), or RunbookError when it cannot be restored from."""
    for item in [info] if isinstance(info, dict) else info or []:
        if item.get("name") == stanza:
            break
    else:
        raise RunbookError("pgBackRest knows no stanza {0!r} in its repository.".format(stanza),
                           hint="Check the stanza option and the configuration file pgBackRest reads.",
                           cause="missing_stanza")
    status = item.get("status") or {}
    code = status.get("code", 0)
    if code in _STANZA_PROBLEMS and not _backups(item):
        raise RunbookError("Stanza {0!r} cannot be restored from: {1} ({2}).".format(
            stanza, _STANZA_PROBLEMS[code], status.get("message", "")),
            hint="Run `pgbackrest info` and `pgbackrest check`, and take a full backup first.", cause="no_backup")
    return item


def _backups(stanza):
    """The stanza's backup sets in pgBackRest's order (oldest first)."""
    return [backup for backup in stanza.get("backup") or [] if backup.get("label")]


def _stop(backup):
    return int((backup.get("timestamp") or {}).get("stop") or 0)


def _stop_lsn(backup):
    text = (backup.get("lsn") or {}).get("stop")
    return parse_lsn(text) if text else None


def _moment(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def _reaches(backup, target):
    """None when recovery from `backup` can reach `target`, else why not."""
    if target.kind == "time" and _stop(backup) >= target.moment.timestamp():
        return "it finished at {0}, not before the target time {1}".format(
            isoformat(_moment(_stop(backup))), isoformat(target.moment))
    if target.kind == "lsn" and _stop_lsn(backup) is not None and _stop_lsn(backup) > target.lsn:
        return "it ends at LSN {0}, after the target LSN {1}".format(format_lsn(_stop_lsn(backup)), target.value)
    return None


def choose_backup(stanza, target, backup_set=None):
    """The backup set to recover `target` from: the named one, else the newest that finished before the target
    (for a time or an LSN), else the newest. Sets pgBackRest marked with page errors are passed over."""
    backups = _backups(stanza)
    if not backups:
        raise RunbookError("Stanza {0!r} has no backup set to restore.".format(stanza.get("name")),
                           hint="Take a full backup first (pgbackrest backup --type=full).", cause="no_backup")
    if backup_set:
        for backup in backups:
            if backup["label"] == backup_set:
                problem = _reaches(backup, target)
                if problem:
                    raise RunbookError("Backup set {0} cannot recover to {1}: {2}.".format(
                        backup_set, target.describe(), problem), hint="Choose an older set, or leave backup_set out.",
                        cause="invalid")
                return backup
        raise RunbookError("Stanza {0!r} has no backup set {1}; it has {2}.".format(
            stanza.get("name"), backup_set, ", ".join(backup["label"] for backup in backups)), cause="invalid")
    sound = sorted((backup for backup in backups if not backup.get("error")), key=_stop)
    candidates = [backup for backup in sound if _reaches(backup, target) is None]
    if not candidates:
        oldest = sound[0] if sound else backups[0]
        raise RunbookError(
            "No backup set of stanza {0!r} can recover to {1}: the oldest, {2}, finished at {3}.".format(
                stanza.get("name"), target.describe(), oldest["label"], isoformat(_moment(_stop(oldest)))),
            hint="Choose a target after a backup finished; older states are gone with the expired backups.",
            cause="no_backup")
    return candidates[-1]


def archive_of(stanza, backup):
    """The WAL archive entry (id, min, max) of the backup's database."""
    database = (backup.get("database") or {}).get("id")
    archives = stanza.get("archive") or []
    for archive in archives:
        if (archive.get("database") or {}).get("id") == database:
            return archive
    return archives[-1] if archives else {}


def wal_range(stanza, backup, target):
    """The WAL the recovery replays: from the backup's first segment to the target's segment (an LSN) or the
    newest archived one. RunbookError when the archive lacks the WAL the backup itself needs."""
    archive = archive_of(stanza, backup)
    first = (backup.get("archive") or {}).get("start")
    needed = (backup.get("archive") or {}).get("stop") or first
    oldest, newest = archive.get("min"), archive.get("max")
    if not newest or (oldest and first and oldest[8:] > first[8:]) or (needed and newest[8:] < needed[8:]):
        raise RunbookError(
            "The WAL archive of stanza {0!r} ({1} to {2}) lacks segments {3} to {4} that backup set {5} needs to "
            "become consistent.".format(stanza.get("name"), oldest or "empty", newest or "empty", first, needed,
                                        backup["label"]),
            hint="Run `pgbackrest check` and `pgbackrest verify`; choose another backup set.", cause="wal_missing")
    last = newest
    if target.kind == "lsn" and first:
        last = min(newest, segment_name(int(first[:8], 16), target.lsn), key=lambda name: name[8:])
    return {"archive_id": archive.get("id"), "first": first, "last": last, "archive_min": oldest,
            "archive_max": newest}


def expected_data_loss(target, now, wal):
    """What the recovered cluster will not have, in seconds when the target tells it, and as a sentence."""
    if target.kind == "time":
        seconds = max(0, int((now - target.moment).total_seconds()))
        return {"seconds": seconds, "text": "every transaction committed after {0}: the last {1} of writes up to "
                                            "now ({2})".format(isoformat(target.moment), _duration(seconds),
                                                               isoformat(now))}
    if target.kind == "latest":
        return {"seconds": None, "text": "only the writes in WAL not yet archived (after segment {0}); with "
                                         "archiving working that is at most archive_timeout plus the time to push a "
                                         "segment".format(wal["archive_max"])}
    return {"seconds": None, "text": "every transaction after the target {0}; how much time that is, the target "
                                     "does not tell".format(target.describe())}


def _duration(seconds):
    hours, rest = divmod(int(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return "{0} h {1:02d} min".format(hours, minutes)
    if minutes:
        return "{0} min {1:02d} s".format(minutes, seconds)
    return "{0} s".format(seconds)


def make_plan(info, stanza, target, mode, backup_set=None, now=None, destination=None):
    """The plan of a drill or a recovery: the set, the WAL range, the target, the expected data loss, where it
    recovers to and what it stops and moves (`destination`, from describe_destination), as facts and lines."""
    now = now or utc_now()
    entry = stanza_of(info, stanza)
    backup = choose_backup(entry, target, backup_set)
    wal = wal_range(entry, backup, target)
    loss = expected_data_loss(target, now, wal)
    destination = destination or {"kind": "plan", "text": "nowhere (plan only)", "steps": []}
    chosen = {"label": backup["label"], "type": backup.get("type"),
              "started": isoformat(_moment(int((backup.get("timestamp") or {}).get("start") or 0))),
              "finished": isoformat(_moment(_stop(backup))),
              "lsn_stop": (backup.get("lsn") or {}).get("stop"),
              "size": (backup.get("info") or {}).get("size")}
    lines = [
        "{0} stanza {1} to {2}.".format({"drill": "Drill a recovery of", "recover": "Recover",
                                         "plan": "Plan a recovery of"}[mode], stanza, target.describe()),
        "Backup set: {0} ({1} backup, finished {2}).".format(chosen["label"], chosen["type"], chosen["finished"]),
        "WAL replayed: {0} up to {1} at most (archive {2}, holding {3} to {4}).".format(
            wal["first"], wal["last"], wal["archive_id"], wal["archive_min"], wal["archive_max"]),
        "Expected data loss: {0}.".format(loss["text"]),
        "Recovers into: {0}.".format(destination["text"]),
    ]
    lines.extend(destination.get("steps", []))
    return {"mode": mode, "stanza": stanza, "target": target.facts(), "backup": chosen, "wal": wal,
            "expected_data_loss": loss, "destination": dict(destination), "restore_options": target.restore_options(),
            "lines": lines, "text": "\n".join(lines)}


def describe_destination(mode, params, stamp):
    """Where a mode recovers to and the steps it takes there, for the plan."""
    if mode == "plan":
        return {"kind": "plan", "text": "nowhere (plan only)", "steps": []}
    port = "port {0}".format(params["copy_port"]) if params.get("copy_port") else "a free port"
    if mode == "drill":
        text = "a scratch data directory under {0}, started on 127.0.0.1, {1}, with archiving off, removed " \
               "afterwards".format(params["scratch_dir"], port)
        return {"kind": "scratch", "text": text,
                "steps": ["Then: run {0} check(s), stop the scratch cluster and remove its directory, also when "
                          "something failed.".format(len(params.get("checks") or []))]}
    data = params["data_directory"]
    if not params.get("replace_live"):
        text = ("the new data directory {0}, started on 127.0.0.1, {1}, with archiving off and left running for "
                "inspection; the live cluster is not touched").format(params["restore_dir"], port)
        return {"kind": "new", "text": text, "steps": []}
    aside = aside_path(data, stamp)
    stop = ("systemctl stop " + params["postgres_service"]) if params.get("postgres_service") else "pg_ctl stop"
    return {"kind": "live", "text": "the live data directory {0} (replacing it)".format(data), "aside": aside,
            "steps": ["Stops PostgreSQL ({0}); the application services are stopped before.".format(stop),
                      "Moves {0} aside to {1} (kept, never deleted).".format(data, aside),
                      "Restores into {0}, promotes at the target, starts PostgreSQL, checks it answers, is out of "
                      "recovery and passes {1} check(s).".format(data, len(params.get("checks") or [])),
                      "If the restore or a check fails: puts {0} back from {1} and starts it again "
                      "(rollback).".format(data, aside)]}


def aside_path(data_directory, stamp):
    return "{0}.pre-pitr-{1}".format(os.path.normpath(data_directory), stamp)


def stamp_of(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# -- reading PostgreSQL's log after a failed recovery -----------------------------

def next_segment(name, segment_size=SEGMENT_SIZE):
    """The WAL segment after `name` on the same timeline."""
    per_id = 0x100000000 // segment_size
    number = int(name[8:16], 16) * per_id + int(name[16:], 16) + 1
    return "{0}{1:08X}{2:08X}".format(name[:8], number // per_id, number % per_id)


# PostgreSQL's words for a recovery that ran out of WAL: the archive had no next segment.
_RAN_OUT = ("recovery ended before configured recovery target was reached", "WAL ends before end of online backup",
            "WAL ends before consistent recovery point", "could not locate required checkpoint record")


def recovery_failure(log_text, first_segment=None):
    """What a failed recovery's log says: the WAL segment it could not get, the last one it restored, and the
    last FATAL/PANIC line.

    The missing segment is the last one pgBackRest said it could not find or PostgreSQL could not open (timeline
    history files are not segments). pgBackRest logs a segment it cannot find at level info, below what its
    console shows by default, so when PostgreSQL says it ran out of WAL, the missing segment is the one after the
    last it restored (or the backup's first, `first_segment`, when it restored none)."""
    text = log_text or ""
    found = []
    for pattern in (_NOT_IN_ARCHIVE, _COULD_NOT):
        found.extend((match.start(), match.group(1)) for match in pattern.finditer(text))
    restored = _RESTORED.findall(text)
    fatal = [line.strip() for line in _FATAL.findall(text)]
    last_restored = restored[-1] if restored else None
    missing = max(found)[1] if found else None
    if missing is None and fatal and any(words in fatal[-1] for words in _RAN_OUT):
        missing = next_segment(last_restored) if last_restored else first_segment
    return {"missing_segment": missing, "last_restored_segment": last_restored, "fatal": fatal[-1] if fatal else None}


def failure_message(what, failure, wal):
    """One sentence of what went wrong in a recovery and what to do, from recovery_failure()."""
    missing = failure.get("missing_segment")
    fatal = failure.get("fatal")
    if missing and wal and wal.get("archive_max") and missing[8:] <= wal["archive_max"][8:]:
        return RunbookError(
            "{0} failed: WAL segment {1} is missing from the archive (a gap: the archive holds segments up to {2}); "
            "recovery stopped after {3}{4}.".format(what, missing, wal["archive_max"],
                                                    failure.get("last_restored_segment") or "the backup",
                                                    ": " + fatal if fatal else ""),
            hint="Run `pgbackrest verify`; recover to a target before the gap, or restore the segment from another "
                 "copy. Take a new full backup so later targets do not need it.",
            cause="wal_missing", missing_segment=missing)
    if missing:
        return RunbookError(
            "{0} failed: WAL segment {1}, needed to reach the target, is not in the archive{2}{3}.".format(
                what, missing, " (its newest is {0})".format(wal["archive_max"]) if (wal or {}).get("archive_max")
                else "", ": " + fatal if fatal else ""),
            hint="The target is after the newest archived WAL: wait until the WAL is archived "
                 "(SELECT pg_switch_wal() on the live cluster), or choose an earlier target.",
            cause="wal_missing", missing_segment=missing)
    return RunbookError("{0} failed{1}.".format(what, ": " + fatal if fatal else ""),
                        hint="Read the PostgreSQL log quoted in `log_tail`.", cause="recovery_failed")


# -- small host helpers ------------------------------------------------------------

def free_port():
    """A TCP port free on the loopback interface now."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except (IOError, OSError):
        return ""


def read_text(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except (IOError, OSError):
        return ""


# -- a cluster this engine starts and stops ------------------------------------------

def as_user(argv, user):
    """`argv` run as `user` when this process is root (pg_ctl refuses root), else as it is."""
    if user and os.geteuid() == 0 and user != "root":
        return ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--"] + list(argv)
    return list(argv)


def chown_to(path, user):
    if user and os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def bindir_for(data_directory, pg_bin_dir=None):
    """The server binaries for a data directory: the given directory, else Debian's for its PG_VERSION."""
    if pg_bin_dir:
        return pg_bin_dir
    version = read_text(os.path.join(data_directory, "PG_VERSION")).strip()
    candidate = "/usr/lib/postgresql/{0}/bin".format(version)
    if version and os.path.isfile(os.path.join(candidate, "pg_ctl")):
        return candidate
    raise RunbookError("No PostgreSQL {0} server binaries at {1}.".format(version or "(unknown version)", candidate),
                       hint="Install the server package of that version, or set pg_bin_dir.", cause="missing_program")


def postmaster_options(data_directory):
    """The options the running postmaster was started with (postmaster.opts, without the program and -D), so
    pg_ctl can start the recovered cluster the same way."""
    text = read_text(os.path.join(data_directory, "postmaster.opts")).strip()
    words = re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', text)
    words = [quoted or plain for quoted, plain in words][1:]
    options = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "-D":
            skip = True
        elif not word.startswith("-D"):
            options.append(word)
    return options


def shell_words(words):
    """Words joined for pg_ctl -o, which hands them to a shell."""
    return " ".join("'" + word.replace("'", "'\"'\"'") + "'" for word in words)


def postmaster_pid(data_directory):
    """The process id of the postmaster running on `data_directory`, else None."""
    try:
        pid = int(read_text(os.path.join(data_directory, "postmaster.pid")).split("\n", 1)[0])
        os.kill(pid, 0)
        return pid
    except (ValueError, OSError):
        return None


class Cluster(object):
    """A PostgreSQL cluster started and stopped with pg_ctl as its owner."""

    def __init__(self, data_directory, bindir, user, log_file, options=(), runner=None):
        from .commands import run

        self.data_directory = data_directory
        self.bindir = bindir
        self.user = user
        self.log_file = log_file
        self.options = list(options)
        self._run = runner or run

    def _pg_ctl(self, *args, **kwargs):
        argv = as_user([os.path.join(self.bindir, "pg_ctl"), "-D", self.data_directory] + list(args), self.user)
        return self._run(argv, **kwargs)

    def pid(self):
        return postmaster_pid(self.data_directory)

    def start(self, timeout):
        """Start it and wait until it accepts connections (in recovery: once consistent). RunbookError from the
        log when it exits instead."""
        args = ["-l", self.log_file, "-w", "-t", str(int(timeout))]
        if self.options:
            args += ["-o", shell_words(self.options)]
        result = self._pg_ctl(*(args + ["start"]), timeout=timeout + 30)
        if not result.ok:
            raise RunbookError("PostgreSQL did not start on {0}: {1}".format(self.data_directory, result.output(500)),
                               cause="start_failed")

    def stop(self, timeout=120):
        if self.pid() is None:
            return
        result = self._pg_ctl("-m", "fast", "-w", "-t", str(timeout), "stop", timeout=timeout + 30)
        if not result.ok and self.pid() is not None:
            self._pg_ctl("-m", "immediate", "-w", "-t", "60", "stop", timeout=90)
        if self.pid() is not None:
            raise RunbookError("PostgreSQL on {0} did not stop.".format(self.data_directory),
                               hint="Stop it by hand (pg_ctl stop -m immediate) before anything else.",
                               cause="stop_failed")

    def log(self):
        return read_text(self.log_file)


def wait_promoted(cluster, connect, timeout, what, wal, clock=time.monotonic, sleep=time.sleep):
    """Wait until the cluster has ended recovery (pg_is_in_recovery() false) and return an open connection.

    A cluster that exits meanwhile fails with what its log says (a missing WAL segment is named)."""
    deadline = clock() + timeout
    last_error = None
    while True:
        if cluster.pid() is None:
            raise _from_log(what, cluster, wal)
        try:
            conn = connect()
        except RunbookError as error:
            # A server still starting refuses or cannot be reached; a wrong user or database never gets better.
            if error.details.get("cause") not in ("unreachable", "connect", "timeout"):
                raise
            last_error = error
        else:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                if not cur.fetchone()[0]:
                    return conn
            conn.close()
        if clock() > deadline:
            raise RunbookError("{0}: the cluster on {1} had not ended recovery after {2} s{3}.".format(
                what, cluster.data_directory, timeout, " ({0})".format(last_error) if last_error else ""),
                hint="Raise recovery_timeout for a long replay; its log is in `log_tail`.", cause="timeout",
                log_tail=tail(cluster.log_file))
        sleep(1)


def _from_log(what, cluster, wal):
    error = failure_message(what, recovery_failure(cluster.log(), (wal or {}).get("first")), wal)
    error.details["log_tail"] = tail(cluster.log_file)
    return error


# -- verification --------------------------------------------------------------------

def _rendered(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def run_checks(connect, checks, database="postgres"):
    """pg_is_in_recovery() is false and every caller's check answers what it expects, as pass/fail checks.

    A check is {name, sql, database, expect}: `sql` returns one value, compared as text with `expect` (true
    when left out). A query that fails is a failed check, never a pass."""
    from . import health

    results = []
    conns = {}
    try:
        for item in [{"name": "out_of_recovery", "sql": "SELECT NOT pg_is_in_recovery()", "expect": True}] + list(
                checks or []):
            name = item.get("name") or item["sql"]
            expected = _rendered(True if item.get("expect") is None else item["expect"])
            where = item.get("database") or database
            try:
                if where not in conns:
                    conns[where] = connect(where)
                with conns[where].cursor() as cur:
                    cur.execute(item["sql"])
                    row = cur.fetchone()
                observed = _rendered(row[0] if row else None)
            except Exception as error:  # noqa: BLE001 - psycopg2 errors and RunbookError alike fail the check
                results.append(health.unchecked("pitr_check:" + name, "The check {0!r} could not run in database "
                                                "{1}: {2}".format(name, where, str(error).strip()), threshold=expected))
                continue
            status = "pass" if observed == expected else "fail"
            results.append(health.check("pitr_check:" + name, status, observed, expected,
                                        "{0}: {1} answered {2}, expected {3}.".format(
                                            name, item["sql"], observed, expected)))
    finally:
        for conn in conns.values():
            conn.close()
    return results


# -- the steps ------------------------------------------------------------------------

class Recovery(object):
    """The plan, the drill and the recovery of one stanza, with the pgBackRest runner and the PostgreSQL
    connection options the module gives."""

    def __init__(self, params, pgbackrest, log=None, now=None, connect=None):
        self.params = params
        self.pgbackrest = pgbackrest
        self.log = log or (lambda line: None)
        self.now = now or utc_now()
        self.stamp = stamp_of(self.now)
        self.target = parse_target(params["target_type"], params.get("target"), params.get("target_exclusive"),
                                   now=self.now, timeline=params.get("target_timeline"))
        self._connect = connect

    def plan(self, mode=None):
        mode = mode or self.params["mode"]
        destination = describe_destination(mode, self.params, self.stamp)
        return make_plan(self.pgbackrest.info(), self.params["pgbackrest_stanza"], self.target, mode,
                         backup_set=self.params.get("backup_set"), now=self.now, destination=destination)

    def connect_to(self, host, port, user=None):
        """Connections to `host` (a socket directory) and `port`; as `user` when given, else as login_user."""
        from . import postgres

        def connect(database="postgres"):
            params = dict(self.params, login_host=host, login_port=port)
            if user:
                params["login_user"] = user
            return (self._connect or postgres.connect)(params, database)
        return connect

    def restore(self, plan, data_directory, archive_off):
        args = ["--pg1-path=" + data_directory, "--set=" + plan["backup"]["label"]] + plan["restore_options"]
        if archive_off:
            args.append("--archive-mode=off")
        self.log("pgbackrest restore {0}".format(" ".join(args)))
        self.pgbackrest.run("restore", *args)

    def _isolated_cluster(self, data_directory, socket_dir, port, log_file, name):
        """The restored copy as a cluster of its own: its port on loopback, its private socket directory, its own
        pg_hba.conf, no archiving, its log in our file."""
        user = self.params.get("pgbackrest_user")
        _write_missing_configuration(data_directory, user)
        hba = os.path.join(socket_dir, "pg_pitr_hba.conf")
        _write_hba(hba, user)
        options = ["-c", "port={0}".format(port), "-c", "listen_addresses=127.0.0.1", "-c", "hba_file=" + hba,
                   "-c", "unix_socket_directories=" + socket_dir, "-c", "archive_mode=off",
                   "-c", "logging_collector=off", "-c", "cluster_name=" + name]
        for key, value in sorted((self.params.get("server_settings") or {}).items()):
            options += ["-c", "{0}={1}".format(key, value)]
        return Cluster(data_directory, bindir_for(data_directory, self.params.get("pg_bin_dir")),
                       self.params.get("pgbackrest_user"), log_file, options)

    def _verify(self, connect):
        from . import health

        checks = run_checks(connect, self.params.get("checks"))
        return checks, health.worst(checks)

    def verify_repository(self):
        """`pgbackrest verify` as a check: every backup file and archived WAL segment is read and checked."""
        from . import health

        result = self.pgbackrest.result("verify", "--output=text")
        text = result.output(2000)
        problems = re.findall(r"(missing|checksum invalid|size invalid|other): ([1-9]\d*)", text)
        status = "pass" if result.ok and not problems and "status: error" not in text else "fail"
        observed = ", ".join("{0} {1}".format(count, what) for what, count in problems) or (
            "ok" if status == "pass" else "exit {0}".format(result.rc))
        return health.check("pgbackrest_verify", status, observed, "no invalid or missing file",
                            "pgbackrest verify of stanza {0}: {1}".format(
                                self.params["pgbackrest_stanza"], " ".join(text.split())[:600] or observed))

    def drill(self):
        """Restore into a scratch directory, promote at the target, run the checks, tear it all down."""
        plan = self.plan("drill")
        verified = [self.verify_repository()] if self.params.get("verify_repository") else []
        user = self.params.get("pgbackrest_user")
        parent = self.params["scratch_dir"]
        if not os.path.isdir(parent):
            raise RunbookError("The scratch directory's parent {0} does not exist.".format(parent),
                               hint="Create it (owned by the cluster's user) or set scratch_dir.", cause="invalid")
        scratch = tempfile.mkdtemp(prefix="pitr-drill-", dir=parent)
        cluster = None
        try:
            chown_to(scratch, user)
            data, sock = os.path.join(scratch, "data"), os.path.join(scratch, "sock")
            for path in (data, sock):
                os.mkdir(path, 0o700)
                chown_to(path, user)
            self.restore(plan, data, archive_off=True)
            port = self.params.get("copy_port") or free_port()
            cluster = self._isolated_cluster(data, sock, port, os.path.join(scratch, "postgres.log"), "pitr-drill")
            self.log("starting the scratch cluster on port {0}".format(port))
            self._start(cluster, "The drill", plan)
            connect = self.connect_to(sock, port, self.params.get("pgbackrest_user"))
            wait_promoted(cluster, connect, self.params["recovery_timeout"], "The drill", plan["wal"]).close()
            checks, status = self._verify(connect)
            checks = verified + checks
            status = "fail" if any(check["status"] != "pass" for check in checks) else "pass"
            return {"plan": plan, "checks": checks, "status": status, "port": port, "changed": False,
                    "failed": status != "pass",
                    "msg": "Drill {0}: recovered backup set {1} to {2} in a scratch cluster; {3}.".format(
                        "passed" if status == "pass" else "FAILED", plan["backup"]["label"], self.target.describe(),
                        _summary(checks))}
        finally:
            if cluster is not None:
                try:
                    cluster.stop()
                except RunbookError as error:
                    self.log(str(error))
            shutil.rmtree(scratch, ignore_errors=True)
            self.log("removed the scratch directory {0}".format(scratch))

    def _start(self, cluster, what, plan):
        try:
            cluster.start(self.params["recovery_timeout"])
        except RunbookError as error:
            if cluster.pid() is None:
                raise _from_log(what, cluster, plan["wal"])
            raise error

    def recover_new(self):
        """Recover into a new data directory and leave it running for inspection; the live cluster is untouched."""
        plan = self.plan("recover")
        user = self.params.get("pgbackrest_user")
        data = self.params["restore_dir"]
        if os.path.exists(data) and os.listdir(data):
            raise RunbookError("The restore directory {0} exists and is not empty.".format(data),
                               hint="Name a new directory, or remove an old inspection copy first.", cause="invalid")
        if not os.path.isdir(os.path.dirname(os.path.normpath(data))):
            raise RunbookError("The parent of the restore directory {0} does not exist.".format(data),
                               cause="invalid")
        created = not os.path.exists(data)
        if created:
            os.mkdir(data, 0o700)
        chown_to(data, user)
        port = self.params.get("copy_port") or free_port()
        cluster = None
        try:
            self.restore(plan, data, archive_off=True)
            cluster = self._isolated_cluster(data, data, port, os.path.join(data, "pg_pitr_recovery.log"),
                                             "pitr-copy")
            self._start(cluster, "The recovery", plan)
            connect = self.connect_to(data, port, self.params.get("pgbackrest_user"))
            wait_promoted(cluster, connect, self.params["recovery_timeout"], "The recovery",
                          plan["wal"]).close()
            checks, status = self._verify(connect)
        except BaseException:
            # A copy that did not come up is of no use to inspect: remove what this run wrote.
            if cluster is not None:
                try:
                    cluster.stop()
                except RunbookError as error:
                    self.log(str(error))
            _empty(data, remove=created)
            raise
        return {"plan": plan, "checks": checks, "status": status, "port": port, "data_directory": data,
                "socket_directory": data, "changed": True, "failed": status != "pass",
                "msg": "Recovered backup set {0} to {1} into {2}, running on 127.0.0.1 port {3} (socket directory "
                       "{2}) for inspection; {4}. The live cluster was not touched; stop the copy with "
                       "`pg_ctl -D {2} stop` and remove it when done.".format(
                           plan["backup"]["label"], self.target.describe(), data, port, _summary(checks))}

    def recover_live(self):
        """Replace the live cluster by its recovery to the target; put the old one back on any failure."""
        plan = self.plan("recover")
        user = self.params.get("pgbackrest_user")
        data = os.path.normpath(self.params["data_directory"])
        aside = plan["destination"]["aside"]
        if not os.path.isfile(os.path.join(data, "PG_VERSION")):
            raise RunbookError("{0} is not a PostgreSQL data directory (no PG_VERSION).".format(data),
                               hint="Set data_directory to the live cluster's data_directory.", cause="invalid")
        if os.path.exists(aside):
            raise RunbookError("{0} exists already.".format(aside), cause="invalid")
        live = self._live_cluster(data)
        self.log("stopping PostgreSQL")
        live.stop()
        os.rename(data, aside)
        self.log("moved {0} aside to {1}".format(data, aside))
        try:
            os.mkdir(data, 0o700)
            chown_to(data, user)
            self.restore(plan, data, archive_off=False)
            live.start(self.params["recovery_timeout"])
            connect = self.connect_to(self.params.get("login_host") or self.params.get("login_unix_socket") or "",
                                      self.params.get("login_port"))
            wait_promoted(live, connect, self.params["recovery_timeout"], "The recovery",
                          plan["wal"]).close()
            checks, status = self._verify(connect)
            if status != "pass":
                raise RunbookError("The recovered cluster failed its checks: {0}.".format(_summary(checks)),
                                   cause="verification_failed", checks=checks)
        except (RunbookError, OSError) as error:
            if not isinstance(error, RunbookError) or error.details.get("cause") != "verification_failed":
                error = error if isinstance(error, RunbookError) else RunbookError(str(error))
                if live.pid() is None and os.path.exists(live.log_file):
                    error = _merge(error, _from_log("The recovery", live, plan["wal"]))
            raise self._rollback(live, data, aside, error)
        return {"plan": plan, "checks": checks, "status": status, "data_directory": data, "moved_aside": aside,
                "changed": True, "failed": False,
                "msg": "Recovered the live cluster in {0} from backup set {1} to {2}; it answers, is out of recovery "
                       "and {3}. The old data directory is kept at {4}.".format(
                           data, plan["backup"]["label"], self.target.describe(), _summary(checks), aside)}

    def _live_cluster(self, data):
        service = self.params.get("postgres_service")
        log_file = self.params.get("postgres_log_file") or os.path.join(
            os.path.dirname(data), os.path.basename(data) + "-pitr.log")
        if service:
            return ServiceCluster(service, data, log_file)
        return Cluster(data, bindir_for(data, self.params.get("pg_bin_dir")), self.params.get("pgbackrest_user"), log_file,
                       postmaster_options(data))

    def _rollback(self, live, data, aside, error):
        """Put the old data directory back and start it; the error says what failed and that it was rolled back."""
        try:
            live.stop()
            if os.path.exists(data):
                # The failed restore is this run's own copy of the backup, as large as the cluster: removed.
                shutil.rmtree(data)
            os.rename(aside, data)
            live.start(self.params["recovery_timeout"])
        except (RunbookError, OSError) as rollback_error:
            return RunbookError(
                "{0} The ROLLBACK FAILED too: {1}. The old data directory is {2}.".format(
                    error.message, rollback_error, aside if os.path.exists(aside) else data),
                hint="Start the old cluster by hand.", cause="rollback_failed", **error.details)
        return RunbookError(
            "{0} Rolled back: the old data directory is back in {1} and PostgreSQL runs on it again.".format(
                error.message, data), hint=error.hint, rolled_back=True, **error.details)

    def run(self, check_mode):
        mode = self.params["mode"]
        if check_mode or mode == "plan":
            plan = self.plan()
            return {"plan": plan, "changed": False, "msg": plan["text"]}
        from .postgres import import_psycopg2

        import_psycopg2()
        if mode == "drill":
            return self.drill()
        if self.params.get("replace_live"):
            return self.recover_live()
        return self.recover_new()


class ServiceCluster(object):
    """The live cluster under systemd: stopped and started by its unit."""

    def __init__(self, unit, data_directory, log_file, runner=None):
        from .commands import run

        self.unit = unit
        self.data_directory = data_directory
        self.log_file = log_file
        self._run = runner or run

    def _systemctl(self, verb, timeout):
        result = self._run(["systemctl", verb, self.unit], timeout=timeout)
        if not result.ok:
            raise RunbookError("systemctl {0} {1} failed: {2}".format(verb, self.unit, result.output(500)),
                               hint="See `journalctl -u {0}`.".format(self.unit), cause="{0}_failed".format(verb))

    def pid(self):
        return postmaster_pid(self.data_directory)

    def start(self, timeout):
        self._systemctl("start", timeout + 30)

    def stop(self, timeout=120):
        self._systemctl("stop", timeout + 30)

    def log(self):
        return read_text(self.log_file)


def _empty(path, remove):
    """Remove `path` (remove=True) or everything in it."""
    if remove:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in os.listdir(path):
        child = os.path.join(path, name)
        if os.path.isdir(child) and not os.path.islink(child):
            shutil.rmtree(child, ignore_errors=True)
        else:
            os.unlink(child)


def _merge(error, from_log):
    if from_log.details.get("missing_segment") or from_log.details.get("cause") != "recovery_failed":
        return from_log
    error.details.setdefault("log_tail", from_log.details.get("log_tail"))
    return error


def _summary(checks):
    failing = [check["name"] for check in checks if check["status"] != "pass"]
    if failing:
        return "{0} of {1} checks failed: {2}".format(len(failing), len(checks), ", ".join(failing))
    return "all {0} checks passed".format(len(checks))


def _write_missing_configuration(data_directory, user):
    """A Debian cluster keeps postgresql.conf in /etc, so its backup has none: give the copy an empty one (its
    settings come from the command line and postgresql.auto.conf) instead of the live cluster's, whose
    data_directory and port point at the live cluster."""
    path = os.path.join(data_directory, "postgresql.conf")
    if not os.path.exists(path):
        _write(path, "# Written by ops.runbook pg_pitr for a recovered copy.\n", user)


def _write_hba(path, user):
    """The copy's own pg_hba.conf: trust on its Unix socket, whose directory only the cluster's owner (and root)
    can enter, so the engine reaches it as root or as the owner; passwords on loopback, as the live cluster's
    users have them."""
    _write(path, "# Written by ops.runbook pg_pitr for a recovered copy.\nlocal all all trust\n"
                 "host all all 127.0.0.1/32 scram-sha-256\n", user)


def _write(path, text, user):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    chown_to(path, user)


def validate(params):
    """What the argument spec cannot say: which directory each mode needs."""
    if params["mode"] == "recover" and not params.get("replace_live") and not params.get("restore_dir"):
        raise RunbookError("mode=recover without replace_live recovers into a new data directory: set restore_dir.",
                           hint="Or set replace_live=true and data_directory to replace the live cluster.",
                           cause="invalid")
    if params.get("replace_live") and not params.get("data_directory"):
        raise RunbookError("replace_live needs data_directory, the live cluster's data directory.", cause="invalid")


def run_pitr(params, check_mode, log, pgbackrest=None):
    """The module's work: the plan in check mode or mode=plan, else the drill or the recovery."""
    validate(params)
    return Recovery(params, pgbackrest or PgBackRest(params), log=log).run(check_mode)
