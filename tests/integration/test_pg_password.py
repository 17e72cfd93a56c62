"""pg_password's engine and module against a real PostgreSQL that logs every statement.

Proves that the server accepts the verifier libpq computes here (a real SCRAM
login follows), for non-ASCII passwords and passwords with spaces and quotes
too, that a stored verifier is recognised, that the password never reaches the
server's log nor the module's output at -vvv, the login checks' verdicts, and
the refusals (missing role, no privilege, a policy breach, an iteration count
libpq cannot honour).
"""
import json
import tempfile
import uuid

import psycopg2
import psycopg2.extensions
import pytest
from conftest import ansible_module, module_result

from harness.postgres import PostgresServer

from ansible_collections.ops.runbook.plugins.module_utils import passwords
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_password import run_pg_password

ROLE = "bmi_app"
ADMIN = "rotator"
ADMIN_PASSWORD = "Rotator-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def server():
    """A server of its own: every statement is logged, so a password sent to it would show."""
    pg = PostgresServer(tempfile.mkdtemp(prefix="ops-runbook-it-pgpw-"),
                        settings={"log_statement": "all", "log_min_error_statement": "error"}).start()
    pg.execute('CREATE ROLE "{0}" LOGIN CREATEROLE PASSWORD %s'.format(ADMIN), params=(ADMIN_PASSWORD,))
    pg.execute("CREATE DATABASE appdb")
    yield pg
    pg.destroy()


@pytest.fixture
def role(server):
    """ROLE with a known old password; returns it."""
    old = "Old-" + uuid.uuid4().hex
    server.execute('DROP ROLE IF EXISTS "{0}"'.format(ROLE))
    # A plain PASSWORD %s would put the old password in the log this module keeps it out of.
    conn = server.connect()
    try:
        verifier = psycopg2.extensions.encrypt_password(old, ROLE, conn, "scram-sha-256")
    finally:
        conn.close()
    server.execute('CREATE ROLE "{0}" LOGIN PASSWORD %s'.format(ROLE), params=(verifier,))
    if int(server.execute("SHOW server_version_num")[0][0]) >= 160000:
        # From PostgreSQL 16, CREATEROLE alone no longer lets a role change other roles' passwords.
        server.execute('GRANT "{0}" TO "{1}" WITH ADMIN OPTION'.format(ROLE, ADMIN))
    return old


def superuser(server, **extra):
    params = server.conn_params("postgres")
    params.update(extra)
    return params


def as_admin(server, **extra):
    params = server.conn_params("postgres", user=ADMIN, password=ADMIN_PASSWORD)
    params.update(extra)
    return params


def logs_in(server, password):
    try:
        psycopg2.connect(host=server.host, port=server.port, user=ROLE, password=password, dbname="appdb").close()
    except psycopg2.OperationalError as error:
        assert "password authentication failed" in str(error)
        return False
    return True


def log_text(server):
    with open(server.log_file) as handle:
        return handle.read()


def stored(server):
    return server.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", params=(ROLE,))[0][0]


def test_a_superuser_sets_the_password_without_the_server_or_its_log_seeing_it(server, role):
    new = passwords.generate_password()
    result = run_pg_password(superuser(server, role=ROLE, password=new))
    assert result["changed"] and result["compared"] and result["server_logging"] == "suppressed"
    assert "the password never reached the server and statement logging was off" in result["msg"]
    assert logs_in(server, new) and not logs_in(server, role)
    assert stored(server).startswith("SCRAM-SHA-256$4096:")
    log = log_text(server)
    assert "SELECT current_setting('log_statement')" in log        # the log records statements ...
    assert new not in log and stored(server) not in log             # ... but neither the password nor its verifier
    assert "SET LOCAL log_statement = 'none'" in log
    assert result["warnings"] == []


def test_the_verifier_matches_what_libpq_computes(server, role):
    new = passwords.generate_password()
    conn = server.connect()
    try:
        from_libpq = psycopg2.extensions.encrypt_password(new, ROLE, conn, "scram-sha-256")
    finally:
        conn.close()
    assert passwords.verifier_matches(new, from_libpq, ROLE) is True
    assert passwords.verifier_matches(role, from_libpq, ROLE) is False


def test_the_same_password_again_changes_nothing(server, role):
    new = passwords.generate_password()
    run_pg_password(superuser(server, role=ROLE, password=new))
    before = stored(server)
    again = run_pg_password(superuser(server, role=ROLE, password=new))
    assert not again["changed"] and "already has this password" in again["msg"]
    assert stored(server) == before


def test_check_mode_reports_and_changes_nothing(server, role):
    before = stored(server)
    result = run_pg_password(superuser(server, role=ROLE, password=passwords.generate_password()), check_mode=True)
    assert result["changed"]
    assert result["msg"].startswith("Would set a new password for role 'bmi_app' at 127.0.0.1:{0}".format(server.port))
    assert stored(server) == before and logs_in(server, role)


def test_a_createrole_admin_sets_it_and_is_warned_that_the_log_records_the_verifier(server, role):
    new = passwords.generate_password()
    result = run_pg_password(as_admin(server, role=ROLE, password=new))
    assert result["changed"] and not result["compared"]
    assert result["server_logging"] == "as configured (log_statement=all)"
    assert any("records the new SCRAM verifier" in warning for warning in result["warnings"])
    assert logs_in(server, new)
    log = log_text(server)
    assert new not in log
    assert stored(server) in log        # the verifier, which the warning announced, never the password


def test_logins_are_proven_and_an_old_password_proven_dead(server, role):
    new = passwords.generate_password()
    run_pg_password(superuser(server, role=ROLE, password=new))
    app = superuser(server, role=ROLE, database="appdb", login_password="unused")
    accepted = run_pg_password(dict(app, password=new, state="accepted"))
    assert accepted == {"changed": False, "role": ROLE, "state": "accepted", "login": "accepted", "warnings": [],
                        "endpoint": "database 'appdb' at 127.0.0.1:{0}".format(server.port),
                        "msg": "Role 'bmi_app' logged in to database 'appdb' at 127.0.0.1:{0} with this "
                               "password.".format(server.port)}
    assert run_pg_password(dict(app, password=role, state="rejected"))["login"] == "refused"
    with pytest.raises(RunbookError, match="Role 'bmi_app' cannot log in to database 'appdb' .* password "
                                           "authentication failed") as refused:
        run_pg_password(dict(app, password=role, state="accepted"))
    assert "The password on the server differs from this one" in str(refused.value)
    with pytest.raises(RunbookError, match="still accepts this password for role 'bmi_app'") as alive:
        run_pg_password(dict(app, password=new, state="rejected"))
    assert "trust" in str(alive.value)
    assert role not in log_text(server) and new not in log_text(server)


def test_an_unreachable_server_proves_nothing_about_an_old_password(server, role):
    params = superuser(server, role=ROLE, password=role, state="rejected", login_port=1, connect_timeout=2)
    with pytest.raises(RunbookError, match="Cannot prove that PostgreSQL at 127.0.0.1:1 refuses this password"):
        run_pg_password(params)


def test_refusals_name_the_cause(server, role):
    with pytest.raises(RunbookError, match="Role 'nobody' does not exist at 127.0.0.1") as missing:
        run_pg_password(superuser(server, role="nobody", password=passwords.generate_password()))
    assert missing.value.details["cause"] == "missing_role"
    with pytest.raises(RunbookError, match="User 'bmi_app' may not change the password of role 'rotator'") as denied:
        run_pg_password(superuser(server, role=ADMIN, password=passwords.generate_password(),
                                  login_user=ROLE, login_password=role))
    assert "CREATEROLE" in str(denied.value)
    with pytest.raises(RunbookError, match="may not change the password of role 'postgres'"):
        run_pg_password(as_admin(server, role="postgres", password=passwords.generate_password()))
    with pytest.raises(RunbookError, match="breaks the password policy: it has 9 characters") as policy:
        run_pg_password(superuser(server, role=ROLE, password="short'one"))
    assert "short'one" not in str(policy.value)
    assert logs_in(server, role)


# Text libpq takes that env files cannot: non-ASCII letters (SASLprep'd by libpq), and spaces, quotes, a backslash
# and SQL punctuation, which must reach neither the SQL text nor the output.
UNUSUAL_PASSWORDS = ["pässwörd-ß-日本-Ünïcode", "with spaces 'and' \\ \"quotes\"; DROP ROLE x; --"]


def shown(password):
    """The forms a password would take in output: as it is, and escaped by a JSON writer."""
    return [password, json.dumps(password)[1:-1], json.dumps(password, ensure_ascii=False)[1:-1]]


@pytest.mark.parametrize("new", UNUSUAL_PASSWORDS)
def test_a_password_libpq_accepts_is_set_and_logs_in(server, role, new):
    result = run_pg_password(superuser(server, role=ROLE, password=new))
    assert result["changed"] and result["server_logging"] == "suppressed"
    assert logs_in(server, new) and not logs_in(server, role)
    assert not any(form in json.dumps(result, ensure_ascii=False) for form in shown(new))
    assert not any(form in log_text(server) for form in shown(new))


def test_a_non_ascii_password_is_stored_as_sasl_prep_makes_it(server, role):
    """libpq prepared it: the NFKC form without the soft hyphen logs in too, as it would from any libpq client."""
    run_pg_password(superuser(server, role=ROLE, password="pass\u00adword-\ufb01ne-日本語-long"))
    assert logs_in(server, "password-fine-日本語-long") and logs_in(server, "pass\u00adword-\ufb01ne-日本語-long")


def test_a_non_ascii_password_cannot_be_compared_so_it_is_set_again(server, role):
    new = UNUSUAL_PASSWORDS[0]
    run_pg_password(superuser(server, role=ROLE, password=new))
    again = run_pg_password(superuser(server, role=ROLE, password=new), check_mode=True)
    assert again["changed"] and not again["compared"]
    assert "cannot be compared with a password outside printable ASCII" in again["msg"]
    ascii_new = UNUSUAL_PASSWORDS[1]
    run_pg_password(superuser(server, role=ROLE, password=ascii_new))
    assert run_pg_password(superuser(server, role=ROLE, password=ascii_new))["changed"] is False


@pytest.mark.parametrize("new", UNUSUAL_PASSWORDS)
def test_the_module_never_shows_the_password_at_vvv(server, role, new):
    args = dict(superuser(server, role=ROLE, password=new))
    args.pop("login_db")
    planned = ansible_module("ops.runbook.pg_password", args, "-vvv", "--check")
    assert module_result(planned).get("changed") is True, module_result(planned).get("msg")
    assert logs_in(server, role) and not logs_in(server, new)
    run = ansible_module("ops.runbook.pg_password", args, "-vvv")
    result = module_result(run)
    assert result.get("changed") is True and not result.get("failed"), result.get("msg")
    assert logs_in(server, new)
    for output in (planned, run):
        assert not any(form in output.stdout + output.stderr for form in shown(new))


def test_an_iteration_count_libpq_cannot_honour_is_refused_before_any_change(server, role):
    before = stored(server)
    with pytest.raises(RunbookError, match="scram_iterations is 8192, but libpq .* computes verifiers with 4096 "
                                           "iterations for the PostgreSQL 15") as refused:
        run_pg_password(superuser(server, role=ROLE, password=passwords.generate_password(), scram_iterations=8192))
    assert refused.value.details["cause"] == "unsupported" and "Nothing was changed" in str(refused.value)
    assert stored(server) == before and logs_in(server, role)
