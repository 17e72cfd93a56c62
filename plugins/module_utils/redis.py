# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection reaches Redis.

Connection options are defined once (`redis_common_argument_spec`), turned
into redis-py keywords here, and every failure, at connection time or on a
later command, is translated into one clear message with what to do.

Works with redis-py 4.3 (Debian 12's python3-redis) and later. INFO is read
as raw text and parsed here, so every redis-py version gives the same values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .common import RunbookError

DEFAULT_PORT = 6379
DEFAULT_TIMEOUT = 10.0

# INFO lines whose value is a list of key=value pairs, such as
# "db0:keys=12,expires=0,avg_ttl=0" and "slave0:ip=10.0.0.2,port=6379,state=online,offset=42,lag=0".
_PAIR_LINES = re.compile(r"^(db\d+|slave\d+|errorstat_.+|cmdstat_.+|latency_percentiles_usec_.+)$")


def redis_common_argument_spec():
    """Connection options shared by every Redis module of the collection."""
    from ansible.module_utils.basic import env_fallback

    return dict(
        login_host=dict(type="str", default="localhost", aliases=["host"]),
        login_port=dict(type="int", default=DEFAULT_PORT, aliases=["port"]),
        login_unix_socket=dict(type="path"),
        login_user=dict(type="str", aliases=["username"]),
        login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["REDISCLI_AUTH"])),
        db=dict(type="int"),
        tls=dict(type="bool", default=False),
        tls_ca_cert=dict(type="path"),
        tls_cert=dict(type="path"),
        tls_key=dict(type="path"),
        tls_verify=dict(type="bool", default=True),
        timeout=dict(type="float", default=DEFAULT_TIMEOUT),
    )


def endpoint(params):
    """A short human description of where we connect, for messages."""
    if params.get("login_unix_socket"):
        return "unix socket {0}".format(params["login_unix_socket"])
    scheme = "rediss://" if params.get("tls") else ""
    return "{0}{1}:{2}".format(scheme, params.get("login_host") or "localhost",
                               params.get("login_port") or DEFAULT_PORT)


def connection_kwargs(params, db=None):
    """Keywords for redis.Redis(); `db` overrides the db option."""
    timeout = float(params.get("timeout") or DEFAULT_TIMEOUT)
    if db is None:
        db = params.get("db")
    kwargs = {
        "db": int(db or 0),
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # No retries inside redis-py (redis-py 6 retries timeouts three times by default): a silent
        # server fails a command after `timeout` seconds, as documented, not after four times that.
        "retry_on_timeout": False,
        "retry": None,
        "decode_responses": True,
    }
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if params.get("login_user"):
        kwargs["username"] = params["login_user"]
    if params.get("login_unix_socket"):
        kwargs["unix_socket_path"] = params["login_unix_socket"]
        return kwargs
    kwargs["host"] = params.get("login_host") or "localhost"
    kwargs["port"] = int(params.get("login_port") or DEFAULT_PORT)
    if params.get("tls"):
        verify = params.get("tls_verify", True) is not False
        kwargs.update(ssl=True, ssl_cert_reqs="required" if verify else "none", ssl_check_hostname=verify)
        for option, keyword in (("tls_ca_cert", "ssl_ca_certs"), ("tls_cert", "ssl_certfile"),
                                ("tls_key", "ssl_keyfile")):
            if params.get(option):
                kwargs[keyword] = params[option]
    return kwargs


def import_redis():
    try:
        import redis
    except ImportError:
        raise RunbookError(
            "The Python library redis (redis-py) is not installed where this task runs.",
            hint="Install python3-redis (Debian/Ubuntu) or `pip install redis`.", cause="missing_library")
    return redis


def _error_names(error):
    return set(cls.__name__ for cls in type(error).__mro__)


def _one_line(text):
    return " ".join(str(text).split())


def describe_error(params, error, command=None):
    """Turn a redis-py exception into what happened and what to do.

    Matches on exception class names and server replies, so it needs no
    particular redis-py version (and none at all in unit tests).
    """
    text = _one_line(error) or type(error).__name__
    lowered = text.lower()
    names = _error_names(error)
    where = endpoint(params)
    user = params.get("login_user")
    who = "user '{0}'".format(user) if user else "the default user"
    if "noauth" in lowered or "authentication required" in lowered:
        return RunbookError(
            "Redis at {0} requires a password and none was given.".format(where),
            hint="Set login_password (or the REDISCLI_AUTH environment variable).", cause="authentication")
    if ("called without any password configured" in lowered or "but no password is set" in lowered):
        return RunbookError(
            "Redis at {0} has no password set, but a password was given: {1}".format(where, text),
            hint="Remove login_password, or set requirepass (or an ACL user) on the server.",
            cause="authentication")
    if "wrongpass" in lowered or "invalid password" in lowered or "invalid username-password" in lowered \
            or "AuthenticationError" in names:
        return RunbookError(
            "Redis at {0} rejected the password of {1}: {2}".format(where, who, text),
            hint="Check login_password (or REDISCLI_AUTH) and login_user.", cause="authentication")
    if "noperm" in lowered or "NoPermissionError" in names:
        return RunbookError(
            "Redis at {0} does not allow {1} to run {2}: {3}".format(where, who, command or "this command", text),
            hint="Grant the command to the user (ACL SETUSER ... +{0}) or connect as another user.".format(
                (command or "COMMAND").split()[0].lower()), cause="permission")
    if lowered.startswith("misconf") or "unable to persist to disk" in lowered:
        return RunbookError(
            "Redis at {0} refuses writes because its last RDB snapshot failed: {1}".format(where, text),
            hint="Fix the snapshot (free space, permissions of dir; see the Redis log), then BGSAVE; "
                 "stop-writes-on-bgsave-error no would keep writes flowing without snapshots.", cause="misconf")
    if "max number of clients reached" in lowered:
        return RunbookError(
            "Redis at {0} refused the connection: it already serves maxclients clients.".format(where),
            hint="Find idle or leaking clients (`redis-cli CLIENT LIST`) or raise maxclients.", cause="maxclients")
    if "loading" in lowered and ("BusyLoadingError" in names or lowered.startswith("loading")):
        return RunbookError(
            "Redis at {0} is still loading its dataset into memory and answers no commands yet.".format(where),
            hint="Try again when loading has finished (INFO persistence, loading:0).", cause="loading")
    if "db index is out of range" in lowered or "invalid db index" in lowered:
        return RunbookError(
            "Database {0} does not exist on Redis at {1}: {2}".format(params.get("db"), where, text),
            hint="Use a database number below the server's `databases` setting (16 by default).",
            cause="invalid_db")
    if "readonly" in lowered or "ReadOnlyError" in names:
        return RunbookError(
            "Redis at {0} is a read-only replica and refused {1}.".format(where, command or "the command"),
            hint="Run it against the master.", cause="read_only")
    if "unknown command" in lowered:
        return RunbookError(
            "Redis at {0} does not know the command {1}: {2}".format(where, command or "", text),
            hint="It may be renamed or disabled (rename-command), or the server may be too old.",
            cause="unknown_command")
    tls_words = ("[ssl", "_ssl.c", "certificate", "handshake", "wrong version number", "unknown protocol")
    if any(word in lowered for word in tls_words) or "SSLError" in names:
        return RunbookError(
            "TLS with Redis at {0} failed: {1}".format(where, text),
            hint="Check tls (it must match the port: plain or tls-port), tls_ca_cert, tls_cert/tls_key "
                 "and tls_verify.", cause="tls")
    if "TimeoutError" in names or "timed out" in lowered:
        return RunbookError(
            "Redis at {0} did not answer within {1:g} seconds: {2}".format(
                where, float(params.get("timeout") or DEFAULT_TIMEOUT), text),
            hint="Check the network and whether the server is blocked (SLOWLOG, a long script); "
                 "raise timeout if it is just slow.", cause="timeout")
    if "ConnectionError" in names or "connection refused" in lowered or "closed by server" in lowered:
        return RunbookError(
            "Cannot reach Redis at {0}: {1}".format(where, text),
            hint="Check that redis-server runs there (`redis-cli ping`), that login_host/login_port "
                 "or login_unix_socket are right, and whether the server expects TLS.", cause="unreachable")
    return RunbookError(
        "Redis at {0} answered {1} with an error: {2}".format(where, command or "a command", text),
        hint="The server refused it; its log (logfile in redis.conf) may say more.", cause="command_error")


def _raw_reply(response, **options):
    return response


def connect(params, db=None):
    """A redis.Redis client that has answered PING, or RunbookError saying why not."""
    redis = import_redis()
    try:
        client = redis.Redis(**connection_kwargs(params, db))
        # INFO is parsed here, not by redis-py, whose parsing differs between versions.
        client.set_response_callback("INFO", _raw_reply)
        client.ping()
    except redis.RedisError as error:
        described = describe_error(params, error, "PING")
        # A server whose snapshots fail refuses even PING, but it is up and its INFO tells why.
        if described.details["cause"] != "misconf":
            raise described
    return client


def disconnect(client):
    """Close the client's connections now: on a crowded server every connection counts against maxclients."""
    client.connection_pool.disconnect()


def command(client, params, *args):
    """Run one Redis command; a failure becomes a RunbookError naming the command."""
    redis = import_redis()
    try:
        return client.execute_command(*args)
    except redis.RedisError as error:
        raise describe_error(params, error, " ".join(str(arg) for arg in args))


def config_value(client, params, name):
    """A CONFIG GET value, or None where CONFIG is disabled, renamed or not allowed (managed services)."""
    try:
        reply = command(client, params, "CONFIG", "GET", name)
    except RunbookError as error:
        if error.details.get("cause") in ("permission", "unknown_command", "command_error"):
            return None
        raise
    if isinstance(reply, dict):
        return reply.get(name)
    pairs = list(reply or [])
    return dict(zip(pairs[0::2], pairs[1::2])).get(name)


def _scalar(value):
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def parse_info(text):
    """INFO's text as a flat dict of typed values.

    Numbers become int or float; "key=value,..." lines (keyspace, replicas,
    error and command statistics) become dicts. Section headers and module
    lines are dropped.
    """
    info = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        if _PAIR_LINES.match(key) and "=" in value:
            pairs = {}
            for pair in value.split(","):
                name, _sep, item = pair.partition("=")
                pairs[name] = _scalar(item)
            info[key] = pairs
        elif key != "module":
            info[key] = _scalar(value)
    return info


def info(client, params, section=None):
    args = ["INFO"] + ([section] if section else [])
    return parse_info(command(client, params, *args))


def keyspace(parsed_info):
    """Keys per database from parsed INFO, e.g. {"db0": 12, "db1": 3}; empty databases are absent."""
    return dict((name, int(value.get("keys", 0))) for name, value in parsed_info.items()
                if re.match(r"^db\d+$", name) and isinstance(value, dict))


def version_tuple(parsed_info):
    parts = re.findall(r"\d+", str(parsed_info.get("redis_version", "")))
    return tuple(int(part) for part in parts[:3])
