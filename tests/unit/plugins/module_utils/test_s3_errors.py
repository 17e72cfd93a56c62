"""The S3 retry policy and error messages, on constructed botocore errors."""
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.s3 import S3Store


def client_error(code, status, operation="PutObject"):
    return ClientError({"Error": {"Code": code, "Message": code + " message"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.fixture
def store():
    sleeps = []
    s = S3Store({"s3_bucket": "backups", "s3_prefix": "db", "s3_endpoint_url": "http://127.0.0.1:9",
                 "s3_region": "us-east-1", "aws_access_key": "k", "aws_secret_key": "s"},
                sleep=sleeps.append)
    s.sleeps = sleeps
    return s


class Flaky(object):
    def __init__(self, errors, result="ok"):
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    def __call__(self, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def test_transient_errors_are_retried_with_growing_jittered_delays(store):
    flaky = Flaky([client_error("SlowDown", 503), client_error("InternalError", 500)])
    store.client.head_bucket = flaky
    assert store._call("head_bucket", Bucket="backups") == "ok"
    assert flaky.calls == 3
    assert 0.25 <= store.sleeps[0] <= 0.5 and 0.5 <= store.sleeps[1] <= 1.0


def test_permanent_errors_are_not_retried(store):
    flaky = Flaky([client_error("InvalidAccessKeyId", 403)])
    store.client.put_object = flaky
    with pytest.raises(RunbookError) as caught:
        store._call("put_object", key="db/x", Bucket="backups", Key="db/x", Body=b"")
    assert flaky.calls == 1
    assert caught.value.details["cause"] == "credentials"
    assert "aws_access_key" in str(caught.value)


def test_retries_stop_after_the_attempt_limit(store):
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    flaky = Flaky([error] * 10)
    store.client.head_bucket = flaky
    with pytest.raises(RunbookError) as caught:
        store._call("head_bucket", Bucket="backups")
    assert flaky.calls == store.attempts
    assert caught.value.details["cause"] == "unreachable"


@pytest.mark.parametrize("error,operation,cause,words", [
    (client_error("NoSuchBucket", 404), "put_object", "missing_bucket", "does not exist"),
    (client_error("404", 404, "HeadBucket"), "head_bucket", "missing_bucket", "does not exist"),
    (client_error("403", 403, "HeadBucket"), "head_bucket", "credentials", "rejected the credentials"),
    (client_error("SignatureDoesNotMatch", 403), "put_object", "credentials", "rejected the credentials"),
    (client_error("AccessDenied", 403), "put_object", "access_denied", "s3:PutObject"),
    (NoCredentialsError(), "put_object", "credentials", "No AWS credentials"),
])
def test_errors_name_the_cause_and_the_fix(store, error, operation, cause, words):
    described = store.describe(error, operation, "db/x")
    assert described.details["cause"] == cause
    assert words in str(described)
    assert "backups" in str(described)


class Recording(Flaky):
    def __call__(self, **kwargs):
        self.seen = getattr(self, "seen", []) + [kwargs]
        return super(Recording, self).__call__(**kwargs)


def test_an_existing_key_refused_by_a_conditional_write_names_the_key_and_the_other_writer(store):
    put = Recording([client_error("PreconditionFailed", 412)])
    store.client.put_object = put
    with pytest.raises(RunbookError) as caught:
        store.put_bytes("db/set/manifest.json", b"{}", exclusive=True)
    assert put.calls == 1, "a refusal is an answer, not a transient error"
    assert put.seen[0]["IfNoneMatch"] == "*"
    assert caught.value.details["cause"] == "exists" and caught.value.details["key"] == "db/set/manifest.json"
    assert "db/set/manifest.json" in str(caught.value) and "another writer holds this key" in str(caught.value)


def test_plain_writes_send_no_condition(store):
    put = Recording([])
    store.client.put_object = put
    store.put_bytes("db/x", b"")
    assert "IfNoneMatch" not in put.seen[0]


def test_a_store_without_conditional_writes_gets_the_write_without_them_from_then_on(store):
    put = Recording([client_error("NotImplemented", 501)])
    store.client.put_object = put
    assert store.put_bytes("db/x", b"", exclusive=True) == "ok"
    assert [("IfNoneMatch" in kwargs) for kwargs in put.seen] == [True, False]
    assert store.conditional_writes is False
    store.put_bytes("db/y", b"", exclusive=True)
    assert "IfNoneMatch" not in put.seen[-1]
