# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection reaches PostgreSQL.

Connection options are defined once (`postgres_common_argument_spec`), turned
into psycopg2 keywords or a libpq environment for client programs here, and
connection failures are translated into one clear message each.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from .common import RunbookError
from .manifest import quoted

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# Deadlines. connect_timeout bounds the whole connection set-up, the TCP
# connection and the startup handshake alike, so a server that accepts and
# never answers fails the connection in time (libpq counts at least 2 s). Once
# connected, TCP keepalives (a probe after 30 s of silence, then every 10 s,
# given up after 3 unanswered) and tcp_user_timeout (data unacknowledged for
# 60 s) notice a server or network that vanished within about a minute.
DEFAULT_CONNECT_TIMEOUT = 10
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
              "tcp_user_timeout": 60000}


def postgres_common_argument_spec():
    """Connection options shared by every PostgreSQL module of the collection."""
    from ansible.module_utils.basic import env_fallback

    return dict(
        login_host=dict(type="str", default="", aliases=["host"], fallback=(env_fallback, ["PGHOST"])),
        login_port=dict(type="int", default=5432, aliases=["port"], fallback=(env_fallback, ["PGPORT"])),
        login_user=dict(type="str", default="postgres", fallback=(env_fallback, ["PGUSER"])),
        login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PGPASSWORD"])),
        login_unix_socket=dict(type="str", default=""),
        ssl_mode=dict(type="str", default="prefer", choices=SSL_MODES),
        ca_cert=dict(type="str", aliases=["ssl_rootcert"]),
        connect_timeout=dict(type="int", default=DEFAULT_CONNECT_TIMEOUT),
    )


def _host(params):
    return params.get("login_host") or params.get("login_unix_socket") or ""


def endpoint(params, database=None):
    """A short human description of where we connect, for messages."""
    host = _host(params) or "the local socket"
    where = "{0}:{1}".format(host, params.get("login_port") or 5432)
    if database:
        where = "database {0} at {1}".format(quoted(database), where)
    return where


def connect_timeout(params):
    """connect_timeout in whole seconds, as libpq takes it; it must be bounded."""
    value = params.get("connect_timeout")
    value = DEFAULT_CONNECT_TIMEOUT if value is None else int(value)
    if value < 1:
        raise RunbookError("connect_timeout must be at least 1 second, not {0}.".format(value),
                           hint="0 would wait for ever for a server that never answers.", cause="invalid")
    return value


def conninfo(database):
    """`database` as the libpq connection string that names exactly it, for --dbname/--database.

    pg_dump, pg_dumpall, pg_restore and psql read a --dbname value that contains `=` or
    starts with postgres:// as a connection string: a database named `host=x dbname=y`
    would reach another database. Inside `dbname='...'` the value is never expanded
    again; libpq wants `\\` and `'` escaped with a backslash there.
    """
    return "dbname='{0}'".format(database.replace("\\", "\\\\").replace("'", "\\'"))


def connection_kwargs(params, database):
    # psycopg2 quotes each keyword into its DSN and libpq never expands a dbname given that
    # way (tests/integration/test_hostile_names.py connects to databases named like DSNs and URIs).
    kwargs = {
        "dbname": database,
        "user": params.get("login_user") or "postgres",
        "port": int(params.get("login_port") or 5432),
        "connect_timeout": connect_timeout(params),
        "sslmode": params.get("ssl_mode") or "prefer",
        "application_name": "ops.runbook",
    }
    kwargs.update(KEEPALIVES)
    if _host(params):
        kwargs["host"] = _host(params)
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if params.get("ca_cert"):
        kwargs["sslrootcert"] = params["ca_cert"]
    return kwargs


def libpq_environment(params, database, application="ops.runbook", base=None):
    """Environment for libpq programs (pg_dump, pg_restore, psql).

    The password travels in PGPASSWORD, never on a command line, where any
    user of the host could read it from the process list.
    """
    env = dict(os.environ if base is None else base)
    for name in ("PGHOST", "PGHOSTADDR", "PGSERVICE", "PGPASSWORD", "PGSSLROOTCERT"):
        env.pop(name, None)
    if _host(params):
        env["PGHOST"] = _host(params)
    env["PGPORT"] = str(params.get("login_port") or 5432)
    env["PGUSER"] = params.get("login_user") or "postgres"
    env["PGDATABASE"] = database  # libpq never expands PGDATABASE; the programs get conninfo() all the same
    env["PGSSLMODE"] = params.get("ssl_mode") or "prefer"
    env["PGCONNECT_TIMEOUT"] = str(connect_timeout(params))
    env["PGAPPNAME"] = application
    if params.get("login_password"):
        env["PGPASSWORD"] = params["login_password"]
    if params.get("ca_cert"):
        env["PGSSLROOTCERT"] = params["ca_cert"]
    return env


def import_psycopg2():
    try:
        import psycopg2
        import psycopg2.extensions
    except ImportError:
        raise RunbookError(
            "The Python library psycopg2 is not installed where this task runs.",
            hint="Install python3-psycopg2 (Debian/Ubuntu) or `pip install psycopg2-binary`.")
    return psycopg2


def describe_connection_error(params, database, error):
    """Turn libpq's message into what happened and what to do."""
    text = str(error).strip()
    lowered = text.lower()
    user = params.get("login_user") or "postgres"
    where = endpoint(params)
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return RunbookError(
            "PostgreSQL at {0} rejected the login of user '{1}': {2}".format(where, user, text.splitlines()[-1]),
            hint="Check login_password (or PGPASSWORD, ~/.pgpass) and login_user.", cause="authentication")
    if "does not exist" in lowered and "database" in lowered:
        return RunbookError(
            "Database {0} does not exist at {1}.".format(quoted(database), where),
            hint="Check the database name; list databases with `psql -l`.", cause="missing_database")
    if "role" in lowered and "does not exist" in lowered:
        return RunbookError(
            "User '{0}' does not exist at {1}.".format(user, where),
            hint="Check login_user.", cause="authentication")
    if "pg_hba.conf" in lowered:
        return RunbookError(
            "PostgreSQL at {0} refused the connection by its pg_hba.conf rules: {1}".format(where, text),
            hint="Allow this client in pg_hba.conf or connect as another user or from another host.",
            cause="authentication")
    if "timeout expired" in lowered:
        return RunbookError(
            "PostgreSQL at {0} did not complete the connection within connect_timeout ({1} s): {2}".format(
                where, connect_timeout(params), " ".join(text.split())),
            hint="Check that the server runs and answers (`pg_isready`), that login_host/login_port point at "
                 "PostgreSQL, and that no firewall drops the traffic.", cause="timeout")
    if ("could not connect" in lowered or "connection refused" in lowered
            or "could not translate host name" in lowered or "no such file or directory" in lowered):
        return RunbookError(
            "Cannot reach PostgreSQL at {0}: {1}".format(where, " ".join(text.split())),
            hint="Check that the server runs (`pg_isready`) and that login_host/login_port are right.",
            cause="unreachable")
    return RunbookError("Cannot connect to {0}: {1}".format(endpoint(params, database), text), cause="connect")


def connect(params, database, autocommit=True):
    """Open a psycopg2 connection, or raise RunbookError saying why not."""
    psycopg2 = import_psycopg2()
    try:
        conn = psycopg2.connect(**connection_kwargs(params, database))
    except psycopg2.Error as error:
        raise describe_connection_error(params, database, error)
    conn.autocommit = autocommit
    return conn


def interrupt(conn):
    """Cut a connection's socket from another thread, so a call blocked on it returns with an error at once.

    Unlike a cancel request, it needs no answer from the server: it works on a
    server that went silent. The connection is unusable afterwards.
    """
    import socket

    try:
        fd = conn.fileno()
    except Exception:  # noqa: BLE001 - already closed
        return
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


def quote_ident(name):
    """Quote an identifier for SQL; names never reach SQL any other way."""
    return '"' + name.replace('"', '""') + '"'


def server_info(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
                    "pg_is_in_recovery()")
        version, version_num, in_recovery = cur.fetchone()
    return {"version": version, "version_num": version_num, "in_recovery": in_recovery}


TABLES_SQL = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
ORDER BY 1, 2
"""

ESTIMATE_SQL = """
SELECT n.nspname, c.relname, GREATEST(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
ORDER BY 1, 2
"""


def table_row_counts(conn, exact=True):
    """Row count of every user table, keyed 'schema.table'.

    Exact counts scan each table; in the backup they run inside the snapshot
    pg_dump uses, so they describe exactly what the dump holds.
    """
    counts = {}
    with conn.cursor() as cur:
        if not exact:
            cur.execute(ESTIMATE_SQL)
            return dict(("{0}.{1}".format(s, t), int(n)) for s, t, n in cur.fetchall())
        cur.execute(TABLES_SQL)
        for schema, table in cur.fetchall():
            cur.execute("SELECT count(*) FROM {0}.{1}".format(quote_ident(schema), quote_ident(table)))
            counts["{0}.{1}".format(schema, table)] = int(cur.fetchone()[0])
    return counts
