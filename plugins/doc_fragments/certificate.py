# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  warn_days:
    description:
      - A certificate with fewer days than this left warns. Let's Encrypt renews 30 days before expiry, so a
        certificate under 30 days means its renewal did not happen.
    type: float
    default: 30
  fail_days:
    description: A certificate with fewer days than this left, expired, or not yet valid, fails. At most O(warn_days).
    type: float
    default: 7
  validate_certs:
    description:
      - Verify the chain (against the system's CA store, or O(ca_path)) and that the certificate names the host.
      - An untrusted certificate is a failing C(trust) check; its expiry is still read and judged.
    type: bool
    default: true
  ca_path:
    description: PEM file of the CA certificates to trust instead of the system's store (an internal CA, a test CA).
    type: path
  timeout:
    description:
      - Seconds to wait for a connection, a TLS handshake or an answer. A server that accepts connections and
        never answers fails the check (never passes it) within this time, with a sentence naming the endpoint.
      - In M(ops.runbook.http_health), the whole body must also have arrived within it.
    type: float
    default: 10
  host:
    description:
      - Name of the host the checks are reported under (the C(host) of each check), for reports that gather
        several hosts. Usually C({{ inventory_hostname }}).
      - Default is the name of the machine the check runs on.
    type: str
"""
