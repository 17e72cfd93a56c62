# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The swap file engine: create, resize, enable and remove one swap file, safely.

Three steps, so that every refusal happens before anything is touched:
`inspect()` reads the host (the file, /proc/swaps, /proc/meminfo, the file
system and whether the kernel lets this process enable swap at all),
`plan()` is a pure function of those facts and the wanted state that returns
the actions or raises RunbookError, and `apply()` carries the actions out.

Plain Python: no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import errno
import os
import re
import stat
import subprocess

from .common import RunbookError, human_size

# Swap files need a file system whose blocks the kernel can address directly:
# overlayfs (a container's root), tmpfs and network file systems refuse them,
# and btrfs needs copy-on-write turned off first.
SUPPORTED_FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs")
MIN_SIZE_BYTES = 1024 * 1024
MAX_PRIORITY = 32767
# swapoff moves every swapped-out page back into RAM; this much must stay free
# afterwards, or the kernel starts killing processes to make room.
SWAPOFF_MEMORY_RESERVE_BYTES = 256 * 1024 * 1024
SWAP_SIGNATURES = (b"SWAPSPACE2", b"SWAP-SPACE")
WRITE_CHUNK_BYTES = 1024 * 1024

_UNITS = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
_SIZE_PATTERN = re.compile(r"^\s*([0-9]+)\s*([KMGT])(?:i?B)?\s*$", re.IGNORECASE)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def parse_size(text, option="size"):
    """Bytes of a size written like fallocate's `-l 4G`: a whole number and a binary unit K, M, G or T."""
    match = _SIZE_PATTERN.match(str(text))
    if not match:
        raise RunbookError(
            "{0} '{1}' is not a size.".format(option, text),
            "Write a whole number and a unit K, M, G or T (binary: 4G is 4 GiB), for example 4G or 512M.")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _unescape(field):
    """/proc files write spaces, tabs, newlines and backslashes in paths as octal escapes."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_proc_swaps(text):
    """{path: {path, type, size_bytes, used_bytes, priority}} of every active swap area in /proc/swaps."""
    areas = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        path = _unescape(fields[0])
        areas[path] = {
            "path": path,
            "type": fields[1],
            "size_bytes": int(fields[2]) * 1024,
            "used_bytes": int(fields[3]) * 1024,
            "priority": int(fields[4]),
        }
    return areas


def parse_mountinfo(text):
    """[(mount point, file system type)] in mount order, from /proc/self/mountinfo."""
    mounts = []
    for line in text.splitlines():
        before, separator, after = line.partition(" - ")
        fields = before.split()
        if not separator or len(fields) < 5 or not after.split():
            continue
        mounts.append((_unescape(fields[4]), after.split()[0]))
    return mounts


def filesystem_of(path, mounts):
    """Type of the file system `path` (an absolute, resolved path) lives on: the last mount that covers it."""
    found = None
    found_length = -1
    for mount_point, fstype in mounts:
        prefix = mount_point.rstrip("/") + "/"
        if path == mount_point or path.startswith(prefix) or mount_point == "/":
            if len(mount_point) >= found_length:
                found, found_length = fstype, len(mount_point)
    return found


def parse_meminfo_available(text):
    """MemAvailable from /proc/meminfo, in bytes (None on kernels too old to report it)."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _read(path):
    with open(path) as handle:
        return handle.read()


def probe_swap_permission():
    """(permitted, reason): whether the kernel lets this process enable swap, without changing anything.

    swapoff(2) checks CAP_SYS_ADMIN (and a container's seccomp filter) before
    anything else; /dev/null is never a swap area, so a permitted call fails
    with EINVAL and changes nothing.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.swapoff(b"/dev/null") == 0:
        return True, None
    code = ctypes.get_errno()
    if code == errno.EPERM:
        return False, ("the kernel does not let this process manage swap (swapoff(2) answered EPERM: no "
                       "CAP_SYS_ADMIN, or a container runtime's seccomp filter)")
    if code == errno.ENOSYS:
        return False, "this kernel was built without swap support"
    return True, None


def _has_swap_signature(path, page_size):
    try:
        with open(path, "rb") as handle:
            handle.seek(page_size - 10)
            return handle.read(10) in SWAP_SIGNATURES
    except (IOError, OSError):
        return False


def inspect(path, swaps_text=None, mountinfo_text=None, meminfo_text=None, permission=None):
    """Everything `plan()` needs to know about the host, read without changing anything."""
    resolved = os.path.realpath(path)
    directory = os.path.dirname(resolved)
    page_size = os.sysconf("SC_PAGE_SIZE")
    facts = {
        "path": path,
        "resolved_path": resolved,
        "directory": directory,
        "directory_exists": os.path.isdir(directory),
        "page_size": page_size,
        "exists": False,
        "is_regular": False,
        "size_bytes": 0,
        "allocated_bytes": 0,
        "mode": None,
        "uid": None,
        "is_swap": False,
    }
    try:
        info = os.lstat(resolved)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise RunbookError("Cannot read {0}: {1}.".format(path, error.strerror))
    else:
        facts.update(
            exists=True,
            is_regular=stat.S_ISREG(info.st_mode),
            size_bytes=info.st_size,
            allocated_bytes=info.st_blocks * 512,
            mode=stat.S_IMODE(info.st_mode),
            uid=info.st_uid,
        )
        if facts["is_regular"]:
            facts["is_swap"] = _has_swap_signature(resolved, page_size)
    areas = parse_proc_swaps(_read("/proc/swaps") if swaps_text is None else swaps_text)
    facts["active"] = areas.get(resolved)
    facts["filesystem"] = filesystem_of(
        directory, parse_mountinfo(_read("/proc/self/mountinfo") if mountinfo_text is None else mountinfo_text))
    facts["free_bytes"] = None
    if facts["directory_exists"]:
        fs_stats = os.statvfs(directory)
        facts["free_bytes"] = fs_stats.f_bavail * fs_stats.f_frsize
    facts["mem_available_bytes"] = parse_meminfo_available(
        _read("/proc/meminfo") if meminfo_text is None else meminfo_text)
    facts["swap_permitted"], facts["swap_refusal"] = probe_swap_permission() if permission is None else permission
    return facts


def _require_swap_possible(facts):
    path = facts["path"]
    if not facts["swap_permitted"]:
        raise RunbookError(
            "Cannot enable swap on this host: {0}.".format(facts["swap_refusal"]),
            "Containers usually may not; enable swap on the host that runs them (or run the container "
            "privileged), or set swap_file_state: absent for this host. Nothing was changed.")
    if facts["filesystem"] not in SUPPORTED_FILESYSTEMS:
        raise RunbookError(
            "{0} is on a file system of type {1}, where the kernel refuses swap files.".format(
                path, facts["filesystem"] or "unknown"),
            "Choose a path on {0} (a container's overlay root never works; a volume from the host's disk "
            "does). Nothing was changed.".format(", ".join(SUPPORTED_FILESYSTEMS)))


def _require_memory_for_swapoff(facts, why):
    active = facts["active"]
    available = facts["mem_available_bytes"]
    if not active or available is None:
        return
    if active["used_bytes"] > available - SWAPOFF_MEMORY_RESERVE_BYTES:
        raise RunbookError(
            "Refusing to {0}: swapoff would move {1} of swapped-out memory back into RAM, and only {2} is "
            "available (keeping {3} free).".format(
                why, human_size(active["used_bytes"]), human_size(available),
                human_size(SWAPOFF_MEMORY_RESERVE_BYTES)),
            "This is how the OOM killer gets woken at 3 a.m. To add swap now, create a second swap file "
            "with another path; resize this one when memory is free. Nothing was changed.")


def _require_free_space(facts, size_bytes, min_free_bytes):
    # Replacing the file frees its blocks first, so they count as free.
    reclaimed = facts["allocated_bytes"] if facts["exists"] else 0
    free = facts["free_bytes"] + reclaimed
    left = free - size_bytes
    if left < min_free_bytes:
        raise RunbookError(
            "Refusing to write a {0} swap file at {1}: the file system has {2} free{3}, which would leave "
            "{4}, less than the {5} that must stay free.".format(
                human_size(size_bytes), facts["path"], human_size(facts["free_bytes"]),
                " (plus {0} of the current swap file)".format(human_size(reclaimed)) if reclaimed else "",
                human_size(max(left, 0)), human_size(min_free_bytes)),
            "Choose a smaller size, free disk space, or put the file on a larger file system. Nothing was changed.")


def plan(facts, state="present", size_bytes=None, priority=None, min_free_bytes=0):
    """The actions that bring the host to the wanted state, in order; raises RunbookError to refuse.

    Actions: `swapoff`, `create` (removes the old file, writes and formats a
    new one), `remove`, `fix_mode` (root, 0600) and `swapon`.
    """
    path = facts["path"]
    if not os.path.isabs(path):
        raise RunbookError("The swap file path '{0}' is not absolute.".format(path), "Write it from /, for example /swapfile.")
    if facts["exists"] and not facts["is_regular"]:
        raise RunbookError("{0} exists and is not a regular file.".format(path),
                           "Choose another path for the swap file. Nothing was changed.")
    if facts["exists"] and not facts["is_swap"] and not facts["active"]:
        raise RunbookError(
            "{0} exists and is not a swap file; refusing to {1} it.".format(
                path, "overwrite" if state == "present" else "remove"),
            "Check what it is, then remove it by hand or choose another path. Nothing was changed.")
    if state == "absent":
        actions = []
        if facts["active"]:
            _require_memory_for_swapoff(facts, "turn off " + path)
            actions.append("swapoff")
        if facts["exists"]:
            actions.append("remove")
        return actions

    if priority is not None and not 0 <= priority <= MAX_PRIORITY:
        raise RunbookError("The swap priority must be between 0 and {0}, not {1}.".format(MAX_PRIORITY, priority))
    if size_bytes is None:
        raise RunbookError("A size is needed to create the swap file {0}.".format(path), "Set the size, for example 4G.")
    if size_bytes < MIN_SIZE_BYTES:
        raise RunbookError("A swap file of {0} is too small to be useful.".format(human_size(size_bytes)),
                           "Use at least {0}.".format(human_size(MIN_SIZE_BYTES)))
    if not facts["directory_exists"]:
        raise RunbookError("The directory {0} of the swap file does not exist.".format(facts["directory"]),
                           "Create it first or choose another path. Nothing was changed.")
    if not (facts["exists"] and facts["is_swap"] and facts["size_bytes"] == size_bytes):
        _require_swap_possible(facts)
        _require_free_space(facts, size_bytes, min_free_bytes)
        actions = []
        if facts["active"]:
            _require_memory_for_swapoff(facts, "resize " + path)
            actions.append("swapoff")
        return actions + ["create", "swapon"]

    actions = []
    if facts["mode"] != 0o600 or facts["uid"] != 0:
        actions.append("fix_mode")
    active = facts["active"]
    if not active:
        _require_swap_possible(facts)
        actions.append("swapon")
    elif priority is not None and active["priority"] != priority:
        _require_memory_for_swapoff(facts, "change the priority of " + path)
        actions += ["swapoff", "swapon"]
    return actions


def describe(actions, facts, size_bytes=None, priority=None):
    """One sentence per action, for the module's result and check mode."""
    path = facts["path"]
    sentences = {
        "swapoff": "turn off swap on {0}".format(path),
        "remove": "remove {0}".format(path),
        "fix_mode": "make {0} owned by root with mode 0600".format(path),
        "swapon": "turn on swap on {0}{1}".format(
            path, "" if priority is None else " with priority {0}".format(priority)),
    }
    if size_bytes is not None:
        if facts["exists"]:
            sentences["create"] = "replace {0} ({1}) with a new {2} swap file".format(
                path, human_size(facts["size_bytes"]), human_size(size_bytes))
        else:
            sentences["create"] = "write a {0} swap file at {1}".format(human_size(size_bytes), path)
    return [sentences[action] for action in actions]


def _run(argv, what):
    process = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if process.returncode != 0:
        raise RunbookError(
            "{0} failed (exit status {1}): {2}".format(
                what, process.returncode, (process.stderr or process.stdout).strip() or "no output"),
            command=argv)
    return process


def _write_swap_file(path, size_bytes):
    """Write `size_bytes` of zeros (a swap file must have no holes) under a partial name, format it, rename it."""
    partial = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".partial")
    if os.path.lexists(partial):
        os.unlink(partial)
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchown(descriptor, 0, 0)
            os.fchmod(descriptor, 0o600)
            # Reserves every block up front, so a full disk fails here, not halfway.
            os.posix_fallocate(descriptor, 0, size_bytes)
            zeros = b"\0" * WRITE_CHUNK_BYTES
            written = 0
            while written < size_bytes:
                written += os.write(descriptor, zeros[:min(WRITE_CHUNK_BYTES, size_bytes - written)])
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        _run(["mkswap", partial], "mkswap " + partial)
        os.rename(partial, path)
    except (IOError, OSError) as error:
        if os.path.lexists(partial):
            os.unlink(partial)
        raise RunbookError("Could not write the swap file {0}: {1}.".format(path, error.strerror),
                           "The partial file was removed; free disk space and run again.")
    except RunbookError:
        if os.path.lexists(partial):
            os.unlink(partial)
        raise


def _swapon(path, priority):
    argv = ["swapon"] + (["--priority", str(priority)] if priority is not None else []) + [path]
    try:
        _run(argv, "swapon " + path)
    except RunbookError as error:
        raise RunbookError(error.message, "{0} is formatted but not in use; the kernel's reason is above.".format(path),
                           **error.details)


def apply(actions, facts, size_bytes=None, priority=None):
    """Carry out `plan()`'s actions in order."""
    path = facts["resolved_path"]
    for action in actions:
        if action == "swapoff":
            _run(["swapoff", path], "swapoff " + path)
        elif action == "remove":
            os.unlink(path)
        elif action == "create":
            if os.path.lexists(path):
                os.unlink(path)
            _write_swap_file(path, size_bytes)
        elif action == "fix_mode":
            os.chown(path, 0, 0)
            os.chmod(path, 0o600)
        elif action == "swapon":
            _swapon(path, priority)


def ensure(path, state="present", size=None, priority=None, min_free="0K", check_mode=False):
    """Inspect, plan and (unless check_mode) apply; returns the module's result dictionary."""
    size_bytes = parse_size(size) if size is not None else None
    min_free_bytes = parse_size(min_free, "min_free")
    facts = inspect(path)
    actions = plan(facts, state=state, size_bytes=size_bytes, priority=priority, min_free_bytes=min_free_bytes)
    planned = describe(actions, facts, size_bytes=size_bytes, priority=priority)
    result = {
        "changed": bool(actions),
        "actions": planned,
        "path": path,
        "state": state,
        "filesystem": facts["filesystem"],
        "free_bytes": facts["free_bytes"],
        "previous_size_bytes": facts["size_bytes"] if facts["exists"] else None,
        "size_bytes": size_bytes if state == "present" else None,
    }
    if check_mode or not actions:
        result["active"] = facts["active"]
    else:
        apply(actions, facts, size_bytes=size_bytes, priority=priority)
        result["active"] = parse_proc_swaps(_read("/proc/swaps")).get(facts["resolved_path"])
        if state == "present" and not result["active"]:
            raise RunbookError("swapon reported success but {0} is not in /proc/swaps.".format(path),
                               "Run swapon --show on the host to see why.")
    if actions:
        result["msg"] = "{0} {1}.".format("Would" if check_mode else "Done:", "; ".join(planned))
    else:
        result["msg"] = "{0} is {1}; nothing to do.".format(
            path, "active with {0}".format(human_size(size_bytes)) if state == "present" else "absent")
    return result
