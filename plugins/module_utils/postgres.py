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
from .manifest import shown

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


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
        connect_timeout=dict(type="int", default=10),
    )


def _host(params):
    return params.get("login_host") or params.get("login_unix_socket") or ""


def endpoint(params, database=None):
    """A short human description of where we connect, for messages."""
    host = _host(params) or "the local socket"
    where = "{0}:{1}".format(host, params.get("login_port") or 5432)
    if database:
        where = "database {0} at {1}".format(shown(database), where)
    return where


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
        "connect_timeout": int(params.get("connect_timeout") or 10),
        "sslmode": params.get("ssl_mode") or "prefer",
        "application_name": "ops.runbook",
    }
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
    env["PGCONNECT_TIMEOUT"] = str(params.get("connect_timeout") or 10)
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
            "Database {0} does not exist at {1}.".format(shown(database), where),
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
    if ("could not connect" in lowered or "connection refused" in lowered or "timeout expired" in lowered
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
