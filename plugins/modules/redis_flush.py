#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_flush
short_description: Empty one Redis database with FLUSHDB ASYNC, counting keys before and after
version_added: 0.1.0
description:
  - Empties the database O(db) with C(FLUSHDB ASYNC) (runbook "Redis Cache Flush"). The keys are gone at once;
    the server frees their memory in the background and keeps answering clients meanwhile.
  - Empties every database with C(FLUSHALL ASYNC) only when O(all_databases) is true, and then O(db) must not be set.
  - Reports the keys of the flushed database before and after, and the keys of every database
    (C(INFO keyspace)) before and after.
  - Refuses to run against a replica (it is read-only) and names its master.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.redis
options:
  db:
    description:
      - Number of the database to empty. Required unless O(all_databases) is true; there is no default,
        so a flush never lands on database 0 by accident.
    type: int
  all_databases:
    description: Empty every database of the server with C(FLUSHALL ASYNC). O(db) must then be unset.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Counts the keys that would be deleted and deletes nothing.
  diff_mode:
    support: none
    description: The keys are not listed.
notes:
  - Needs Redis 4.0 or later (asynchronous flush) and, with ACLs, C(+flushdb) or C(+flushall), C(+info) and
    C(+dbsize).
  - The task reports changed when there were keys to delete.
seealso:
  - module: ops.runbook.redis_health
"""

EXAMPLES = r"""
- name: Gracefully flush the cache in database 1
  ops.runbook.redis_flush:
    login_host: cache1.internal
    login_password: "{{ vault_redis_password }}"
    db: 1

- name: Count what a flush of every database would delete
  ops.runbook.redis_flush:
    all_databases: true
  check_mode: true
"""

RETURN = r"""
msg:
  description: What was (or would be) flushed, with the key counts.
  returned: success
  type: str
  sample: "Ran FLUSHDB ASYNC on Redis at 127.0.0.1:6379: database 1 went from 1520 keys to 0. Databases with keys now: db0=310."
flushed:
  description: Whether the flush command ran (false in check mode).
  returned: success
  type: bool
scope:
  description: C(database) for one database, C(all) for every database.
  returned: success
  type: str
db:
  description: The flushed database; null when every database was flushed.
  returned: success
  type: int
command:
  description: The command that ran (or would run).
  returned: success
  type: str
  sample: FLUSHDB ASYNC
keys_before:
  description: Keys in the flushed database (in every database for C(all)) before the flush.
  returned: success
  type: int
keys_after:
  description: Keys there after the flush; clients may have written new ones at once. In check mode, RV(keys_before).
  returned: success
  type: int
keyspace_before:
  description: Keys per database before the flush, keyed C(db0), C(db1)...; empty databases are absent.
  sample: {"db0": 310, "db1": 1520}
  returned: success
  type: dict
keyspace_after:
  description: Keys per database after the flush.
  returned: success
  type: dict
endpoint:
  description: Where the module connected.
  returned: success
  type: str
server_version:
  description: Version of the Redis server.
  returned: success
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.redis import import_redis, redis_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.redis_flush import run_flush


def argument_spec():
    spec = redis_common_argument_spec()
    spec.update(all_databases=dict(type="bool", default=False))
    return spec


def run(params, check_mode, log):
    return run_flush(params, check_mode=check_mode)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, requires=[import_redis])


if __name__ == "__main__":
    main()
