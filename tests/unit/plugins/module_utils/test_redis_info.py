"""INFO parsing, connection keywords and error messages of the Redis connection helper."""
import pytest
from redis import exceptions

from ansible_collections.ops.runbook.plugins.module_utils.redis import (
    connection_kwargs, describe_error, endpoint, keyspace, parse_info, version_tuple)

# As Redis 7.0 sends it: CRLF line ends, section headers, pair lines and a module line.
MASTER_INFO = (
    "# Server\r\n"
    "redis_version:7.0.15\r\n"
    "redis_mode:standalone\r\n"
    "os:Linux 6.1.0 x86_64\r\n"
    "run_id:8599c8e48c4cc8331ec5cffa6f05248b5e0ae50d\r\n"
    "uptime_in_seconds:86400\r\n"
    "executable:/usr/bin/redis-server\r\n"
    "\r\n"
    "# Memory\r\n"
    "used_memory:3829760\r\n"
    "used_memory_human:3.65M\r\n"
    "mem_fragmentation_ratio:1.37\r\n"
    "maxmemory:4194304\r\n"
    "maxmemory_policy:allkeys-lru\r\n"
    "\r\n"
    "# Persistence\r\n"
    "rdb_last_bgsave_status:ok\r\n"
    "\r\n"
    "# Replication\r\n"
    "role:master\r\n"
    "connected_slaves:2\r\n"
    "slave0:ip=10.0.0.2,port=6379,state=online,offset=1234,lag=0\r\n"
    "slave1:ip=::1,port=6380,state=wait_bgsave,offset=0,lag=3\r\n"
    "\r\n"
    "# Modules\r\n"
    "module:name=search,ver=20000,api=1,filters=0,usedby=[],using=[],options=[]\r\n"
    "\r\n"
    "# Errorstats\r\n"
    "errorstat_ERR:count=7\r\n"
    "errorstat_OOM:count=3\r\n"
    "\r\n"
    "# Keyspace\r\n"
    "db0:keys=1200,expires=30,avg_ttl=3600000\r\n"
    "db3:keys=5,expires=0,avg_ttl=0\r\n"
)


def test_values_are_typed_and_sections_dropped():
    info = parse_info(MASTER_INFO)
    assert info["redis_version"] == "7.0.15"
    assert info["used_memory"] == 3829760
    assert info["mem_fragmentation_ratio"] == 1.37
    assert info["maxmemory_policy"] == "allkeys-lru"
    assert info["os"] == "Linux 6.1.0 x86_64"
    assert info["executable"] == "/usr/bin/redis-server"
    assert not any(key.startswith("#") for key in info)
    assert "module" not in info


def test_pair_lines_become_dicts():
    info = parse_info(MASTER_INFO)
    assert info["slave0"] == {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 1234, "lag": 0}
    assert info["slave1"]["ip"] == "::1"
    assert info["errorstat_OOM"] == {"count": 3}
    assert info["db0"] == {"keys": 1200, "expires": 30, "avg_ttl": 3600000}


def test_keyspace_lists_only_databases_with_keys():
    assert keyspace(parse_info(MASTER_INFO)) == {"db0": 1200, "db3": 5}
    assert keyspace(parse_info("# Keyspace\r\n")) == {}


def test_version_tuple():
    assert version_tuple(parse_info(MASTER_INFO)) == (7, 0, 15)
    assert version_tuple({}) == ()


def test_empty_and_garbage_input():
    assert parse_info("") == {}
    assert parse_info(None) == {}
    assert parse_info("no colon here\r\n") == {}


def test_tcp_keywords_with_tls_and_user():
    params = {"login_host": "cache.internal", "login_port": 6380, "login_user": "monitor",
              "login_password": "pw", "db": 2, "tls": True, "tls_ca_cert": "/etc/ca.pem", "tls_verify": True,
              "timeout": 3}
    kwargs = connection_kwargs(params)
    assert kwargs["host"] == "cache.internal" and kwargs["port"] == 6380 and kwargs["db"] == 2
    assert kwargs["username"] == "monitor" and kwargs["password"] == "pw"
    assert kwargs["ssl"] is True and kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True
    assert kwargs["socket_timeout"] == 3.0 and kwargs["decode_responses"] is True
    assert endpoint(params) == "rediss://cache.internal:6380"


def test_unverified_tls_and_db_override():
    kwargs = connection_kwargs({"login_host": "h", "tls": True, "tls_verify": False, "db": 4}, db=1)
    assert kwargs["ssl_cert_reqs"] == "none" and kwargs["ssl_check_hostname"] is False
    assert kwargs["db"] == 1


def test_unix_socket_replaces_host_and_port():
    params = {"login_host": "ignored", "login_unix_socket": "/run/redis/redis.sock", "tls": True}
    kwargs = connection_kwargs(params)
    assert kwargs["unix_socket_path"] == "/run/redis/redis.sock"
    assert "host" not in kwargs and "ssl" not in kwargs and "password" not in kwargs
    assert endpoint(params) == "unix socket /run/redis/redis.sock"


PARAMS = {"login_host": "cache.internal", "login_port": 6379, "login_password": "s3cr3t", "timeout": 2}


@pytest.mark.parametrize("error, cause, words", [
    (exceptions.AuthenticationError("Authentication required."), "authentication", "requires a password"),
    (exceptions.AuthenticationError("WRONGPASS invalid username-password pair or user is disabled."),
     "authentication", "rejected the password of the default user"),
    (exceptions.ResponseError("AUTH <password> called without any password configured for the default user."),
     "authentication", "has no password set"),
    (exceptions.NoPermissionError("this user has no permissions to run the 'info' command"), "permission",
     "does not allow the default user to run INFO"),
    (exceptions.ConnectionError("max number of clients reached"), "maxclients", "maxclients"),
    (exceptions.BusyLoadingError("Redis is loading the dataset in memory"), "loading", "still loading"),
    (exceptions.ResponseError("DB index is out of range"), "invalid_db", "does not exist"),
    (exceptions.ReadOnlyError("You can't write against a read only replica."), "read_only", "read-only replica"),
    (exceptions.ResponseError("unknown command 'FLUSHDB', with args beginning with: 'ASYNC'"), "unknown_command",
     "does not know the command"),
    (exceptions.ConnectionError("Error 1 connecting to h:6380. [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                                "verify failed: self-signed certificate"), "tls", "TLS with Redis"),
    (exceptions.TimeoutError("Timeout reading from socket"), "timeout", "did not answer within 2 seconds"),
    (exceptions.ConnectionError("Error 111 connecting to cache.internal:6379. Connection refused."),
     "unreachable", "Cannot reach Redis at cache.internal:6379"),
    (exceptions.ConnectionError("Connection closed by server."), "unreachable", "Cannot reach"),
    (exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
     "command_error", "answered INFO with an error"),
])
def test_errors_say_what_happened_and_never_the_password(error, cause, words):
    described = describe_error(PARAMS, error, "INFO")
    assert described.details["cause"] == cause
    assert words in str(described)
    assert described.hint
    assert "s3cr3t" not in str(described)


def test_acl_user_is_named_in_authentication_errors():
    described = describe_error(dict(PARAMS, login_user="monitor"), exceptions.AuthenticationError(
        "WRONGPASS invalid username-password pair or user is disabled."))
    assert "user 'monitor'" in str(described)
    assert "login_user" in described.hint
