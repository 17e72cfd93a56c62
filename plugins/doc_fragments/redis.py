# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  login_host:
    description: Host name or address of the Redis server. Ignored when O(login_unix_socket) is set.
    type: str
    default: localhost
    aliases: [host]
  login_port:
    description: Port of the Redis server (its C(tls-port) when O(tls) is true).
    type: int
    default: 6379
    aliases: [port]
  login_unix_socket:
    description: Path of the server's Unix socket (C(unixsocket) in C(redis.conf)); used instead of host and port.
    type: path
  login_user:
    description: ACL user to log in as (Redis 6 or later). Unset logs in as the C(default) user.
    type: str
    aliases: [username]
  login_password:
    description:
      - Password (C(requirepass), or the ACL user's password).
      - Falls back to the E(REDISCLI_AUTH) environment variable, the one C(redis-cli) reads.
      - Never shown in output and never passed on a command line.
    type: str
  db:
    description: Database number to select. Unset means database 0.
    type: int
  tls:
    description: Connect with TLS.
    type: bool
    default: false
  tls_ca_cert:
    description: CA certificate file to verify the server with; default is the system's CA store.
    type: path
  tls_cert:
    description: Client certificate file, when the server requires one (C(tls-auth-clients yes)).
    type: path
  tls_key:
    description: Private key of O(tls_cert).
    type: path
  tls_verify:
    description: Verify the server's certificate and that it names O(login_host). Turn off only for testing.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the connection and for each reply; never retried behind your back. A server that
        accepts connections and never answers fails within it, with a message naming the endpoint.
    type: float
    default: 10
requirements:
  - redis-py 4.3 or later (Debian package python3-redis) where the module runs.
"""
