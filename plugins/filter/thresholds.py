# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thresholds_for filter: one module's thresholds out of a dictionary shared by several."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.ops.runbook.plugins.module_utils import container_health, host_health as hosthealth, pg_health
from ansible_collections.ops.runbook.plugins.module_utils import pgbackrest_health

# The modules that take a `thresholds` option, and the names each knows (their engines declare them).
MODULES = {
    "container_health": container_health.THRESHOLDS,
    "host_health": hosthealth.THRESHOLDS,
    "pg_health": pg_health.THRESHOLDS,
    "pgbackrest_health": pgbackrest_health.THRESHOLDS,
}


def thresholds_for(shared, module):
    """The entries of `shared` that `module` knows, so the module refuses only misspelt names of its own."""
    if module not in MODULES:
        raise AnsibleFilterError("thresholds_for knows the thresholds of {0}, not of {1!r}.".format(
            " and ".join(sorted(MODULES)), module))
    if not isinstance(shared, dict):
        raise AnsibleFilterError("thresholds_for needs a dict of thresholds by name, such as runbook_thresholds.")
    return dict((name, value) for name, value in shared.items() if name in MODULES[module])


class FilterModule:
    def filters(self):
        return {"thresholds_for": thresholds_for}
