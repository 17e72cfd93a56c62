"""Deadlines: the defaults bound silence to 2 minutes, retries never stack up past an operation's deadline,
and a job's deadline stops what it waits on (issue 12, defect 4). Constructed errors and a fake clock only;
the real hangs are in tests/integration/test_deadlines.py (the integration file; this one has its own basename)."""
import sys
import time

import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from ansible_collections.ops.runbook.plugins.module_utils import pg_backup as backup, postgres, redis, s3
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.deadline import Deadline
from ansible_collections.ops.runbook.plugins.module_utils.pipeline import run_to_file

PARAMS = {"s3_bucket": "backups", "s3_prefix": "db", "s3_endpoint_url": "http://127.0.0.1:9",
          "s3_region": "us-east-1", "aws_access_key": "k", "aws_secret_key": "s"}


class FakeClock(object):
    """Time that passes only when a call (the fake client) or a sleep spends it."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def timing_out_store(seconds_per_attempt, error, timeout=None):
    clock = FakeClock()
    params = dict(PARAMS, s3_timeout=timeout) if timeout is not None else dict(PARAMS)
    store = s3.S3Store(params, sleep=clock.sleep, clock=clock)
    calls = []

    def hang(**kwargs):
        calls.append(clock.now)
        clock.now += seconds_per_attempt
        raise error

    store.client.head_bucket = hang
    store.client.put_object = hang
    return store, clock, calls


def read_timeout():
    return ReadTimeoutError(endpoint_url="http://127.0.0.1:9")


def test_default_s3_timeouts_allow_at_most_two_minutes_of_silence():
    connect, read, operation = s3.s3_deadlines()
    assert (connect, read, operation) == (10, 60, 120)
    store = s3.S3Store(PARAMS)
    config = store.client.meta.config
    assert config.connect_timeout == 10 and config.read_timeout == 60
    # botocore itself never retries behind _call's back: one attempt per call.
    assert config.retries.get("total_max_attempts") == 1


def test_s3_timeout_sets_both_timeouts_and_the_operation_deadline():
    store = s3.S3Store(dict(PARAMS, s3_timeout=3))
    assert (store.connect_timeout, store.read_timeout, store.operation_deadline) == (3, 3, 6)
    assert store.client.meta.config.read_timeout == 3


@pytest.mark.parametrize("bad", [0, -5])
def test_s3_timeout_must_be_bounded(bad):
    with pytest.raises(RunbookError) as caught:
        s3.S3Store(dict(PARAMS, s3_timeout=bad))
    assert caught.value.details["cause"] == "invalid" and "s3_timeout" in str(caught.value)


def test_s3_timeout_is_an_option_of_every_s3_module():
    assert s3.s3_common_argument_spec()["s3_timeout"] == {"type": "int", "default": 60}


def test_a_silent_store_fails_the_operation_within_its_deadline_with_defaults():
    """Each attempt waits the whole read timeout: no retry may start that could not end in time."""
    store, clock, calls = timing_out_store(60, read_timeout())
    start = clock.now
    with pytest.raises(RunbookError) as caught:
        store._call("head_bucket", Bucket="backups")
    assert clock.now - start <= 120
    assert len(calls) == 1
    error = caught.value
    assert error.details["cause"] == "timeout"
    assert error.details["endpoint"] == "http://127.0.0.1:9" and error.details["operation"] == "head_bucket"
    message = str(error)
    assert "http://127.0.0.1:9" in message and "head_bucket" in message and "s3://backups/" in message
    assert "s3_timeout=60" in message and "120 s per operation" in message


def test_connect_timeouts_are_retried_but_never_past_the_operation_deadline():
    store, clock, calls = timing_out_store(10, ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"))
    start = clock.now
    with pytest.raises(RunbookError) as caught:
        store._call("put_object", key="db/x", Bucket="backups", Key="db/x", Body=b"")
    assert 1 < len(calls) <= store.attempts
    # the last attempt started early enough to end (connect + read timeout) within the deadline
    assert calls[-1] - start + store.connect_timeout + store.read_timeout <= store.operation_deadline
    assert clock.now - start <= store.operation_deadline
    assert caught.value.details["cause"] == "timeout" and "accepted no connection" in str(caught.value)
    assert "db/x" in str(caught.value)


@pytest.mark.parametrize("timeout", [1, 3, 10, 60, 300])
def test_the_operation_deadline_holds_for_any_s3_timeout(timeout):
    for per_attempt in (0.5, timeout / 3.0, timeout):
        store, clock, calls = timing_out_store(per_attempt, read_timeout(), timeout=timeout)
        start = clock.now
        with pytest.raises(RunbookError):
            store._call("head_bucket", Bucket="backups")
        assert clock.now - start <= store.operation_deadline + 1e-9


def test_the_job_deadline_stops_retries_and_is_named():
    store, clock, calls = timing_out_store(10, ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"))
    deadline = Deadline(None, "The backup of db")
    store.job_deadline = deadline
    deadline._expired.set()
    with pytest.raises(RunbookError) as caught:
        store._call("head_bucket", Bucket="backups")
    assert calls == []
    assert caught.value.details["cause"] == "deadline" and "job_timeout" in str(caught.value)
    assert "head_bucket" in str(caught.value)


def test_aborting_an_upload_is_one_bounded_attempt_that_never_raises():
    store, clock, calls = timing_out_store(60, read_timeout())
    store.client.abort_multipart_upload = store.client.head_bucket
    store.abort_upload("db/x", "upload-1")
    assert len(calls) == 1


def test_postgres_connections_have_a_bounded_connect_and_keepalives():
    kwargs = postgres.connection_kwargs({"login_host": "db.example", "login_port": 5433}, "app")
    assert kwargs["connect_timeout"] == 10
    assert kwargs["keepalives"] == 1
    # a dead peer is noticed after idle + interval * count seconds of silence: within 2 minutes
    assert kwargs["keepalives_idle"] + kwargs["keepalives_interval"] * kwargs["keepalives_count"] <= 120
    assert 0 < kwargs["tcp_user_timeout"] <= 120000
    env = postgres.libpq_environment({"connect_timeout": 4}, "app", base={})
    assert env["PGCONNECT_TIMEOUT"] == "4"


def test_postgres_connect_timeout_zero_would_wait_for_ever_and_is_refused():
    with pytest.raises(RunbookError) as caught:
        postgres.connection_kwargs({"connect_timeout": 0}, "app")
    assert "connect_timeout" in str(caught.value)


def test_a_postgres_connect_timeout_names_the_endpoint_and_the_option():
    error = postgres.describe_connection_error(
        {"login_host": "10.0.0.5", "login_port": 6432, "connect_timeout": 3}, "app",
        Exception('connection to server at "10.0.0.5", port 6432 failed: timeout expired'))
    assert error.details["cause"] == "timeout"
    assert "10.0.0.5:6432" in str(error) and "connect_timeout (3 s)" in str(error)


def test_redis_has_connect_and_read_timeouts():
    kwargs = redis.connection_kwargs({"login_host": "127.0.0.1"})
    assert kwargs["socket_connect_timeout"] == 10 and kwargs["socket_timeout"] == 10


def test_the_backup_job_deadline_and_dump_lock_timeout_are_bounded_by_default():
    opts = backup.normalize({"database": "app"})
    assert 0 < opts["job_timeout"] <= 24 * 3600
    assert 0 < opts["dump_lock_timeout"] <= opts["job_timeout"]
    for name in ("job_timeout", "dump_lock_timeout"):
        with pytest.raises(RunbookError) as caught:
            backup.normalize({"database": "app", name: 0})
        assert name in str(caught.value)


def test_a_deadline_calls_its_callbacks_once_and_at_once_after_expiry():
    fired = []
    deadline = Deadline(0.05, "The job")
    deadline.on_expiry(lambda: fired.append("a"))
    forgotten = deadline.on_expiry(lambda: fired.append("b"))
    deadline.forget(forgotten)
    time.sleep(0.3)
    assert fired == ["a"] and deadline.expired()
    deadline.on_expiry(lambda: fired.append("late"))
    assert fired == ["a", "late"]
    with pytest.raises(RunbookError) as caught:
        deadline.check("pg_dump")
    assert "0.05 s (job_timeout)" in str(caught.value) and "pg_dump" in str(caught.value)


def test_a_pipeline_past_its_deadline_is_killed_and_its_file_removed(tmp_path):
    dest = tmp_path / "out"
    deadline = Deadline(0.5, "The backup of app")
    start = time.monotonic()
    with pytest.raises(RunbookError) as caught:
        run_to_file([("pg_dump", [sys.executable, "-c", "import time; print('x', flush=True); time.sleep(60)"]),
                     ("cat", ["cat"])], str(dest), deadline=deadline)
    assert time.monotonic() - start < 10
    assert caught.value.details["cause"] == "deadline"
    assert "pg_dump | cat" in str(caught.value)
    assert not dest.exists()
