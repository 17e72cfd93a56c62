# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PostgreSQL role's password: set it without the server ever seeing it, and prove logins.

Runbook "Secret Rotation", step "Update database user". libpq turns the
password into its SCRAM-SHA-256 verifier where the module runs
(psycopg2.extensions.encrypt_password, as psql's \\password does), preparing it
with the same SASLprep it applies when a client logs in, so any password
libpq accepts, non-ASCII included, is stored as that client will present it.
Only the verifier is sent, in `ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`,
which the server stores as it is. So the password is in no server log, no
pg_stat_activity row and no pg_stat_statements entry. psycopg2's query
parameters would not keep it out: psycopg2 merges them into the SQL text on
the client, and ALTER ROLE takes no server-side parameters. The verifier
itself is a salted hash; when the login user is a superuser, statement
logging is switched off for that transaction (log_statement,
log_min_duration_statement, log_min_error_statement), so it does not reach
the log either.

States:
- present: the role's password is `password` (unchanged when the stored
  verifier already matches it, which a superuser can see);
- accepted: logging in as the role with `password` works (changes nothing);
- rejected: the server refuses `password` for the role (changes nothing), the
  proof that an old password is dead after a rotation.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from . import passwords, postgres
from .common import RunbookError

STATES = ("present", "accepted", "rejected")
DEFAULTS = {"state": "present", "database": "postgres", "scram_iterations": passwords.SCRAM_ITERATIONS}
MIN_SERVER_VERSION = 100000
# From PostgreSQL 16 the server reports scram_iterations to libpq 16 and later, which computes verifiers with it.
SCRAM_ITERATIONS_SERVER_VERSION = 160000
QUIET_LOGGING = (
    "SET LOCAL log_statement = 'none'",
    "SET LOCAL log_min_duration_statement = -1",
    "SET LOCAL log_min_error_statement = 'panic'",
)


def _options(params):
    opts = dict(DEFAULTS)
    opts.update(dict((key, value) for key, value in params.items() if value is not None))
    if opts["state"] not in STATES:
        raise RunbookError("state must be one of {0}, not {1!r}.".format(", ".join(STATES), opts["state"]),
                           cause="invalid")
    if not opts.get("role"):
        raise RunbookError("Name the role whose password this is (role).", cause="invalid")
    if not isinstance(opts.get("password"), str) or not opts["password"]:
        raise RunbookError("No password was given for role '{0}'.".format(opts["role"]), cause="invalid")
    return opts


def run_pg_password(params, check_mode=False, connect=postgres.connect):
    """The module's result for `params` (see DEFAULTS and the shared connection options)."""
    opts = _options(params)
    if opts["state"] == "present":
        return set_password(opts, check_mode, connect)
    return prove_login(opts, connect)


def _fetch_roles(cur, role):
    cur.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
    me_super, me_createrole = cur.fetchone()
    cur.execute("SELECT rolcanlogin, rolsuper, rolvaliduntil, rolvaliduntil < now() FROM pg_roles "
                "WHERE rolname = %s", (role,))
    row = cur.fetchone()
    return me_super, me_createrole, row


def _admin_of(cur, role):
    """PostgreSQL 16 and later: CREATEROLE changes only the roles the user holds ADMIN OPTION on."""
    cur.execute("SELECT pg_has_role(current_user, %s, 'MEMBER WITH ADMIN OPTION')", (role,))
    return cur.fetchone()[0]


def _warnings(role, row, me_super, log_statement):
    can_login, _target_super, valid_until, expired = row
    found = []
    if not can_login:
        found.append("Role '{0}' has NOLOGIN: nothing can log in with this password until it gets LOGIN.".format(role))
    if expired:
        found.append("Role '{0}' has VALID UNTIL {1}, which has passed: its logins fail whatever the password."
                     .format(role, valid_until))
    if not me_super and log_statement in ("ddl", "all", "mod"):
        found.append("log_statement is '{0}' and the login user is no superuser, so it cannot be switched off "
                     "for this statement: the server log records the new SCRAM verifier (a salted hash, not the "
                     "password).".format(log_statement))
    return found


def set_password(opts, check_mode, connect):
    role = opts["role"]
    problems = passwords.password_problems(opts["password"], portable=False)
    if problems:
        raise RunbookError("The new password of role '{0}' breaks the password policy: {1}.".format(
            role, "; ".join(problems)), hint="Choose another password, or leave it out to have one generated.",
            cause="policy")
    where = postgres.endpoint(opts)
    conn = connect(opts, opts["database"], autocommit=False)
    try:
        info = postgres.server_info(conn)
        if info["version_num"] < MIN_SERVER_VERSION:
            raise RunbookError("PostgreSQL {0} at {1} cannot store SCRAM-SHA-256 verifiers (PostgreSQL 10 and later "
                               "can).".format(info["version"], where), hint="Upgrade the server.",
                               cause="unsupported")
        if info["in_recovery"]:
            raise RunbookError("PostgreSQL at {0} is a standby (in recovery), so roles cannot change there.".format(
                where), hint="Point login_host at the primary; standbys receive the change by replication.",
                cause="read_only")
        with conn.cursor() as cur:
            me_super, me_createrole, row = _fetch_roles(cur, role)
            if row is None:
                raise RunbookError("Role '{0}' does not exist at {1}.".format(role, where),
                                   hint="Check the role name; this module changes passwords, it never creates "
                                        "roles.", cause="missing_role")
            if not (me_super or me_createrole) or (row[1] and not me_super) or (
                    not me_super and info["version_num"] >= 160000 and not _admin_of(cur, role)):
                raise RunbookError("User '{0}' may not change the password of role '{1}' at {2}.".format(
                    opts.get("login_user") or "postgres", role, where),
                    hint="Log in as a superuser, or as a role with CREATEROLE (and, from PostgreSQL 16, ADMIN "
                         "OPTION on '{0}': GRANT {1} TO the login user WITH ADMIN OPTION); superusers' passwords "
                         "need a superuser.".format(role, postgres.quote_ident(role)),
                    cause="permission")
            stored = None
            if me_super:
                cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
                stored = cur.fetchone()[0]
            cur.execute("SELECT current_setting('log_statement')")
            log_statement = cur.fetchone()[0]
        matches = passwords.verifier_matches(opts["password"], stored, role) if me_super else None
        result = {
            "changed": matches is not True,
            "role": role,
            "state": "present",
            "endpoint": where,
            "server_version": info["version"],
            "algorithm": "SCRAM-SHA-256",
            "iterations": opts["scram_iterations"],
            "compared": matches is not None,
            "server_logging": "suppressed" if me_super else "as configured (log_statement={0})".format(log_statement),
            "warnings": _warnings(role, row, me_super, log_statement),
        }
        if matches is True:
            result["msg"] = "Role '{0}' at {1} already has this password; nothing was changed.".format(role, where)
            return result
        # Computed in check mode too, so that a verifier libpq cannot make is refused before a real run.
        verifier = _verifier(conn, role, opts, info, where)
        if check_mode:
            result["msg"] = ("Would set a new password for role '{0}' at {1} as a SCRAM-SHA-256 verifier computed "
                             "here{2}.").format(role, where, _not_compared(me_super, matches))
            return result
        _alter(conn, role, verifier, me_super, where)
        result["msg"] = ("Set a new password for role '{0}' at {1}: only its SCRAM-SHA-256 verifier was sent, so "
                         "the password never reached the server{2}.").format(
                             role, where, " and statement logging was off for the change" if me_super else "")
        return result
    finally:
        conn.close()


def _not_compared(me_super, matches):
    if not me_super:
        return " (the stored password cannot be compared without superuser)"
    if matches is None:
        return " (the stored verifier cannot be compared with a password outside printable ASCII here)"
    return ""


def _verifier(conn, role, opts, info, where):
    """The SCRAM-SHA-256 verifier of the password, computed by libpq with opts' iteration count."""
    psycopg2 = postgres.import_psycopg2()
    encrypt = getattr(psycopg2.extensions, "encrypt_password", None)
    if encrypt is None:
        raise RunbookError("psycopg2 {0} cannot compute SCRAM-SHA-256 verifiers (psycopg2 2.8 and later "
                           "can).".format(psycopg2.__version__.split()[0]),
                           hint="Install psycopg2 2.8 or later where the module runs.", cause="missing_library")
    wanted = opts["scram_iterations"]
    try:
        if info["version_num"] >= SCRAM_ITERATIONS_SERVER_VERSION:
            with conn.cursor() as cur:
                cur.execute("SET LOCAL scram_iterations = %s", (wanted,))
        verifier = encrypt(opts["password"], role, conn, "scram-sha-256")
    except psycopg2.Error as error:
        raise RunbookError("libpq could not compute the SCRAM-SHA-256 verifier of the new password of role '{0}' for "
                           "PostgreSQL at {1}: {2}".format(role, where, " ".join(str(error).split())),
                           cause="refused")
    parsed = passwords.parse_scram_verifier(verifier)
    if parsed is None or parsed[0] != wanted:
        raise RunbookError(
            "scram_iterations is {0}, but libpq {1} where the module runs computes verifiers with {2} iterations for "
            "the PostgreSQL {3} server at {4}.".format(wanted, _libpq_version(psycopg2), parsed[0] if parsed else
                                                       "unknown", info["version"], where),
            hint="Leave scram_iterations at 4096, or use PostgreSQL 16 or later and libpq 16 or later where the "
                 "module runs (libpq then takes the iteration count from the session). Nothing was changed.",
            cause="unsupported")
    return verifier


def _libpq_version(psycopg2):
    number = psycopg2.extensions.libpq_version()
    return "{0}.{1}".format(number // 10000, number % 10000)


def _alter(conn, role, verifier, me_super, where):
    psycopg2 = postgres.import_psycopg2()
    # psycopg2 formats the statement with %-placeholders: a % in the role's name must be doubled.
    statement = "ALTER ROLE {0} PASSWORD %s".format(postgres.quote_ident(role).replace("%", "%%"))
    try:
        with conn.cursor() as cur:
            if me_super:
                for setting in QUIET_LOGGING:
                    cur.execute(setting)
            cur.execute(statement, (verifier,))
        conn.commit()
    except psycopg2.Error as error:
        conn.rollback()
        raise RunbookError("PostgreSQL at {0} refused to change the password of role '{1}': {2}".format(
            where, role, " ".join(str(error).split())), cause="refused")


def prove_login(opts, connect):
    """Log in as the role with the password: state accepted wants it to work, rejected wants a password failure."""
    role, state, database = opts["role"], opts["state"], opts["database"]
    login = dict(opts, login_user=role, login_password=opts["password"])
    server, where = postgres.endpoint(login), postgres.endpoint(login, database)
    result = {"changed": False, "role": role, "state": state, "endpoint": where, "warnings": []}
    try:
        conn = connect(login, database)
    except RunbookError as error:
        refused = "password authentication failed" in error.message.lower()
        if state == "rejected" and refused:
            result["login"] = "refused"
            result["msg"] = "PostgreSQL at {0} refuses this password for role '{1}'.".format(server, role)
            return result
        if state == "accepted":
            raise RunbookError("Role '{0}' cannot log in to {1} with this password: {2}".format(
                role, where, error.message), hint="The password on the server differs from this one, or pg_hba.conf "
                                                  "refuses the role from this host." if refused else error.hint,
                cause=error.details.get("cause"))
        raise RunbookError("Cannot prove that PostgreSQL at {0} refuses this password for role '{1}': {2}".format(
            server, role, error.message), hint="The login must reach the server and fail on the password itself.",
            cause=error.details.get("cause"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            user = cur.fetchone()[0]
    finally:
        conn.close()
    if state == "rejected":
        raise RunbookError("PostgreSQL at {0} still accepts this password for role '{1}'.".format(server, role),
                           hint="A pg_hba.conf rule with trust, or a connection pooler with its own password list, "
                                "lets the role in without this password being checked.", cause="still_accepted")
    result["login"] = "accepted"
    result["msg"] = "Role '{0}' logged in to {1} with this password.".format(user, where)
    return result
