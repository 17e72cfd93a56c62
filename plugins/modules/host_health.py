#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_health
short_description: The runbooks' morning health check of a host, as pass / warn / fail checks
version_added: 0.1.0
description:
  - Checks one host the way the runbooks' "Morning Health Check" does, and reports every finding as a C(pass),
    C(warn) or C(fail) check with the observed value, the threshold and a sentence. Changes nothing.
  - C(services) - each unit in O(services) is active (C(systemctl status bmi-backend nginx postgresql)).
  - C(failed_units) - systemd lists no failed units.
  - C(journal) - error lines of each unit in O(journal_units) since O(journal_since), counted, the newest quoted.
    A line is an error when its priority is C(err) or worse or it matches O(journal_pattern) (C(grep -i error)).
  - C(disk), C(inodes) - space and inodes used on every real filesystem (or the ones holding O(mounts)).
  - C(memory), C(swap) - memory in use (C(MemTotal - MemAvailable)) and swap in use.
  - C(cpu) - CPU busy over O(cpu_sample_seconds); C(load) - the 5-minute load average per core.
  - C(oom) - OOM kills since O(journal_since), from the kernel's messages and systemd's reports of units killed.
  - C(reboot) - no reboot is pending, as M(ops.runbook.security_patching) reads it - on apt hosts
    C(/var/run/reboot-required) is absent and no newer kernel of the running flavour is in C(/boot); on dnf hosts
    C(needs-restarting -r) says none is needed.
  - C(updates) - pending package updates and security updates (apt, or dnf as M(ops.runbook.security_patching)
    reads them).
  - A check that cannot be made is never a C(pass) - it is C(fail) with C(unchecked=true), C(observed_value) unknown,
    and a sentence saying what could not be checked, why and what to do. For example a service or C(failed_units)
    on a host where systemd is not PID 1, a unit systemd does not know, the journal and OOM kills where
    C(journalctl) finds no journal files or may not read them (never "no error lines"), updates and reboot on a
    host with neither apt nor dnf (or package lists never downloaded), a path of O(mounts) that cannot be read.
    The other categories still run; leave a category out of O(categories) where it is known not to apply.
  - The result's C(checks) and C(status) are the collection's health vocabulary; other playbooks (health reports,
    patching) aggregate them. Renderings come from the collection's one report renderer.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.checks
options:
  services:
    description: systemd units that must be active, e.g. C([bmi-backend, nginx, postgresql]). C(.service) may be left out.
    type: list
    elements: str
    default: []
  journal_units:
    description: Units whose journal is searched for errors. Unset means O(services).
    type: list
    elements: str
  journal_since:
    description: Start of the journal search and the OOM search, in any form C(journalctl --since) accepts.
    type: str
    default: 24 hours ago
  journal_pattern:
    description: Regular expression (case-insensitive) that makes a journal line an error. Empty means priority only.
    type: str
    default: error
  journal_max_priority:
    description: Lines at this syslog priority or more severe are errors whatever they say (3 is C(err)).
    type: int
    default: 3
  journal_quote_lines:
    description: Number of newest error lines quoted in each journal check.
    type: int
    default: 5
  mounts:
    description:
      - Paths whose filesystems are checked. Empty means every mounted filesystem that is writable, not of a type
        in O(exclude_fstypes) and not mounted where O(exclude_mount_points) matches, one per device.
    type: list
    elements: path
    default: []
  exclude_fstypes:
    description:
      - Filesystem types left out when O(mounts) is empty. Unset means pseudo and RAM filesystems (proc, tmpfs, ...)
        and containers' layered filesystems (C(overlay), C(aufs)), as node_exporter leaves them out.
      - A layered filesystem mounted at C(/) is still checked - the host is then itself a container, and C(/) is its
        disk.
    type: list
    elements: str
  exclude_mount_points:
    description:
      - Python regular expression; mount points it matches are left out when O(mounts) is empty. The default is
        node_exporter's C(--collector.filesystem.mount-points-exclude) - C(/dev), C(/proc), C(/sys),
        C(/run/credentials/...) and the Docker and Podman engines' data (C(/var/lib/docker/...),
        C(/var/lib/containers/storage/...)), whose container mounts repeat the disk they live on.
      - An empty string leaves no mount point out.
    type: str
    default: ^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)
    version_added: 0.2.0
  thresholds:
    description:
      - "Limits by name, each C({warn: X, fail: Y}). A level left out keeps its default (C({warn: 70}) keeps the fail
        limit); C(null) switches a level off. Unnamed limits keep their defaults."
      - "A value breaches a limit only when it is strictly above it, as the runbooks' C(> 80 %) says: a disk 80 %
        full passes the warn limit 80, one 80.1 % full warns. The counts warn above 0, that is from the first one."
      - C(disk_used_percent) 80/95, C(inode_used_percent) 80/95, C(memory_used_percent) 85/95,
        C(swap_used_percent) 50/90, C(cpu_used_percent) 80/95, C(load_per_core) 1.0/2.0, C(journal_errors) 0/-,
        C(failed_units) 0/-, C(oom_kills) 0/-, C(security_updates) 0/-.
      - A name this module does not know is refused, and the error lists the known ones. The
        C(ops.runbook.thresholds_for) filter takes this module's names out of a dictionary shared by several
        modules, such as the inventory's C(runbook_thresholds).
    type: dict
    default: {}
  cpu_sample_seconds:
    description: How long CPU use is measured.
    type: float
    default: 1.0
  categories:
    description: Which checks run.
    type: list
    elements: str
    choices: [services, failed_units, journal, disk, inodes, memory, swap, cpu, load, oom, reboot, updates]
    default: [services, failed_units, journal, disk, inodes, memory, swap, cpu, load, oom, reboot, updates]
  apt_lists_max_age_days:
    description: Package lists older than this make the update checks warn (their counts may be too low).
    type: int
    default: 7
  host_label:
    description: Host name put on every check, e.g. C({{ inventory_hostname }}). Unset means the host's own name.
    type: str
  formats:
    description: Renderings of the checks to return in RV(rendered), made by the collection's report renderer.
    type: list
    elements: str
    choices: [json, markdown, prometheus, html, nagios]
    default: []
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs every check.
  diff_mode:
    support: none
    description: Nothing is changed.
notes:
  - Reading other units' journal needs root or membership in C(systemd-journal) or C(adm); use C(become).
  - In a container, memory, CPU and load are the host machine's as C(/proc) shows them, and the kernel's OOM
    messages are usually not in the container's journal; systemd's reports of OOM-killed units are.
seealso:
  - module: ops.runbook.service_restart
  - module: ops.runbook.disk_cleanup
"""

EXAMPLES = r"""
- name: Run the morning health check of the application host
  ops.runbook.host_health:
    services: [bmi-backend, nginx, postgresql]
    thresholds: "{{ runbook_thresholds | ops.runbook.thresholds_for('host_health') }}"
    host_label: "{{ inventory_hostname }}"
    formats: [markdown]
    fail_on: never
  become: true
  register: host_health

- name: Show it
  ansible.builtin.debug:
    msg: "{{ host_health.rendered.markdown }}"

- name: Only disks and memory, failing the task at a warning
  ops.runbook.host_health:
    categories: [disk, inodes, memory]
    fail_on: warn
"""

RETURN = r"""
checks:
  description:
    - Every finding, in the order checked; each has C(name), C(status) (C(pass), C(warn), C(fail)),
      C(observed_value), C(threshold) (C({warn, fail}) or a value), C(output) (a sentence), C(host), and for
      measurements C(observed_unit).
    - Names are C(service:UNIT), C(failed_units), C(journal_errors:UNIT), C(disk:MOUNT), C(inodes:MOUNT), C(memory),
      C(swap), C(cpu), C(load), C(oom_kills), C(reboot_required), C(pending_updates), C(security_updates); a
      category that could not be checked as a whole is named after the category.
    - A check that could not be made has C(unchecked=true) (and C(status) C(fail)).
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "disk:/", "status": "warn", "observed_value": 83.4, "observed_unit": "percent",
       "threshold": {"warn": 80, "fail": 95}, "output": "/ is 83.4% full (16.7 GiB of 20.0 GiB used, 3.3 GiB free).",
       "host": "web1", "mount": "/"}
status:
  description: The worst status of all checks (C(pass) when there are none).
  returned: always
  type: str
  sample: warn
counts:
  description: Number of checks per status.
  returned: always
  type: dict
  sample: {"pass": 14, "warn": 1, "fail": 0}
facts:
  description:
    - The figures behind the checks, for other tasks to use. C(services) (unit -> state), C(failed_units), C(disks)
      (mount, size, used, available, percent, inodes), C(memory), C(cpu_used_percent), C(load), C(oom) (C(units)
      killed, C(kernel_kills)), C(journal_errors) (unit -> count and newest lines), C(reboot_required), C(updates).
  returned: always
  type: dict
unchecked:
  description: Names of the checks that could not be made (those with C(unchecked=true)).
  returned: always
  type: list
  elements: str
  sample: ["service:nginx.service", "journal_errors:nginx.service"]
host:
  description: The host name on the checks.
  returned: always
  type: str
time:
  description: When the check finished (UTC, ISO 8601).
  returned: always
  type: str
rendered:
  description: The renderings asked for in O(formats), keyed by format; C(nagios) is the status line.
  returned: always
  type: dict
msg:
  description: One line naming every check that is not passing (the Nagios status line).
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils import health_report as report
from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.host_health import CATEGORIES, DEFAULTS, collect


def argument_spec():
    return dict(
        services=dict(type="list", elements="str", default=[]),
        journal_units=dict(type="list", elements="str"),
        journal_since=dict(type="str", default=DEFAULTS["journal_since"]),
        journal_pattern=dict(type="str", default=DEFAULTS["journal_pattern"]),
        journal_max_priority=dict(type="int", default=DEFAULTS["journal_max_priority"]),
        journal_quote_lines=dict(type="int", default=DEFAULTS["journal_quote_lines"]),
        mounts=dict(type="list", elements="path", default=[]),
        exclude_fstypes=dict(type="list", elements="str"),
        exclude_mount_points=dict(type="str", default=DEFAULTS["exclude_mount_points"]),
        thresholds=dict(type="dict", default={}),
        cpu_sample_seconds=dict(type="float", default=DEFAULTS["cpu_sample_seconds"]),
        categories=dict(type="list", elements="str", choices=list(CATEGORIES), default=list(CATEGORIES)),
        apt_lists_max_age_days=dict(type="int", default=DEFAULTS["apt_lists_max_age_days"]),
        host_label=dict(type="str"),
        formats=dict(type="list", elements="str", choices=["json", "markdown", "prometheus", "html", "nagios"],
                     default=[]),
    )


def run(params, check_mode, log):
    params = dict(params)
    formats = params.pop("formats")
    params.pop("fail_on")
    result = collect(params)
    title = "Host health of {0}".format(result["host"])
    line, _code = report.render_nagios(result["checks"], service="HOST_HEALTH")
    rendered = {}
    for name in formats:
        if name == "nagios":
            rendered[name] = line
        else:
            rendered[name] = report.RENDERERS[name](result["checks"], **({"title": title} if name in (
                "markdown", "html") else {}))
    result.update(changed=False, rendered=rendered, msg=line)
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
