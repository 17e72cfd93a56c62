# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the health_check role: thin adapters over module_utils/fleet.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.ops.runbook.plugins.module_utils import fleet


def health_checks(results, host, connection=None):
    if not isinstance(results, dict):
        raise AnsibleFilterError("health_checks needs a dict of registered results keyed by the module's name.")
    return fleet.host_checks(str(host), connection, results)


def health_fleet(collected, hosts):
    if not isinstance(collected, dict):
        raise AnsibleFilterError("health_fleet needs a dict of each host's checks (or null) keyed by host.")
    return fleet.fleet_checks([str(host) for host in hosts or []], collected)


def health_summary(checks, files=None):
    if not isinstance(checks, list):
        raise AnsibleFilterError("health_summary needs a list of health checks.")
    return fleet.summary(checks, files=list(files or []))


class FilterModule:
    def filters(self):
        return {
            "health_checks": health_checks,
            "health_fleet": health_fleet,
            "health_summary": health_summary,
        }
