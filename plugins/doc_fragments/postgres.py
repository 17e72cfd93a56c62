# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of the PostgreSQL server.
      - Empty means the local Unix socket (peer authentication as O(login_user) when the task runs as that user).
      - Falls back to the E(PGHOST) environment variable.
    type: str
    default: ''
    aliases: [host]
  login_port:
    description: Port of the PostgreSQL server. Falls back to E(PGPORT).
    type: int
    default: 5432
    aliases: [port]
  login_user:
    description: User to connect as. Falls back to E(PGUSER).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Falls back to E(PGPASSWORD); C(~/.pgpass) is honoured too.
      - Never shown in output and never passed on a command line.
    type: str
  login_unix_socket:
    description: Directory of the server's Unix socket, when O(login_host) is empty and it is not the default.
    type: str
    default: ''
  ssl_mode:
    description: libpq SSL mode.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA certificate file to verify the server with (libpq C(sslrootcert)).
    type: str
    aliases: [ssl_rootcert]
  connect_timeout:
    description:
      - Seconds to wait for a connection, the startup handshake included, for the module's own connection and
        for C(pg_dump), C(pg_restore) and C(psql) (E(PGCONNECT_TIMEOUT)). A server that accepts connections and
        never answers fails within it, with a message naming host and port. Must be at least 1 (libpq counts at
        least 2).
      - Once connected, TCP keepalives notice a server or network that vanished within about a minute.
    type: int
    default: 10
requirements:
  - psycopg2 (Debian package python3-psycopg2) where the module runs.
"""
