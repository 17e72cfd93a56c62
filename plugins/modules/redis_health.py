#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_health
short_description: Check a Redis server's memory, hit rate, evictions, clients, persistence and replication
version_added: 0.1.0
description:
  - Reads C(INFO) (and C(CONFIG GET save) and C(maxclients) where allowed) from one Redis server and returns
    one health check per concern, each C(pass), C(warn) or C(fail) with the observed value, the threshold and
    a sentence. The checks, in this order, are
  - C(redis_connection) the server answers (warns while it loads its dataset);
  - C(redis_memory) C(used_memory) against C(maxmemory); with C(maxmemory 0) (no limit) against the
    system's memory, saying that there is no limit;
  - C(redis_hit_rate) C(keyspace_hits) against all lookups, only once there are O(hit_rate_min_lookups) of them;
  - C(redis_evictions) keys evicted at C(maxmemory);
  - C(redis_rejected_writes) writes refused with C(OOM) at C(maxmemory) (C(noeviction); Redis 6.2 or later);
  - C(redis_clients) C(connected_clients) against C(maxclients);
  - C(redis_rejected_connections) connections refused at C(maxclients);
  - C(redis_blocked_clients) clients waiting in C(BLPOP), C(XREAD) and the like;
  - C(redis_rdb) the last C(BGSAVE) succeeded (or snapshots are off);
  - C(redis_last_save) age of the last snapshot while changes are not in it;
  - C(redis_aof) append-only file writes and the last rewrite succeeded (or AOF is off);
  - C(redis_replication) on a master the replicas online (at least O(min_replicas)) and how long ago each
    acknowledged; on a replica the link to the master and how long ago data came from it.
  - Hits, misses, evictions and rejections are counters that grow from the server's start. With O(state_file)
    they are judged over the time since the previous check; without it over the whole uptime, and then a count
    alone only warns, because it cannot tell whether the problem is still happening.
  - A check that cannot be made is never a C(pass) - it is C(fail) with C(unchecked=true) and says why, for example
    C(redis_clients) when C(maxclients) is neither in C(INFO) nor readable with C(CONFIG GET), or C(redis_memory)
    with C(maxmemory 0) on a server that does not report C(total_system_memory).
  - "Each limit below is C({warn: X, fail: Y}): a level left out keeps its default (C({warn: 70}) keeps the fail
    limit), C(null) switches it off. A value breaches a limit only when it is strictly beyond it - above it, or
    below it for the hit rate: with the warn limit 90, memory 90 % used passes and 90.1 % warns; the counts warn
    above 0, from the first one."
  - The task fails when a check fails (O(fail_on)). With O(fail_on=never) a server that cannot be reached is a
    failed C(redis_connection) check instead of a task error.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.redis
  - ops.runbook.checks
options:
  memory_used_percent:
    description:
      - C(used_memory) as a percentage of C(maxmemory) (of the system's memory when C(maxmemory) is 0) above which
        the memory check warns and fails. Default warn 90, fail 95; the runbook wants under 90 %.
    type: dict
  hit_rate_percent:
    description:
      - Hit rate below which the hit-rate check warns and fails. Default warn 80, fail 50;
        the runbook wants over 80 %.
    type: dict
  hit_rate_min_lookups:
    description: Fewer lookups (hits plus misses) than this give no hit rate, only a sentence saying so.
    type: int
    default: 100
  clients_used_percent:
    description: C(connected_clients) as a percentage of C(maxclients). Default warn 80, fail 90.
    type: dict
  evictions:
    description:
      - Keys evicted (since the previous check with O(state_file)). Default warn 0 (any eviction warns) and no fail
        level; the runbook wants none.
    type: dict
  rejected_writes:
    description: Writes refused because C(maxmemory) was reached. Default warn 0, fail 0 (any refused write fails).
    type: dict
  rejected_connections:
    description: Connections refused because C(maxclients) was reached. Default warn 0, fail 0.
    type: dict
  blocked_clients:
    description:
      - Clients blocked in C(BLPOP), C(BRPOP), C(XREAD), C(WAIT) and the like. Default warn 50 and no fail level.
      - Queue workers block normally; set the limit to the number of workers.
    type: dict
  last_save_age_seconds:
    description:
      - Age of the last RDB snapshot while changes are not in it, when snapshots are scheduled (C(save)).
        Default warn 7200, fail 86400.
    type: dict
  replication_lag_seconds:
    description:
      - On a master, seconds since each replica last acknowledged (replicas acknowledge every second).
      - On a replica, seconds since data last came from the master, which pings every 10 seconds
        (C(repl-ping-replica-period)) when there are no writes.
      - Default warn 30, fail 60; C(repl-timeout) (60 seconds) drops the link after that anyway.
    type: dict
  min_replicas:
    description: On a master, fail when fewer replicas than this are online.
    type: int
    default: 0
  state_file:
    description:
      - JSON file on the host where the module runs keeping the counters of this check, so the next check
        judges hits, misses, evictions and rejections since this one. One file per Redis server.
      - Created (mode 0600, with its directory) when missing; not written in check mode.
    type: path
attributes:
  check_mode:
    support: full
    description: Reads the same figures; only the O(state_file) is not written.
  diff_mode:
    support: none
    description: A health check changes nothing.
notes:
  - With C(maxmemory 0), the memory check compares with C(total_system_memory), which inside a container is the
    host's memory, not the container's limit.
  - On managed services that disable C(CONFIG) (such as ElastiCache), C(maxclients) comes from C(INFO) (Redis 7)
    and the snapshot schedule is taken as unknown.
  - The user needs C(INFO), C(PING) and, where available, C(CONFIG GET) (ACL C(+info +ping +config|get)).
seealso:
  - module: ops.runbook.redis_flush
"""

EXAMPLES = r"""
- name: Check the cache, counting evictions and misses since the previous check
  ops.runbook.redis_health:
    login_host: cache1.internal
    login_password: "{{ vault_redis_password }}"
    state_file: /var/lib/ops-runbook/redis-health-6379.json
    min_replicas: 1

- name: Collect the checks of every cache for a report, without failing the play
  ops.runbook.redis_health:
    login_unix_socket: /run/redis/redis-server.sock
    hit_rate_percent: {warn: 90}
    fail_on: never
  register: redis_health_result

- name: Show what is not passing
  ansible.builtin.debug:
    msg: "{{ redis_health_result.checks | rejectattr('status', 'equalto', 'pass') | map(attribute='output') | list }}"
"""

RETURN = r"""
status:
  description: The worst status of all checks, C(pass), C(warn) or C(fail).
  returned: always
  type: str
  sample: warn
counts:
  description: How many checks have each status.
  returned: always
  type: dict
  sample: {"pass": 10, "warn": 2, "fail": 0}
checks:
  description:
    - One dict per check (in the order the description lists them; only C(redis_connection) when O(fail_on) is
      C(never) and the server cannot be reached), in the collection's health vocabulary that
      C(ops.runbook) reports render to JSON, Prometheus, Nagios, Markdown and HTML.
    - Each has C(name), C(status), C(observed_value) (a number, a word, or null when there is nothing to measure,
      such as too few lookups), C(threshold) (a number, a word, or a dict with C(warn) and C(fail)),
      C(output) (the sentence), C(observed_unit) where numeric, C(component) (the endpoint),
      C(component_type) (C(datastore)) and facts of the check (C(used_memory_bytes), C(hits), C(replicas)...).
  returned: always
  type: list
  elements: dict
  sample:
    - name: redis_memory
      status: warn
      observed_value: 91.3
      observed_unit: percent
      threshold: {warn: 90.0, fail: 95.0}
      output: "Redis uses 3.7 MiB of its maxmemory 4.0 MiB (91.3 %); at the limit it refuses writes."
      component: "127.0.0.1:6379"
      component_type: datastore
      used_memory_bytes: 3829760
      maxmemory_bytes: 4194304
      maxmemory_policy: noeviction
      limit_source: maxmemory
msg:
  description: One line with the overall status and the sentences of the failing and warning checks.
  returned: always
  type: str
endpoint:
  description: Where the module connected, as in its messages.
  returned: always
  type: str
  sample: "127.0.0.1:6379"
server:
  description: C(version), C(role) (C(master) or C(replica)), C(mode), C(uptime_seconds), C(run_id),
    C(maxmemory_policy) and C(keyspace) (keys per database). Empty when the server could not be reached.
  returned: always
  type: dict
  sample: {"version": "7.0.15", "role": "master", "mode": "standalone", "uptime_seconds": 86400,
           "maxmemory_policy": "allkeys-lru", "keyspace": {"db0": 1200}}
window:
  description:
    - What the counters cover, C(since) C(last_check) or C(start), and its length in C(seconds).
      Null when the server could not be reached.
  returned: always
  type: dict
  sample: {"since": "last_check", "seconds": 300}
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.redis import redis_common_argument_spec
from ansible_collections.ops.runbook.plugins.module_utils.redis_health import DEFAULTS, THRESHOLDS, run_health


def argument_spec():
    spec = redis_common_argument_spec()
    # Plain mappings, not suboptions: a level left out must stay out (keep its default), apart from null (off).
    for name in THRESHOLDS:
        spec[name] = dict(type="dict")
    spec.update(
        hit_rate_min_lookups=dict(type="int", default=DEFAULTS["hit_rate_min_lookups"]),
        min_replicas=dict(type="int", default=DEFAULTS["min_replicas"]),
        state_file=dict(type="path"),
    )
    return spec


def run(params, check_mode, log):
    return run_health(params, check_mode=check_mode)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, checks=True)


if __name__ == "__main__":
    main()
