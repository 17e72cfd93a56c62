# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The options of pgbackrest_common_argument_spec() in module_utils/pgbackrest.py.
    DOCUMENTATION = r"""
options:
  pgbackrest_stanza:
    description: The pgBackRest stanza (C(--stanza)), the name of the cluster's backups and archive in the repository.
    type: str
    required: true
  pgbackrest_config:
    description:
      - pgBackRest's configuration file (C(--config)), with the repository settings and the stanza's section.
      - The C(ops.runbook.pgbackrest) role writes it; its default path is the same.
    type: path
    default: /etc/pgbackrest/pgbackrest.conf
  pgbackrest_command:
    description: The pgbackrest program, a path or a command with arguments.
    type: str
    default: pgbackrest
  pgbackrest_user:
    description:
      - The user pgBackRest runs as when the task runs as root (with C(setpriv)); the owner of the cluster's data directory.
      - pgBackRest reads the data directory and writes its lock and log files as this user.
    type: str
    default: postgres
  pgbackrest_timeout:
    description:
      - Seconds one pgbackrest command may take before it is killed and the task fails.
      - A store that does not answer makes pgBackRest retry for tens of seconds per request.
    type: int
    default: 600
"""
