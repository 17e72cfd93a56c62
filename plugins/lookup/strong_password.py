# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: strong_password
short_description: Generate a password by the collection's policy
version_added: 0.1.0
description:
  - Returns a new password of O(length) characters drawn by the operating system's CSPRNG (Python C(secrets)) from
    letters, digits, C(-) and C(_), with at least one lower-case letter, one upper-case letter and one digit, not
    starting with C(-) or C(_). At the default length that is 192 bits.
  - Those characters need no quoting in an environment file, a shell, a YAML file or a C(postgresql://) URL, so the
    password reads the same everywhere a rotation writes it.
  - Each call returns a different password; use it in M(ansible.builtin.set_fact) (evaluated once) with
    C(no_log=true), never in C(vars:) (evaluated again on every use).
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  length:
    description: Number of characters, 16 to 256.
    type: int
    default: 32
"""

EXAMPLES = r"""
- name: Generate new password
  ansible.builtin.set_fact:
    new_db_password: "{{ lookup('ops.runbook.strong_password', length=40) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One password.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.passwords import generate_password


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [generate_password(int(self.get_option("length")))]
        except RunbookError as error:
            raise AnsibleLookupError(str(error))
