# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbooks' Morning Health Check of one host, as pass / warn / fail checks.

`systemctl status bmi-backend nginx postgresql`, errors in the journal over the
last 24 hours, `df -h` (alert above 80 %), `free -h` (alert above 85 %), CPU and
load, failed units, OOM kills, a pending reboot and pending (security) updates.
Every finding is a health.check with its observed value and threshold; nothing
is changed on the host. The parse_* and grade functions are pure and tested
without a host; `collect` reads /proc, statvfs, systemctl, journalctl and apt.

A check that cannot be made (no systemd as PID 1, a unit systemd does not
know, no journal files, no permission to read them, neither apt nor dnf) is a
`fail` marked `unchecked` (health.unchecked) that says what could not be
checked, why and what to do; it never passes for want of data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import socket
import time

from . import health, packages, security_patching as patching
from .commands import run
from .common import RunbookError, human_size, isoformat, utc_now
from .systemd import SystemdUnit, failed_units, journal_entries, unit_name

CATEGORIES = ("services", "failed_units", "journal", "disk", "inodes", "memory", "swap", "cpu", "load", "oom",
              "reboot", "updates")
# The runbooks' "Alert Thresholds" ("alert above 80 %"): a value strictly above a limit breaches it
# (health.Limits). Counts warn above 0, that is from the first error line, failed unit, OOM kill or
# pending security update.
THRESHOLDS = {
    "disk_used_percent": health.Limit(warn=80, fail=95),
    "inode_used_percent": health.Limit(warn=80, fail=95),
    "memory_used_percent": health.Limit(warn=85, fail=95),
    "swap_used_percent": health.Limit(warn=50, fail=90),
    "cpu_used_percent": health.Limit(warn=80, fail=95),
    "load_per_core": health.Limit(warn=1.0, fail=2.0),
    "journal_errors": health.Limit(warn=0),
    "failed_units": health.Limit(warn=0),
    "oom_kills": health.Limit(warn=0),
    "security_updates": health.Limit(warn=0),
}
# Filesystems `df` users never mean: kernel interfaces, RAM-backed, images.
PSEUDO_FSTYPES = ("proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "cgroup", "cgroup2", "securityfs", "pstore",
                  "debugfs", "tracefs", "configfs", "fusectl", "mqueue", "hugetlbfs", "bpf", "autofs",
                  "binfmt_misc", "nsfs", "squashfs", "ramfs", "efivarfs", "rpc_pipefs", "iso9660",
                  "fuse.lxcfs", "fuse.snapfuse", "selinuxfs", "nfsd", "procfs", "erofs")
# Containers' layered root filesystems (docker's overlay2 `merged` directories), left out as node_exporter's
# fs-types-exclude does; the root of a host that is itself a container is one of these and is still checked.
LAYERED_FSTYPES = ("overlay", "aufs", "fuse.fuse-overlayfs")
# node_exporter's default --collector.filesystem.mount-points-exclude: kernel interfaces, and the data of the
# Docker and Podman engines (container layers, volumes' backing mounts, shm of each container).
EXCLUDE_MOUNT_POINTS = r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
DEFAULTS = {
    "services": [],
    "journal_units": None,
    "journal_since": "24 hours ago",
    "journal_pattern": "error",
    "journal_max_priority": 3,
    "journal_quote_lines": 5,
    "mounts": [],
    "exclude_fstypes": list(PSEUDO_FSTYPES + LAYERED_FSTYPES),
    "exclude_mount_points": EXCLUDE_MOUNT_POINTS,
    "thresholds": {},
    "cpu_sample_seconds": 1.0,
    "categories": list(CATEGORIES),
    "apt_lists_max_age_days": 7,
    "host_label": None,
}
OOM_KERNEL = re.compile(r"Out of memory: Killed process|Memory cgroup out of memory: Killed process|oom_reaper")
OOM_KERNEL_KILL = re.compile(r"Killed process (\d+) \(([^)]*)\)")
# What to do when a whole category cannot be checked, unless its error says it already.
ADVICE = {
    "services": "Run the check on a host where systemd is PID 1, or leave services out of categories.",
    "failed_units": "Run the check on a host where systemd is PID 1, or leave failed_units out of categories.",
    "journal": "Run it with become (root, or a member of systemd-journal or adm) on a host whose journal is kept, "
               "or leave journal out of categories.",
    "oom": "Run it with become (root, or a member of systemd-journal or adm) on a host whose journal is kept, "
           "or leave oom out of categories.",
    "reboot": "Leave reboot out of categories on this host.",
    "updates": "Leave updates out of categories on this host.",
}


def limits_from(overrides=None):
    """The host's thresholds with the caller's {name: {warn, fail}} laid over them (health.Limits)."""
    return health.Limits(THRESHOLDS, overrides)


# -- parsers ---------------------------------------------------------------

def _unescape_mount(field):
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_mounts(text):
    """(device, mount point, fstype, options) of each line of /proc/mounts."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            mounts.append((_unescape_mount(fields[0]), _unescape_mount(fields[1]), fields[2], fields[3].split(",")))
    return mounts


def select_mounts(mounts, exclude_fstypes, exclude_mount_points=None):
    """Mount points worth checking: writable, real filesystems, one per device (the shortest path).

    Types in `exclude_fstypes` and mount points matching the regular expression
    `exclude_mount_points` are left out, except a layered root filesystem
    (overlay) at `/`: that host is itself a container, and `/` is its disk.
    """
    chosen = {}
    excluded_points = re.compile(exclude_mount_points) if exclude_mount_points else None
    for device, point, fstype, options in mounts:
        own_root = point == "/" and fstype in LAYERED_FSTYPES
        if (fstype in exclude_fstypes and not own_root) or "ro" in options:
            continue
        if excluded_points is not None and excluded_points.search(point):
            continue
        key = device if device not in ("none", "") else point
        if key not in chosen or len(point) < len(chosen[key][1]):
            chosen[key] = (device, point, fstype)
    return sorted(chosen.values(), key=lambda item: item[1])


def usage_from_statvfs(stats):
    """Disk and inode use of a filesystem as `df` computes them (space reserved for root excluded)."""
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    available = stats.f_bavail * stats.f_frsize
    usage = {
        "size_bytes": stats.f_blocks * stats.f_frsize,
        "used_bytes": used,
        "available_bytes": available,
        "used_percent": round(100.0 * used / (used + available), 1) if used + available else 0.0,
        "inodes_total": stats.f_files,
        "inodes_used": stats.f_files - stats.f_ffree,
        "inodes_used_percent": None,
    }
    if stats.f_files:
        inodes_used = stats.f_files - stats.f_ffree
        usage["inodes_used_percent"] = round(100.0 * inodes_used / (inodes_used + stats.f_favail), 1) \
            if inodes_used + stats.f_favail else 0.0
    return usage


def parse_meminfo(text):
    """Memory and swap figures in bytes from /proc/meminfo."""
    values = {}
    for line in text.splitlines():
        key, _sep, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            values[key.strip()] = int(words[0]) * (1024 if len(words) > 1 and words[1] == "kB" else 1)
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable")
    if available is None:
        available = values.get("MemFree", 0) + values.get("Buffers", 0) + values.get("Cached", 0)
    swap_total = values.get("SwapTotal", 0)
    swap_used = swap_total - values.get("SwapFree", 0)
    return {
        "total_bytes": total,
        "available_bytes": available,
        "used_percent": round(100.0 * (total - available) / total, 1) if total else 0.0,
        "swap_total_bytes": swap_total,
        "swap_used_bytes": swap_used,
        "swap_used_percent": round(100.0 * swap_used / swap_total, 1) if swap_total else 0.0,
    }


def parse_cpu_times(text):
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(value) for value in fields[1:9]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            return sum(values) - idle, sum(values)
    raise RunbookError("/proc/stat has no cpu line.", cause="proc")


def cpu_percent(first, second):
    busy = second[0] - first[0]
    total = second[1] - first[1]
    return round(100.0 * busy / total, 1) if total > 0 else 0.0


def parse_loadavg(text):
    return [float(value) for value in text.split()[:3]]


def parse_apt_simulation(text):
    """(all, security) package counts of `apt-get -s dist-upgrade` output, read as the patching engine reads it."""
    simulated = packages.parse_apt_simulation(text)
    updates = simulated["upgrades"] + simulated["new"]
    return len(updates), sum(1 for update in updates if update["security"])


def parse_apt_check(text):
    """(all, security) from Ubuntu's update-notifier `apt-check` ("12;3" on stderr)."""
    match = re.search(r"(\d+);(\d+)", text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def journal_error_lines(entries, pattern, max_priority):
    """Entries that are errors: at or above the priority (err = 3) or matching the pattern (`grep -i error`)."""
    regex = re.compile(pattern, re.IGNORECASE) if pattern else None
    found = []
    for entry in entries:
        by_priority = entry["priority"] is not None and max_priority is not None and entry["priority"] <= max_priority
        if by_priority or (regex is not None and regex.search(entry["message"])):
            found.append(entry)
    return found


def oom_events(entries):
    """OOM kills in kernel and systemd journal entries.

    Returns (kernel kills [{pid, process, time}], {unit: {"kills": n, "last": epoch seconds}}) where
    the units are those systemd reported as "killed by the OOM killer".
    """
    kernel_kills = []
    units = {}
    for entry in entries:
        message = entry["message"]
        if entry["transport"] == "kernel":
            match = OOM_KERNEL_KILL.search(message)
            if match and OOM_KERNEL.search(message):
                kernel_kills.append({"pid": int(match.group(1)), "process": match.group(2),
                                     "time": entry["time"] / 1e6})
        elif "killed by the OOM killer" in message:
            unit = entry["subject_unit"] or message.split(":", 1)[0]
            seen = units.setdefault(unit, {"kills": 0, "last": 0})
            seen["kills"] += 1
            seen["last"] = max(seen["last"], entry["time"] / 1e6)
    return kernel_kills, units


def _quote(entry):
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(entry["time"] / 1e6)) if entry["time"] else ""
    return "{0} {1}: {2}".format(moment, entry["identifier"] or entry["unit"], " ".join(entry["message"].split()))


def _flat(error):
    return " ".join(str(error).split())


def systemctl_problem(error):
    """Why `systemctl` could not answer, in a sentence, from its RunbookError."""
    text = " ".join(str(error.message).split())
    said = text.split(" failed: ", 1)[1] if " failed: " in text else text
    if "not been booted with systemd" in said or "Failed to connect to bus" in said:
        return "systemd is not running this host as PID 1, so systemctl cannot tell a unit's state ({0}).".format(
            said.rstrip("."))
    return "{0}.".format(text.rstrip("."))


def journal_access_problem(result):
    """None when `journalctl --disk-usage` shows a readable system journal, else why not.

    journalctl says "No journal files were found." (and exits 0) on a host
    whose journal is not kept; it says "insufficient permissions" or "not seeing
    messages from other users and the system" to a user who may not read it.
    Its JSON output says none of this, which is why it is asked separately.
    """
    text = " ".join(result.output(2000).split())
    if not result.ok:
        return "`journalctl --disk-usage` failed: {0}".format(text.rstrip(".") or "exit status {0}".format(result.rc))
    if "No journal files were found" in text:
        return "this host keeps no journal files (journalctl: \"No journal files were found\")"
    if "insufficient permissions" in text:
        return "this user may not read the journal files (journalctl: \"{0}\")".format(text.rstrip("."))
    if "not seeing messages from other users and the system" in text:
        return "this user sees only its own messages, not the system's (journalctl: \"You are currently not " \
               "seeing messages from other users and the system\")"
    return None


# -- the checks ------------------------------------------------------------

class HostHealth:
    """Collects the checks of one host. Every method appends to self.checks and self.facts."""

    def __init__(self, opts, runner=run, proc_root="/proc", sleep=time.sleep, exists=os.path.exists):
        self.opts = opts
        self.exists = exists
        self.thresholds = limits_from(opts.get("thresholds"))
        self.run = runner
        self.proc = proc_root
        self.sleep = sleep
        self.host = opts.get("host_label") or socket.gethostname()
        self.checks = []
        self.facts = {}

    def _read(self, name):
        with open(os.path.join(self.proc, name)) as handle:
            return handle.read()

    def add(self, name, status, observed, threshold, output, unit=None, **facts):
        self.checks.append(health.check(name, status, observed, threshold, output, unit=unit, host=self.host,
                                        **facts))

    def _graded(self, name, key, value, output, unit="percent", **facts):
        self.add(name, self.thresholds.grade(key, value), value, self.thresholds.threshold(key), output, unit=unit,
                 **facts)

    def unchecked(self, name, output, **facts):
        self.checks.append(health.unchecked(name, output, host=self.host, **facts))

    def services(self):
        states = {}
        for name in self.opts["services"]:
            unit = SystemdUnit(name, runner=self.run)
            try:
                snap = unit.snapshot()
            except RunbookError as error:
                why = systemctl_problem(error)
                states[unit.name] = {"unchecked": True, "reason": why}
                self.unchecked("service:" + unit.name, "Could not check {0}: {1} {2}".format(
                    unit.name, why, ADVICE["services"]), unit_name=unit.name)
                continue
            if not snap["exists"]:
                why = "systemd does not know this unit (LoadState={0})".format(snap["load_state"] or "none")
                states[unit.name] = dict(snap, unchecked=True, reason=why)
                self.unchecked("service:" + unit.name, "Could not check {0}: {1}. Check its name (`systemctl "
                               "list-units --all --type=service` lists them) or whether it runs another way (docker "
                               "compose), or leave it out of services.".format(unit.name, why),
                               unit_name=unit.name, load_state=snap["load_state"])
                continue
            if snap["since"]:
                # ActiveEnterTimestampMonotonic is CLOCK_MONOTONIC, the clock time.monotonic() reads.
                snap["active_since_epoch"] = round(time.time() - (time.monotonic() - snap["since"] / 1e6), 3)
            states[unit.name] = snap
            if snap["active"]:
                status, verdict = health.PASS, "is active ({0}) since {1}".format(snap["detail"], snap["since_text"])
            elif snap["state"] in ("activating", "reloading", "deactivating"):
                status, verdict = health.WARN, "is {0} ({1})".format(snap["state"], snap["detail"])
            else:
                status = health.FAIL
                verdict = "is {0} ({1}), result {2}".format(snap["state"], snap["detail"], snap["result"] or "?")
            self.add("service:" + unit.name, status, snap["state"], "active", "{0} {1}.".format(unit.name, verdict),
                     unit_name=unit.name, sub_state=snap["detail"], result=snap["result"],
                     restarts=snap["restarts"], main_pid=snap["pid"])
        self.facts["services"] = states

    def failed_units(self):
        names = failed_units(self.run)
        self.facts["failed_units"] = names
        listed = ", ".join(names[:10]) + (" and {0} more".format(len(names) - 10) if len(names) > 10 else "")
        self._graded("failed_units", "failed_units", len(names),
                     "Failed units: {0}.".format(listed) if names else "No failed systemd units.", unit="units",
                     units=names)

    def journal_problem(self):
        """None when the system journal can be read, else why not (asked once, kept for the OOM check)."""
        if not hasattr(self, "_journal_problem"):
            try:
                self._journal_problem = journal_access_problem(self.run(
                    ["journalctl", "--no-pager", "--disk-usage"], timeout=60))
            except RunbookError as error:
                self._journal_problem = " ".join(str(error.message).split()).rstrip(".")
        return self._journal_problem

    def journal(self):
        units = self.opts["journal_units"] if self.opts["journal_units"] is not None else self.opts["services"]
        since = self.opts["journal_since"]
        found = {}
        problem = self.journal_problem() if units else None
        for name in units:
            unit = unit_name(name)
            if problem:
                found[unit] = {"count": None, "unchecked": True, "reason": problem}
                self.unchecked("journal_errors:" + unit, "Could not read the journal of {0} since {1}: {2}. {3}".format(
                    unit, since, problem, ADVICE["journal"]), unit="lines", unit_name=unit)
                continue
            try:
                entries = journal_entries(since, units=[unit], runner=self.run)
            except RunbookError as error:
                found[unit] = {"count": None, "unchecked": True, "reason": str(error)}
                self.unchecked("journal_errors:" + unit, "Could not read the journal of {0} since {1}: {2}".format(
                    unit, since, error), unit="lines", unit_name=unit)
                continue
            errors = journal_error_lines(entries, self.opts["journal_pattern"], self.opts["journal_max_priority"])
            quoted = [_quote(entry) for entry in errors[-self.opts["journal_quote_lines"]:]]
            found[unit] = {"count": len(errors), "newest": quoted}
            if errors:
                output = "{0} error lines from {1} since {2}; newest: {3}".format(
                    len(errors), unit, since, " | ".join(reversed(quoted)))
            else:
                output = "No error lines from {0} since {1}.".format(unit, since)
            self._graded("journal_errors:" + unit, "journal_errors", len(errors), output, unit="lines",
                         unit_name=unit, lines=list(reversed(quoted)))
        self.facts["journal_errors"] = found

    def _filesystems(self):
        if self.opts["mounts"]:
            return [(None, path, None) for path in self.opts["mounts"]]
        return select_mounts(parse_mounts(self._read("mounts")), set(self.opts["exclude_fstypes"]),
                             self.opts["exclude_mount_points"])

    def disks(self, inodes=True, space=True):
        disks = []
        filesystems = self._filesystems()
        if not filesystems:
            self.unchecked("disk", "Could not check any disk: /proc/mounts lists no writable filesystem of a type "
                           "not in exclude_fstypes and not matching exclude_mount_points. Name the paths to check in "
                           "mounts.")
        for device, point, fstype in filesystems:
            try:
                usage = usage_from_statvfs(os.statvfs(point))
            except OSError as error:
                self.unchecked("disk:" + point, "Could not check the disk use of {0}: {1}. Check the path in "
                               "mounts, or run with become.".format(point, error.strerror or error), mount=point)
                continue
            usage.update(mount=point, device=device, fstype=fstype)
            disks.append(usage)
            if space:
                self._graded("disk:" + point, "disk_used_percent", usage["used_percent"],
                             "{0} is {1:g}% full ({2} of {3} used, {4} free).".format(
                                 point, usage["used_percent"], human_size(usage["used_bytes"]),
                                 human_size(usage["size_bytes"]), human_size(usage["available_bytes"])),
                             mount=point, available_bytes=usage["available_bytes"])
            if inodes and usage["inodes_used_percent"] is not None:
                self._graded("inodes:" + point, "inode_used_percent", usage["inodes_used_percent"],
                             "{0} uses {1:g}% of its inodes ({2} of {3}).".format(
                                 point, usage["inodes_used_percent"], usage["inodes_used"], usage["inodes_total"]),
                             mount=point)
        self.facts["disks"] = disks

    def memory(self, memory=True, swap=True):
        info = parse_meminfo(self._read("meminfo"))
        if not info["total_bytes"]:
            raise RunbookError("{0}/meminfo has no MemTotal.".format(self.proc), cause="proc")
        self.facts["memory"] = info
        if memory:
            self._graded("memory", "memory_used_percent", info["used_percent"],
                         "Memory is {0:g}% used ({1} of {2} available).".format(
                             info["used_percent"], human_size(info["available_bytes"]),
                             human_size(info["total_bytes"])))
        if swap:
            if info["swap_total_bytes"]:
                output = "Swap is {0:g}% used ({1} of {2}).".format(info["swap_used_percent"],
                                                                    human_size(info["swap_used_bytes"]),
                                                                    human_size(info["swap_total_bytes"]))
            else:
                output = "No swap is configured."
            self._graded("swap", "swap_used_percent", info["swap_used_percent"], output)

    def cpu(self):
        first = parse_cpu_times(self._read("stat"))
        self.sleep(self.opts["cpu_sample_seconds"])
        second = parse_cpu_times(self._read("stat"))
        if second[1] <= first[1]:
            raise RunbookError("{0}/stat did not advance over {1:g} s, so CPU use cannot be measured.".format(
                self.proc, self.opts["cpu_sample_seconds"]), cause="proc")
        busy = cpu_percent(first, second)
        self.facts["cpu_used_percent"] = busy
        self._graded("cpu", "cpu_used_percent", busy, "CPU was {0:g}% busy over {1:g} s.".format(
            busy, self.opts["cpu_sample_seconds"]))

    def load(self):
        averages = parse_loadavg(self._read("loadavg"))
        cores = os.cpu_count() or 1
        per_core = round(averages[1] / cores, 2)
        self.facts["load"] = {"averages": averages, "cores": cores, "per_core_5min": per_core}
        self._graded("load", "load_per_core", per_core, "Load average {0} on {1} cores ({2:g} per core over 5 "
                     "minutes).".format(" ".join("{0:g}".format(a) for a in averages), cores, per_core),
                     unit="per core")

    def oom(self):
        since = self.opts["journal_since"]
        problem = self.journal_problem()
        if problem:
            kernel_kills, units = [], {}
        else:
            entries = journal_entries(since, matches=["_TRANSPORT=kernel", "_PID=1"], runner=self.run)
            kernel_kills, units = oom_events(entries)
        for name, snap in (self.facts.get("services") or {}).items():
            if snap.get("result") == "oom-kill" and name not in units:
                units[name] = {"kills": 1, "last": None}
        count = max(len(kernel_kills), sum(seen["kills"] for seen in units.values()))
        self.facts["oom"] = {"kernel_kills": kernel_kills, "units": units}
        if problem:
            self.facts["oom"].update(unchecked=True, reason=problem)
            seen = " systemd reports units killed by it: {0}.".format(", ".join(sorted(units))) if units else ""
            self.unchecked("oom_kills", "Could not check OOM kills since {0}: the kernel's and systemd's messages are "
                           "in the journal, and {1}.{2} {3}".format(since, problem, seen, ADVICE["oom"]),
                           observed=count or None, unit="kills", units=sorted(units))
            return
        if count:
            parts = []
            if units:
                parts.append("units killed: " + ", ".join("{0} ({1}x)".format(unit, seen["kills"])
                                                          for unit, seen in sorted(units.items())))
            if kernel_kills:
                parts.append("processes killed: " + ", ".join(
                    "{0} (PID {1})".format(kill["process"], kill["pid"]) for kill in kernel_kills[-5:]))
            output = "{0} OOM kill(s) since {1}; {2}.".format(count, since, "; ".join(parts))
        else:
            output = "No OOM kills since {0}.".format(since)
        self._graded("oom_kills", "oom_kills", count, output, unit="kills", units=sorted(units))

    def reboot(self):
        """The patching engine's reboot signals: Debian's flag and a newer kernel (apt), needs-restarting (dnf)."""
        try:
            backend = patching.detect_backend("auto", runner=self.run, exists=self.exists)
        except RunbookError:
            self.facts["reboot_required"] = "unknown"
            self.unchecked("reboot_required", "Could not check whether a reboot is required: this host has neither "
                           "apt-get nor dnf, whose signals (/var/run/reboot-required, needs-restarting -r) tell. "
                           + ADVICE["reboot"], observed="unknown", threshold=False)
            return
        signals = backend.reboot_signals()
        self.facts["reboot_required"] = "unknown" if signals["required"] is None else signals["required"]
        reasons = "; ".join(signals["reasons"])
        names = signals["packages"]
        if signals["required"] is None:
            self.unchecked("reboot_required", "Could not check whether a reboot is required: {0}. Install it "
                           "(dnf install dnf-utils), or leave reboot out of categories.".format(reasons),
                           observed="unknown", threshold=False)
        elif signals["required"]:
            output = "A reboot is required ({0}){1}.".format(reasons,
                                                             "; packages: " + ", ".join(names) if names else "")
            self.add("reboot_required", health.WARN, True, False, output, packages=names)
        else:
            output = ("No reboot is required ({0} is absent and no newer kernel was found in /boot)."
                      .format(backend.reboot_flag) if backend.name == "apt"
                      else "No reboot is required (needs-restarting -r says so).")
            self.add("reboot_required", health.PASS, False, False, output)

    def _apt_lists_age_days(self, lists_dir="/var/lib/apt/lists"):
        stamps = [os.path.getmtime(path) for path in glob.glob(os.path.join(lists_dir, "*Release"))]
        if not stamps:
            return None
        return round((time.time() - max(stamps)) / 86400.0, 1)

    def _dnf_updates(self):
        """(all, security) pending dnf updates, read as the patching engine reads them."""
        pending = patching.Dnf(self.run).pending(packages.DEFAULT_SECURITY_PATTERN)["upgrades"]
        return len(pending), sum(1 for update in pending if update["security"])

    def updates(self):
        known = None
        reason = None
        age = None
        apt_check = "/usr/lib/update-notifier/apt-check"
        if not self.exists("/usr/bin/apt-get"):
            if self.exists("/usr/bin/dnf"):
                try:
                    known = self._dnf_updates()
                except RunbookError as error:
                    reason = str(error).rstrip(".")
            else:
                reason = "this host has neither apt-get nor dnf"
        elif self._apt_lists_age_days() is None:
            reason = "the package lists were never downloaded (run apt-get update)"
        elif self.exists(apt_check):
            age = self._apt_lists_age_days()
            result = self.run([apt_check], timeout=300)
            known = parse_apt_check(result.stderr + result.stdout) if result.ok else None
            reason = None if known else "apt-check failed: {0}".format(result.output(300))
        else:
            age = self._apt_lists_age_days()
            result = self.run(["apt-get", "-s", "-o", "Debug::NoLocking=true", "dist-upgrade"], timeout=300)
            if result.ok:
                known = parse_apt_simulation(result.stdout)
            else:
                reason = "apt-get -s dist-upgrade failed: {0}".format(result.output(300))
        self.facts["updates"] = {"pending": known[0] if known else "unknown",
                                 "security": known[1] if known else "unknown", "lists_age_days": age}
        if known is None:
            output = "Could not check pending updates: {0}. {1}".format(reason, ADVICE["updates"])
            self.unchecked("pending_updates", output, observed="unknown")
            self.unchecked("security_updates", output, observed="unknown",
                           threshold=self.thresholds.threshold("security_updates"))
            return
        stale = age is not None and age > self.opts["apt_lists_max_age_days"]
        as_of = " as of package lists {0:g} days old".format(age) if age is not None else " (dnf check-update)"
        if stale:
            as_of += " (older than {0} days: run apt-get update for a true count)".format(
                self.opts["apt_lists_max_age_days"])
        self.add("pending_updates", health.WARN if stale else health.PASS, known[0], None,
                 "{0} package updates pending{1}.".format(known[0], as_of), unit="packages")
        status = self.thresholds.grade("security_updates", known[1])
        if stale and status == health.PASS:
            status = health.WARN
        self.add("security_updates", status, known[1], self.thresholds.threshold("security_updates"),
                 "{0} security updates pending{1}.".format(known[1], as_of), unit="packages")


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((key, value) for key, value in options.items() if value is not None))
    if opts["journal_pattern"]:
        try:
            re.compile(opts["journal_pattern"])
        except re.error as error:
            raise RunbookError("journal_pattern is not a valid regular expression: {0}.".format(error),
                               cause="invalid")
    if opts["exclude_mount_points"]:
        try:
            re.compile(opts["exclude_mount_points"])
        except re.error as error:
            raise RunbookError("exclude_mount_points is not a valid regular expression: {0}.".format(error),
                               cause="invalid")
    if float(opts["cpu_sample_seconds"]) <= 0:
        raise RunbookError("cpu_sample_seconds must be above 0.", cause="invalid")
    opts["cpu_sample_seconds"] = float(opts["cpu_sample_seconds"])
    limits_from(opts["thresholds"])
    return opts


def collect(options, runner=run, proc_root="/proc", sleep=time.sleep, exists=os.path.exists):
    """Run the chosen categories of checks; returns {checks, status, counts, facts, host, time, unchecked}.

    A category that cannot be read (no journal access, no systemd) becomes a
    failed check marked `unchecked` saying why, so one missing tool never hides
    the other findings and never passes; `unchecked` names those checks.
    """
    opts = normalize(options)
    probe = HostHealth(opts, runner=runner, proc_root=proc_root, sleep=sleep, exists=exists)
    chosen = set(opts["categories"])
    steps = [
        ("services", probe.services),
        ("failed_units", probe.failed_units),
        ("journal", probe.journal),
        ("disk", lambda: probe.disks(inodes="inodes" in chosen, space="disk" in chosen)),
        ("memory", lambda: probe.memory(memory="memory" in chosen, swap="swap" in chosen)),
        ("cpu", probe.cpu),
        ("load", probe.load),
        ("oom", probe.oom),
        ("reboot", probe.reboot),
        ("updates", probe.updates),
    ]
    grouped = {"disk": ("disk", "inodes"), "memory": ("memory", "swap")}
    for category, step in steps:
        if not chosen & set(grouped.get(category, (category,))):
            continue
        try:
            step()
        except RunbookError as error:
            advice = "" if error.hint else " " + ADVICE.get(category, "Leave {0} out of categories.".format(category))
            probe.unchecked(category, "Could not check {0}: {1}.{2}".format(category, _flat(error).rstrip("."), advice),
                            observed="unknown")
        except (IOError, OSError) as error:
            probe.unchecked(category, "Could not check {0}: {1}. {2}".format(
                category, error.strerror or error, ADVICE.get(category, "Leave {0} out of categories.".format(
                    category))), observed="unknown")
    return {
        "checks": probe.checks,
        "status": health.worst(probe.checks),
        "counts": health.counts(probe.checks),
        "facts": probe.facts,
        "host": probe.host,
        "time": isoformat(utc_now()),
        "unchecked": [item["name"] for item in health.not_checked(probe.checks)],
    }
