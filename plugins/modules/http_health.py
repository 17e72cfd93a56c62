#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: http_health
short_description: Check HTTP health endpoints - status code, latency, JSON health, TLS certificate
version_added: 0.1.0
description:
  - Requests each endpoint once, as the runbooks' C(curl https://api.example.com/health) does, and reports every
    finding as a C(pass), C(warn) or C(fail) check with the observed value, the threshold and a sentence.
  - C(NAME:status) - the answer's status code is one of O(expect_status); a refused connection, a timeout, a name
    that does not resolve or an untrusted certificate fail here with the reason.
  - C(NAME:latency) - the whole answer (headers and body) arrived within O(latency_warn_ms), else warns, and over
    O(latency_fail_ms) fails.
  - C(NAME:health) - when the answer is JSON with a top-level C(status), it is one of O(healthy_values) (pass),
    O(degraded_values) (warn) or anything else (fail).
  - "C(NAME:dependency:DEP) - with O(check_dependencies), each entry of the objects named in O(dependency_keys) is
    judged the same way; an entry is a status word (C(\"database\": \"healthy\")), an object with a C(status)
    (C(\"database\": {\"status\": \"up\"})), or an IETF health-check list of such objects. A group may also be a
    list of objects known by their C(name) (C([{\"name\": \"database\", \"status\": \"up\"}]))."
  - C(NAME:json:PATH) - each of O(endpoints[].expect_json) holds.
  - M(ops.runbook.service_restart) judges a restarted service's health URL with the same checks and the same
    O(endpoints[].expect_json) language.
  - C(NAME:trust) and C(NAME:certificate) - over https, the certificate verifies and has more than O(warn_days)
    (warn) and O(fail_days) (fail) days left; the same judgement as M(ops.runbook.cert_check).
  - Endpoints are checked in parallel. Read-only; check mode runs every check.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.certificate
  - ops.runbook.checks
options:
  endpoints:
    description: The endpoints to check. Options set on an endpoint override the module's options of the same name.
    type: list
    elements: dict
    required: true
    suboptions:
      url:
        description: Full http:// or https:// URL.
        type: str
        required: true
      name:
        description: Name of the endpoint in the checks' names. Default is the URL's host and path.
        type: str
      method:
        description: Request method.
        type: str
        choices: [GET, HEAD]
      headers:
        description: Request headers, for example an C(Authorization) token. Not logged.
        type: dict
      timeout:
        description: Overrides O(timeout).
        type: float
      latency_warn_ms:
        description: Overrides O(latency_warn_ms).
        type: float
      latency_fail_ms:
        description: Overrides O(latency_fail_ms).
        type: float
      expect_status:
        description: Overrides O(expect_status).
        type: list
        elements: int
      expect_json:
        description:
          - Fields the JSON answer must have, as dotted paths with C(*) for every key or item
            (C(dependencies.*.status)), each with the expected value or a list of acceptable values.
            Strings compare without regard to case. A list item is named by its index or its C(name). A nested
            mapping as a value is refused; give each field its own path.
          - Naming C(status) replaces the built-in check of the top-level status (C(NAME:health)).
          - When set, an answer that is not JSON fails.
        type: dict
      check_dependencies:
        description: Judge each dependency the JSON answer lists (see O(dependency_keys)).
        type: bool
      check_certificate:
        description: Over https, also check the certificate's trust and expiry.
        type: bool
      warn_days:
        description: Overrides O(warn_days).
        type: float
      fail_days:
        description: Overrides O(fail_days).
        type: float
      validate_certs:
        description: Overrides O(validate_certs).
        type: bool
      ca_path:
        description: Overrides O(ca_path).
        type: path
      follow_redirects:
        description: Overrides O(follow_redirects).
        type: bool
  latency_warn_ms:
    description: Answers slower than this many milliseconds warn. The runbooks' P95 target is 500 ms.
    type: float
    default: 500
  latency_fail_ms:
    description: Answers slower than this many milliseconds fail. The runbooks alert on responses over 2 s.
    type: float
    default: 2000
  expect_status:
    description: Status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  healthy_values:
    description: Status words that pass, compared without regard to case.
    type: list
    elements: str
    default: [healthy, pass, ok, up]
  degraded_values:
    description: Status words that warn. Any other word fails.
    type: list
    elements: str
    default: [degraded, warn, warning]
  dependency_keys:
    description: Top-level JSON objects whose entries are dependencies with a status each.
    type: list
    elements: str
    default: [dependencies, services, checks]
  check_dependencies:
    description: Judge each dependency of the JSON answer.
    type: bool
    default: true
  check_certificate:
    description: Over https, also check the certificate's trust and expiry.
    type: bool
    default: true
  follow_redirects:
    description: Follow redirects. By default a redirect is the answer, and fails unless its code is in O(expect_status).
    type: bool
    default: false
  use_proxy:
    description: Use the proxy of the E(https_proxy) and E(http_proxy) environment variables (E(no_proxy) applies).
    type: bool
    default: true
  max_body_bytes:
    description: Read at most this many bytes of each answer.
    type: int
    default: 1048576
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs every check.
  diff_mode:
    support: none
    description: Nothing changes.
notes:
  - Latency is the wall time from opening the connection to the last byte of the body, as C(curl -w %{time_total})
    reports it, measured from where the task runs.
  - Over https the certificate is read in its own, direct TLS handshake before the request. When the request goes
    through a proxy (O(use_proxy) and E(https_proxy) set, the host not in E(no_proxy)), the certificate cannot be
    checked, and C(NAME:certificate) is then C(fail) with C(unchecked=true), never a pass. Run
    M(ops.runbook.cert_check) from a host that reaches the endpoint directly, or set O(check_certificate) (module-wide
    or on the endpoint) to false.
seealso:
  - module: ops.runbook.cert_check
  - module: ops.runbook.health_report
"""

EXAMPLES = r"""
- name: Check the API's health endpoints like the runbook's Manual Health Check
  ops.runbook.http_health:
    host: "{{ inventory_hostname }}"
    endpoints:
      - url: https://api.blogengine.com/health
        name: api
      - url: https://api.blogengine.com/auth/health
        name: auth
      - url: https://api.blogengine.com/posts/health
        name: posts
  register: http_health_result

- name: Check a service whose dependencies are under "services", with an expected version, reporting only
  ops.runbook.http_health:
    endpoints:
      - url: https://api.ims-2.0.com/health
        name: ims
        expect_json:
          status: healthy
          version: [1.2.0, 1.2.1]
      - url: https://example.com/
        name: frontend
        check_dependencies: false
    latency_warn_ms: 300
    fail_on: never

- name: Check an internal service signed by the company CA
  ops.runbook.http_health:
    endpoints:
      - url: https://billing.internal:8443/healthz
        headers:
          Authorization: "Bearer {{ vault_health_token }}"
    ca_path: /usr/local/share/ca-certificates/company-root.crt
"""

RETURN = r"""
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: warn
checks:
  description:
    - One entry per check with C(name), C(status), C(observed_value), C(threshold), C(output), and C(host),
      C(component) (the endpoint's name), C(url); certificate checks add C(subject), C(not_after), C(serial)...
  returned: always
  type: list
  elements: dict
  sample:
    - name: api:latency
      status: warn
      observed_value: 812.4
      observed_unit: ms
      threshold: {"warn": 500, "fail": 2000}
      output: api answered in 812 ms, over the 500 ms warning.
      host: web1
      component: api
      url: https://api.blogengine.com/health
counts:
  description: How many checks passed, warned and failed.
  returned: always
  type: dict
  sample: {"pass": 9, "warn": 1, "fail": 0}
endpoints:
  description: Per endpoint, its worst status, status code, latency and the certificate's days to expiry.
  returned: always
  type: list
  elements: dict
  sample:
    - name: api
      url: https://api.blogengine.com/health
      status: warn
      status_code: 200
      latency_ms: 812.4
      days_to_expiry: 61.2
msg:
  description: One line naming every check that is not passing, in the Nagios plugin style.
  returned: always
  type: str
  sample: "HTTP WARNING - web1 api:latency: api answered in 812 ms, over the 500 ms warning. | web1_api:latency=812.4;500;2000"
"""

from ansible_collections.ops.runbook.plugins.module_utils import health_report as report
from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.cert_check import certificate_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.http_health import DEFAULTS, run_http_health

ENDPOINT_SPEC = dict(
    url=dict(type="str", required=True),
    name=dict(type="str"),
    method=dict(type="str", choices=["GET", "HEAD"]),
    headers=dict(type="dict", no_log=True),
    timeout=dict(type="float"),
    latency_warn_ms=dict(type="float"),
    latency_fail_ms=dict(type="float"),
    expect_status=dict(type="list", elements="int"),
    expect_json=dict(type="dict"),
    check_dependencies=dict(type="bool"),
    check_certificate=dict(type="bool"),
    warn_days=dict(type="float"),
    fail_days=dict(type="float"),
    validate_certs=dict(type="bool"),
    ca_path=dict(type="path"),
    follow_redirects=dict(type="bool"),
)


def argument_spec():
    spec = certificate_argument_spec()
    spec.update(
        endpoints=dict(type="list", elements="dict", required=True, options=ENDPOINT_SPEC),
        latency_warn_ms=dict(type="float", default=DEFAULTS["latency_warn_ms"]),
        latency_fail_ms=dict(type="float", default=DEFAULTS["latency_fail_ms"]),
        expect_status=dict(type="list", elements="int", default=DEFAULTS["expect_status"]),
        healthy_values=dict(type="list", elements="str", default=DEFAULTS["healthy_values"]),
        degraded_values=dict(type="list", elements="str", default=DEFAULTS["degraded_values"]),
        dependency_keys=dict(type="list", elements="str", default=DEFAULTS["dependency_keys"], no_log=False),
        check_dependencies=dict(type="bool", default=True),
        check_certificate=dict(type="bool", default=True),
        follow_redirects=dict(type="bool", default=False),
        use_proxy=dict(type="bool", default=True),
        max_body_bytes=dict(type="int", default=DEFAULTS["max_body_bytes"]),
    )
    return spec


def run(params, check_mode, log):
    result = run_http_health(params)
    result["msg"] = report.render_nagios(result["checks"], service="HTTP")[0]
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
