# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest health: can the cluster be recovered to a point in time, and how recent a one?

What pgBackRest says (`pgbackrest info --output=json`, and the repository's
WAL archive listed with `pgbackrest repo-ls`) and what the cluster says
(`pg_stat_archiver`, its current WAL position) become health.py checks, each
named `CHECK:STANZA`:

- pgbackrest_stanza: the stanza's status in the repository, and that it
  belongs to this cluster (same system identifier);
- pgbackrest_full_backup / pgbackrest_backup: the age of the newest full
  backup, and of the newest backup of any type (full, diff, incr), against
  the weekly-full, daily-diff schedule;
- pgbackrest_archive_continuity: every WAL segment from the oldest backup's
  archive start to the newest archived one is in the repository; a gap is a
  fail naming the missing segments, since recovery stops at the first one;
- pgbackrest_archive_age: the age of the last archived segment against the
  RPO, judged only when WAL written since that segment is waiting to be
  archived: an idle cluster archives nothing and has nothing to lose;
- pgbackrest_archive_push: failed archive-push attempts (pg_stat_archiver);
  a failure newer than the last success fails, naming the WAL and the time.

A check that could not be made (the store down, wrong credentials, a missing
stanza, a cluster that refuses the login) is a `fail` marked `unchecked`
with the translated error, never a pass. The evaluation functions take plain
data (the JSON pgBackRest prints, a row of the cluster), so the unit tests
feed them what a real pgBackRest 2.45 printed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re

from . import health
from .common import RunbookError, isoformat, utc_now
from .pgbackrest import PgBackRest, info_error

# health.Limits of this engine. A weekly full backup warns a day late and fails a week late; the daily
# diff (or incr) the same way in hours; the last archived segment, while WAL waits behind it, warns past two
# archive_timeouts (60 s) and fails past the runbooks' 1-hour RPO (003 promises 1 minute: set fail to 60).
THRESHOLDS = {
    "full_backup_age_hours": health.Limit(warn=192, fail=336),
    "backup_age_hours": health.Limit(warn=26, fail=50),
    "archive_age_seconds": health.Limit(warn=120, fail=3600),
}

CHECKS = ["stanza", "full_backup", "backup", "archive_continuity", "archive_age", "archive_push"]
DEFAULTS = {
    "database": "postgres",
    "thresholds": {},
    "query_timeout": 30,
    "io_timeout": 5,
}
# PostgreSQL's default WAL segment size, assumed only when the cluster cannot be asked.
DEFAULT_SEGMENT_SIZE = 16 * 1024 ** 2
LISTED = 10

# A WAL segment in the repository: its 24-hex-digit name, pgBackRest's SHA-1 of it, a compression extension.
_SEGMENT_FILE = re.compile(r"(?:^|/)([0-9A-F]{24})-[0-9a-f]{40}(?:\.[a-z0-9]+)?$")
_SEGMENT_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})")


def limits_from(overrides=None):
    """The pgBackRest thresholds with the caller's {name: {warn, fail}} laid over them (health.Limits)."""
    return health.Limits(THRESHOLDS, overrides)


def _plural(count, word):
    return "{0} {1}{2}".format(count, word, "" if count == 1 else "s")


def _hours(seconds):
    return round(seconds / 3600.0, 1)


# -- WAL segment names ---------------------------------------------------------

class Segments(object):
    """WAL segment names and numbers for one segment size (timeline, then log and segment in hex)."""

    def __init__(self, size=DEFAULT_SEGMENT_SIZE):
        self.size = int(size)
        self.per_log = 0x100000000 // self.size

    def parse(self, name):
        """(timeline, segment number) of a segment name, a .partial or .backup file of it; None for anything else."""
        found = _SEGMENT_NAME.match(name or "")
        if not found:
            return None
        timeline, log, seg = (int(part, 16) for part in found.groups())
        return timeline, log * self.per_log + seg

    def name(self, timeline, number):
        return "{0:08X}{1:08X}{2:08X}".format(timeline, number // self.per_log, number % self.per_log)

    def containing(self, lsn_bytes):
        """Number of the segment holding the WAL just before `lsn_bytes` (as pg_walfile_name does)."""
        return max(int(lsn_bytes) - 1, 0) // self.size


def repository_segments(listing):
    """Names of the WAL segments in a `repo-ls --recurse --output=json` listing (no .backup, .history, .partial)."""
    found = set()
    for path, entry in (listing or {}).items():
        if isinstance(entry, dict) and entry.get("type") != "file":
            continue
        match = _SEGMENT_FILE.search(path)
        if match:
            found.add(match.group(1))
    return sorted(found)


def missing_segments(present, start, end, segments):
    """Names of the segments from `start` to `end` ((timeline, number) pairs) that the repository lacks.

    A timeline switch ends the old timeline's segments (its last, partial one
    is renamed .partial) and starts the new one's at the next number, so a
    number is covered when any timeline from `start`'s on has it, and a
    missing one is named on the newest timeline that had begun by then. An
    abandoned timeline that covers a gap is not told apart: history files are
    not read.
    """
    start_timeline, start_number = start
    covered = set()
    begins = {start_timeline: start_number}
    for name in present:
        parsed = segments.parse(name)
        if parsed and parsed[0] >= start_timeline:
            covered.add(parsed[1])
            begins[parsed[0]] = min(begins.get(parsed[0], parsed[1]), parsed[1])
    missing = []
    for number in range(start_number, end[1] + 1):
        if number not in covered:
            timeline = max(line for line, first in begins.items() if first <= number)
            missing.append((timeline, number))
    return missing


def _ranges(missing):
    """Runs of consecutive missing segments of one timeline, as [(first, last)] pairs."""
    runs = []
    for timeline, number in missing:
        if runs and runs[-1][1] == (timeline, number - 1):
            runs[-1][1] = (timeline, number)
        else:
            runs.append([(timeline, number), (timeline, number)])
    return runs


def describe_missing(missing, segments):
    """The missing segments as names and ranges, the first LISTED runs."""
    runs = _ranges(missing)
    parts = []
    for first, last in runs[:LISTED]:
        if first == last:
            parts.append(segments.name(*first))
        else:
            parts.append("{0} to {1} ({2} segments)".format(
                segments.name(*first), segments.name(*last), last[1] - first[1] + 1))
    more = len(runs) - LISTED
    return ", ".join(parts) + (" and {0} more gaps".format(more) if more > 0 else "")


# -- what pgBackRest says ------------------------------------------------------

def stanza_entry(info, stanza):
    """The entry of `stanza` in `pgbackrest info --output=json` (a list of stanzas)."""
    for entry in info if isinstance(info, list) else []:
        if isinstance(entry, dict) and entry.get("name") == stanza:
            return entry
    raise RunbookError("pgbackrest info does not list the stanza {0}.".format(stanza),
                       hint="Create it with `pgbackrest --stanza={0} stanza-create`, or correct pgbackrest_stanza.".format(
                           stanza), cause="stanza_missing")


def stanza_check(entry, cluster=None):
    """The stanza can be read (pgBackRest's status ok, or no valid backup yet) and belongs to this cluster."""
    name = "pgbackrest_stanza:{0}".format(entry.get("name"))
    problem = info_error(entry, entry.get("name"))
    if problem:
        return health.unchecked(name, "Could not read stanza {0}: {1}".format(entry.get("name"), _one_line(problem)),
                                observed=(entry.get("status") or {}).get("message"), threshold="ok",
                                stanza=entry.get("name"), cause=problem.details.get("cause"))
    databases = entry.get("db") or []
    current = databases[-1] if databases else {}
    system_id = current.get("system-id")
    if cluster and cluster.get("system_identifier") and system_id and \
            int(cluster["system_identifier"]) != int(system_id):
        return health.check(name, health.FAIL, str(cluster["system_identifier"]), str(system_id),
                            "Stanza {0} belongs to another cluster: its system identifier is {1}, this cluster's is "
                            "{2}. Point the health check (and archive_command) at this cluster's stanza.".format(
                                entry.get("name"), system_id, cluster["system_identifier"]),
                            stanza=entry.get("name"))
    return health.check(name, health.PASS, "ok", "ok", "Stanza {0} is readable (PostgreSQL {1}, cipher {2}).".format(
        entry.get("name"), current.get("version", "?"), entry.get("cipher", "?")), stanza=entry.get("name"))


def _backups(entry):
    return [backup for backup in entry.get("backup") or [] if isinstance(backup, dict)]


def _age_check(name, key, backups, what, now_epoch, limits, stanza, schedule):
    if not backups:
        return health.check(name, health.FAIL, None, limits.threshold(key),
                            "Stanza {0} has no {1}: {2}".format(stanza, what, schedule), unit="hours", stanza=stanza)
    newest = max(backups, key=lambda backup: backup["timestamp"]["stop"])
    age = _hours(max(now_epoch - newest["timestamp"]["stop"], 0))
    sentence = "The newest {0} of stanza {1}, {2}, finished {3} h ago.".format(
        what, stanza, newest.get("label"), age)
    status = limits.grade(key, age)
    if status != health.PASS:
        sentence += " " + schedule
    return health.check(name, status, age, limits.threshold(key), sentence, unit="hours", stanza=stanza,
                        label=newest.get("label"), type=newest.get("type"))


def backup_checks(entry, now_epoch, limits):
    """Age of the newest full backup, and of the newest backup of any type, in hours."""
    stanza = entry.get("name")
    backups = _backups(entry)
    return [
        _age_check("pgbackrest_full_backup:{0}".format(stanza), "full_backup_age_hours",
                   [b for b in backups if b.get("type") == "full"], "full backup", now_epoch, limits, stanza,
                   "Check the weekly full backup's timer and log, or run one: pgbackrest --stanza={0} backup "
                   "--type=full.".format(stanza)),
        _age_check("pgbackrest_backup:{0}".format(stanza), "backup_age_hours", backups, "backup (full, diff or incr)",
                   now_epoch, limits, stanza,
                   "Check the daily differential backup's timer and log, or run one: pgbackrest --stanza={0} "
                   "backup --type=diff.".format(stanza)),
    ]


def archive_ranges(entry):
    """[(archive id, oldest backup's archive start, archive max)] for every archive id with a backup."""
    backups = _backups(entry)
    ranges = []
    for archive in entry.get("archive") or []:
        database_id = (archive.get("database") or {}).get("id")
        starts = [b["archive"]["start"] for b in backups
                  if (b.get("database") or {}).get("id") == database_id and (b.get("archive") or {}).get("start")]
        if starts and archive.get("max"):
            ranges.append((archive["id"], min(starts), archive["max"]))
    return ranges


def continuity_check(entry, listings, segments, last_archived=None):
    """Every segment from the oldest backup's archive start to the newest archived one is in the repository.

    `listings` maps an archive id to its repo-ls listing. `last_archived`, the
    cluster's last archived WAL, extends the newest archive id's range: a lost
    tail of the archive does not lower `max` below what the cluster archived.
    """
    stanza = entry.get("name")
    name = "pgbackrest_archive_continuity:{0}".format(stanza)
    ranges = archive_ranges(entry)
    if not ranges:
        return health.check(name, health.FAIL, None, "no gap",
                            "Stanza {0} has no backup with WAL to recover from, so there is no archive to "
                            "recover with. Run a full backup: pgbackrest --stanza={0} backup --type=full.".format(stanza),
                            unit="segments", stanza=stanza)
    gaps = []
    checked = 0
    spans = []
    for index, (archive_id, first, last) in enumerate(ranges):
        start = segments.parse(first)
        end = segments.parse(last)
        newest = segments.parse(last_archived) if index == len(ranges) - 1 and last_archived else None
        if newest and newest[1] > end[1]:
            end = newest
            last = segments.name(newest[0], newest[1])
        present = repository_segments(listings.get(archive_id))
        missing = missing_segments(present, start, end, segments)
        checked += end[1] - start[1] + 1
        spans.append("{0} to {1} ({2})".format(first, last, archive_id))
        if missing:
            gaps.extend(missing)
    facts = {"stanza": stanza, "ranges": spans, "checked_segments": checked}
    if not gaps:
        return health.check(name, health.PASS, 0, "no gap", "All {0} WAL segments from {1} are in the repository.".format(
            checked, "; ".join(spans)), unit="segments", missing=[], **facts)
    count = len(gaps)
    named = describe_missing(gaps, segments)
    listed = [segments.name(*segment) for segment in gaps[:LISTED * 10]]
    return health.check(name, health.FAIL, count, "no gap",
                        "The WAL archive of stanza {0} has a gap: {1} missing ({2}). Recovery stops at the first "
                        "missing segment, so no point after it can be restored from the backups before it. Take a "
                        "new full backup (pgbackrest --stanza={0} backup --type=full) so that recovery does not need "
                        "the missing WAL, and find out what deleted it.".format(
                            stanza, _plural(count, "segment"), named),
                        unit="segments", missing=listed, **facts)


# -- what the cluster says -----------------------------------------------------

CLUSTER_SQL = """
SELECT pg_is_in_recovery(),
       current_setting('archive_mode'),
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                       '0/0')::bigint,
       (SELECT timeline_id FROM pg_control_checkpoint()),
       (SELECT system_identifier FROM pg_control_system()),
       archived_count, last_archived_wal, last_archived_time,
       extract(epoch FROM now() - last_archived_time)::float8,
       failed_count, last_failed_wal, last_failed_time,
       extract(epoch FROM now() - last_failed_time)::float8,
       stats_reset
FROM pg_stat_archiver
"""
_CLUSTER_FIELDS = ("in_recovery", "archive_mode", "wal_segment_size", "lsn_bytes", "timeline", "system_identifier",
                   "archived_count", "last_archived_wal", "last_archived_time", "last_archived_seconds_ago",
                   "failed_count", "last_failed_wal", "last_failed_time", "last_failed_seconds_ago", "stats_reset")


def cluster_state(conn):
    """The cluster's archiving state as a dict (times as ISO 8601 UTC)."""
    with conn.cursor() as cur:
        cur.execute(CLUSTER_SQL)
        row = dict(zip(_CLUSTER_FIELDS, cur.fetchone()))
    for key in ("last_archived_time", "last_failed_time", "stats_reset"):
        if row[key] is not None:
            row[key] = isoformat(row[key])
    row["system_identifier"] = str(row["system_identifier"]) if row["system_identifier"] is not None else None
    return row


def archive_age_check(stanza, cluster, segments, limits):
    """The age of the last archived segment, judged only when WAL written since it waits to be archived."""
    name = "pgbackrest_archive_age:{0}".format(stanza)
    threshold = limits.threshold("archive_age_seconds")
    facts = {"stanza": stanza, "last_archived_wal": cluster["last_archived_wal"],
             "last_archived_time": cluster["last_archived_time"]}
    if cluster["archive_mode"] == "off":
        return health.check(name, health.FAIL, None, threshold,
                            "archive_mode is off: the cluster archives no WAL, so nothing after the last backup can "
                            "be recovered. Set archive_mode = on and archive_command to pgbackrest --stanza={0} "
                            "archive-push %p (the ops.runbook.pgbackrest role does), and restart "
                            "PostgreSQL.".format(stanza), unit="seconds", **facts)
    if cluster["in_recovery"] and cluster["archive_mode"] != "always":
        return health.check(name, health.PASS, None, threshold,
                            "This server is a standby with archive_mode = {0}: its primary archives the WAL, so the "
                            "RPO is judged there.".format(cluster["archive_mode"]), unit="seconds", **facts)
    current = segments.containing(cluster["lsn_bytes"])
    last = segments.parse(cluster["last_archived_wal"]) if cluster["last_archived_wal"] else None
    written = segments.name(cluster["timeline"] or 1, current)
    facts["current_wal"] = written
    if last is None:
        return health.check(name, health.FAIL, None, threshold,
                            "The cluster has archived no WAL since its statistics were reset ({0}) and is writing "
                            "{1}: nothing after the last backup can be recovered. Check archive_command and the "
                            "server log.".format(cluster["stats_reset"] or "never", written),
                            unit="seconds", **facts)
    age = round(cluster["last_archived_seconds_ago"] or 0.0, 1)
    waiting = current - last[1]
    facts["waiting_segments"] = max(waiting, 0)
    if waiting <= 0:
        return health.check(name, health.PASS, age, threshold,
                            "Nothing is waiting to be archived: no WAL was written since {0} was archived {1} s ago "
                            "(an idle cluster has nothing to lose).".format(cluster["last_archived_wal"], age),
                            unit="seconds", **facts)
    status = limits.grade("archive_age_seconds", age)
    sentence = ("WAL written since {0} (archived {1} s ago) waits to be archived, up to {2} ({3}): a crash of this "
                "host now would lose it.".format(cluster["last_archived_wal"], age, written,
                                                 _plural(waiting, "segment")))
    if status != health.PASS:
        sentence += (" Check archive_command and the server log; archive_timeout bounds how long a quiet cluster "
                     "keeps WAL back.")
    return health.check(name, status, age, threshold, sentence, unit="seconds", **facts)


def archive_push_check(stanza, cluster):
    """Failed archive-push attempts: one newer than the last success fails."""
    name = "pgbackrest_archive_push:{0}".format(stanza)
    failed = int(cluster["failed_count"] or 0)
    facts = {"stanza": stanza, "failed_count": failed, "last_failed_wal": cluster["last_failed_wal"],
             "last_failed_time": cluster["last_failed_time"], "archived_count": int(cluster["archived_count"] or 0)}
    since = "since the statistics were reset ({0})".format(cluster["stats_reset"]) if cluster["stats_reset"] else ""
    if not failed or cluster["last_failed_time"] is None:
        return health.check(name, health.PASS, 0, "no failure since the last success",
                            "No archive-push attempt failed {0}.".format(since).replace(" .", "."),
                            unit="attempts", **facts)
    failing = cluster["last_archived_time"] is None or cluster["last_failed_time"] > cluster["last_archived_time"]
    if failing:
        return health.check(name, health.FAIL, failed, "no failure since the last success",
                            "Archiving {0} failed at {1} ({2:.0f} s ago) and nothing was archived since (last "
                            "success: {3}). WAL piles up in pg_wal until it works. Read the PostgreSQL log for "
                            "pgBackRest's error and run pgbackrest --stanza={4} check.".format(
                                cluster["last_failed_wal"], cluster["last_failed_time"],
                                cluster["last_failed_seconds_ago"] or 0.0,
                                "{0} at {1}".format(cluster["last_archived_wal"], cluster["last_archived_time"])
                                if cluster["last_archived_time"] else "none", stanza),
                            unit="attempts", **facts)
    return health.check(name, health.PASS, failed, "no failure since the last success",
                        "{0} failed {1}, the last for {2} at {3}; archiving worked again after it (last success: {4} "
                        "at {5}).".format(_plural(failed, "archive-push attempt"), since, cluster["last_failed_wal"],
                                          cluster["last_failed_time"], cluster["last_archived_wal"],
                                          cluster["last_archived_time"]).replace("  ", " ").replace(" ,", ","),
                        unit="attempts", **facts)


# -- one run ---------------------------------------------------------------------

def _unchecked_all(stanza, names, reason, threshold_of):
    return [health.unchecked("pgbackrest_{0}:{1}".format(name, stanza), reason, threshold=threshold_of(name),
                             stanza=stanza) for name in names]


def _threshold_of(limits):
    keys = {"full_backup": "full_backup_age_hours", "backup": "backup_age_hours",
            "archive_age": "archive_age_seconds"}
    plain = {"stanza": "ok", "archive_continuity": "no gap", "archive_push": "no failure since the last success"}
    return lambda name: limits.threshold(keys[name]) if name in keys else plain[name]


def _one_line(error):
    return " ".join(str(error).split())


def evaluate(entry, listings, cluster, limits, now_epoch, cluster_error=None):
    """Every check of one stanza from what pgBackRest and the cluster said.

    `entry` is the stanza's `pgbackrest info` entry; `listings` maps archive
    ids to their repo-ls listings; `cluster` is cluster_state() or None with
    `cluster_error` (a RunbookError) saying why it could not be read.
    """
    stanza = entry.get("name")
    threshold_of = _threshold_of(limits)
    checks = [stanza_check(entry, cluster)]
    if checks[0].get("unchecked"):
        return checks + _unchecked_all(stanza, CHECKS[1:], "Could not check: {0}".format(checks[0]["output"]),
                                       threshold_of)
    checks.extend(backup_checks(entry, now_epoch, limits))
    segments = Segments(cluster["wal_segment_size"] if cluster else DEFAULT_SEGMENT_SIZE)
    continuity = continuity_check(entry, listings, segments, cluster["last_archived_wal"] if cluster else None)
    if cluster is None:
        continuity["output"] += (" The cluster could not be asked for its WAL segment size ({0} MiB assumed) or its "
                                 "last archived segment.".format(DEFAULT_SEGMENT_SIZE // 1024 ** 2))
        checks.append(continuity)
        reason = "Could not read the cluster's archiving state: {0}".format(_one_line(cluster_error))
        return checks + _unchecked_all(stanza, ["archive_age", "archive_push"], reason, threshold_of)
    checks.append(continuity)
    checks.append(archive_age_check(stanza, cluster, segments, limits))
    checks.append(archive_push_check(stanza, cluster))
    return checks


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((key, value) for key, value in options.items() if value is not None))
    opts["limits"] = limits_from(opts.get("thresholds"))
    return opts


def read_cluster(opts):
    """cluster_state() over one read-only connection with a statement timeout."""
    from .postgres import connect, import_psycopg2

    psycopg2 = import_psycopg2()
    conn = connect(opts, opts["database"])
    try:
        conn.set_session(readonly=True, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = %s", ("{0}s".format(int(opts["query_timeout"])),))
        return cluster_state(conn)
    except psycopg2.Error as error:
        raise RunbookError("PostgreSQL refused the archiving query: {0}".format(_one_line(error)),
                           hint="Connect as a superuser or a member of pg_monitor.", cause="query")
    finally:
        conn.close()


def _summary(checks):
    tally = health.counts(checks)
    problems = [item for item in checks if item["status"] != health.PASS]
    line = "pgBackRest health {0}: {1} fail, {2} warn, {3} pass.".format(
        health.worst(checks).upper(), tally[health.FAIL], tally[health.WARN], tally[health.PASS])
    if problems:
        line += " " + " ".join("{0}: {1}".format(item["name"], item["output"]) for item in problems)
    return line


def list_archive(pgbackrest, archive_id, io_timeout):
    """The repository's listing of one archive id (`repo-ls --recurse --output=json`), as a dict."""
    path = "archive/{0}/{1}".format(pgbackrest.stanza, archive_id)
    result = pgbackrest.run("repo-ls", "--recurse", "--output=json", io_timeout_option(io_timeout), path)
    try:
        return json.loads(result.stdout or "{}")
    except ValueError:
        raise RunbookError("pgbackrest repo-ls {0} printed something that is not JSON.".format(path),
                           hint="Run it by hand as the cluster's owner to see why.", cause="pgbackrest_command")


def io_timeout_option(seconds):
    """pgBackRest's --io-timeout for the health check's commands: it retries a store that does not answer about
    four times this long (measured with 2.45: 40 s at its io-timeout of 10 s, 12 s at 3 s)."""
    return "--io-timeout={0}".format(int(seconds))


def read_info(pgbackrest, io_timeout):
    """The stanza's `pgbackrest info` entry, through the shared helper's translation of its errors."""
    result = pgbackrest.run("info", "--output=json", io_timeout_option(io_timeout))
    try:
        stanzas = json.loads(result.stdout)
    except ValueError:
        raise RunbookError("pgbackrest info printed something that is not JSON.",
                           hint="Run it by hand as the cluster's owner to see why.", cause="pgbackrest_command")
    entry = stanza_entry(stanzas, pgbackrest.stanza)
    problem = info_error(entry, pgbackrest.stanza, pgbackrest.secrets)
    if problem:
        raise problem
    return entry


def collect(options, pgbackrest=None, cluster_reader=read_cluster, now=None):
    """Check one stanza; returns {checks, status, counts, facts, unchecked, time, msg}.

    pgBackRest that cannot read the repository (the store down, wrong
    credentials, a missing stanza) makes every repository check a failed,
    unchecked one with pgBackRest's translated error; the cluster's own checks
    (archive age, failed pushes) are still made, since they say whether WAL is
    leaving the host at all. A cluster that cannot be read does the same the
    other way round.
    """
    opts = normalize(options)
    limits = opts["limits"]
    pgbackrest = pgbackrest or PgBackRest(opts)
    stanza = pgbackrest.stanza
    threshold_of = _threshold_of(limits)
    now_epoch = (now or utc_now()).timestamp()
    facts = {"stanza": stanza}
    try:
        cluster, cluster_error = cluster_reader(opts), None
        facts["cluster"] = dict((key, cluster[key]) for key in (
            "in_recovery", "archive_mode", "wal_segment_size", "system_identifier", "archived_count",
            "last_archived_wal", "last_archived_time", "failed_count", "last_failed_wal", "last_failed_time"))
    except RunbookError as error:
        cluster, cluster_error = None, error
    try:
        entry = read_info(pgbackrest, opts["io_timeout"])
    except RunbookError as error:
        reason = "Could not read stanza {0} with pgBackRest: {1}".format(stanza, _one_line(error))
        checks = _unchecked_all(stanza, CHECKS[:4], reason, threshold_of)
        if cluster is None:
            checks += _unchecked_all(stanza, CHECKS[4:], "Could not read the cluster's archiving state: {0}".format(
                _one_line(cluster_error)), threshold_of)
        else:
            segments = Segments(cluster["wal_segment_size"])
            checks += [archive_age_check(stanza, cluster, segments, limits), archive_push_check(stanza, cluster)]
        return _result(checks, facts, error)
    facts["backups"] = [dict(label=b.get("label"), type=b.get("type"), stop=isoformat_epoch(b["timestamp"]["stop"]),
                             archive_start=(b.get("archive") or {}).get("start"))
                        for b in entry.get("backup") or []]
    facts["archive"] = [dict(id=a.get("id"), min=a.get("min"), max=a.get("max")) for a in entry.get("archive") or []]
    listings = {}
    listing_error = None
    for archive_id, _first, _last in archive_ranges(entry):
        try:
            listings[archive_id] = list_archive(pgbackrest, archive_id, opts["io_timeout"])
        except RunbookError as error:
            listing_error = error
            break
    checks = evaluate(entry, listings, cluster, limits, now_epoch, cluster_error=cluster_error)
    if listing_error is not None:
        unlisted = health.unchecked("pgbackrest_archive_continuity:{0}".format(stanza),
                                    "Could not list the WAL archive of stanza {0}: {1}".format(
                                        stanza, _one_line(listing_error)),
                                    threshold="no gap", unit="segments", stanza=stanza)
        checks = [unlisted if item["name"] == unlisted["name"] else item for item in checks]
    return _result(checks, facts, listing_error)


def isoformat_epoch(seconds):
    return isoformat(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))


def _result(checks, facts, error=None):
    result = {
        "checks": checks,
        "status": health.worst(checks),
        "counts": health.counts(checks),
        "facts": facts,
        "unchecked": [item["name"] for item in health.not_checked(checks)],
        "time": isoformat(utc_now()),
        "msg": _summary(checks),
    }
    if error is not None:
        result["error"] = error
    return result
