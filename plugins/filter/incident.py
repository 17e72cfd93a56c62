# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the incident playbook: thin adapters over module_utils/incident.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.ops.runbook.plugins.module_utils import incident


def incident_plan(diagnosis, services, containers=None):
    if not isinstance(diagnosis, dict) or "checks" not in diagnosis:
        raise AnsibleFilterError("incident_plan needs the registered result of ops.runbook.host_health.")
    return incident.plan(diagnosis, list(services or []), containers=containers or None)


def incident_timeline(diagnosis, host, plan, services, cleanup=None, restarts=None, verification=None,
                      remediate=False, check_mode=False, containers=None, containers_after=None):
    return incident.timeline(host, diagnosis, plan, list(services or []), cleanup=cleanup or None,
                             restarts=list(restarts or []), verification=verification or None,
                             remediate=bool(remediate), check_mode=bool(check_mode),
                             containers=containers or None, containers_after=containers_after or None)


def incident_markdown(record):
    if not isinstance(record, dict) or "events" not in record:
        raise AnsibleFilterError("incident_markdown needs the result of the incident_timeline filter.")
    return incident.render_markdown(record)


class FilterModule:
    def filters(self):
        return {
            "incident_plan": incident_plan,
            "incident_timeline": incident_timeline,
            "incident_markdown": incident_markdown,
        }
