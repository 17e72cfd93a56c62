#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: log_report
short_description: Last lines and error lines since a time from units, log files, containers and compose services
version_added: 0.2.0
description:
  - The runbooks' log reading for the on-call engineer in one read-only report - C(journalctl -u bmi-backend --since
    "24 hours ago" | grep -i error), C(tail -50 /var/log/nginx/error.log), C(tail -100 /var/log/postgresql/*.log),
    C(docker logs), C(docker-compose logs backend).
  - Each source is one check - its error lines (lines matching O(error_pattern)) since O(since), against the
    C(error_lines) threshold, with its last O(lines) lines, the first and last error line.
  - A source that cannot be read (no such unit, file or container, a compose service without a container, no
    permission, no systemd journal, no Docker engine) is a C(fail) marked C(unchecked) whose output starts with
    C(Could not read) and says why - never a pass.
  - Every source is read from its end, only as far back as O(since) within O(scan_lines) lines. Files are read
    backwards in blocks and the reading stops at the first line older than O(since) when the lines carry a time
    the module reads (ISO 8601 as PostgreSQL's default C(log_line_prefix), journald and Docker write it; nginx's
    error log; the common log format of access logs; syslog); a file whose lines carry no such time contributes its
    last O(scan_lines) lines. Rotated files (C(.1), C(.gz)) are not read.
  - "Obvious secrets in lines (C(password=...), C(token: ...), the password of a C(postgresql://user:pass@host) URL,
    bearer tokens) are masked; the environment of containers is never read."
  - Read-only; check mode reads and reports the same.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.docker
  - ops.runbook.docker.compose_project
  - ops.runbook.checks
options:
  units:
    description:
      - systemd units whose journal is read (C(journalctl -u UNIT --since S -o short-iso --no-pager)); C(nginx)
        means C(nginx.service).
    type: list
    elements: str
    default: []
  files:
    description:
      - Log files, or shell patterns such as C(/var/log/postgresql/*.log). A pattern that matches no file is a
        source that could not be read.
    type: list
    elements: path
    default: []
  containers:
    description: Docker containers by name or id (C(docker logs --since S --tail N --timestamps NAME)).
    type: list
    elements: str
    default: []
  compose_services:
    description:
      - Services of the compose project that O(compose_project_dir), O(compose_files) and O(compose_project_name)
        select (C(docker compose logs --no-color --since S --tail N --timestamps SERVICE)).
    type: list
    elements: str
    default: []
  since:
    description:
      - How far back to read - a duration back from now (C(30m), C(1h), C(2d), C(1h30m), C(1w)) or an ISO 8601 time
        (C(2026-12-05T14:00:00Z), C(2026-12-05 14:00+01:00)); a time without a zone is UTC.
    type: str
    default: 1h
  lines:
    description: How many of the last lines of each source the report shows (C(0) shows none, errors still count).
    type: int
    default: 50
  scan_lines:
    description:
      - At most this many of the last lines since O(since) are read from each source and searched for errors. When a
        source has more, its count is marked C(at least) (C(complete) false).
    type: int
    default: 10000
  error_pattern:
    description:
      - A line is an error line when this Python regular expression matches anywhere in it, case-insensitively.
      - The default matches the words error, fatal, panic, crit, critical, alert, emerg (nginx's, PostgreSQL's and
        syslog's levels), Python's C(Traceback), C(OOM), C(oom-kill) and C(out of memory).
    type: str
    default: '\b(?:error|fatal|panic|crit|critical|alert|emerg)\b|traceback|\boom\b|out of memory|oom-kill'
  max_line_length:
    description: Lines longer than this many characters are cut, with the number of characters left out.
    type: int
    default: 500
  thresholds:
    description:
      - "Limits as C({name: {warn: X, fail: Y}}) laid over the defaults; a level left out keeps its default, C(null)
        switches it off."
      - "C(error_lines) - error lines since O(since) in one source; default C({warn: 0}) (any error line warns, none
        fails by count). A count above a limit breaches it."
    type: dict
    default: {}
  host_label:
    description: The host's name, given to each check as C(host) and in the report's first line.
    type: str
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode reads and reports the same.
  diff_mode:
    support: none
    description: Nothing changes.
notes:
  - Reading the journal of system units and most files under C(/var/log) needs root (C(become)) or the groups
    C(systemd-journal) and C(adm); without them the source could not be read and the check says so.
seealso:
  - module: ops.runbook.service_restart
  - module: ops.runbook.health_report
"""

EXAMPLES = r"""
- name: Read the last hour of the backend, nginx and PostgreSQL logs
  ops.runbook.log_report:
    units: [bmi-backend, nginx]
    files:
      - /var/log/nginx/error.log
      - /var/log/postgresql/*.log
    since: 1h
    host_label: "{{ inventory_hostname }}"
  become: true
  register: logs

- name: Show the report, errors first
  ansible.builtin.debug:
    msg: "{{ logs.report.splitlines() }}"

- name: Read the compose backend and a plain container since the incident began
  ops.runbook.log_report:
    compose_project_dir: /opt/formula-pm
    compose_services: [backend, frontend]
    containers: [ims-web]
    since: "2026-12-05T14:00:00Z"
    lines: 100
    thresholds:
      error_lines: {warn: 0, fail: 20}
    fail_on: never
"""

RETURN = r"""
status:
  description: The worst status of all sources.
  returned: always
  type: str
  sample: warn
checks:
  description:
    - One entry per source, in the order given (each match of a file pattern its own), with C(name) (the unit, path,
      container or service), C(kind) (C(unit), C(file), C(container), C(compose_service)), C(status),
      C(observed_value) and C(error_count) (error lines since O(since); null when unread), C(threshold), C(output),
      C(lines) (the last O(lines) lines, redacted and cut), C(line_count) (lines read since O(since)),
      C(first_error) and C(last_error), C(complete) (the count covers every line since O(since)), C(timed) (the
      lines carry a time, so O(since) applied), C(readable).
    - A source that could not be read has C(readable) false, C(unchecked) true and C(reason).
  returned: always
  type: list
  elements: dict
  sample:
    - name: /var/log/nginx/error.log
      kind: file
      status: warn
      observed_value: 2
      observed_unit: error lines
      error_count: 2
      threshold: {"warn": 0}
      output: "File /var/log/nginx/error.log: 2 error lines in 14 lines since 2026-12-05T16:00:00Z (above the warn
        limit of 0)."
      first_error: "2026/12/05 16:12:01 [error] 811#811: *9 connect() failed (111: Connection refused) while
        connecting to upstream"
      last_error: "2026/12/05 16:40:17 [error] 811#811: *31 upstream timed out (110: Connection timed out)"
      lines: ["2026/12/05 16:40:17 [error] 811#811: *31 upstream timed out (110: Connection timed out)"]
      line_count: 14
      complete: true
      timed: true
      readable: true
counts:
  description: How many sources passed, warned and failed.
  returned: always
  type: dict
  sample: {"pass": 2, "warn": 1, "fail": 0}
since:
  description: The time O(since) names, in UTC.
  returned: always
  type: str
  sample: "2026-12-05T16:00:00Z"
error_pattern:
  description: The pattern error lines were matched by.
  returned: always
  type: str
report:
  description: The report as text for a person - a summary line, then each source with the failing ones first, its
    first and last error line and its last lines.
  returned: always
  type: str
msg:
  description: One line naming every source that is not passing, in the Nagios plugin style.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils import health_report as report
from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.docker import (compose_project_argument_spec,
                                                                         docker_common_argument_spec)
from ansible_collections.ops.runbook.plugins.module_utils.log_report import log_report_argument_spec, run_log_report


def argument_spec():
    spec = docker_common_argument_spec()
    spec.update(compose_project_argument_spec())
    spec.update(log_report_argument_spec())
    return spec


def run(params, check_mode, log):
    result = run_log_report(params)
    result["msg"] = report.render_nagios(result["checks"], service="LOGS")[0]
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
