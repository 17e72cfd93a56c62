# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the secret rotation playbook: thin adapters over module_utils/env_secret.py and passwords.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ops.runbook.plugins.module_utils import env_secret as envfile, passwords
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


def env_secret_value(content, key, format="env", role=None, path=None):
    """The secret `key` holds in an env file's `content`; problems come back in `error`, never raised.

    A raised error would be hidden by the no_log of the task that reads the
    secret; returned, the playbook can show it (it never contains the secret).
    """
    try:
        found = envfile.current_secret(str(content), key, format, role=role, path=path or "the file")
    except RunbookError as error:
        return {"value": None, "error": str(error)}
    found["error"] = None
    return found


def password_problems(password, min_length=passwords.MIN_LENGTH):
    return passwords.password_problems(password, min_length=int(min_length))


class FilterModule:
    def filters(self):
        return {
            "env_secret_value": env_secret_value,
            "password_problems": password_problems,
        }
