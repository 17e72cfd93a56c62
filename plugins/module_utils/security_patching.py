# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patch a host: security updates only (or every update), report what changed, decide the reboot.

The runbooks' weekly `sudo apt update && sudo apt upgrade -y`, made safe to run
unattended:

1. the package lists are refreshed when older than a limit;
2. apt's own simulation lists every pending upgrade with its sources, and the
   security updates are those whose sources match the security pattern
   (packages.py, the reading host_health counts with); excluded packages and,
   in security scope, the other updates are left alone and reported as such;
3. the exact transaction is simulated first (check mode returns it): the
   selected packages at the simulated versions, never a removal, local
   configuration files kept;
4. the installed versions before and after are compared, so the report is
   what dpkg (or rpm) really has, package by package, old -> new;
5. the reboot decision: required (the host's own signals after the upgrade, or
   in check mode the packages that normally ask for one) and allowed (an
   explicit opt-in), else a clear "required but not allowed".

apt is the tested path. dnf is minimal (`dnf check-update [--security]`,
`dnf upgrade [--security] NAMES`, `needs-restarting -r`) and unit-tested only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import time

from . import packages
from .commands import display, run
from .common import RunbookError, isoformat, utc_now

SCOPES = ("security", "all")
BACKENDS = ("auto", "apt", "dnf")
DEFAULTS = {
    "scope": "security",
    "security_pattern": packages.DEFAULT_SECURITY_PATTERN,
    "exclude": [],
    "update_cache": True,
    "cache_valid_time": 3600,
    "reboot_allowed": False,
    "reboot_packages": list(packages.REBOOT_PACKAGES),
    "backend": "auto",
    "lock_timeout": 300,
    "timeout": 3600,
}
LISTED = 20
# Never ask a question, keep the host's edited configuration files (the
# package's new version lands beside them as .dpkg-dist), wait for another apt
# run (apt-daily) instead of failing on its lock.
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
LOCKED = "Could not get lock"
LOCK_RETRY_SECONDS = 5


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((key, value) for key, value in options.items() if value is not None))
    try:
        re.compile(opts["security_pattern"])
    except re.error as error:
        raise RunbookError("security_pattern {0!r} is not a valid regular expression: {1}.".format(
            opts["security_pattern"], error), cause="invalid")
    for key in ("cache_valid_time", "lock_timeout", "timeout"):
        if int(opts[key]) < 0:
            raise RunbookError("{0} must be 0 or more seconds, not {1}.".format(key, opts[key]), cause="invalid")
        opts[key] = int(opts[key])
    return opts


# -- selection and the reboot decision (pure) -------------------------------

def select_updates(upgrades, scope, exclude):
    """(selected, not selected with a reason) of the pending upgrades."""
    selected, skipped = [], []
    for update in upgrades:
        if packages.matches_any(update["name"], exclude):
            skipped.append(dict(update, reason="excluded"))
        elif scope == "security" and not update["security"]:
            skipped.append(dict(update, reason="not a security update"))
        else:
            selected.append(update)
    return selected, skipped


def decide_reboot(signals, allowed, check_mode=False, expected_packages=()):
    """Whether to reboot: required (or, in check mode, expected) and allowed.

    `signals` is {"required": True/False/None (unknown), "reasons": [...], "packages": [...]}.
    Returns {required, expected, reasons, packages, allowed, action, message} with action one of
    `reboot`, `not_allowed`, `none`, `unknown`.
    """
    required = signals["required"]
    reasons = list(signals["reasons"])
    expected = bool(check_mode and not required and expected_packages)
    if expected:
        reasons.append("the upgrade of {0} normally asks for one".format(", ".join(expected_packages)))
    needed = bool(required) or expected
    because = " ({0})".format("; ".join(reasons)) if reasons else ""
    if needed and allowed:
        action = "reboot"
        message = ("A reboot would follow{0}; reboots are allowed, so the host would be rebooted." if check_mode
                   else "A reboot is required{0} and allowed: the host is rebooted.").format(because)
    elif needed:
        action = "not_allowed"
        message = ("A reboot would be required{0} but is not allowed: the host would keep running the old kernel "
                   "or libraries." if check_mode else
                   "A reboot is required{0} but not allowed: the host keeps running the old kernel or libraries "
                   "until it is rebooted. Reboot it in a maintenance window, or allow it with reboot_allowed "
                   "(the role's security_patching_reboot_allowed: true).").format(because)
    elif required is None:
        action = "unknown"
        message = "Whether a reboot is required is unknown{0}.".format(because)
    else:
        action = "none"
        message = "No reboot {0} required.".format("would be" if check_mode else "is")
    return {"required": required, "expected": expected, "reasons": reasons, "packages": list(signals["packages"]),
            "allowed": bool(allowed), "action": action, "message": message}


def describe(updates, limit=LISTED):
    """`name old -> new, ...` of at most `limit` updates."""
    words = []
    for update in updates[:limit]:
        if update.get("old"):
            words.append("{0} {1} -> {2}".format(update["name"], update["old"], update["new"]))
        else:
            words.append("{0} {1} (new)".format(update["name"], update.get("new") or update.get("version")))
    if len(updates) > limit:
        words.append("and {0} more".format(len(updates) - limit))
    return ", ".join(words)


def _count(number, word):
    return "{0} {1}{2}".format(number, word, "" if number == 1 else "s")


# -- backends ---------------------------------------------------------------

class Apt:
    """apt-get, dpkg-query and the reboot flag of Debian and Ubuntu."""

    name = "apt"

    def __init__(self, runner=run, lists_dir="/var/lib/apt/lists", boot_dir="/boot", reboot_flag=packages.REBOOT_FLAG,
                 clock=time.time, kernel_release=None, sleep=time.sleep):
        self.run = runner
        self.lists_dir = lists_dir
        self.boot_dir = boot_dir
        self.reboot_flag = reboot_flag
        self.clock = clock
        self.sleep = sleep
        self.kernel_release = kernel_release or os.uname()[2]

    def _locked(self, argv, timeout, lock_timeout):
        """Run apt-get, waiting while another apt holds one of its locks.

        DPkg::Lock::Timeout waits for dpkg's lock only; the lists and archives locks (held by apt-daily's
        download, for one) fail at once. apt stops before it changes anything when a lock is taken, so trying
        again is safe.
        """
        deadline = self.clock() + lock_timeout
        while True:
            result = self.run(argv, timeout=timeout, env=APT_ENV)
            if result.ok or LOCKED not in result.output() or self.clock() >= deadline:
                return result
            self.sleep(LOCK_RETRY_SECONDS)

    def _apt(self, argv, timeout, what, lock_timeout=0):
        result = self._locked(argv, timeout, lock_timeout)
        if not result.ok:
            raise RunbookError("`{0}` failed (exit status {1}) while {2}: {3}".format(
                display(argv), result.rc, what, result.output(1500)), cause="apt", rc=result.rc)
        return result

    def lists_age(self):
        """Seconds since the package lists were last refreshed; None when they never were."""
        releases = glob.glob(os.path.join(self.lists_dir, "*Release"))
        if not releases:
            return None
        return max(0.0, self.clock() - max(os.path.getmtime(path) for path in releases + [self.lists_dir]))

    def refresh(self, valid_time, lock_timeout):
        """apt-get update when the lists are older than `valid_time` seconds; (refreshed, warnings)."""
        age = self.lists_age()
        if age is not None and age <= valid_time:
            return False, []
        result = self._apt(["apt-get", "-q", "-o", "DPkg::Lock::Timeout={0}".format(lock_timeout), "update"],
                           timeout=lock_timeout + 600, what="refreshing the package lists", lock_timeout=lock_timeout)
        warnings = [line[3:].strip() for line in result.stderr.splitlines() + result.stdout.splitlines()
                    if line.startswith("W: ")]
        return True, warnings

    def installed(self):
        result = self._apt(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\n"],
                           timeout=120, what="listing the installed packages")
        return packages.parse_dpkg_query(result.stdout)

    def native_arches(self):
        result = self.run(["dpkg", "--print-architecture"], timeout=30)
        return (result.stdout.strip(), "all") if result.ok else ("all",)

    def pending(self, security_pattern):
        """apt's plan for `apt upgrade` (new dependencies allowed, never a removal)."""
        result = self._apt(["apt-get", "-s", "-q", "-o", "Debug::NoLocking=true", "upgrade", "--with-new-pkgs"],
                           timeout=600, what="listing the pending upgrades")
        return packages.parse_apt_simulation(result.stdout, security_pattern)

    def held(self):
        result = self.run(["apt-mark", "showhold"], timeout=60)
        return sorted(result.stdout.split()) if result.ok else []

    @staticmethod
    def _install_argv(selection):
        return ["install", "--only-upgrade", "--no-remove"] + [
            "{0}={1}".format(update["name"], update["new"]) for update in selection]

    def simulate(self, selection, security_pattern):
        result = self._apt(["apt-get", "-s", "-q", "-o", "Debug::NoLocking=true"] + self._install_argv(selection),
                           timeout=600, what="planning the upgrade")
        return packages.parse_apt_simulation(result.stdout, security_pattern)

    def apply(self, selection, scope, lock_timeout, timeout):
        argv = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout={0}".format(lock_timeout),
                "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
        return self._locked(argv + self._install_argv(selection), timeout, lock_timeout)

    def reboot_signals(self):
        flagged, flagged_packages = packages.read_reboot_flag(self.reboot_flag)
        reasons = ["{0} exists".format(self.reboot_flag)] if flagged else []
        kernel = packages.newer_kernel(self.kernel_release, packages.installed_kernels(self.boot_dir))
        if kernel:
            reasons.append("kernel {0} is installed, {1} is running".format(kernel, self.kernel_release))
        return {"required": bool(reasons), "reasons": reasons, "packages": flagged_packages}

    repair_hint = ("Look at the output above; `dpkg --audit` lists half-installed packages and "
                   "`dpkg --configure -a` finishes their configuration.")


class Dnf:
    """dnf and rpm of Fedora, RHEL and its rebuilds: minimal, unit-tested for its commands and parsing only."""

    name = "dnf"
    repair_hint = "Look at the output above; `dnf history info last` shows what the transaction did."

    def __init__(self, runner=run):
        self.run = runner

    def _dnf(self, argv, timeout, what, ok=(0,)):
        result = self.run(argv, timeout=timeout)
        if result.rc not in ok:
            raise RunbookError("`{0}` failed (exit status {1}) while {2}: {3}".format(
                display(argv), result.rc, what, result.output(1500)), cause="dnf", rc=result.rc)
        return result

    def refresh(self, valid_time, lock_timeout):
        # dnf keeps its own metadata expiry; makecache refreshes only what expired.
        self._dnf(["dnf", "-q", "makecache"], timeout=lock_timeout + 600, what="refreshing the repository metadata")
        return True, []

    def installed(self):
        result = self._dnf(["rpm", "-qa", "--qf", "%{NAME}\t%{ARCH}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n"],
                           timeout=120, what="listing the installed packages")
        return packages.parse_rpm_query(result.stdout)

    def native_arches(self):
        result = self.run(["rpm", "--eval", "%{_arch}"], timeout=30)
        return (result.stdout.strip(), "noarch") if result.ok else ("noarch",)

    def _check_update(self, security):
        argv = ["dnf", "-q", "check-update"] + (["--security"] if security else [])
        result = self._dnf(argv, timeout=600, what="listing the pending updates", ok=(0, 100))
        return packages.parse_dnf_check_update(result.stdout)

    def pending(self, security_pattern):
        installed = self.installed()
        security = set((item["name"], item["arch"]) for item in self._check_update(True))
        upgrades = []
        for item in self._check_update(False):
            old = sorted(installed.get("{0}:{1}".format(item["name"], item["arch"]), []))
            upgrades.append({"name": item["name"], "arch": item["arch"],
                             "old": old[-1] if old else "", "new": item["new"], "releases": [item["repo"]],
                             "security": (item["name"], item["arch"]) in security})
        return {"upgrades": upgrades, "new": [], "removals": [], "kept_back": []}

    def held(self):
        return []

    def simulate(self, selection, security_pattern):
        return {"upgrades": list(selection), "new": [], "removals": [], "kept_back": []}

    def apply(self, selection, scope, lock_timeout, timeout):
        argv = ["dnf", "-y", "upgrade"] + (["--security"] if scope == "security" else [])
        return self.run(argv + ["{0}.{1}".format(update["name"], update["arch"]) for update in selection],
                        timeout=timeout)

    def reboot_signals(self):
        for argv in (["needs-restarting", "-r"], ["dnf", "needs-restarting", "-r"]):
            try:
                result = self.run(argv, timeout=120)
            except RunbookError:
                continue
            required, names = packages.parse_needs_restarting(result.rc, result.stdout)
            if required is not None:
                reasons = ["`{0}` reports updated core packages: {1}".format(
                    display(argv), ", ".join(names) or "see its output")] if required else []
                return {"required": required, "reasons": reasons, "packages": names}
        return {"required": None, "reasons": ["needs-restarting (dnf-utils) is not installed or failed"],
                "packages": []}


def detect_backend(name, runner=run, exists=os.path.exists):
    if name == "apt" or (name == "auto" and exists("/usr/bin/apt-get")):
        return Apt(runner)
    if name == "dnf" or (name == "auto" and exists("/usr/bin/dnf")):
        return Dnf(runner)
    raise RunbookError("This host has neither apt-get nor dnf; only Debian/Ubuntu (apt) and Fedora/RHEL (dnf) "
                       "hosts can be patched.", cause="unsupported")


# -- the run ----------------------------------------------------------------

def _annotate(changes, planned, selection):
    """Mark each real change with what the plan knew: security update, asked for or pulled in as a dependency."""
    by_name = dict((update["name"].split(":", 1)[0], update) for update in planned)
    asked = set(update["name"].split(":", 1)[0] for update in selection)
    for change in changes:
        bare = change["name"].split(":", 1)[0]
        change["security"] = bool(by_name.get(bare, {}).get("security"))
        change["requested"] = bare in asked
    return changes


def _summary(opts, changes, selection, skipped, check_mode):
    """One sentence: what was (or would be) upgraded, then what was left alone and why."""
    scope = "security updates only" if opts["scope"] == "security" else "every update"
    if changes:
        text = "{0} {1} ({2}): {3}".format("Would upgrade" if check_mode else "Upgraded",
                                           _count(len(changes), "package"), scope, describe(changes))
    elif selection:
        text = "Upgraded nothing ({0}): apt installed no new version of {1}".format(scope, describe(selection))
    else:
        text = "No {0} pending".format("security updates" if opts["scope"] == "security" else "updates")
    if skipped:
        reasons = sorted(set(item["reason"] for item in skipped))
        text += "; left alone: {0} ({1})".format(describe(skipped), "; ".join(
            "{0} {1}".format(sum(1 for item in skipped if item["reason"] == reason), reason) for reason in reasons))
    return text + "."


def run_patching(options, check_mode=False, runner=run, backend=None):
    """Refresh, select, (simulate or) upgrade, compare, decide the reboot. Returns the module's result."""
    opts = normalize(options)
    backend = backend or detect_backend(opts["backend"], runner)
    started = utc_now()
    result = {"changed": False, "backend": backend.name, "scope": opts["scope"], "started_at": isoformat(started),
              "upgraded": [], "installed": [], "removed": [], "warnings": []}

    if opts["update_cache"]:
        result["cache_updated"], result["warnings"] = backend.refresh(opts["cache_valid_time"], opts["lock_timeout"])
    else:
        result["cache_updated"] = False
    pending = backend.pending(opts["security_pattern"])
    selection, skipped = select_updates(pending["upgrades"], opts["scope"], opts["exclude"])
    result.update(pending=pending["upgrades"], selected=selection, not_selected=skipped,
                  kept_back=pending["kept_back"], held=backend.held())
    plan = backend.simulate(selection, opts["security_pattern"]) if selection else {"upgrades": [], "new": []}
    planned = plan["upgrades"] + plan["new"]
    result["planned"] = planned

    if check_mode:
        expected = packages.reboot_packages_in(planned, opts["reboot_packages"])
        result["reboot"] = decide_reboot(backend.reboot_signals(), opts["reboot_allowed"], check_mode=True,
                                         expected_packages=expected)
        result["changed"] = bool(planned)
        result["msg"] = "{0} {1}".format(_summary(opts, planned, selection, skipped, True),
                                         result["reboot"]["message"])
        result["finished_at"] = isoformat(utc_now())
        return result

    if selection:
        before = backend.installed()
        outcome = backend.apply(selection, opts["scope"], opts["lock_timeout"], opts["timeout"])
        changes = packages.diff_installed(before, backend.installed(), backend.native_arches())
        for key in ("upgraded", "installed", "removed"):
            result[key] = _annotate(changes[key], planned, selection)
        result["changed"] = any(changes.values())
        if not outcome.ok:
            done = describe(result["upgraded"]) or "nothing"
            raise RunbookError(
                "`{0}` failed (exit status {1}): {2} Upgraded before it stopped: {3}.".format(
                    display(outcome.argv), outcome.rc, outcome.output(1500), done),
                hint=backend.repair_hint, cause="upgrade", upgraded=result["upgraded"],
                installed=result["installed"], changed=result["changed"])
    result["reboot"] = decide_reboot(backend.reboot_signals(), opts["reboot_allowed"])
    result["msg"] = "{0} {1}".format(_summary(opts, result["upgraded"] + result["installed"], selection, skipped,
                                              False), result["reboot"]["message"])
    result["finished_at"] = isoformat(utc_now())
    return result
