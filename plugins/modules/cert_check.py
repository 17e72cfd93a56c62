#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cert_check
short_description: Days to expiry of certificate files and TLS endpoints, as pass, warn or fail checks
version_added: 0.1.0
description:
  - For hosts without a health URL, or for every certificate on a host - the runbooks' "Certificate Expiration"
    (C(openssl s_client -connect host:443 | grep Validity)) as a check that says what to do.
  - C(LABEL:certificate) - days until the certificate expires, against O(warn_days) and O(fail_days). For a file
    holding a chain (Let's Encrypt's C(fullchain.pem)) the first certificate, the server's own, is judged; the
    others are listed in C(chain). A missing or unreadable file, one with no certificate, or an endpoint that
    cannot be reached fails with the reason.
  - C(LABEL:trust) - for endpoints with O(validate_certs), the chain verifies and the certificate names the
    server name sent (SNI).
  - The same judgement as M(ops.runbook.http_health) uses, and the C(ops.runbook.cert_renewal) role's check.
  - Read-only; check mode runs every check.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.certificate
  - ops.runbook.checks
options:
  paths:
    description:
      - Certificate files (PEM, or one DER certificate). Shell patterns such as C(/etc/letsencrypt/live/*/fullchain.pem)
        are expanded; a pattern that matches nothing fails.
      - The label of a file's check is its path.
    type: list
    elements: path
    default: []
  endpoints:
    description:
      - TLS endpoints as C(host), C(host:port) or C([IPv6]:port) (port 443 when none is given).
    type: list
    elements: str
    default: []
  server_names:
    description:
      - Server name (SNI, and the name the certificate must carry) to send to an endpoint, keyed by the
        endpoint as written in O(endpoints). Default is the endpoint's host, so only needed when connecting by address.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs every check.
  diff_mode:
    support: none
    description: Nothing changes.
notes:
  - Certificates are decoded by the collection with Python's standard library; nothing needs to be installed on
    the host.
seealso:
  - module: ops.runbook.http_health
  - module: ops.runbook.health_report
"""

EXAMPLES = r"""
- name: Check every Let's Encrypt certificate on the host and the public endpoint
  ops.runbook.cert_check:
    paths:
      - /etc/letsencrypt/live/*/fullchain.pem
    endpoints:
      - api.ims-2.0.com:443
    host: "{{ inventory_hostname }}"
  become: true

- name: Check the certificate nginx serves on this host's address, for its public name
  ops.runbook.cert_check:
    endpoints:
      - 127.0.0.1:443
    server_names:
      127.0.0.1:443: bmi.example.com
    warn_days: 21
    fail_on: never
"""

RETURN = r"""
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: pass
checks:
  description:
    - One entry per check with C(name), C(status), C(observed_value) (days left), C(threshold), C(output), C(host),
      and the certificate's C(subject), C(issuer), C(serial), C(not_before), C(not_after), C(dns_names),
      C(sha256_fingerprint); C(path) or C(endpoint) and C(server_name) say where it was read.
  returned: always
  type: list
  elements: dict
  sample:
    - name: /etc/letsencrypt/live/bmi.example.com/fullchain.pem:certificate
      status: warn
      observed_value: 12.5
      observed_unit: days
      threshold: {"warn": 30, "fail": 7}
      output: CN=bmi.example.com expires in 12.5 days (2026-03-08T10:00:00Z), under the 30-day warning; renewal should have happened.
      not_after: "2026-03-08T10:00:00Z"
counts:
  description: How many checks passed, warned and failed.
  returned: always
  type: dict
  sample: {"pass": 2, "warn": 1, "fail": 0}
certificates:
  description: The certificate checks in short - name, status, days left (C(observed_value)), subject, not_after, serial.
  returned: always
  type: list
  elements: dict
msg:
  description: One line naming every check that is not passing, in the Nagios plugin style.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils import health_report as report
from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.cert_check import certificate_argument_spec, run_cert_check


def argument_spec():
    spec = certificate_argument_spec()
    spec.update(
        paths=dict(type="list", elements="path", default=[]),
        endpoints=dict(type="list", elements="str", default=[]),
        server_names=dict(type="dict", default={}),
    )
    return spec


def run(params, check_mode, log):
    result = run_cert_check(params)
    result["msg"] = report.render_nagios(result["checks"], service="CERT")[0]
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
