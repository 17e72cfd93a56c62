# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pending package updates and reboot needs, read the way the package managers report them.

One reading for the whole collection: host_health counts pending and security
updates with these parsers, the patching engine selects and reports with them.

- apt: `apt-get -s ...` prints one `Inst NAME [OLD] (NEW RELEASES [ARCH])` line
  per package it would install, where RELEASES are the candidate's sources as
  `Label:Version/Archive` (e.g. `Debian-Security:12/stable-security`). An update
  is a security update when one of its sources matches the security pattern
  (by default `security`, which Debian's and Ubuntu's security archives carry
  in their label and suite).
- dpkg and rpm: the installed versions, to report what really changed.
- dnf: `dnf check-update` (with `--security` for the security selection).
- Reboot: `/var/run/reboot-required` (and `.pkgs`) as Debian's and Ubuntu's
  packages write them, a newer installed kernel of the running flavour, and
  `needs-restarting -r` on dnf hosts.

Everything here is pure parsing except the small readers at the end.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import glob
import os
import re

DEFAULT_SECURITY_PATTERN = "security"
# Packages whose upgrade normally ends in a pending reboot: kernels, the C
# library, the init system and message bus, firmware and microcode (the
# packages Ubuntu's update-notifier and dnf's needs-restarting name). Only a
# prediction for check mode; after a real upgrade the host itself is asked.
REBOOT_PACKAGES = ("linux-image-*", "linux-modules-*", "linux-firmware*", "firmware-*", "intel-microcode",
                   "amd64-microcode", "libc6", "systemd", "udev", "dbus", "dbus-daemon", "dbus-broker", "kernel",
                   "kernel-core", "kernel-rt*", "glibc", "microcode_ctl", "openssl-libs", "gnutls")
REBOOT_FLAG = "/var/run/reboot-required"

_INST = re.compile(r"^Inst (?P<name>\S+)(?: \[(?P<old>[^\]]*)\])? \((?P<new>\S+) (?P<releases>.*?) ?\[(?P<arch>[^\]]+)\]\)")
_REMV = re.compile(r"^Remv (?P<name>\S+)(?: \[(?P<old>[^\]]*)\])?")
_DEBIAN_KERNEL = re.compile(r"^(?P<version>\d+(?:\.\d+)+-\d+)(?P<flavour>-[a-z][\w.+-]*)$")


def is_security(releases, pattern=DEFAULT_SECURITY_PATTERN):
    """True when one of the sources (`Label:Version/Archive` strings) matches `pattern` (a regex, any case)."""
    regex = re.compile(pattern, re.IGNORECASE)
    return any(regex.search(release) for release in releases)


def matches_any(name, patterns):
    """True when the package name (without an `:arch` qualifier) matches one of the shell-style patterns."""
    bare = name.split(":", 1)[0]
    return any(fnmatch.fnmatchcase(bare, pattern) for pattern in patterns)


def _kept_back(lines):
    names = []
    collecting = False
    for line in lines:
        if line.startswith("The following packages have been kept back"):
            collecting = True
        elif collecting and line.startswith(" "):
            names.extend(line.split())
        else:
            collecting = False
    return names


def parse_apt_simulation(text, security_pattern=DEFAULT_SECURITY_PATTERN):
    """What `apt-get -s upgrade|dist-upgrade|install` would do.

    Returns {"upgrades": [...], "new": [...], "removals": [...], "kept_back": [names]}; an upgrade is
    {name, arch, old, new, releases, security}, a new package the same without `old`, a removal {name, old}.
    """
    result = {"upgrades": [], "new": [], "removals": [], "kept_back": []}
    lines = text.splitlines()
    for line in lines:
        match = _INST.match(line)
        if match:
            releases = [part.strip() for part in match.group("releases").split(", ") if part.strip()]
            update = {"name": match.group("name"), "arch": match.group("arch"), "old": match.group("old"),
                      "new": match.group("new"), "releases": releases,
                      "security": is_security(releases, security_pattern)}
            if update["old"] is None:
                del update["old"]
                result["new"].append(update)
            else:
                result["upgrades"].append(update)
            continue
        match = _REMV.match(line)
        if match:
            result["removals"].append({"name": match.group("name"), "old": match.group("old")})
    result["kept_back"] = _kept_back(lines)
    return result


def parse_dpkg_query(text):
    """{"name:arch": {version}} of the installed packages from
    `dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Architecture}\\t${Version}\\n'`.

    A package counts while dpkg has its files (not `not-installed`, not `config-files` only).
    """
    installed = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 4 or len(fields[0]) < 2 or fields[0][1] in "nc":
            continue
        installed.setdefault("{0}:{1}".format(fields[1], fields[2]), set()).add(fields[3])
    return installed


def parse_rpm_query(text):
    """{"name:arch": {versions}} from `rpm -qa --qf '%{NAME}\\t%{ARCH}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'`.

    Install-only packages (kernels) keep several versions side by side.
    """
    installed = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 3:
            continue
        version = fields[2][2:] if fields[2].startswith("0:") else fields[2]
        installed.setdefault("{0}:{1}".format(fields[0], fields[1]), set()).add(version)
    return installed


def _display_name(key, native_arches):
    name, _sep, arch = key.rpartition(":")
    return name if arch in native_arches else key


def diff_installed(before, after, native_arches=("all", "noarch")):
    """What changed between two package snapshots: upgraded (old -> new), installed, removed.

    Names carry their architecture only when it is not the native one (`libc6:i386`).
    """
    upgraded, installed, removed = [], [], []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, set()), after.get(key, set())
        if old == new:
            continue
        name = _display_name(key, native_arches)
        arch = key.rpartition(":")[2]
        if not old:
            installed.append({"name": name, "arch": arch, "version": ", ".join(sorted(new))})
        elif not new:
            removed.append({"name": name, "arch": arch, "version": ", ".join(sorted(old))})
        else:
            upgraded.append({"name": name, "arch": arch, "old": ", ".join(sorted(old - new) or sorted(old)),
                             "new": ", ".join(sorted(new - old) or sorted(new))})
    return {"upgraded": upgraded, "installed": installed, "removed": removed}


def parse_dnf_check_update(text):
    """Updates listed by `dnf check-update` (exit status 100): [{name, arch, new, repo}].

    The `Obsoleting Packages` section that may follow is not a list of updates.
    """
    updates = []
    for line in text.splitlines():
        if line.startswith("Obsoleting Packages"):
            break
        fields = line.split()
        if len(fields) != 3 or "." not in fields[0] or line.startswith(" "):
            continue
        name, _sep, arch = fields[0].rpartition(".")
        if not name or not re.match(r"^[\d]", fields[1].split(":")[-1]):
            continue
        updates.append({"name": name, "arch": arch, "new": fields[1], "repo": fields[2]})
    return updates


def parse_needs_restarting(status, text):
    """(required, packages) from `needs-restarting -r`: exit status 1 means a reboot is needed.

    Returns (None, []) when the status means the tool itself failed.
    """
    if status not in (0, 1):
        return None, []
    packages = sorted(set(line.strip()[2:].strip() for line in text.splitlines()
                          if line.strip().startswith("* ")))
    return status == 1, packages


def _version_key(version):
    return [int(part) for part in re.split(r"[.-]", version)]


def newer_kernel(running, installed):
    """The newest installed kernel of the running kernel's flavour when it is newer than the running one, else None.

    Debian/Ubuntu kernel releases look like 6.1.0-30-amd64 or 6.8.0-45-generic (version, then flavour);
    releases in another form are ignored rather than guessed at.
    """
    match = _DEBIAN_KERNEL.match(running or "")
    if not match:
        return None
    flavour = match.group("flavour")
    candidates = []
    for release in installed:
        other = _DEBIAN_KERNEL.match(release)
        if other and other.group("flavour") == flavour:
            candidates.append((_version_key(other.group("version")), release))
    if not candidates:
        return None
    newest = max(candidates)
    return newest[1] if newest[0] > _version_key(match.group("version")) else None


def reboot_packages_in(updates, patterns=REBOOT_PACKAGES):
    """Names of the updates whose package normally asks for a reboot."""
    return sorted(set(update["name"] for update in updates if matches_any(update["name"], patterns)))


# -- readers of the host ----------------------------------------------------

def read_reboot_flag(flag=REBOOT_FLAG):
    """(flagged, packages) from /var/run/reboot-required and /var/run/reboot-required.pkgs."""
    if not os.path.exists(flag):
        return False, []
    try:
        with open(flag + ".pkgs") as handle:
            return True, sorted(set(line.strip() for line in handle if line.strip()))
    except (IOError, OSError):
        return True, []


def installed_kernels(boot_dir="/boot"):
    """Kernel releases with an image in /boot (vmlinuz-RELEASE)."""
    return [os.path.basename(path)[len("vmlinuz-"):] for path in glob.glob(os.path.join(boot_dir, "vmlinuz-*"))]
