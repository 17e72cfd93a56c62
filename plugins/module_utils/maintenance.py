# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gates of a maintenance window (runbooks "Maintenance Windows" and "Pre-Deployment Checklist").

Each gate is a list of the collection's checks (health.py), so the job log,
set_stats and the reports say the same thing:

- `backup_gate`: every database of every backup host was backed up by this
  run (backup.yml) and that very backup set verified (verify_backups.yml);
- `disk_gate`: the free space of each file system host_health measured is
  above a floor;
- `decide`: go, or the sentences that refuse the window. The health gate is
  the health_check role's summary; only an explicit override lets a failing
  health check through, and the decision says so.

Plain Python, no Ansible imports: the playbook's filters and the tests call it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from . import health
from .common import human_size


def _text(value):
    return " ".join(str(value or "").split())


def _reason(result):
    text = _text(result.get("msg")) or "no message"
    for prefix in ("Task failed: ", "Module failed: "):
        while text.startswith(prefix):
            text = text[len(prefix):]
    return text


def backup_gate(hosts, backups, verifications, check_mode=False):
    """One `backup:DATABASE` check per database of each host in `hosts`.

    `backups` and `verifications` map a host to the registered loop results
    of backup.yml (`pg_backup_results`) and verify_backups.yml
    (`pg_verify_results`), or to None when the host did not get that far.
    A database passes when its backup succeeded and the set verified is the
    one that backup wrote. In check mode nothing was backed up: the newest
    existing set's verification is reported, and a dry-run backup is not
    required to have written anything.
    """
    checks = []
    for host in hosts:
        backup = (backups or {}).get(host)
        verification = (verifications or {}).get(host)
        if not isinstance(backup, dict) or not isinstance(verification, dict):
            step = "backup" if not isinstance(backup, dict) else "verification"
            checks.append(health.check(
                "backup", health.FAIL, "no {0}".format(step), "fresh and verified",
                "No {0} result from {1}: backup.yml or verify_backups.yml failed there before it finished "
                "(see the job output for {1}).".format(step, host), host=host))
            continue
        made = dict((item.get("pg_backup_database"), item) for item in backup.get("results", []))
        verified = dict((item.get("pg_verify_database"), item) for item in verification.get("results", []))
        for database in list(made) + [name for name in verified if name not in made]:
            checks.append(_database_check(host, database, made.get(database), verified.get(database), check_mode))
    return checks


def _database_check(host, database, made, verified, check_mode):
    name = "backup:{0}".format(database)
    threshold = "fresh and verified"
    if made is None or made.get("skipped"):
        return health.check(name, health.FAIL, "not backed up", threshold,
                            "{0} on {1} was verified but not backed up by this run.".format(database, host),
                            host=host, database=database)
    if made.get("failed"):
        return health.check(name, health.FAIL, "backup failed", threshold,
                            "The backup of {0} on {1} failed: {2}".format(database, host, _reason(made)),
                            host=host, database=database)
    if verified is None or verified.get("skipped"):
        return health.check(name, health.FAIL, "not verified", threshold,
                            "The backup of {0} on {1} was not verified.".format(database, host),
                            host=host, database=database)
    status = verified.get("status")
    if verified.get("failed") and status is None:
        return health.check(name, health.FAIL, "verification failed", threshold,
                            "The verification of {0} on {1} could not run: {2}".format(
                                database, host, _reason(verified)),
                            host=host, database=database)
    backup_id = made.get("backup_id")
    verified_id = verified.get("backup_id")
    if status == health.FAIL:
        return health.check(name, health.FAIL, "verification failed", threshold,
                            "The backup {0} of {1} on {2} failed its verification: {3}".format(
                                verified_id or "", database, host, _reason(verified)),
                            host=host, database=database, backup_id=verified_id)
    if check_mode:
        return health.check(name, health.PASS, "would back up", threshold,
                            "Would back up {0} on {1} and verify it; its newest backup {2} verifies now.".format(
                                database, host, verified_id or "(none)"),
                            host=host, database=database, backup_id=verified_id)
    if not backup_id or backup_id != verified_id:
        return health.check(name, health.FAIL, "other set verified", threshold,
                            "The backup of {0} on {1} wrote {2}, but the newest set verified is {3}: the fresh "
                            "backup was not the one checked. Run the window again.".format(
                                database, host, backup_id or "nothing", verified_id or "none"),
                            host=host, database=database, backup_id=backup_id)
    return health.check(name, health.PASS, "backed up and verified", threshold,
                        "Backed up {0} on {1} as {2} and verified it ({3}).".format(
                            database, host, backup_id, "with warnings" if status == health.WARN else "all checks pass"),
                        host=host, database=database, backup_id=backup_id)


def disk_gate(host, result, min_free_bytes):
    """One `free_space:MOUNT` check per file system of a host_health result (its `disk` category)."""
    if not isinstance(result, dict) or result.get("skipped"):
        return []
    name_prefix = "free_space:"
    disks = [item for item in result.get("checks") or [] if item.get("name", "").startswith("disk:")
             and item.get("available_bytes") is not None]
    unread = [item for item in result.get("checks") or [] if item.get("name", "").startswith("disk")
              and item.get("unchecked")]
    if not disks and not unread:
        return [health.check(name_prefix.rstrip(":"), health.FAIL, "unknown", min_free_bytes,
                             "The free disk space of {0} could not be read: {1}".format(
                                 host, _reason(result) if result.get("failed") or result.get("unreachable")
                                 else "host_health reported no file system."),
                             unit="bytes", host=host)]
    checks = []
    for item in unread:
        # A file system whose space could not be read is not one with enough space.
        mount = item.get("mount") or item["name"][len("disk:"):] or "?"
        checks.append(health.unchecked(name_prefix + mount, "The free disk space of {0} on {1} could not be "
                                       "read: {2}".format(mount, host, item.get("output")), observed="unknown",
                                       threshold=min_free_bytes, unit="bytes", host=host, mount=mount))
    for item in disks:
        mount = item.get("mount") or item["name"][len("disk:"):]
        free = int(item["available_bytes"])
        enough = not health.beyond(free, min_free_bytes, health.LOWER)
        checks.append(health.check(
            name_prefix + mount, health.PASS if enough else health.FAIL, free, min_free_bytes,
            "{0} has {1} free{2} the {3} the maintenance needs.".format(
                mount, human_size(free), ", at least" if enough else ", less than", human_size(min_free_bytes)),
            unit="bytes", host=host, mount=mount))
    return checks


def decide(backup_checks, disk_checks, health_summary, override_health=False):
    """Go or no go: {"go", "refusals" (sentences), "health_overridden", "checks" (every gate's checks)}."""
    refusals = []
    failed_backups = [item for item in backup_checks if item["status"] == health.FAIL]
    if not backup_checks:
        refusals.append("Backup gate: no database was backed up and verified; list the databases in "
                        "pg_backup_databases of the backup hosts.")
    for item in failed_backups:
        refusals.append("Backup gate: " + item["output"])
    health_status = (health_summary or {}).get("status", health.FAIL)
    health_overridden = False
    if health_status == health.FAIL:
        if override_health:
            health_overridden = True
        else:
            failing = (health_summary or {}).get("failing") or ["no health summary"]
            refusals.append("Health gate: {0} (set maintenance_window_health_override=true to start anyway).".format(
                "; ".join(failing)))
    for item in disk_checks:
        if item["status"] == health.FAIL:
            refusals.append("Disk gate: {0} {1}".format(item.get("host"), item["output"]))
    return {"go": not refusals, "refusals": refusals, "health_overridden": health_overridden,
            "health_status": health_status, "checks": list(backup_checks) + list(disk_checks)}
