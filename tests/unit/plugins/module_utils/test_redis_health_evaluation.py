"""Threshold evaluation of the Redis health checks, on INFO figures built by hand."""
import json

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.redis_health import (
    counter_window, evaluate, normalize, read_state, write_state)

NOW = 1_800_000_000
RUN_ID = "a" * 40


def base_info(**overrides):
    """A healthy master: a quarter of maxmemory used, a 95 % hit rate, snapshots fine."""
    info = {
        "redis_version": "7.0.15", "role": "master", "run_id": RUN_ID, "uptime_in_seconds": 86400,
        "used_memory": 1024 * 1024, "maxmemory": 4 * 1024 * 1024, "maxmemory_policy": "allkeys-lru",
        "total_system_memory": 8 * 1024 ** 3,
        "keyspace_hits": 950, "keyspace_misses": 50, "evicted_keys": 0, "rejected_connections": 0,
        "connected_clients": 10, "maxclients": 100, "blocked_clients": 0,
        "rdb_last_bgsave_status": "ok", "rdb_changes_since_last_save": 0, "rdb_last_save_time": NOW - 60,
        "rdb_saves": 3, "aof_enabled": 0, "aof_last_write_status": "ok", "aof_last_bgrewrite_status": "ok",
        "connected_slaves": 0, "loading": 0,
    }
    info.update(overrides)
    return info


def run(info, config=None, previous=None, **options):
    checks, window, state = evaluate(info, config if config is not None else {"save": "3600 1"},
                                     normalize(options), previous, now=NOW)
    return dict((item["name"], item) for item in checks), window, state


def test_healthy_master_passes_every_check():
    checks, _window, _state = run(base_info())
    assert [item["status"] for item in checks.values()] == ["pass"] * 12
    assert list(checks) == ["redis_connection", "redis_memory", "redis_hit_rate", "redis_evictions",
                            "redis_rejected_writes", "redis_clients", "redis_rejected_connections",
                            "redis_blocked_clients", "redis_rdb", "redis_last_save", "redis_aof",
                            "redis_replication"]


def test_memory_against_maxmemory():
    checks, _w, _s = run(base_info(used_memory=int(4 * 1024 * 1024 * 0.92), maxmemory_policy="noeviction"))
    memory = checks["redis_memory"]
    assert memory["status"] == "warn" and memory["observed_value"] == 92.0
    assert "refuses writes" in memory["output"]
    checks, _w, _s = run(base_info(used_memory=4 * 1024 * 1024))
    assert checks["redis_memory"]["status"] == "fail"
    assert "evicts keys (allkeys-lru)" in checks["redis_memory"]["output"]


def test_memory_without_maxmemory_is_compared_with_the_system_and_says_so():
    checks, _w, _s = run(base_info(maxmemory=0, used_memory=1024 ** 3))
    memory = checks["redis_memory"]
    assert memory["status"] == "pass" and memory["limit_source"] == "system_memory"
    assert memory["observed_value"] == 12.5
    assert memory["output"].startswith("maxmemory is 0 (no limit)")
    checks, _w, _s = run(base_info(maxmemory=0, used_memory=int(7.8 * 1024 ** 3)))
    assert checks["redis_memory"]["status"] == "fail"
    checks, _w, _s = run(base_info(maxmemory=0, total_system_memory=0))
    memory = checks["redis_memory"]
    # Nothing to hold the use against: could not be checked, never a pass.
    assert (memory["status"], memory["unchecked"], memory["observed_value"]) == ("fail", True, None)
    assert memory["output"].startswith("Could not check Redis memory use: maxmemory is 0 (no limit)")


def test_hit_rate_levels_and_too_few_lookups():
    checks, _w, _s = run(base_info(keyspace_hits=700, keyspace_misses=300))
    assert checks["redis_hit_rate"]["status"] == "warn" and checks["redis_hit_rate"]["observed_value"] == 70.0
    checks, _w, _s = run(base_info(keyspace_hits=200, keyspace_misses=800))
    assert checks["redis_hit_rate"]["status"] == "fail"
    checks, _w, _s = run(base_info(keyspace_hits=1, keyspace_misses=40))
    hit_rate = checks["redis_hit_rate"]
    assert hit_rate["status"] == "pass" and hit_rate["observed_value"] is None
    assert "too few to judge" in hit_rate["output"] and "41 key lookups" in hit_rate["output"]
    checks, _w, _s = run(base_info(keyspace_hits=1, keyspace_misses=40), hit_rate_min_lookups=10)
    assert checks["redis_hit_rate"]["status"] == "fail"


def test_counters_since_start_only_warn_and_say_how_to_do_better():
    checks, window, _s = run(base_info(rejected_connections=5, errorstat_OOM={"count": 2}, evicted_keys=7))
    assert window["since"] == "start"
    for name in ("redis_rejected_connections", "redis_rejected_writes", "redis_evictions"):
        assert checks[name]["status"] == "warn", name
    assert "state_file" in checks["redis_rejected_connections"]["output"]
    assert checks["redis_rejected_writes"]["observed_value"] == 2


def test_counters_since_the_previous_check():
    previous = {"run_id": RUN_ID, "time": NOW - 300,
                "counters": {"keyspace_hits": 900, "keyspace_misses": 0, "evicted_keys": 7,
                             "rejected_connections": 5, "rejected_writes": 2}}
    info = base_info(rejected_connections=5, errorstat_OOM={"count": 4}, evicted_keys=7,
                     keyspace_hits=950, keyspace_misses=150)
    checks, window, state = run(info, previous=previous, hit_rate_min_lookups=10)
    assert window == {"since": "last_check", "seconds": 300,
                      "counts": {"keyspace_hits": 50, "keyspace_misses": 150, "evicted_keys": 0,
                                 "rejected_connections": 0, "rejected_writes": 2},
                      "totals": state["counters"]}
    assert checks["redis_rejected_writes"]["status"] == "fail"
    assert checks["redis_rejected_connections"]["status"] == "pass"
    assert checks["redis_evictions"]["status"] == "pass"
    assert "(7 since the server started)" in checks["redis_evictions"]["output"]
    assert checks["redis_hit_rate"]["observed_value"] == 25.0
    assert state == {"run_id": RUN_ID, "time": NOW, "counters": counter_window(info, None, NOW)["totals"]}


@pytest.mark.parametrize("previous", [
    {"run_id": "b" * 40, "time": NOW - 60, "counters": {"keyspace_hits": 0, "keyspace_misses": 0, "evicted_keys": 0,
                                                        "rejected_connections": 0, "rejected_writes": 0}},
    {"run_id": RUN_ID, "time": NOW - 60, "counters": {"keyspace_hits": 10 ** 6, "keyspace_misses": 0,
                                                      "evicted_keys": 0, "rejected_connections": 0,
                                                      "rejected_writes": 0}},
    {"run_id": RUN_ID, "time": NOW - 60, "counters": {}},
])
def test_a_restart_a_reset_or_a_foreign_state_is_no_baseline(previous):
    window = counter_window(base_info(), previous, NOW)
    assert window["since"] == "start" and window["counts"] == window["totals"]


def test_clients_and_unknown_maxclients():
    checks, _w, _s = run(base_info(connected_clients=85))
    assert checks["redis_clients"]["status"] == "warn"
    checks, _w, _s = run(base_info(connected_clients=95))
    assert checks["redis_clients"]["status"] == "fail"
    checks, _w, _s = run(base_info(maxclients=None), config={"save": None, "maxclients": "200"})
    assert checks["redis_clients"]["observed_value"] == 5.0
    checks, _w, _s = run(base_info(maxclients=None), config={"save": None, "maxclients": None})
    clients = checks["redis_clients"]
    assert (clients["status"], clients["unchecked"]) == ("fail", True)
    assert clients["output"].startswith("Could not check client use: 10 clients connected, but maxclients is unknown")


def test_blocked_clients():
    checks, _w, _s = run(base_info(blocked_clients=4), blocked_clients={"warn": 2, "fail": 3})
    assert checks["redis_blocked_clients"]["status"] == "fail"
    checks, _w, _s = run(base_info(blocked_clients=3), blocked_clients={"warn": 2, "fail": 3})
    assert checks["redis_blocked_clients"]["status"] == "warn"


def test_failed_snapshot_fails_and_snapshots_off_pass():
    checks, _w, _s = run(base_info(rdb_last_bgsave_status="err"))
    assert checks["redis_rdb"]["status"] == "fail"
    checks, _w, _s = run(base_info(rdb_saves=0, rdb_changes_since_last_save=500, rdb_last_save_time=NOW - 10 ** 6),
                         config={"save": ""})
    assert checks["redis_rdb"]["status"] == "pass" and "off" in checks["redis_rdb"]["output"]
    assert checks["redis_last_save"]["status"] == "pass" and "restart loses them" in checks["redis_last_save"]["output"]


def test_unsaved_changes_age():
    checks, _w, _s = run(base_info(rdb_changes_since_last_save=10, rdb_last_save_time=NOW - 3 * 3600))
    assert checks["redis_last_save"]["status"] == "warn" and checks["redis_last_save"]["observed_value"] == 3 * 3600
    checks, _w, _s = run(base_info(rdb_changes_since_last_save=10, rdb_last_save_time=NOW - 2 * 86400))
    assert checks["redis_last_save"]["status"] == "fail"
    checks, _w, _s = run(base_info(rdb_changes_since_last_save=0, rdb_last_save_time=NOW - 2 * 86400))
    assert checks["redis_last_save"]["status"] == "pass"
    checks, _w, _s = run(base_info(rdb_changes_since_last_save=10, rdb_last_save_time=NOW - 3 * 3600),
                         config={"save": None})
    assert checks["redis_last_save"]["status"] == "warn" and "unknown" in checks["redis_last_save"]["output"]


def test_aof_write_failure_fails_and_rewrite_failure_warns():
    checks, _w, _s = run(base_info(aof_enabled=1, aof_last_write_status="err"))
    assert checks["redis_aof"]["status"] == "fail"
    checks, _w, _s = run(base_info(aof_enabled=1, aof_last_bgrewrite_status="err",
                                   aof_rewrites_consecutive_failures=3))
    assert checks["redis_aof"]["status"] == "warn" and "3 failures" in checks["redis_aof"]["output"]
    checks, _w, _s = run(base_info(aof_enabled=1))
    assert checks["redis_aof"]["status"] == "pass" and checks["redis_aof"]["observed_value"] == "ok"


def test_master_replicas_count_state_and_lag():
    info = base_info(connected_slaves=2,
                     slave0={"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 10, "lag": 0},
                     slave1={"ip": "10.0.0.3", "port": 6379, "state": "online", "offset": 10, "lag": 45})
    checks, _w, _s = run(info, min_replicas=2)
    replication = checks["redis_replication"]
    assert replication["status"] == "warn" and replication["observed_value"] == 2
    assert "10.0.0.3:6379 last acknowledged 45 s ago" in replication["output"]
    checks, _w, _s = run(info, min_replicas=3)
    assert checks["redis_replication"]["status"] == "fail"
    info["slave1"]["state"] = "wait_bgsave"
    checks, _w, _s = run(info, min_replicas=1)
    assert checks["redis_replication"]["status"] == "warn"
    assert "not online yet: 10.0.0.3:6379" in checks["redis_replication"]["output"]


def test_replica_link_up_down_and_lag():
    replica = dict(role="slave", master_host="10.0.0.1", master_port=6379, master_link_status="up",
                   master_last_io_seconds_ago=2, master_sync_in_progress=0)
    checks, _w, _s = run(base_info(**replica))
    assert checks["redis_replication"]["status"] == "pass" and checks["redis_replication"]["role"] == "replica"
    lagging = base_info(**replica)
    lagging["master_last_io_seconds_ago"] = 40
    checks, _w, _s = run(lagging)
    assert checks["redis_replication"]["status"] == "warn"
    broken = base_info(**replica)
    broken.update(master_link_status="down", master_last_io_seconds_ago=-1, master_link_down_since_seconds=120)
    checks, _w, _s = run(broken)
    link = checks["redis_replication"]
    assert link["status"] == "fail" and "down for 2 min" in link["output"] and "10.0.0.1:6379" in link["output"]


def test_loading_server_warns():
    checks, _w, _s = run(base_info(loading=1))
    assert checks["redis_connection"]["status"] == "warn"


def test_negative_settings_are_refused():
    with pytest.raises(RunbookError, match="min_replicas cannot be negative"):
        normalize({"min_replicas": -1})


def test_state_round_trip_and_unreadable_state(tmp_path):
    path = tmp_path / "state" / "redis.json"
    assert read_state(str(path)) == (None, None)
    assert write_state(str(path), {"run_id": RUN_ID, "time": NOW, "counters": {}}) is None
    assert read_state(str(path))[0]["run_id"] == RUN_ID
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_text("{not json")
    state, problem = read_state(str(path))
    assert state is None and "unreadable" in problem
    blocked = tmp_path / "file"
    blocked.write_text(json.dumps({}))
    assert "Could not save" in write_state(str(blocked / "redis.json"), {})
