#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: security_patching
short_description: Install security updates (or every update), report each package old -> new, decide the reboot
version_added: 0.1.0
description:
  - The runbooks' weekly C(sudo apt update && sudo apt upgrade -y), made safe to run unattended.
  - Refreshes the package lists when they are older than O(cache_valid_time).
  - Lists the pending upgrades from apt's own simulation. An update is a security update when one of the sources of
    its new version matches O(security_pattern) (Debian's C(Debian-Security:12/stable-security), Ubuntu's
    C(jammy-security)); M(ops.runbook.host_health) counts security updates the same way.
  - With O(scope=security) only those are installed; the other updates are reported in RV(not_selected) and left alone.
    Packages matching O(exclude) are never upgraded. Held packages (C(apt-mark hold)) stay held.
  - Installs exactly the simulated transaction (C(apt-get install --only-upgrade --no-remove NAME=VERSION ...)) - new
    dependencies may be installed, nothing is ever removed, locally edited configuration files are kept, and a
    running apt (C(apt-daily)) is waited for up to O(lock_timeout) seconds.
  - Reports what dpkg really changed, package by package (RV(upgraded) with C(old) and C(new) versions).
  - Decides the reboot (RV(reboot)) - required when C(/var/run/reboot-required) exists or a newer kernel of the
    running flavour is installed (C(needs-restarting -r) on dnf hosts); the action is C(reboot) only when
    O(reboot_allowed=true), otherwise C(not_allowed) with a warning. The module never reboots; the role
    M(ops.runbook.security_patching) (or a playbook) does it with M(ansible.builtin.reboot) when the action is C(reboot).
  - On dnf hosts (Fedora, RHEL and rebuilds) it runs C(dnf check-update [--security]), C(dnf upgrade [--security]
    NAMES) and C(needs-restarting -r); that path is unit-tested for its commands and parsing only.
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  scope:
    description: C(security) installs only security updates; C(all) installs every pending upgrade (C(apt upgrade)).
    type: str
    choices: [security, all]
    default: security
  security_pattern:
    description:
      - Regular expression (any case) that makes a source a security source. It is matched against each source of the
        update's new version as apt shows it, C(Label:Version/Archive), e.g. C(Debian-Security:12/stable-security).
    type: str
    default: security
  exclude:
    description: Package names (shell patterns, e.g. C(postgresql-*)) never upgraded; they are reported as excluded.
    type: list
    elements: str
    default: []
  update_cache:
    description: Refresh the package lists (C(apt-get update), C(dnf makecache)) first. Check mode refreshes them too.
    type: bool
    default: true
  cache_valid_time:
    description: Lists younger than this many seconds are not refreshed (apt).
    type: int
    default: 3600
  reboot_allowed:
    description:
      - Whether a required reboot may happen. When false and a reboot is required, the C(action) of RV(reboot) is
        C(not_allowed) and the module warns.
    type: bool
    default: false
  reboot_packages:
    description:
      - Packages (shell patterns) whose upgrade normally ends in a pending reboot. Used only in check mode, to say that a
        reboot would follow; after a real upgrade the host's own signals decide.
      - Unset means kernels, the C library, systemd, udev, dbus, firmware and microcode, OpenSSL and GnuTLS libraries.
    type: list
    elements: str
  backend:
    description: C(auto) uses apt when C(/usr/bin/apt-get) exists, else dnf.
    type: str
    choices: [auto, apt, dnf]
    default: auto
  lock_timeout:
    description: Seconds to wait for another package manager run to release its lock.
    type: int
    default: 300
  timeout:
    description: Seconds the upgrade itself may take before it is stopped.
    type: int
    default: 3600
attributes:
  check_mode:
    support: full
    description:
      - Refreshes the package lists, then returns the transaction apt simulates (RV(planned), with the security selection
        applied) and whether a reboot would follow, and changes no package.
  diff_mode:
    support: none
    description: The result lists every package change instead.
notes:
  - Needs root (C(become)).
  - The reboot decision is in the result; the module does not reboot.
seealso:
  - module: ops.runbook.host_health
  - module: ops.runbook.service_restart
"""

EXAMPLES = r"""
- name: Install the security updates
  ops.runbook.security_patching:
    scope: security
  become: true
  register: patched

- name: Reboot when a reboot is required and allowed
  ansible.builtin.reboot:
  become: true
  when: patched.reboot.action == 'reboot'

- name: The runbook's full weekly upgrade, leaving PostgreSQL alone, rebooting when needed
  ops.runbook.security_patching:
    scope: all
    exclude: [postgresql-*]
    reboot_allowed: true
  become: true

- name: Which security updates are pending, and would a reboot follow?
  ops.runbook.security_patching:
  check_mode: true
  become: true
"""

RETURN = r"""
msg:
  description: What was (or would be) upgraded, what was left alone and the reboot decision, in sentences.
  returned: always
  type: str
  sample: >-
    Upgraded 1 package (security updates only): openssl 3.0.11-1~deb12u1 -> 3.0.11-1~deb12u2; left alone: tzdata
    2024a-0+deb12u1 -> 2025b-0+deb12u1 (1 not a security update). No reboot is required.
backend:
  description: C(apt) or C(dnf).
  returned: always
  type: str
scope:
  description: The scope asked for.
  returned: always
  type: str
cache_updated:
  description: Whether the package lists were refreshed.
  returned: always
  type: bool
pending:
  description: Every pending upgrade, each C(name), C(arch), C(old), C(new), C(releases) (its sources) and C(security).
  returned: always
  type: list
  elements: dict
selected:
  description: The pending upgrades chosen by O(scope) and O(exclude).
  returned: always
  type: list
  elements: dict
not_selected:
  description: The pending upgrades left alone, each with a C(reason) (C(not a security update), C(excluded)).
  returned: always
  type: list
  elements: dict
kept_back:
  description: Packages apt keeps back (their upgrade would need a removal, or they are held).
  returned: always
  type: list
  elements: str
held:
  description: Packages on hold (C(apt-mark showhold)).
  returned: always
  type: list
  elements: str
planned:
  description: The simulated transaction - the selected upgrades and the new dependencies they pull in.
  returned: always
  type: list
  elements: dict
upgraded:
  description:
    - What changed, from the installed versions before and after - C(name), C(arch), C(old), C(new), C(security) and
      C(requested) (false for a dependency pulled in). Empty in check mode.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "openssl", "arch": "amd64", "old": "3.0.11-1~deb12u1", "new": "3.0.11-1~deb12u2",
            "security": true, "requested": true}]
installed:
  description: Packages newly installed as dependencies (C(name), C(arch), C(version)).
  returned: always
  type: list
  elements: dict
removed:
  description: Packages removed (never by this module; listed if dpkg removed one anyway).
  returned: always
  type: list
  elements: dict
reboot:
  description:
    - The reboot decision - C(required) (true, false, or null when unknown), C(expected) (check mode - a planned package
      normally asks for one), C(reasons), C(packages) (from C(/var/run/reboot-required.pkgs)), C(allowed), C(action)
      (C(reboot), C(not_allowed), C(none), C(unknown)) and C(message).
  returned: always
  type: dict
  sample: {"required": true, "expected": false, "reasons": ["/var/run/reboot-required exists"],
           "packages": ["linux-image-6.1.0-30-amd64"], "allowed": false, "action": "not_allowed",
           "message": "A reboot is required (/var/run/reboot-required exists) but not allowed: ..."}
started_at:
  description: When the run started (UTC, ISO 8601).
  returned: always
  type: str
finished_at:
  description: When the run finished (UTC, ISO 8601).
  returned: success
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.security_patching import BACKENDS, DEFAULTS, SCOPES, run_patching


def argument_spec():
    return dict(
        scope=dict(type="str", choices=list(SCOPES), default=DEFAULTS["scope"]),
        security_pattern=dict(type="str", default=DEFAULTS["security_pattern"]),
        exclude=dict(type="list", elements="str", default=[]),
        update_cache=dict(type="bool", default=DEFAULTS["update_cache"]),
        cache_valid_time=dict(type="int", default=DEFAULTS["cache_valid_time"]),
        reboot_allowed=dict(type="bool", default=DEFAULTS["reboot_allowed"]),
        reboot_packages=dict(type="list", elements="str"),
        backend=dict(type="str", choices=list(BACKENDS), default=DEFAULTS["backend"]),
        lock_timeout=dict(type="int", default=DEFAULTS["lock_timeout"]),
        timeout=dict(type="int", default=DEFAULTS["timeout"]),
    )


def run(params, check_mode, log):
    result = run_patching(params, check_mode=check_mode)
    if result["reboot"]["action"] in ("not_allowed", "unknown"):
        result["warnings"].append(result["reboot"]["message"])
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True)


if __name__ == "__main__":
    main()
