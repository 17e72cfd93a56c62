"""redis_health against real redis-servers: filled, missed, crowded, broken, replicated."""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest
import redis

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.redis_health import run_health
from harness.ports import free_ports

from conftest import ROOT

SMALL = {"maxmemory": "4mb"}


def by_name(result):
    return dict((item["name"], item) for item in result["checks"])


def used_percent(client):
    memory = client.info("memory")
    return 100.0 * memory["used_memory"] / memory["maxmemory"]


def fill_to(client, percent, value=b"x" * 512):
    """Write keys in small batches until used_memory reaches `percent` of maxmemory."""
    written = 0
    while used_percent(client) < percent:
        pipe = client.pipeline(transaction=False)
        for _slot in range(10):
            pipe.set("fill:{0}".format(written), value)
            written += 1
        pipe.execute()
    return written


def write_until_refused(client, extra_refusals=5, value=b"x" * 1024):
    """Write until Redis refuses with OOM, then a few more refused writes; returns the refusals."""
    refused = 0
    written = 0
    while refused < extra_refusals:
        pipe = client.pipeline(transaction=False)
        for _slot in range(50):
            pipe.set("oom:{0}".format(written), value)
            written += 1
        refused += sum(1 for reply in pipe.execute(raise_on_error=False)
                       if isinstance(reply, redis.ResponseError) and str(reply).startswith("OOM"))
        assert written < 100000, "Redis never refused a write"
    return refused


def wait_until(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("timed out waiting until " + what)


def test_a_fresh_server_passes_and_describes_itself(start_redis):
    server = start_redis(settings=SMALL)
    result = run_health(server.params())
    assert result["status"] == "pass", result["msg"]
    assert result["counts"]["pass"] == 12
    assert result["server"]["version"].split(".")[0] >= "6"
    assert result["server"]["role"] == "master"
    checks = by_name(result)
    assert checks["redis_memory"]["limit_source"] == "maxmemory"
    assert checks["redis_memory"]["maxmemory_bytes"] == 4 * 1024 * 1024
    assert "too few to judge" in checks["redis_hit_rate"]["output"]
    assert checks["redis_clients"]["maxclients"] == 10000
    assert all(item["component"] == "127.0.0.1:{0}".format(server.port) for item in result["checks"])


def test_check_mode_writes_no_state(start_redis, tmp_path):
    server = start_redis()
    state_file = tmp_path / "redis.json"
    assert run_health(server.params(state_file=str(state_file)), check_mode=True)["status"] == "pass"
    assert not state_file.exists()
    run_health(server.params(state_file=str(state_file)))
    assert json.loads(state_file.read_text())["run_id"] == server.client().info("server")["run_id"]


def test_memory_past_90_percent_warns_and_refused_writes_fail(start_redis, tmp_path):
    server = start_redis(settings=dict(SMALL, **{"maxmemory-policy": "noeviction"}))
    client = server.client()
    state_file = str(tmp_path / "state" / "redis.json")
    assert run_health(server.params(state_file=state_file))["status"] == "pass"
    assert os.path.exists(state_file)

    fill_to(client, 91)
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_memory"]["status"] == "warn", checks["redis_memory"]["output"]
    assert 90 <= checks["redis_memory"]["observed_value"] < 95
    assert checks["redis_rejected_writes"]["status"] == "pass"

    refused = write_until_refused(client)
    result = run_health(server.params(state_file=state_file))
    checks = by_name(result)
    assert result["status"] == "fail"
    assert checks["redis_memory"]["status"] == "fail"
    assert "refuses writes" in checks["redis_memory"]["output"]
    assert checks["redis_rejected_writes"]["status"] == "fail"
    assert checks["redis_rejected_writes"]["observed_value"] == refused
    assert result["window"]["since"] == "last_check"

    # Nothing refused since: the counter check passes again, the full memory still fails.
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_rejected_writes"]["status"] == "pass"
    assert checks["redis_memory"]["status"] == "fail"

    # Without a state file the same refusals count since start and only warn.
    checks = by_name(run_health(server.params()))
    assert checks["redis_rejected_writes"]["status"] == "warn"
    assert "state_file" in checks["redis_rejected_writes"]["output"]


def test_evictions_with_allkeys_lru_warn(start_redis, tmp_path):
    server = start_redis(settings=dict(SMALL, **{"maxmemory-policy": "allkeys-lru"}))
    client = server.client()
    state_file = str(tmp_path / "redis.json")
    run_health(server.params(state_file=state_file))
    pipe = client.pipeline(transaction=False)
    for number in range(8000):
        pipe.set("lru:{0}".format(number), b"y" * 1024)
    pipe.execute()
    evicted = client.info("stats")["evicted_keys"]
    assert evicted > 0
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_evictions"]["status"] == "warn"
    assert checks["redis_evictions"]["observed_value"] >= evicted
    assert "evicts keys (allkeys-lru)" in checks["redis_memory"]["output"]
    assert checks["redis_rejected_writes"]["status"] == "pass"


def test_no_maxmemory_is_said_and_compared_with_system_memory(start_redis):
    server = start_redis(settings={"maxmemory": "0"})
    memory = by_name(run_health(server.params()))["redis_memory"]
    assert memory["status"] == "pass"
    assert memory["output"].startswith("maxmemory is 0 (no limit)")
    assert memory["limit_source"] == "system_memory" and memory["total_system_memory_bytes"] > 0


def test_misses_push_the_hit_rate_below_80_percent(start_redis, tmp_path):
    server = start_redis(settings=SMALL)
    client = server.client()
    state_file = str(tmp_path / "redis.json")
    for number in range(10):
        client.set("key:{0}".format(number), number)

    for _round in range(17):
        for number in range(10):
            client.get("key:{0}".format(number))
    for number in range(30):
        client.get("missing:{0}".format(number))
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_hit_rate"]["status"] == "pass"
    assert checks["redis_hit_rate"]["observed_value"] == 85.0

    # Judged since the previous check: 60 hits and 40 misses is 60 %, although the lifetime rate is higher.
    for _round in range(6):
        for number in range(10):
            client.get("key:{0}".format(number))
    for number in range(40):
        client.get("missing:{0}".format(number))
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_hit_rate"]["status"] == "warn"
    assert checks["redis_hit_rate"]["observed_value"] == 60.0
    assert "since the previous check" in checks["redis_hit_rate"]["output"]

    for number in range(200):
        client.get("missing:{0}".format(number))
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_hit_rate"]["status"] == "fail"
    assert checks["redis_hit_rate"]["observed_value"] == 0.0

    client.get("key:1")
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_hit_rate"]["status"] == "pass"
    assert checks["redis_hit_rate"]["observed_value"] is None
    assert "Only 1 key lookups" in checks["redis_hit_rate"]["output"]


def test_crowded_clients_warn_then_rejected_connections_fail(start_redis, tmp_path):
    server = start_redis(settings={"maxclients": "20"})
    state_file = str(tmp_path / "redis.json")
    run_health(server.params(state_file=state_file))
    held = [server.client(single_connection_client=True) for _slot in range(15)]
    for client in held:
        client.ping()
    # 15 held + the check's own of 20: at the warn limit 80, which is not beyond it.
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert (checks["redis_clients"]["status"], checks["redis_clients"]["observed_value"]) == ("pass", 80.0)
    held.append(server.client(single_connection_client=True))
    held[-1].ping()
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert (checks["redis_clients"]["status"], checks["redis_clients"]["observed_value"]) == ("warn", 85.0)

    extra, rejected = [], 0
    for _attempt in range(8):
        try:
            client = server.client(single_connection_client=True)
            client.ping()
            extra.append(client)
        except redis.ConnectionError as error:
            assert "max number of clients reached" in str(error)
            rejected += 1
    assert len(held) + len(extra) == 20 and rejected == 4
    with pytest.raises(RunbookError) as refused:
        run_health(server.params(state_file=state_file))
    assert refused.value.details["cause"] == "maxclients"
    assert "already serves maxclients clients" in str(refused.value)

    for client in held + extra:
        client.connection_pool.disconnect()
    wait_until(lambda: server.client().info("clients")["connected_clients"] <= 2, "the clients disconnected")
    checks = by_name(run_health(server.params(state_file=state_file)))
    assert checks["redis_rejected_connections"]["status"] == "fail"
    assert checks["redis_rejected_connections"]["observed_value"] == rejected + 1  # and the check's own
    assert checks["redis_clients"]["status"] == "pass"


def test_blocked_clients(start_redis):
    server = start_redis()
    waiter = server.client()
    popped = []
    thread = threading.Thread(target=lambda: popped.append(waiter.blpop(["jobs"], timeout=20)))
    thread.start()
    try:
        wait_until(lambda: server.client().info("clients")["blocked_clients"] == 1, "the client blocked")
        # One blocked client is within a warn limit of 1 and beyond one of 0.
        checks = by_name(run_health(server.params(blocked_clients={"warn": 1})))
        assert checks["redis_blocked_clients"]["status"] == "pass"
        checks = by_name(run_health(server.params(blocked_clients={"warn": 0})))
        assert checks["redis_blocked_clients"]["status"] == "warn"
        assert checks["redis_blocked_clients"]["observed_value"] == 1
    finally:
        server.client().rpush("jobs", "done")
        thread.join(30)
    assert popped == [(b"jobs", b"done")]


def test_a_failed_snapshot_fails_and_aof_is_reported(start_redis):
    server = start_redis(settings={"save": "3600 1", "appendonly": "yes"})
    client = server.client()
    client.set("a", 1)
    checks = by_name(run_health(server.params()))
    assert checks["redis_aof"]["status"] == "pass" and checks["redis_aof"]["observed_value"] == "ok"
    assert checks["redis_last_save"]["status"] == "pass"
    assert checks["redis_last_save"]["rdb_changes_since_last_save"] >= 1
    assert checks["redis_rdb"]["save"] == "3600 1"

    # The snapshot directory vanishes under the server: the next BGSAVE cannot write its file.
    shutil.rmtree(server.data_dir)
    client.bgsave()
    wait_until(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0
               and client.info("persistence")["rdb_last_bgsave_status"] == "err", "the snapshot failed")
    result = run_health(server.params())
    rdb = by_name(result)["redis_rdb"]
    assert rdb["status"] == "fail" and rdb["observed_value"] == "err"
    assert "The last RDB snapshot (BGSAVE) failed" in rdb["output"]
    assert result["status"] == "fail"
    # Without its directory the server would refuse a plain shutdown, which saves first.
    client.shutdown(nosave=True)


def test_replication_status_and_a_broken_link(start_redis):
    master = start_redis()
    replica = start_redis(replicaof=(master.host, master.port), master_password=master.password)
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", "the replica synced")
    master.client().set("replicated", 1)

    link = by_name(run_health(replica.params()))["redis_replication"]
    assert link["status"] == "pass", link["output"]
    assert link["role"] == "replica" and link["master"] == "127.0.0.1:{0}".format(master.port)
    assert run_health(replica.params())["server"]["role"] == "replica"

    # connected_slaves counts a replica from its first contact; the check counts it once it is online.
    wait_until(lambda: (master.client().info("replication").get("slave0") or {}).get("state") == "online",
               "the master saw its replica online")
    replicas = by_name(run_health(master.params(min_replicas=1)))["redis_replication"]
    assert replicas["status"] == "pass" and replicas["observed_value"] == 1
    assert replicas["replicas"][0]["state"] == "online"

    replica.stop()
    wait_until(lambda: master.client().info("replication")["connected_slaves"] == 0, "the master lost its replica")
    replicas = by_name(run_health(master.params(min_replicas=1)))["redis_replication"]
    assert replicas["status"] == "fail" and "expected at least 1" in replicas["output"]

    second = start_redis(replicaof=(master.host, master.port), master_password=master.password)
    wait_until(lambda: second.client().info("replication")["master_link_status"] == "up", "the replica synced")
    master.crash()
    wait_until(lambda: second.client().info("replication")["master_link_status"] == "down", "the link broke")
    result = run_health(second.params())
    link = by_name(result)["redis_replication"]
    assert link["status"] == "fail"
    assert "link to the master is down" in link["output"]
    assert result["status"] == "fail"


def test_wrong_password_missing_password_and_unknown_user_are_named(start_redis):
    server = start_redis()
    with pytest.raises(RunbookError) as wrong:
        run_health(server.params(login_password="not-the-password"))
    assert wrong.value.details["cause"] == "authentication"
    assert "rejected the password of the default user" in str(wrong.value)
    assert "not-the-password" not in str(wrong.value)
    with pytest.raises(RunbookError) as missing:
        run_health(server.params(login_password=None))
    assert "requires a password and none was given" in str(missing.value)
    with pytest.raises(RunbookError) as user:
        run_health(server.params(login_user="monitor"))
    assert "user 'monitor'" in str(user.value)


def test_acl_user_without_config_permission_still_gets_every_check(start_redis):
    server = start_redis()
    server.client().acl_setuser("monitor", enabled=True, passwords=["+monitor-pw"], commands=["+info", "+ping"])
    result = run_health(server.params(login_user="monitor", login_password="monitor-pw"))
    checks = by_name(result)
    assert len(checks) == 12
    assert checks["redis_clients"]["maxclients"] == 10000  # from INFO, since CONFIG GET is refused
    assert checks["redis_rdb"]["save"] is None


def test_unreachable_servers_are_errors_or_failed_checks(start_redis, tmp_path):
    port = free_ports(1)[0]
    params = {"login_host": "127.0.0.1", "login_port": port, "login_password": "pw", "timeout": 2}
    with pytest.raises(RunbookError) as unreachable:
        run_health(params)
    assert unreachable.value.details["cause"] == "unreachable"
    assert "Cannot reach Redis at 127.0.0.1:{0}".format(port) in str(unreachable.value)

    result = run_health(dict(params, fail_on="never"))
    assert result["status"] == "fail"
    assert [item["name"] for item in result["checks"]] == ["redis_connection"]
    assert "Cannot reach Redis" in result["checks"][0]["output"]

    with pytest.raises(RunbookError) as no_socket:
        run_health({"login_unix_socket": str(tmp_path / "absent.sock"), "timeout": 2})
    assert "Cannot reach Redis at unix socket" in str(no_socket.value)


def test_unix_socket(start_redis):
    server = start_redis()
    result = run_health({"login_unix_socket": server.socket_path, "login_password": server.password})
    assert result["status"] == "pass"
    assert result["endpoint"] == "unix socket " + server.socket_path


def test_tls_verified_with_the_ca_and_refused_without(start_redis):
    server = start_redis(tls=True)
    params = server.params(login_port=server.tls_port, tls=True, tls_ca_cert=server.ca_file, timeout=5)
    result = run_health(params)
    assert result["status"] == "pass"
    assert result["endpoint"] == "rediss://127.0.0.1:{0}".format(server.tls_port)

    with pytest.raises(RunbookError) as unverified:
        run_health(dict(params, tls_ca_cert=None))
    assert unverified.value.details["cause"] == "tls"
    assert "certificate" in str(unverified.value)

    assert run_health(dict(params, tls_ca_cert=None, tls_verify=False))["status"] == "pass"

    with pytest.raises(RunbookError) as plain:
        run_health(dict(params, tls=False))
    assert "TLS" in plain.value.hint or "tls" in plain.value.hint


def ansible_module(module, args, env=None, check=False):
    """Run one module of this checkout on localhost, as `ansible` does; returns (rc, result dict)."""
    command = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m", module, "-a", json.dumps(args)]
    if check:
        command.append("--check")
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json", **(env or {}))
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
    output = json.loads(done.stdout)
    return done.returncode, output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_the_module_fails_the_task_on_a_failed_check_unless_fail_on_never(start_redis):
    server = start_redis(settings={"maxmemory": "4mb"})
    write_until_refused(server.client())
    # The password comes from REDISCLI_AUTH, as redis-cli takes it.
    args = {"login_host": server.host, "login_port": server.port}
    env = {"REDISCLI_AUTH": server.password}
    rc, result = ansible_module("ops.runbook.redis_health", args, env)
    assert rc != 0
    assert result["failed"] is True and result["status"] == "fail"
    assert "Redis at 127.0.0.1:{0}: fail".format(server.port) in result["msg"]
    assert by_name(result)["redis_memory"]["status"] == "fail"

    rc, result = ansible_module("ops.runbook.redis_health", dict(args, fail_on="never"), env, check=True)
    assert rc == 0 and not result.get("failed") and result["status"] == "fail"
    assert result["changed"] is False

    rc, result = ansible_module("ops.runbook.redis_health", dict(args, login_password="wrong"))
    assert rc != 0 and "rejected the password" in result["msg"] and result["cause"] == "authentication"
