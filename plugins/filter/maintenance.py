# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of maintenance_window.yml: thin adapters over module_utils/maintenance.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.ops.runbook.plugins.module_utils import maintenance


def maintenance_backup_gate(hosts, backups, verifications, check_mode=False):
    if not isinstance(backups, dict) or not isinstance(verifications, dict):
        raise AnsibleFilterError("maintenance_backup_gate needs the backup and verification results keyed by host.")
    return maintenance.backup_gate([str(host) for host in hosts or []], backups, verifications,
                                   check_mode=bool(check_mode))


def maintenance_disk_gate(result, host, min_free_bytes):
    return maintenance.disk_gate(str(host), result, int(min_free_bytes))


def maintenance_decision(backup_checks, disk_checks, health_summary, override_health=False):
    return maintenance.decide(list(backup_checks or []), list(disk_checks or []), health_summary,
                              override_health=bool(override_health))


class FilterModule:
    def filters(self):
        return {
            "maintenance_backup_gate": maintenance_backup_gate,
            "maintenance_disk_gate": maintenance_disk_gate,
            "maintenance_decision": maintenance_decision,
        }
