"""pg_terminate ends exactly the sessions its filters select, on a real server.

Sessions of every kind are held open (idle, idle in a transaction, an active
query, a superuser's, the standby's replication connection, the module's own)
and each test proves which ones are gone and which are still there.
"""
import time

import pytest
from conftest import APP_PASSWORD, APP_ROLE, DATABASE, ansible_module, eventually, module_result

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_terminate import end_sessions


@pytest.fixture
def held(sessions, health_standby):
    """One session of each kind, all at least a second old; returns {kind: pid}."""
    app = dict(user=APP_ROLE, password=APP_PASSWORD)
    pids = {
        "idle": sessions.pid(sessions.open(application="it-idle", **app)),
        "idle_in_transaction": sessions.pid(sessions.idle_in_transaction(application="it-txn", **app)),
        "superuser_idle": sessions.pid(sessions.open(application="it-admin")),
    }
    active = sessions.open(application="it-active", **app)
    sessions.run_in_background(active, "SELECT pg_sleep(600) /* nightly-report */")
    pids["active"] = sessions.pid(active)
    pids["young_idle"] = None
    assert eventually(lambda: sessions.server.execute(
        "SELECT state FROM pg_stat_activity WHERE pid = %s", params=(pids["active"],))[0][0] == "active")
    time.sleep(1.2)
    pids["young_idle"] = sessions.pid(sessions.open(application="it-young", **app))
    walsender = health_standby.primary.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'")
    assert walsender, "the standby is not streaming"
    pids["walsender"] = walsender[0][0]
    return pids


def terminate(server, check_mode=False, **filters):
    options = server.conn_params(DATABASE)
    options.update(database=DATABASE, wait_seconds=10, **filters)
    return end_sessions(options, check_mode=check_mode)


def alive(sessions, pids):
    return dict((kind, sessions.alive(pid)) for kind, pid in pids.items())


def test_check_mode_lists_exactly_the_selected_sessions_and_ends_none(health_primary, sessions, held):
    result = terminate(health_primary, check_mode=True, states=["idle"], min_age_minutes=0.01)
    assert sorted(s["pid"] for s in result["sessions"]) == [held["idle"]]
    assert [(s["pid"], s["reason"]) for s in result["protected"]] == [
        (held["superuser_idle"], "superuser session (allow_superuser is false)")]
    assert result["changed"] is True  # as Ansible's check mode reports a change it would make
    assert result["msg"].startswith("Would terminate 1 session(s): pid {}".format(held["idle"]))
    assert all(alive(sessions, held).values())


def test_idle_and_idle_in_transaction_sessions_older_than_the_limit(health_primary, sessions, held):
    result = terminate(health_primary, states=["idle", "idle in transaction"], min_age_minutes=0.01)
    ended = dict((s["pid"], s) for s in result["sessions"])
    assert sorted(ended) == sorted([held["idle"], held["idle_in_transaction"]])
    assert ended[held["idle"]]["user"] == APP_ROLE and ended[held["idle"]]["age_seconds"] >= 1
    assert ended[held["idle_in_transaction"]]["state"] == "idle in transaction"
    assert result["changed"] is True and result["lingering"] == []
    assert alive(sessions, held) == {"idle": False, "idle_in_transaction": False, "superuser_idle": True,
                                     "active": True, "young_idle": True, "walsender": True}


def test_active_query_by_pattern(health_primary, sessions, held):
    result = terminate(health_primary, states=["active"], query_pattern="nightly-report")
    assert [s["pid"] for s in result["sessions"]] == [held["active"]]
    assert "pg_sleep(600)" in result["sessions"][0]["query"]
    assert not sessions.alive(held["active"])
    assert sessions.alive(held["idle"]) and sessions.alive(held["walsender"])


def test_cancel_ends_the_query_and_keeps_the_session(health_primary, sessions, held):
    result = terminate(health_primary, action="cancel", application_names=["it-active"])
    assert [s["pid"] for s in result["sessions"]] == [held["active"]]
    assert eventually(lambda: sessions.server.execute(
        "SELECT state FROM pg_stat_activity WHERE pid = %s", params=(held["active"],))[0][0] == "idle")


def test_superuser_sessions_only_when_allowed(health_primary, sessions, held):
    kept = terminate(health_primary, application_names=["it-admin"])
    assert kept["sessions"] == [] and sessions.alive(held["superuser_idle"])
    ended = terminate(health_primary, application_names=["it-admin"], allow_superuser=True)
    assert [s["pid"] for s in ended["sessions"]] == [held["superuser_idle"]]
    assert ended["sessions"][0]["superuser"] is True
    assert not sessions.alive(held["superuser_idle"])


def test_replication_connections_and_its_own_session_are_never_ended(
        health_primary, health_standby, sessions, held):
    replication = terminate(health_primary, users=["replicator"], allow_superuser=True)
    assert replication["sessions"] == [] and sessions.alive(held["walsender"])
    own = terminate(health_primary, application_names=["ops.runbook"], allow_superuser=True)
    assert own["sessions"] == []
    assert [s["reason"] for s in own["protected"]] == ["this session"]
    assert health_standby.execute("SELECT status FROM pg_stat_wal_receiver")[0][0] == "streaming"


def test_user_and_database_filters_combine(health_primary, sessions, held):
    result = terminate(health_primary, check_mode=True, users=[APP_ROLE], databases=[DATABASE])
    assert sorted(s["pid"] for s in result["sessions"]) == sorted(
        held[k] for k in ("idle", "idle_in_transaction", "active", "young_idle"))
    assert terminate(health_primary, check_mode=True, users=[APP_ROLE], databases=["postgres"])["sessions"] == []


def test_an_empty_selection_is_refused(health_primary, held, sessions):
    with pytest.raises(RunbookError) as caught:
        terminate(health_primary)
    assert caught.value.details["cause"] == "invalid"
    assert "No session filter was given" in str(caught.value)
    assert all(alive(sessions, held).values())


def test_max_sessions_refuses_a_wider_selection_than_expected(health_primary, held, sessions):
    with pytest.raises(RunbookError) as caught:
        terminate(health_primary, users=[APP_ROLE], max_sessions=2)
    assert caught.value.details["cause"] == "too_many"
    assert "none was ended" in str(caught.value)
    assert all(alive(sessions, held).values())


def test_module_check_mode_then_for_real(health_primary, sessions, held):
    args = health_primary.conn_params(DATABASE, user=APP_ROLE, password=APP_PASSWORD)
    args.pop("login_db")
    args.update(states=["idle"], application_names=["it-idle", "it-admin"])

    planned = ansible_module("ops.runbook.pg_terminate", args, "--check")
    assert planned.returncode == 0, planned.stdout[-2000:]
    assert [s["pid"] for s in module_result(planned)["sessions"]] == [held["idle"]]
    assert sessions.alive(held["idle"])

    run = ansible_module("ops.runbook.pg_terminate", args)
    result = module_result(run)
    assert run.returncode == 0 and result["changed"] is True
    assert [s["pid"] for s in result["sessions"]] == [held["idle"]]
    assert not sessions.alive(held["idle"]) and sessions.alive(held["young_idle"])
    assert APP_PASSWORD not in run.stdout + run.stderr

    refused = ansible_module("ops.runbook.pg_terminate", dict((k, v) for k, v in args.items() if k.startswith("login")))
    assert refused.returncode != 0
    assert "No session filter was given" in module_result(refused)["msg"]
