#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: health_report
short_description: Write health checks as JSON, Prometheus text, Markdown and HTML reports
version_added: 0.1.0
description:
  - Takes the C(checks) that the collection's checking modules return (M(ops.runbook.http_health),
    M(ops.runbook.cert_check), M(ops.runbook.s3_backup_verify), ...), from one host or gathered from many (each
    check carries its C(host)), and writes each report whose path is given.
  - O(json_path) - the IETF health-check format (C(status), C(checks) keyed C(host:name) with C(observedValue),
    C(observedUnit), C(status), C(time), C(output)).
  - O(prometheus_path) - text for node_exporter's textfile collector (C(ops_runbook_check_status) 0 pass, 1 warn,
    2 fail; observed values and thresholds; the report's time).
  - O(markdown_path) and O(html_path) - a table a person reads, failures first; the HTML page is self-contained
    (no scripts, no outside resources).
  - Every file is written atomically (a temporary file renamed over it), so a reader never sees half a report.
  - Returns the overall status and the Nagios plugin line and exit code.
  - C(changed) is true only when a file's findings (a check, a status, a value) or its mode changed. Each run
    still rewrites the file with the new time, so the report's age (and node_exporter's
    C(node_textfile_mtime_seconds)) says when the checks last ran; O(now) fixes that time.
  - With O(fail_on), the task fails after the reports are written.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.checks
options:
  checks:
    description: Health checks, each a dict with at least C(name) and C(status) (C(pass), C(warn) or C(fail)).
    type: list
    elements: dict
    required: true
  json_path:
    description: Where to write the JSON report. Its directory must exist.
    type: path
  prometheus_path:
    description:
      - Where to write the Prometheus text, for example C(/var/lib/prometheus/node-exporter/ops_runbook.prom)
        (the directory of node_exporter's C(--collector.textfile.directory)). Its directory must exist.
    type: path
  markdown_path:
    description: Where to write the Markdown report. Its directory must exist.
    type: path
  html_path:
    description: Where to write the HTML page. Its directory must exist.
    type: path
  title:
    description: Title of the Markdown and HTML reports.
    type: str
    default: Health report
  service_id:
    description: C(serviceId) of the JSON report.
    type: str
    default: ops.runbook
  description:
    description: C(description) of the JSON report.
    type: str
  metric_prefix:
    description: Prefix of the Prometheus metric names.
    type: str
    default: ops_runbook
  nagios_service:
    description: Service name at the start of the Nagios line.
    type: str
    default: OPS_RUNBOOK
  now:
    description:
      - Time the reports say they were written, in ISO 8601 (C(2026-02-24T02:00:00Z)). Default is the current time.
    type: str
  mode:
    description: File mode of the reports, in octal.
    type: raw
    default: "0644"
attributes:
  check_mode:
    support: full
    description: Writes nothing; C(changed) and C(files) say which reports would change.
  diff_mode:
    support: none
    description: The reports are renderings; compare the checks instead.
seealso:
  - module: ops.runbook.http_health
  - module: ops.runbook.cert_check
"""

EXAMPLES = r"""
- name: Check the health endpoints and certificates of every web server
  ops.runbook.http_health:
    endpoints:
      - url: https://{{ inventory_hostname }}/health
        name: api
    host: "{{ inventory_hostname }}"
    fail_on: never
  register: web_health

- name: Write one report of every host's checks on the monitoring host
  ops.runbook.health_report:
    checks: "{{ ansible_play_hosts | map('extract', hostvars, ['web_health', 'checks']) | flatten }}"
    json_path: /var/www/status/health.json
    html_path: /var/www/status/index.html
    markdown_path: /var/www/status/health.md
    prometheus_path: /var/lib/prometheus/node-exporter/ops_runbook.prom
    title: Morning health check
  delegate_to: monitor.example.com
  run_once: true
"""

RETURN = r"""
status:
  description: The worst status of all checks (C(pass) when there are none).
  returned: always
  type: str
  sample: fail
counts:
  description: How many checks passed, warned and failed.
  returned: always
  type: dict
  sample: {"pass": 12, "warn": 1, "fail": 1}
nagios:
  description: The Nagios plugin line, naming every check that is not passing, with perfdata.
  returned: always
  type: str
  sample: "OPS_RUNBOOK CRITICAL - web1 api:status: GET https://web1/health answered HTTP 503, expected 200. | web1_api:latency=12.1;500;2000"
nagios_exit_code:
  description: The Nagios plugin exit code of the overall status (0 OK, 1 WARNING, 2 CRITICAL).
  returned: always
  type: int
  sample: 2
files:
  description: Each report - C(format), C(path), C(changed) (its findings or mode changed), C(written) (bytes replaced).
  returned: always
  type: list
  elements: dict
  sample:
    - {"format": "html", "path": /var/www/status/index.html, "changed": true, "written": true}
time:
  description: The time the reports say they were written.
  returned: always
  type: str
  sample: "2026-02-24T02:00:00Z"
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.health_report import publish


def argument_spec():
    return dict(
        checks=dict(type="list", elements="dict", required=True),
        json_path=dict(type="path"),
        prometheus_path=dict(type="path"),
        markdown_path=dict(type="path"),
        html_path=dict(type="path"),
        title=dict(type="str", default="Health report"),
        service_id=dict(type="str", default="ops.runbook"),
        description=dict(type="str"),
        metric_prefix=dict(type="str", default="ops_runbook"),
        nagios_service=dict(type="str", default="OPS_RUNBOOK"),
        now=dict(type="str"),
        mode=dict(type="raw", default="0644"),
    )


def run(params, check_mode, log):
    paths = {"json": params["json_path"], "prometheus": params["prometheus_path"],
             "markdown": params["markdown_path"], "html": params["html_path"]}
    result = publish(params["checks"], paths, now=params["now"], mode=params["mode"], check_mode=check_mode,
                     nagios_service=params["nagios_service"], title=params["title"], service_id=params["service_id"],
                     description=params["description"], prefix=params["metric_prefix"])
    result["msg"] = result["nagios"]
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
