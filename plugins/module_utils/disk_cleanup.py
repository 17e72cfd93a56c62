# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Free disk space by rules, and only inside the paths the rules name.

The runbooks free space with `journalctl --vacuum-size=500M`,
`find /var/log -name "*.log" -mtime +30 -delete`, `find backups/ -name
"*.sql.gz" -mtime +30 -delete` and `docker system prune -f`. Each is a rule here:

- `journal`: vacuum the systemd journal to a size (and/or an age) with journalctl;
- `files`: delete regular files matching name patterns, older than N days, under
  the rule's paths, keeping the newest N of each directory if asked;
- `docker`: `docker container prune`, `docker image prune` (`--all` only on request) and
  `docker builder prune`, through `Docker` - never volumes: they hold data. Check mode
  predicts the bytes from `docker system df -v` (stopped containers' writable layers, the
  unique size of the images that become unused, the reclaimable build cache); a real run
  reports what the engine says it reclaimed, beside the prediction.

Safety is the point: a rule's path may not be `/` or a top-level system
directory, may not be or lie inside or contain a data directory
(/var/lib/postgresql, ...), symlinks are never followed and never deleted, and
a file whose real path leaves the rule's root is skipped. A plan (what would be
deleted and how many bytes that frees, per rule) is computed first; check mode
returns it, a real run deletes exactly what the plan lists, so the bytes freed
equal the bytes check mode predicted on an unchanged disk.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import fnmatch
import functools
import json
import os
import re
import stat
import struct
import time

from .commands import display, run
from .common import RunbookError, human_size, isoformat, utc_now
from .docker import Docker

# Never a rule's path: the root and the top-level system directories.
TOO_BROAD = ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
             "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib",
             "/var/cache", "/var/spool", "/var/opt")
# Data that cleanup must never reach, even by way of a rule path that contains it.
DATA_DIRECTORIES = ("/var/lib/postgresql", "/var/lib/mysql", "/var/lib/mariadb", "/var/lib/redis",
                    "/var/lib/mongodb", "/var/lib/elasticsearch", "/var/lib/docker", "/var/lib/containerd",
                    "/var/lib/containers", "/var/lib/rabbitmq", "/var/lib/influxdb", "/var/lib/prometheus",
                    "/var/lib/etcd", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd", "/etc", "/boot", "/usr",
                    "/home", "/root")
JOURNAL_BASES = ("/var/log/journal", "/run/log/journal")
RULE_TYPES = ("journal", "files", "docker")
LISTED_PATHS = 50
SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
DOCKER_UNITS = {"B": 1, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4}
# Offset of n_entries in a journal file's header (systemd's journal-def.h).
JOURNAL_N_ENTRIES_OFFSET = 152


def parse_size(value, what="size"):
    """Bytes of `value`: an integer, or a number with K, M, G or T (powers of 1024, as journalctl reads them)."""
    if isinstance(value, bool):
        raise RunbookError("{0} must be a size such as 500M, not {1!r}.".format(what, value), cause="invalid")
    if isinstance(value, int):
        if value < 0:
            raise RunbookError("{0} must not be negative.".format(what), cause="invalid")
        return value
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", str(value), re.IGNORECASE)
    if not match:
        raise RunbookError("{0} must be a size such as 500M or 2G, not {1!r}.".format(what, value), cause="invalid")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).upper()])


def _is_within(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_root(path, protected):
    """The real path of a rule's root, or RunbookError saying why it may not be cleaned."""
    if not os.path.isabs(path):
        raise RunbookError("Cleanup path {0!r} is not absolute.".format(path), hint="Give the full path.",
                           cause="unsafe_path")
    normalized = os.path.normpath(path)
    real = os.path.realpath(normalized)
    for candidate in sorted({normalized, real}):
        if candidate in TOO_BROAD:
            raise RunbookError("Refusing to clean {0}{1}: it is a system directory, far too broad for cleanup.".format(
                path, " (it resolves to {0})".format(real) if real != normalized else ""),
                hint="Name the directory of the logs or backups themselves, e.g. /var/log/nginx.",
                cause="unsafe_path")
        for data in protected:
            if _is_within(candidate, data):
                raise RunbookError("Refusing to clean {0}: it is inside the protected data directory {1}.".format(
                    path, data), hint="Cleanup never touches data directories.", cause="unsafe_path")
            if _is_within(data, candidate):
                raise RunbookError("Refusing to clean {0}: it contains the protected data directory {1}.".format(
                    path, data), hint="Name narrower paths that leave {0} out.".format(data), cause="unsafe_path")
    return real


def _check_pattern(pattern, rule):
    if not pattern or "/" in pattern:
        raise RunbookError("Rule {0!r}: pattern {1!r} must be a file name pattern without '/'.".format(rule, pattern),
                           cause="invalid")
    if pattern.strip("*") == "":
        raise RunbookError("Rule {0!r}: pattern {1!r} matches every file; name the rotated or backup files' "
                           "patterns, e.g. *.gz.".format(rule, pattern), cause="invalid")


def normalize_rules(rules, protected_paths=()):
    """Validated rules with defaults filled in; RunbookError for the first bad one."""
    protected = tuple(DATA_DIRECTORIES) + tuple(os.path.normpath(p) for p in protected_paths or ())
    if not isinstance(rules, list) or not rules:
        raise RunbookError("No cleanup rules were given.", hint="Give at least one rule, e.g. "
                           "{type: journal, max_size: 500M}.", cause="invalid")
    normalized = []
    names = set()
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise RunbookError("Cleanup rule {0} is not a mapping: {1!r}.".format(index + 1, rule), cause="invalid")
        rule = dict((key, value) for key, value in rule.items() if value is not None)
        kind = rule.get("type")
        name = rule.get("name") or "{0}-{1}".format(kind, index + 1)
        if kind not in RULE_TYPES:
            raise RunbookError("Rule {0!r}: type must be one of {1}, not {2!r}.".format(
                name, ", ".join(RULE_TYPES), kind), cause="invalid")
        if name in names:
            raise RunbookError("Two cleanup rules are named {0!r}; names must be unique.".format(name),
                               cause="invalid")
        names.add(name)
        allowed = {"journal": {"max_size", "max_age"}, "files": {"paths", "patterns", "older_than_days",
                                                                 "keep_newest", "recurse"},
                   "docker": {"until_hours", "all_images"}}[kind] | {"name", "type"}
        unknown = set(rule) - allowed
        if unknown:
            raise RunbookError("Rule {0!r} ({1}) has unknown keys: {2}. Allowed: {3}.".format(
                name, kind, ", ".join(sorted(unknown)), ", ".join(sorted(allowed))), cause="invalid")
        clean = {"name": name, "type": kind}
        if kind == "journal":
            if rule.get("max_size") is None and not rule.get("max_age"):
                raise RunbookError("Journal rule {0!r} needs max_size (e.g. 500M) or max_age (e.g. 2weeks).".format(
                    name), cause="invalid")
            clean["max_size"] = parse_size(rule["max_size"], "Rule {0!r} max_size".format(name)) \
                if rule.get("max_size") is not None else None
            clean["max_age"] = rule.get("max_age")
            clean["max_age_usec"] = parse_age_usec(rule["max_age"]) if rule.get("max_age") else None
        elif kind == "files":
            paths = rule.get("paths")
            if isinstance(paths, str):
                paths = [paths]
            if not paths:
                raise RunbookError("Files rule {0!r} needs paths: the directories it may clean.".format(name),
                                   cause="invalid")
            patterns = rule.get("patterns")
            if isinstance(patterns, str):
                patterns = [patterns]
            if not patterns:
                raise RunbookError("Files rule {0!r} needs patterns, e.g. ['*.gz', '*.1'].".format(name),
                                   cause="invalid")
            for pattern in patterns:
                _check_pattern(pattern, name)
            days = rule.get("older_than_days")
            if days is None or isinstance(days, bool) or not isinstance(days, (int, float)) or days < 0:
                raise RunbookError("Files rule {0!r} needs older_than_days, a number of days of 0 or more, not "
                                   "{1!r}.".format(name, days), cause="invalid")
            keep = rule.get("keep_newest", 0)
            if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
                raise RunbookError("Files rule {0!r}: keep_newest must be a whole number of 0 or more.".format(name),
                                   cause="invalid")
            clean.update(paths=[check_root(path, protected) for path in paths], given_paths=list(paths),
                         patterns=list(patterns), older_than_days=days, keep_newest=keep,
                         recurse=bool(rule.get("recurse", True)))
        else:
            hours = rule.get("until_hours")
            if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int) or hours < 0):
                raise RunbookError("Docker rule {0!r}: until_hours must be a whole number of hours.".format(name),
                                   cause="invalid")
            clean.update(until_hours=hours, all_images=bool(rule.get("all_images", False)))
        normalized.append(clean)
    return normalized, protected


# -- files -----------------------------------------------------------------

def _allocated(info):
    """Bytes deleting this file gives back: its blocks, unless another hard link keeps them."""
    return 512 * info.st_blocks if info.st_nlink <= 1 else 0


def plan_files(rule, protected, now=None):
    """Files the rule would delete: [{path, bytes, mtime, dev, ino}], in deletion order."""
    limit = (now if now is not None else time.time()) - rule["older_than_days"] * 86400
    chosen = []
    for root in rule["paths"]:
        if not os.path.isdir(root):
            continue
        for directory, subdirs, files in os.walk(root, followlinks=False):
            if not rule["recurse"]:
                subdirs[:] = []
            subdirs[:] = sorted(d for d in subdirs
                                if not any(_is_within(os.path.join(directory, d), p) for p in protected))
            matches = []
            for name in sorted(files):
                if not any(fnmatch.fnmatchcase(name, pattern) for pattern in rule["patterns"]):
                    continue
                path = os.path.join(directory, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                real = os.path.realpath(path)
                if not _is_within(real, root) or any(_is_within(real, p) for p in protected):
                    continue
                matches.append((info.st_mtime, path, info))
            matches.sort(reverse=True)
            for position, (mtime, path, info) in enumerate(matches):
                if position < rule["keep_newest"] or mtime >= limit:
                    continue
                chosen.append({"path": path, "bytes": _allocated(info), "mtime": mtime,
                               "dev": info.st_dev, "ino": info.st_ino})
    return sorted(chosen, key=lambda item: item["path"])


def delete_planned(planned):
    """Delete each planned file that is still the same regular file; (files deleted, bytes freed, errors)."""
    deleted, freed, errors = [], 0, []
    for item in planned:
        try:
            info = os.lstat(item["path"])
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (item["dev"], item["ino"]):
            continue
        try:
            os.unlink(item["path"])
        except OSError as error:
            errors.append("{0}: {1}".format(item["path"], error.strerror or error))
            continue
        deleted.append(item["path"])
        freed += _allocated(info)
    return deleted, freed, errors


# -- journal ---------------------------------------------------------------

def _machine_id():
    try:
        with open("/etc/machine-id") as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return ""


def journal_directories(bases=JOURNAL_BASES, machine_id=None):
    """The journal directories journalctl --vacuum-* works on: this machine's, persistent and volatile."""
    machine_id = _machine_id() if machine_id is None else machine_id
    found = []
    for base in bases:
        directory = os.path.join(base, machine_id) if machine_id else base
        if os.path.isdir(directory):
            found.append(directory)
    return found


def _journal_empty(path):
    try:
        with open(path, "rb") as handle:
            handle.seek(JOURNAL_N_ENTRIES_OFFSET)
            data = handle.read(8)
    except (IOError, OSError):
        return False
    return len(data) == 8 and struct.unpack("<Q", data)[0] == 0


def parse_journal_name(name):
    """(archived, seqnum_id, seqnum, realtime) of a journal file name, as journald's vacuum reads it.

    Archived: `system@<seqnum id>-<seqnum>-<realtime>.journal`; corrupted:
    `system@<realtime>-<random>.journal~`. Anything else is active (kept).
    """
    match = re.match(r"^.+@([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{16})\.journal$", name)
    if match:
        return True, match.group(1), int(match.group(2), 16), int(match.group(3), 16)
    match = re.match(r"^.+@([0-9a-f]{16})-([0-9a-f]{16})\.journal~$", name)
    if match:
        return True, None, 0, int(match.group(1), 16)
    return False, None, 0, 0


def plan_journal_directory(directory, max_size=None, max_age_usec=None, now_usec=None, listing=None):
    """Archived journal files journalctl --vacuum-size/--vacuum-time would delete in one directory.

    Mirrors journald's vacuum: active files count towards the size but are
    never deleted; empty archived files always go; the rest go oldest first
    (by sequence number within one sequence, else by time) until the
    directory's total is at most max_size and nothing is older than the age.
    """
    total = 0
    archived = []
    always = []
    entries = listing if listing is not None else sorted(os.listdir(directory))
    for name in entries:
        if not (name.endswith(".journal") or name.endswith(".journal~")):
            continue
        path = os.path.join(directory, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        size = 512 * info.st_blocks
        is_archived, seqnum_id, seqnum, realtime = parse_journal_name(name)
        if not is_archived:
            total += size
            continue
        if _journal_empty(path):
            always.append({"path": path, "bytes": size})
            continue
        stamps = [int(t * 1e6) for t in (info.st_ctime, info.st_atime, info.st_mtime) if t > 0]
        realtime = min([realtime] + stamps) if realtime else min(stamps or [0])
        archived.append({"path": path, "bytes": size, "seqnum_id": seqnum_id, "seqnum": seqnum,
                         "realtime": realtime})
        total += size
    archived = _journald_sorted(archived)
    chosen = list(always)
    retention_limit = (now_usec - max_age_usec) if (max_age_usec and now_usec) else None
    for position, item in enumerate(archived):
        too_old = retention_limit is not None and item["realtime"] < retention_limit
        too_big = max_size is not None and total > max_size
        if not too_old and not too_big:
            break
        chosen.append({"path": item["path"], "bytes": item["bytes"]})
        total = total - item["bytes"] if item["bytes"] < total else 0
    return chosen, total


def _journald_sorted(items):
    """journald's vacuum order: by sequence number within one sequence id, by time across them."""
    def compare(a, b):
        if a["seqnum_id"] and a["seqnum_id"] == b["seqnum_id"] and a["seqnum"] != b["seqnum"]:
            return -1 if a["seqnum"] < b["seqnum"] else 1
        if a["realtime"] != b["realtime"]:
            return -1 if a["realtime"] < b["realtime"] else 1
        if a["seqnum_id"] and b["seqnum_id"] and a["seqnum_id"] != b["seqnum_id"]:
            return -1 if a["seqnum_id"] < b["seqnum_id"] else 1
        return -1 if a["path"] < b["path"] else (1 if a["path"] > b["path"] else 0)
    return sorted(items, key=functools.cmp_to_key(compare))


_AGE_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400,
              "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800,
              "month": 2629800, "months": 2629800, "year": 31557600, "years": 31557600}


def parse_age_usec(value):
    """Microseconds of a journalctl time span such as 2weeks, 30d or 12h."""
    match = re.match(r"^\s*(\d+)\s*([a-z]+)\s*$", str(value))
    if not match or match.group(2) not in _AGE_UNITS:
        raise RunbookError("max_age must be a time span such as 2weeks, 30d or 12h, not {0!r}.".format(value),
                           cause="invalid")
    return int(match.group(1)) * _AGE_UNITS[match.group(2)] * 1000000


def journal_vacuum_argv(rule):
    argv = ["journalctl"]
    if rule["max_size"] is not None:
        argv.append("--vacuum-size={0}".format(rule["max_size"]))
    if rule["max_age"]:
        argv.append("--vacuum-time={0}".format(rule["max_age"]))
    return argv


# -- docker ----------------------------------------------------------------

# What `docker container prune` removes: containers that are not running, paused or restarting.
PRUNED_CONTAINER_STATES = ("exited", "created", "dead")


def docker_prune_commands(rule):
    """The docker arguments of the rule's prunes, in order: containers first, so their images become unused.

    Never `--volumes` and never `docker volume prune`: volumes hold data.
    """
    until = ["--filter", "until={0}h".format(rule["until_hours"])] if rule["until_hours"] is not None else []
    return [["container", "prune", "--force"] + until,
            ["image", "prune", "--force"] + (["--all"] if rule["all_images"] else []) + until,
            ["builder", "prune", "--force"] + until]


def parse_docker_size(text):
    """Bytes of a size as docker prints it (decimal units: 1.5kB, 230MB, 2GB)."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([kKMGT]?B)\s*$", str(text or "").split("(", maxsplit=1)[0].strip())
    if not match:
        return 0
    return int(float(match.group(1)) * DOCKER_UNITS[match.group(2).upper()])


def parse_docker_created(text):
    """Epoch seconds of a `docker system df -v` CreatedAt (`2026-12-05 17:15:04 +0000 UTC`), or None."""
    match = re.match(r"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", str(text or ""))
    if not match:
        return None
    fields = [int(part) for part in match.groups()[:6]]
    offset = (int(match.group(8)) * 60 + int(match.group(9))) * 60 * (1 if match.group(7) == "+" else -1)
    return calendar.timegm(tuple(fields) + (0, 0, 0)) - offset


def parse_docker_json_lines(text, what):
    """Documents printed by `docker ... --format '{{json .}}'`, one per line."""
    documents = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            documents.append(json.loads(line))
        except ValueError:
            raise RunbookError("{0} printed something that is not JSON: {1}".format(what, line[:200]),
                               cause="docker_command")
    return documents


def build_cache_reclaimable(summary):
    """Reclaimable bytes of the build cache from `docker system df --format '{{json .}}'` documents."""
    return sum(parse_docker_size(row.get("Reclaimable")) for row in summary if row.get("Type") == "Build Cache")


def plan_docker_prune(rule, verbose, summary, kept_images, now):
    """What the rule's prunes remove and the bytes that frees, from `docker system df -v` and `df`.

    - containers: those not running (exited, created, dead) and, with until_hours, created before then;
      their writable layers (Size) are freed;
    - images: dangling ones (all unused ones with all_images) that no remaining container uses
      (`kept_images`: their ids), older than until_hours if given; each frees its UniqueSize (layers it
      shares with a kept image stay);
    - build cache: what `docker system df` reports reclaimable.
    Volumes are never part of the plan.
    """
    limit = now - rule["until_hours"] * 3600 if rule["until_hours"] is not None else None

    def old_enough(created_at):
        created = parse_docker_created(created_at)
        return limit is None or (created is not None and created < limit)

    containers = [row for row in verbose.get("Containers") or []
                  if row.get("State") in PRUNED_CONTAINER_STATES and old_enough(row.get("CreatedAt"))]
    images = []
    for row in verbose.get("Images") or []:
        dangling = row.get("Repository") == "<none>" and row.get("Tag") == "<none>"
        if (dangling or rule["all_images"]) and row.get("ID") not in kept_images and old_enough(row.get("CreatedAt")):
            images.append(row)
    cache = build_cache_reclaimable(summary)
    return {
        "containers": [{"id": row.get("ID", "")[:12], "name": row.get("Names", ""),
                        "bytes": parse_docker_size(row.get("Size"))} for row in containers],
        "images": [{"id": row.get("ID", ""), "reference": "{0}:{1}".format(row.get("Repository"), row.get("Tag")),
                    "bytes": parse_docker_size(row.get("UniqueSize"))} for row in images],
        "build_cache_bytes": cache,
    }


def parse_docker_reclaimed(text):
    match = re.search(r"Total reclaimed space:\s*(\S+)", text)
    return parse_docker_size(match.group(1)) if match else 0


def run_docker_rule(rule, docker, check_mode, now=None):
    """Plan (check mode) or carry out the rule's prunes through Docker; the rule's result entry."""
    now = now if now is not None else time.time()
    summary = parse_docker_json_lines(docker.docker("system", "df", "--format", "{{json .}}").stdout,
                                      "docker system df")
    verbose_text = docker.docker("system", "df", "-v", "--format", "{{json .}}").stdout
    try:
        verbose = json.loads(verbose_text) if verbose_text.strip() else {}
    except ValueError:
        raise RunbookError("docker system df -v printed something that is not JSON: {0}".format(
            verbose_text.strip()[:200]), cause="docker_command")
    # The images the remaining containers use stay: ask the engine for their ids (df -v names them as created).
    gone = {item["id"] for item in plan_docker_prune(rule, verbose, summary, set(), now)["containers"]}
    remaining = [row.get("ID") for row in verbose.get("Containers") or []
                 if row.get("ID") and row["ID"][:12] not in gone]
    kept_images = {item.get("Image") for item in docker.inspect(remaining)}
    plan = plan_docker_prune(rule, verbose, summary, kept_images, now)
    predicted = sum(item["bytes"] for item in plan["containers"] + plan["images"]) + plan["build_cache_bytes"]
    commands = [display(docker.docker_argv + argv) for argv in docker_prune_commands(rule)]
    objects = ["container {0}".format(item["name"] or item["id"]) for item in plan["containers"]] + [
        "image {0}".format(item["id"][7:19] if item["reference"] == "<none>:<none>" else item["reference"])
        for item in plan["images"]]
    extra = dict(command="; ".join(commands), predicted_bytes=predicted, containers=plan["containers"],
                 images=plan["images"], build_cache_bytes=plan["build_cache_bytes"])
    if check_mode:
        return _rule_result(rule, objects, predicted, "would prune", **extra)
    freed, outputs = 0, []
    for argv in docker_prune_commands(rule):
        output = docker.docker(*argv, timeout=max(docker.timeout, 1800)).stdout
        freed += parse_docker_reclaimed(output)
        outputs.append(output.strip())
    return _rule_result(rule, objects, freed, "pruned", output="\n".join(outputs)[-1000:], **extra)


# -- the run ---------------------------------------------------------------

def _filesystem_use(paths):
    seen = {}
    for path in paths:
        try:
            stats = os.statvfs(path)
            device = os.stat(path).st_dev
        except OSError:
            continue
        used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
        available = stats.f_bavail * stats.f_frsize
        percent = round(100.0 * used / (used + available), 1) if used + available else 0.0
        seen.setdefault(device, {"path": path, "used_percent": percent, "available_bytes": available})
    return seen


def _rule_result(rule, files, total, action, **extra):
    result = {"name": rule["name"], "type": rule["type"], "action": action, "files": len(files), "bytes": total,
              "paths": [item if isinstance(item, str) else item["path"] for item in files[:LISTED_PATHS]]}
    result.update(extra)
    return result


def run_cleanup(options, check_mode=False, runner=run, now=None, journal_bases=JOURNAL_BASES):
    """Plan every rule, then (unless check mode) carry the plan out. Returns the result dict.

    Each rule's entry has the bytes it frees (or would free), the number of
    files and the first paths; `bytes` is the total. Filesystems' use before and
    after is given for every path the rules touch.
    """
    rules, protected = normalize_rules(options.get("rules"), options.get("protected_paths"))
    started = utc_now()
    touched = [path for rule in rules for path in rule.get("paths", [])] + list(journal_directories(journal_bases))
    before = _filesystem_use(touched)
    results, errors = [], []
    changed = False
    for rule in rules:
        if rule["type"] == "files":
            planned = plan_files(rule, protected, now=now)
            if check_mode:
                results.append(_rule_result(rule, planned, sum(item["bytes"] for item in planned), "would delete",
                                            paths_checked=rule["given_paths"]))
                continue
            deleted, freed, failures = delete_planned(planned)
            errors += failures
            changed = changed or bool(deleted)
            results.append(_rule_result(rule, deleted, freed, "deleted", paths_checked=rule["given_paths"]))
        elif rule["type"] == "journal":
            now_usec = int((now if now is not None else time.time()) * 1e6)
            planned = []
            for directory in journal_directories(journal_bases):
                chosen, _remaining = plan_journal_directory(directory, rule["max_size"], rule["max_age_usec"], now_usec)
                planned += chosen
            argv = journal_vacuum_argv(rule)
            if check_mode:
                results.append(_rule_result(rule, planned, sum(item["bytes"] for item in planned), "would delete",
                                            command=display(argv)))
                continue
            sizes = dict((item["path"], item["bytes"]) for item in planned)
            present = set()
            for directory in journal_directories(journal_bases):
                present.update(os.path.join(directory, name) for name in os.listdir(directory))
            outcome = runner(argv, timeout=600)
            if not outcome.ok:
                errors.append("`{0}` failed: {1}".format(display(argv), outcome.output(600)))
            after = set()
            for directory in journal_directories(journal_bases):
                after.update(os.path.join(directory, name) for name in os.listdir(directory))
            gone = sorted(path for path in present - after if path.endswith((".journal", ".journal~")))
            freed = sum(sizes.get(path, 0) for path in gone)
            unplanned = [path for path in gone if path not in sizes]
            changed = changed or bool(gone)
            results.append(_rule_result(rule, gone, freed, "deleted", command=display(argv),
                                        unplanned=unplanned, output=outcome.output(1000)))
        else:
            try:
                entry = run_docker_rule(rule, Docker(options, runner=runner), check_mode, now=now)
            except RunbookError as error:
                errors.append("Rule {0}: {1}".format(rule["name"], error))
                continue
            changed = changed or (not check_mode and entry["bytes"] > 0)
            results.append(entry)
    after = _filesystem_use(touched) if not check_mode else {}
    filesystems = []
    for device, use in before.items():
        entry = {"path": use["path"], "used_percent_before": use["used_percent"],
                 "available_bytes_before": use["available_bytes"]}
        if device in after:
            entry.update(used_percent_after=after[device]["used_percent"],
                         available_bytes_after=after[device]["available_bytes"])
        filesystems.append(entry)
    total = sum(item["bytes"] for item in results)
    verb = "Would free" if check_mode else "Freed"
    summary = "; ".join("{0}: {1} in {2} files".format(item["name"], human_size(item["bytes"]), item["files"])
                        if item["type"] != "docker" else "{0}: {1}".format(item["name"], human_size(item["bytes"]))
                        for item in results)
    result = {
        "changed": changed,
        "check_mode": check_mode,
        "rules": results,
        "bytes": total,
        "filesystems": filesystems,
        "errors": errors,
        "started_at": isoformat(started),
        "finished_at": isoformat(utc_now()),
        "msg": "{0} {1} ({2}).".format(verb, human_size(total), summary),
    }
    return result
