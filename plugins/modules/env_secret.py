#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: env_secret
short_description: Set a secret in an application's environment file, or the password in a URL held there
version_added: 0.1.0
description:
  - Sets one secret in a C(KEY=VALUE) file as systemd's C(EnvironmentFile=), dotenv and docker compose read it
    (C(export KEY=...) too). With O(format=env) the secret is the key's whole value (C(DATABASE_PASSWORD=...)); with
    O(format=url) it is the password inside a C(postgresql://) URL held by the key (C(DATABASE_URL=...)), which is
    percent-encoded there and every other character of the URL is kept.
  - Only the value changes; comments, other keys, their order and the line endings stay byte for byte, and the
    value keeps its quoting where the new value fits it (else it is written in single quotes, which all those parsers
    read literally).
  - Refuses, instead of guessing, values the parsers read differently (text after a closing quote, an unclosed
    quote, a backslash, whitespace in an unquoted value), a key that is missing or set twice with different values,
    and a URL that logs in as another user than O(role).
  - Writes a backup of the file first, with the file's mode and owner (it holds the old secret), then replaces the
    file atomically with its mode and owner. A symlink is followed and the file it names is rewritten.
  - With O(state=restored), puts the file back from O(backup_file), the rollback of a failed rotation.
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  path:
    description: The environment file, e.g. C(/etc/bmi-backend/env).
    type: path
    required: true
  key:
    description:
      - The variable that holds the secret, e.g. C(DATABASE_PASSWORD) or C(DATABASE_URL).
      - Required with O(state=present).
    type: str
  format:
    description: C(env) when the key holds the secret itself, C(url) when it holds a C(postgresql://) URL.
    type: str
    choices: [env, url]
    default: env
  value:
    description:
      - The new secret (for O(format=url), the new password; the URL keeps everything else). Required with
        O(state=present). The task should also have C(no_log=true).
    type: str
  role:
    description: With O(format=url), the user the URL must log in as; a URL naming another user is refused.
    type: str
  state:
    description: C(present) sets O(value); C(restored) copies O(backup_file) back over O(path).
    type: str
    choices: [present, restored]
    default: present
  backup:
    description: Keep a copy of the file as it was (C(NAME.YYYYmmddTHHMMSSZ.bak)) before changing it.
    type: bool
    default: true
  backup_dir:
    description: Directory of the backup; unset means the file's own directory.
    type: path
  backup_file:
    description: The backup to restore with O(state=restored), as returned in RV(backup_file).
    type: path
attributes:
  check_mode:
    support: full
    description: Reads and checks the file and reports what would be written, keeping which mode and owner.
  diff_mode:
    support: none
    description: The difference is the secret itself, so none is shown.
notes:
  - The backup files hold the old secret, with the file's own mode and owner; after a successful rotation the old
    password no longer works. Remove old backups by your own retention.
seealso:
  - module: ops.runbook.pg_password
"""

EXAMPLES = r"""
- name: Update the application's config file
  ops.runbook.env_secret:
    path: /etc/bmi-backend/env
    key: DATABASE_URL
    format: url
    role: bmi_app
    value: "{{ new_db_password }}"
  become: true
  no_log: true
  register: app_config

- name: Restore the application's config file
  ops.runbook.env_secret:
    path: /etc/bmi-backend/env
    key: DATABASE_URL
    state: restored
    backup_file: "{{ app_config.backup_file }}"
  become: true
"""

RETURN = r"""
path:
  description: The file written (a symlink's target).
  returned: always
  type: str
key:
  description: The key.
  returned: when given
  type: str
format:
  description: The format.
  returned: always
  type: str
assignments:
  description: How many assignments of the key were rewritten.
  returned: when state is present
  type: int
backup_file:
  description: The backup of the file as it was; with O(state=restored), the backup it was restored from.
  returned: always
  type: str
  sample: /etc/bmi-backend/env.20261122T213000Z.bak
mode:
  description: The file's mode, kept.
  returned: always
  type: str
  sample: "0640"
uid:
  description: The file's owner, kept.
  returned: always
  type: int
gid:
  description: The file's group, kept.
  returned: always
  type: int
owner:
  description: Name of the file's owner (its number when the host has no name for it).
  returned: always
  type: str
group:
  description: Name of the file's group (its number when the host has no name for it).
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.env_secret import FORMATS, restore, set_secret


def argument_spec():
    return dict(
        path=dict(type="path", required=True),
        key=dict(type="str", no_log=False),
        format=dict(type="str", choices=list(FORMATS), default="env"),
        value=dict(type="str", no_log=True),
        role=dict(type="str"),
        state=dict(type="str", choices=["present", "restored"], default="present"),
        backup=dict(type="bool", default=True),
        backup_dir=dict(type="path"),
        backup_file=dict(type="path"),
    )


def run(params, check_mode, log):
    if params["state"] == "restored":
        return restore(params, check_mode=check_mode)
    return set_secret(params, check_mode=check_mode)


def main():
    run_module(argument_spec(), run, supports_check_mode=True,
               required_if=[("state", "present", ("key", "value")), ("state", "restored", ("backup_file",))])


if __name__ == "__main__":
    main()
