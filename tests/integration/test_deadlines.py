"""A server that accepts and never answers must never hang a job (issue 12, defect 4).

Real PostgreSQL and SeaweedFS from the harness, and tests/harness/blackhole.py: a
loopback server that accepts connections and never sends a byte (Blackhole), or
forwards to the real SeaweedFS until told to go silent (SilentProxy). Every bound
asserted here is computed from the small timeouts the test sets.
"""
import os
import time
import uuid

import psycopg2
import pytest
from conftest import DATABASE, local_entries, s3_keys

from ansible_collections.ops.runbook.plugins.module_utils import cert_check as certs, http_health as http_check, redis_flush, redis_health
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import LOCK_NAME, run_backup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.locking import HostLock
from ansible_collections.ops.runbook.plugins.module_utils.pg_health import run_health as pg_run_health
from ansible_collections.ops.runbook.plugins.module_utils.pg_restore import run_restore
from ansible_collections.ops.runbook.plugins.module_utils.s3_backup_verify import verify_backup
from harness.blackhole import Blackhole, SilentProxy

S3_TIMEOUT = 2
# One S3 operation lasts at most 2 x s3_timeout (+1 s for botocore's 100-continue wait); a failing
# backup makes a handful of them (the failed one, the abort, the clean-up), so this is generous.
S3_BOUND = 30


@pytest.fixture
def blackhole():
    with Blackhole() as server:
        yield server


def lock_is_free(backup_dir):
    """True when the host lock can be taken at once (lock_timeout 0)."""
    lock = HostLock(os.path.join(backup_dir, LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except RunbookError:
        return False
    lock.release()
    return True


def timed(call):
    start = time.monotonic()
    try:
        result = call()
    except RunbookError as error:
        return error, time.monotonic() - start
    return result, time.monotonic() - start


# -- S3 -------------------------------------------------------------------------------------------------

def test_backup_to_a_silent_s3_endpoint_fails_in_time_and_names_it(options, blackhole):
    options.update(s3_endpoint_url=blackhole.url, s3_timeout=S3_TIMEOUT)
    error, elapsed = timed(lambda: run_backup(options))
    assert isinstance(error, RunbookError)
    assert elapsed < S3_BOUND
    assert blackhole.accepted >= 1  # it really connected and waited
    assert error.details["cause"] == "timeout"
    message = str(error)
    assert blackhole.url in message and "head_bucket" in message and options["s3_bucket"] in message
    assert "s3_timeout={0}".format(S3_TIMEOUT) in message
    # it failed before the dump: nothing local, the lock free
    assert local_entries(options["backup_dir"]) == []
    assert not os.path.exists(options["backup_dir"]) or lock_is_free(options["backup_dir"])


def test_s3_silent_in_mid_upload_fails_in_time_releases_the_lock_and_reports_nothing(s3, options):
    """The store answers the preflight, then goes silent while the dump streams to it.

    pg_backup.py's semantics: the dump completed, so the local set is kept (and said so); nothing
    in S3 counts as a backup (no manifest, no object); the lock is free for the next run at once.
    """
    with SilentProxy(s3.s3_port, answer=1000) as proxy:
        events = []

        def log(message):
            events.append(message)
            if message.startswith("dumping"):
                proxy.go_silent()

        options.update(s3_endpoint_url=proxy.url, s3_timeout=S3_TIMEOUT, s3_part_size_mb=5)
        error, elapsed = timed(lambda: run_backup(options, log=log))
    assert isinstance(error, RunbookError), events
    assert elapsed < S3_BOUND + 15  # the dump itself takes a few seconds
    assert error.details["cause"] == "timeout"
    assert proxy.url in str(error)
    assert "was kept" in str(error)  # the local set is complete and says so
    assert s3_keys(s3, options["s3_bucket"], "it/") == []  # nothing in S3 that looks like a backup
    assert lock_is_free(options["backup_dir"])
    # the next run on the same backup_dir starts at once: no wait for a lock
    start = time.monotonic()
    again = run_backup(dict(options, s3_endpoint_url=s3.endpoint_url, lock_timeout=0))
    assert again["backup_id"]
    assert time.monotonic() - start < 60


def test_verify_against_a_silent_store_fails_in_time(options, blackhole):
    options.update(s3_endpoint_url=blackhole.url, s3_timeout=S3_TIMEOUT)
    result, elapsed = timed(lambda: verify_backup(options))
    # Verification reports an unreachable store as a failed check (its report is still written).
    assert not isinstance(result, RunbookError) and elapsed < S3_BOUND
    access = [c for c in result["checks"] if c["name"] == "access"]
    assert result["status"] == "fail" and access and access[0]["status"] == "fail"
    assert blackhole.url in access[0]["output"] and "timed out" in access[0]["output"]


def test_restore_against_a_silent_store_fails_in_time(options, blackhole):
    options.update(s3_endpoint_url=blackhole.url, s3_timeout=S3_TIMEOUT, target="deadline_never_created")
    error, elapsed = timed(lambda: run_restore(options))
    assert isinstance(error, RunbookError) and elapsed < S3_BOUND
    assert error.details["cause"] == "timeout" and blackhole.url in str(error)


# -- PostgreSQL -----------------------------------------------------------------------------------------

def test_backup_from_a_silent_postgres_fails_within_connect_timeout(options, blackhole):
    options.update(login_host="127.0.0.1", login_port=blackhole.port, connect_timeout=2)
    error, elapsed = timed(lambda: run_backup(options))
    assert isinstance(error, RunbookError)
    assert elapsed < 10
    assert error.details["cause"] == "timeout"
    assert "127.0.0.1:{0}".format(blackhole.port) in str(error) and "connect_timeout (2 s)" in str(error)
    assert local_entries(options["backup_dir"]) == []


def test_pg_health_of_a_silent_server_fails_its_reachable_check_in_time(blackhole):
    result, elapsed = timed(lambda: pg_run_health({"login_host": "127.0.0.1", "login_port": blackhole.port,
                                                   "connect_timeout": 2, "database": "postgres"}))
    assert elapsed < 10
    reachable = [c for c in result["checks"] if c["name"] == "reachable"]
    assert reachable and reachable[0]["status"] == "fail"
    assert "127.0.0.1:{0}".format(blackhole.port) in reachable[0]["output"]


@pytest.fixture
def locked_table(pg):
    """A table of bmidb held under ACCESS EXCLUSIVE by another session until the test ends."""
    name = "deadline_" + uuid.uuid4().hex[:8]
    pg.execute("CREATE TABLE {0} (id int)".format(name), database=DATABASE)
    holder = psycopg2.connect(host=pg.socket_dir, port=pg.port, user="postgres", dbname=DATABASE)
    holder.cursor().execute("LOCK TABLE {0} IN ACCESS EXCLUSIVE MODE".format(name))
    yield name
    holder.rollback()
    holder.close()
    pg.execute("DROP TABLE {0}".format(name), database=DATABASE)


def test_a_dump_waiting_behind_a_lock_fails_at_dump_lock_timeout(s3, options, locked_table):
    options.update(dump_lock_timeout=2)
    error, elapsed = timed(lambda: run_backup(options))
    assert isinstance(error, RunbookError)
    assert elapsed < 30
    assert error.details["cause"] == "lock_wait"
    assert "dump_lock_timeout (2 s)" in str(error) and locked_table in str(error)
    assert local_entries(options["backup_dir"]) == []  # the partial set is gone
    assert s3_keys(s3, options["s3_bucket"], "it/") == []
    assert lock_is_free(options["backup_dir"])


def test_the_job_deadline_kills_the_dump_removes_the_partial_set_and_releases_the_lock(s3, options, locked_table):
    options.update(dump_lock_timeout=600, job_timeout=3)
    error, elapsed = timed(lambda: run_backup(options))
    assert isinstance(error, RunbookError)
    assert elapsed < 20
    assert error.details["cause"] == "deadline"
    assert "job_timeout" in str(error) and "3 s" in str(error) and DATABASE in str(error)
    assert local_entries(options["backup_dir"]) == []
    assert s3_keys(s3, options["s3_bucket"], "it/") == []
    assert lock_is_free(options["backup_dir"])
    # no session of the killed pg_dump is left on the server, waiting to take locks
    waiting = [row for row in (pg_activity(options) or []) if row[0] == "ops.runbook pg_backup"]
    assert waiting == []


def pg_activity(options):
    conn = psycopg2.connect(host=options["login_host"], port=options["login_port"], user=options["login_user"],
                            password=options["login_password"], dbname="postgres")
    conn.autocommit = True  # pg_stat_activity is a snapshot per transaction: look afresh each time
    try:
        for _attempt in range(100):  # the server checks for a killed client every 5 s (PostgreSQL 14+)
            with conn.cursor() as cur:
                cur.execute("SELECT application_name, state, wait_event_type, query FROM pg_stat_activity "
                            "WHERE datname = %s "
                            "AND application_name = 'ops.runbook pg_backup'", (DATABASE,))
                rows = cur.fetchall()
            if not rows:
                return rows
            time.sleep(0.2)
        return rows
    finally:
        conn.close()


# -- Redis, HTTP, TLS -----------------------------------------------------------------------------------

def test_redis_health_of_a_silent_server_fails_within_its_timeout(blackhole):
    params = {"login_host": "127.0.0.1", "login_port": blackhole.port, "timeout": 2}
    error, elapsed = timed(lambda: redis_health.run_health(dict(params)))
    assert isinstance(error, RunbookError) and elapsed < 5
    assert error.details["cause"] == "timeout" and blackhole.address in str(error)
    result, elapsed = timed(lambda: redis_health.run_health(dict(params, fail_on="never")))
    assert elapsed < 5 and result["status"] == "fail"
    assert result["checks"][0]["status"] == "fail" and blackhole.address in result["checks"][0]["output"]


def test_redis_flush_on_a_silent_server_fails_within_its_timeout(blackhole):
    error, elapsed = timed(lambda: redis_flush.run_flush(
        {"login_host": "127.0.0.1", "login_port": blackhole.port, "timeout": 2, "scope": "db", "db": 0}))
    assert isinstance(error, RunbookError) and elapsed < 5
    assert blackhole.address in str(error)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http_health_of_a_silent_endpoint_fails_within_its_timeout(blackhole, scheme):
    url = "{0}://{1}/health".format(scheme, blackhole.address)
    result, elapsed = timed(lambda: http_check.run_http_health({"endpoints": [url], "timeout": 2}))
    assert elapsed < 5
    assert result["status"] == "fail"
    assert [c["status"] for c in result["checks"]] == ["fail"]
    assert url in result["checks"][0]["output"] and "within 2 s" in result["checks"][0]["output"]


def test_http_health_of_an_endpoint_that_trickles_its_body_fails_within_its_timeout():
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        conn, _peer = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                break
            stop.wait(0.5)
        conn.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:{0}/health".format(listener.getsockname()[1])
        result, elapsed = timed(lambda: http_check.run_http_health({"endpoints": [url], "timeout": 2}))
    finally:
        stop.set()
        listener.close()
        thread.join(5)
    assert elapsed < 6
    assert result["status"] == "fail" and "did not arrive within 2 s" in result["checks"][0]["output"]


def test_cert_check_of_a_silent_endpoint_fails_within_its_timeout(blackhole):
    result, elapsed = timed(lambda: certs.run_cert_check({"endpoints": [blackhole.address], "timeout": 2}))
    assert elapsed < 5
    assert result["status"] == "fail"
    assert blackhole.address in result["checks"][0]["output"] and "within 2 s" in result["checks"][0]["output"]


# -- a streamed multipart upload whose store goes silent -------------------------------------------------

def test_a_streamed_upload_whose_store_goes_silent_ends_in_time_and_leaves_no_object(s3, bucket, tmp_path):
    """GrowingFileUpload (the dump's upload while pg_dump writes): parts in flight, complete() and the
    abort all end within the S3 deadlines; the object never appears."""
    from ansible_collections.ops.runbook.plugins.module_utils.s3 import MiB, GrowingFileUpload, S3Store

    with SilentProxy(s3.s3_port, answer=1000) as proxy:
        params = dict(s3.s3_params(bucket, "it"), s3_endpoint_url=proxy.url, s3_timeout=S3_TIMEOUT,
                      s3_part_size_mb=5)
        store = S3Store(params)
        store.check_bucket()
        path = str(tmp_path / "dump")
        sent = []
        upload = GrowingFileUpload(store, store.key("db", "set", "dump"), 5 * MiB, on_first_part=lambda: sent.append(1))
        upload.start(path)
        with open(path, "wb") as out:
            out.write(os.urandom(6 * MiB))
            out.flush()
            deadline = time.monotonic() + 30
            while not sent and time.monotonic() < deadline:  # the first part is on its way
                time.sleep(0.05)
            assert sent, "the first part was never sent"
            proxy.go_silent()
            out.write(os.urandom(6 * MiB))
        upload.writer_finished(os.path.getsize(path))
        error, elapsed = timed(upload.complete)
    assert isinstance(error, RunbookError)
    assert elapsed < S3_BOUND
    assert error.details["cause"] in ("timeout", "connection_closed") and proxy.url in str(error)
    assert s3_keys(s3, bucket, "it/") == []


# -- the overall deadline of a verification and of a restore ---------------------------------------------

def test_a_verification_whose_restore_test_hangs_ends_at_its_deadline(pg, options):
    run_backup(options)
    opts = dict(options, restore_test=True, smoke_sql=["SELECT pg_sleep(120) IS NULL"], job_timeout=6)
    result, elapsed = timed(lambda: verify_backup(opts))
    assert not isinstance(result, RunbookError), result
    assert elapsed < 40
    restore = [c for c in result["checks"] if c["name"] == "restore"][0]
    assert restore["status"] == "fail" and result["status"] == "fail"
    assert restore["output"].startswith("The restore test did not finish: The verification of bmidb did not finish "
                                        "within its deadline of 6 s (job_timeout)"), restore["output"]
    # the scratch database is gone, even with its query cancelled under it
    assert pg.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ops_runbook_verify_%'") == []


def test_a_restore_whose_safety_backup_waits_behind_a_lock_ends_at_its_deadline(pg, options):
    run_backup(options)
    target = "deadline_target_" + uuid.uuid4().hex[:8]
    pg.execute('CREATE DATABASE "{0}" TEMPLATE "{1}"'.format(target, DATABASE))
    before = pg.execute("SELECT count(*) FROM measurements", database=target)
    holder = psycopg2.connect(host=pg.socket_dir, port=pg.port, user="postgres", dbname=target)
    holder.cursor().execute("LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE")
    try:
        # The safety backup of the target waits for the lock (dump_lock_timeout is long): the restore's own
        # deadline must end it, and the target must stay as it was.
        error, elapsed = timed(lambda: run_restore(dict(options, target=target, overwrite=True, job_timeout=8,
                                                        dump_lock_timeout=600)))
        assert isinstance(error, RunbookError), error
        assert elapsed < 40
        assert error.details["cause"] == "deadline" and "job_timeout" in str(error)
    finally:
        holder.rollback()
        holder.close()
    try:
        assert pg.execute("SELECT count(*) FROM measurements", database=target) == before
        assert pg.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ops_runbook_restore_%'") == []
        assert pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", params=(target + "_pre%",)) == []
    finally:
        pg.execute('DROP DATABASE "{0}" WITH (FORCE)'.format(target))
