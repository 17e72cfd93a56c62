# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection talks to S3.

Every call goes through `S3Store._call`: one retry policy (jittered
exponential backoff on transient errors only) and one translation of errors
into messages that name the operation, the bucket and what to do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import random
import time
import threading
from concurrent.futures import ThreadPoolExecutor

from .common import RunbookError
from .ranges import Range

MiB = 1024 * 1024
MAX_PARTS = 10000
# The checksum S3 checks on every request body. It guards the transfer; the
# backup's own integrity is the manifest's SHA-256, which verification checks
# over the stored bytes. CRC32 costs about a seventh of SHA-256 where the CPU has
# no SHA instructions (25 ms against 185 ms per 64 MB here), and a backup pays
# it on every byte while pg_dump and the compressor want the same cores.
CHECKSUM = "CRC32"
CHECKSUM_FIELD = "Checksum" + CHECKSUM
TRANSIENT_CODES = frozenset([
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "ConnectionError",
    "InternalError", "ServiceUnavailable", "SlowDown", "Throttling", "ThrottlingException",
    "RequestThrottled", "TooManyRequests", "BandwidthLimitExceeded", "500", "502", "503", "504",
])
# Deadlines. A store that accepts connections and never answers must fail a
# task, not hang it: every request may wait at most S3_TIMEOUT seconds of
# silence (botocore's read timeout; connecting at most CONNECT_TIMEOUT of
# them), and one operation, its retries included, never outlives
# OPERATION_FACTOR times that: a retry starts only when it can still end in
# time. With the defaults a dead endpoint fails an operation within 60 s and
# no operation lasts longer than 120 s.
S3_TIMEOUT = 60
CONNECT_TIMEOUT = 10
OPERATION_FACTOR = 2
# Clean-up after a failure (removing what a failed run uploaded) still runs once
# a job's deadline has passed; each call stays bounded by the store's deadlines.
CLEANUP_OPERATIONS = frozenset(["delete_objects", "abort_multipart_upload"])
# How a store says it does not implement conditional writes (If-None-Match on PUT).
UNSUPPORTED_CODES = frozenset(["NotImplemented", "501"])
CREDENTIAL_CODES = frozenset([
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired",
    "AuthorizationHeaderMalformed", "InvalidClientTokenId",
])


def s3_common_argument_spec():
    """S3 options shared by every module that reads or writes backups in S3."""
    from ansible.module_utils.basic import env_fallback

    return dict(
        s3_bucket=dict(type="str"),
        s3_prefix=dict(type="str", default=""),
        s3_endpoint_url=dict(type="str", fallback=(env_fallback, ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])),
        s3_region=dict(type="str", fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
        aws_access_key=dict(type="str", no_log=False, fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
        aws_secret_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
        aws_session_token=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
        aws_profile=dict(type="str", fallback=(env_fallback, ["AWS_PROFILE"])),
        s3_sse=dict(type="str", choices=["AES256", "aws:kms"]),
        s3_sse_kms_key_id=dict(type="str", no_log=False),
        s3_storage_class=dict(type="str"),
        s3_part_size_mb=dict(type="int", default=16),
        s3_max_concurrency=dict(type="int", default=4),
        s3_timeout=dict(type="int", default=S3_TIMEOUT),
    )


def import_boto3():
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise RunbookError("The Python library boto3 is not installed where this task runs.",
                           hint="Install python3-boto3 (Debian/Ubuntu) or `pip install boto3`.")
    return boto3


# botocore reads and parses its JSON service models (about 0.2 s) once per
# loader; every store of a process shares one, so a restore that verifies
# several candidate sets, or a report over many databases, pays it once.
_SHARED = {}


def _botocore_session():
    import botocore.session

    session = botocore.session.get_session()
    loader = _SHARED.setdefault("data_loader", session.get_component("data_loader"))
    session.register_component("data_loader", loader)
    return session


def part_size_for(minimum, size):
    """The part size for an object of at most `size` bytes: `minimum`, or larger
    (in whole MiB) where that many parts would pass S3's limit of 10,000."""
    return max(minimum, -(-int(size) // (MAX_PARTS * MiB)) * MiB)


def s3_deadlines(timeout=None):
    """(connect timeout, read timeout, per-operation deadline) in seconds for s3_timeout `timeout`."""
    read = int(S3_TIMEOUT if timeout is None else timeout)
    if read < 1:
        raise RunbookError("s3_timeout must be at least 1 second, not {0}.".format(timeout),
                           hint="It is how many seconds of silence from the store are tolerated; "
                                "the default is {0}.".format(S3_TIMEOUT), cause="invalid")
    return min(CONNECT_TIMEOUT, read), read, OPERATION_FACTOR * read


# The S3 options' real ranges, checked by every engine's normalize (ranges.check_ranges).
# S3 takes parts of 5 MiB to 5 GiB; each part in flight is held in memory, and
# beyond 64 at once a host only spends memory and connections.
RANGES = {
    "s3_part_size_mb": Range(5, 5120, why="MiB, S3's limits for one part"),
    "s3_max_concurrency": Range(1, 64, why="parts in flight at once"),
    "s3_timeout": Range(1, 3600, why="seconds of silence from the store"),
}


def join_key(*parts):
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class S3Store(object):
    """A bucket (and prefix) reached with one client and one error policy."""

    def __init__(self, params, attempts=5, base_delay=0.5, max_delay=8.0, sleep=time.sleep, clock=time.monotonic):
        boto3 = import_boto3()
        from botocore.config import Config

        self.bucket = params["s3_bucket"]
        self.prefix = (params.get("s3_prefix") or "").strip("/")
        self.endpoint_url = params.get("s3_endpoint_url") or None
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self.connect_timeout, self.read_timeout, self.operation_deadline = s3_deadlines(params.get("s3_timeout"))
        # A job's overall deadline (an object with remaining() and check()), set by the job that uses the store.
        self.job_deadline = None
        self.part_size = max(5, int(params.get("s3_part_size_mb") or 16)) * MiB
        self.max_concurrency = max(1, int(params.get("s3_max_concurrency") or 4))
        self.extra_args = {}
        if params.get("s3_sse"):
            self.extra_args["ServerSideEncryption"] = params["s3_sse"]
            if params["s3_sse"] == "aws:kms" and params.get("s3_sse_kms_key_id"):
                self.extra_args["SSEKMSKeyId"] = params["s3_sse_kms_key_id"]
        if params.get("s3_storage_class"):
            self.extra_args["StorageClass"] = params["s3_storage_class"]
        # Whether to send If-None-Match: * on exclusive writes; off once the store said it cannot.
        self.conditional_writes = True

        session_args = {}
        if params.get("aws_profile") and not params.get("aws_access_key"):
            session_args["profile_name"] = params["aws_profile"]
        if params.get("aws_access_key"):
            session_args["aws_access_key_id"] = params["aws_access_key"]
            session_args["aws_secret_access_key"] = params.get("aws_secret_key")
            session_args["aws_session_token"] = params.get("aws_session_token")
        config = Config(
            # One attempt per call: _call is the one retry loop. ("max_attempts": 1 would mean one
            # retry inside botocore too, doubling every timeout behind _call's back.)
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            max_pool_connections=self.max_concurrency + 2,
            # Requests are signed with SigV4 anyway; this makes presigned URLs SigV4 too (AWS refuses SigV2 ones).
            signature_version="s3v4",
            s3={"addressing_style": "path"} if self.endpoint_url else {},
        )
        try:
            session = boto3.session.Session(botocore_session=_botocore_session(), **session_args)
            self.client = session.client("s3", endpoint_url=self.endpoint_url,
                                         region_name=params.get("s3_region") or None, config=config)
        except Exception as error:  # botocore raises several unrelated types for bad settings
            raise RunbookError("Cannot set up the S3 client: {0}".format(error),
                               hint="Check aws_profile, s3_region and s3_endpoint_url.", cause="s3_config")

    # -- the one retry and error policy ---------------------------------
    def where(self, key=None):
        target = "s3://{0}/{1}".format(self.bucket, key or self.prefix)
        if self.endpoint_url:
            target += " at {0}".format(self.endpoint_url)
        return target

    def _call(self, operation, key=None, **kwargs):
        """Run one client operation under the retry policy and the deadlines.

        Transient errors (timeouts included) are retried with jittered backoff,
        but a retry starts only if it can end, connect and read timeouts spent,
        within operation_deadline seconds of the first attempt (and before the
        job's deadline): retries of timeouts never stack up past it.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        started = self._clock()
        attempt_bound = self.connect_timeout + self.read_timeout
        job_deadline = None if operation in CLEANUP_OPERATIONS else self.job_deadline
        for attempt in range(1, self.attempts + 1):
            if job_deadline is not None:
                job_deadline.check("S3 {0} on {1}".format(operation, self.where(key)))
            try:
                return getattr(self.client, operation)(**kwargs)
            except (ClientError, BotoCoreError) as error:
                if attempt == self.attempts or not self._transient(error):
                    raise self.describe(error, operation, key, attempt, self._clock() - started)
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                delay = random.uniform(delay / 2, delay)
                elapsed = self._clock() - started
                late = elapsed + delay + attempt_bound > self.operation_deadline
                if job_deadline is not None and job_deadline.remaining() < delay + attempt_bound:
                    late = True
                if late:
                    raise self.describe(error, operation, key, attempt, elapsed)
                self._sleep(delay)

    @staticmethod
    def _transient(error):
        from botocore.exceptions import (ClientError, ConnectionClosedError, ConnectTimeoutError,
                                         EndpointConnectionError, ReadTimeoutError)

        if isinstance(error, (EndpointConnectionError, ConnectionClosedError,
                              ConnectTimeoutError, ReadTimeoutError)):
            return True
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            return code in TRANSIENT_CODES or status in TRANSIENT_CODES
        return False

    def describe(self, error, operation, key=None, attempts=None, elapsed=None):
        from botocore.exceptions import (ClientError, ConnectionClosedError, ConnectTimeoutError,
                                         EndpointConnectionError, NoCredentialsError, ReadTimeoutError)

        target = self.where(key)
        attempts = self.attempts if attempts is None else attempts
        tries = "{0} attempt{1}".format(attempts, "" if attempts == 1 else "s")
        if elapsed is not None:
            tries += " in {0:.0f} s".format(elapsed)
        if isinstance(error, (ConnectTimeoutError, ReadTimeoutError)) or _socket_timeout(error):
            return RunbookError(
                "S3 {0} on {1} timed out: the store {2} within the deadline "
                "(connect {3} s, {4} s of silence per request, {5} s per operation; s3_timeout={4}) "
                "after {6}.".format(
                    operation, target,
                    "accepted no connection" if isinstance(error, ConnectTimeoutError) else "sent no answer",
                    self.connect_timeout, self.read_timeout, self.operation_deadline, tries),
                hint="Check that the S3 endpoint ({0}) is up and answers; raise s3_timeout only if it is "
                     "merely slow.".format(self.endpoint_url or "AWS"),
                cause="timeout", endpoint=self.endpoint_url, operation=operation, key=key,
                deadline=self.operation_deadline)
        if isinstance(error, NoCredentialsError):
            return RunbookError(
                "No AWS credentials were found for {0} on {1}.".format(operation, target),
                hint="Set aws_access_key/aws_secret_key, the AWS_* environment variables, "
                     "aws_profile, or an instance role.", cause="credentials")
        if isinstance(error, ConnectionClosedError):
            return RunbookError(
                "S3 {0} on {1} failed after {2}: the connection to the store broke before it answered (it closed "
                "the connection, or took no data for {3} s): {4}".format(
                    operation, target, tries, self.connect_timeout, error),
                hint="Check that the S3 endpoint ({0}) is up and answers.".format(self.endpoint_url or "AWS"),
                cause="connection_closed", endpoint=self.endpoint_url, operation=operation, key=key)
        if isinstance(error, EndpointConnectionError):
            return RunbookError(
                "Cannot reach the S3 endpoint for {0} on {1} after {2}: {3}".format(
                    operation, target, tries, error),
                hint="Check s3_endpoint_url / s3_region and the network path to the store.",
                cause="unreachable")
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = error.response.get("Error", {}).get("Message") or str(error)
            if code in ("NoSuchBucket",) or (operation == "head_bucket" and status == 404):
                return RunbookError(
                    "The S3 bucket '{0}' does not exist{1}.".format(
                        self.bucket, " at " + self.endpoint_url if self.endpoint_url else ""),
                    hint="Create it first or fix s3_bucket; this collection never creates buckets.",
                    cause="missing_bucket")
            if code in CREDENTIAL_CODES or (operation == "head_bucket" and status == 403 and code in ("403", "")):
                return RunbookError(
                    "S3 rejected the credentials for {0} on {1} ({2}).".format(operation, target, code or status),
                    hint="Check aws_access_key and aws_secret_key (or the profile/role in use).",
                    cause="credentials")
            if code == "PreconditionFailed" or status == 412:
                return RunbookError(
                    "S3 refused {0} on {1}: the object already exists, so another writer holds this key "
                    "({2}).".format(operation, target, code or status),
                    hint="Nothing of the other writer's was overwritten. Look at who else backs up under this "
                         "prefix; run again for a set of a new id.", cause="exists", key=key)
            if code == "AccessDenied" or status == 403:
                return RunbookError(
                    "S3 denied {0} on {1}: {2}".format(operation, target, text),
                    hint="Grant the credentials s3:ListBucket, s3:GetObject, s3:PutObject and "
                         "s3:DeleteObject on the bucket and prefix.", cause="access_denied")
            return RunbookError("S3 {0} on {1} failed: {2} {3}".format(operation, target, code, text),
                                cause="s3_error", code=code)
        return RunbookError("S3 {0} on {1} failed: {2}".format(operation, target, error), cause="s3_error")

    # -- operations ------------------------------------------------------
    def key(self, *parts):
        return join_key(self.prefix, *parts)

    def _exclusive_args(self, exclusive):
        return {"IfNoneMatch": "*"} if exclusive and self.conditional_writes else {}

    def _write(self, operation, key, exclusive, **kwargs):
        """put_object / complete_multipart_upload; with `exclusive`, only if `key` does not exist yet.

        Exclusive writes send If-None-Match: * (AWS S3, MinIO, SeaweedFS refuse with 412,
        described as cause "exists"). A store that rejects the header as not implemented
        gets the write without it, and this store stops sending it: the backup's read-back
        of its manifest is what then tells a replaced set from ours.
        """
        try:
            return self._call(operation, key=key, **dict(kwargs, **self._exclusive_args(exclusive)))
        except RunbookError as error:
            if not (exclusive and self.conditional_writes and error.details.get("code") in UNSUPPORTED_CODES):
                raise
        self.conditional_writes = False
        return self._call(operation, key=key, **kwargs)

    def check_bucket(self):
        """Fail early, with the real cause, before any data moves."""
        self._call("head_bucket", Bucket=self.bucket)

    def upload_file(self, path, key, metadata=None, exclusive=False):
        """Stream a local file to `key` with S3 checksums (CHECKSUM) on every request.

        Large files go as a multipart upload read part by part from disk (at
        most max_concurrency parts in memory); any failure aborts the upload,
        so nothing ever appears under `key` unless the whole file arrived.
        With `exclusive`, an existing object under `key` is never replaced (see _write).
        """
        size = os.path.getsize(path)
        extra = self._object_args(metadata)
        if size <= self.part_size:
            with open(path, "rb") as handle:
                body = handle.read()
            return self._write("put_object", key, exclusive, Bucket=self.bucket, Key=key, Body=body,
                               ChecksumAlgorithm=CHECKSUM, **extra)
        part_size = part_size_for(self.part_size, size)
        with open(path, "rb") as handle:
            upload = MultipartUpload(self, key, handle.fileno(), metadata, exclusive=exclusive)
            try:
                for number in range(1, -(-size // part_size) + 1):
                    offset = (number - 1) * part_size
                    upload.send(number, offset, min(part_size, size - offset))
                    if upload.failed():
                        break
                return upload.complete()
            except BaseException:
                upload.abort()
                raise

    def _object_args(self, metadata=None):
        extra = dict(self.extra_args)
        if metadata:
            extra["Metadata"] = metadata
        return extra

    def abort_upload(self, key, upload_id):
        """Best effort, one attempt: it ends within connect + read timeout even when the store is silent."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            pass  # the original error is what the operator needs; S3 lifecycle rules reap leftovers

    def put_bytes(self, key, data, content_type="application/octet-stream", exclusive=False):
        return self._write("put_object", key, exclusive, Bucket=self.bucket, Key=key, Body=data,
                           ContentType=content_type, ChecksumAlgorithm=CHECKSUM, **self.extra_args)

    def url(self, key):
        """The object's https (or endpoint) URL: path style on an S3-compatible endpoint, as the client addresses it."""
        from urllib.parse import quote

        if self.endpoint_url:
            return "{0}/{1}/{2}".format(self.endpoint_url.rstrip("/"), self.bucket, quote(key))
        return "https://{0}.s3.amazonaws.com/{1}".format(self.bucket, quote(key))

    def presigned_url(self, key, seconds):
        """A URL that lets anyone holding it read `key` for `seconds`; signed locally, no request is made."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                      ExpiresIn=int(seconds))
        except (ClientError, BotoCoreError) as error:
            raise self.describe(error, "generate_presigned_url", key, attempts=1)

    def get_bytes(self, key):
        reply = self._call("get_object", key=key, Bucket=self.bucket, Key=key)
        return reply["Body"].read()

    def head(self, key):
        return self._call("head_object", key=key, Bucket=self.bucket, Key=key)

    def list_objects(self, prefix):
        """Every object under `prefix` (a full key prefix), page by page."""
        token = None
        while True:
            kwargs = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", key=prefix, **kwargs)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def delete_keys(self, keys):
        keys = list(keys)
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            reply = self._call("delete_objects", key=batch[0], Bucket=self.bucket,
                               Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            errors = reply.get("Errors") or []
            if errors:
                raise RunbookError("S3 refused to delete {0} object(s), first {1}: {2}".format(
                    len(errors), errors[0].get("Key"), errors[0].get("Message")), cause="s3_error")

    def iter_object(self, key, chunk_size=MiB):
        """An object's bytes as a stream of chunks (never whole in memory)."""
        from botocore.exceptions import BotoCoreError

        reply = self._call("get_object", key=key, Bucket=self.bucket, Key=key)
        body = reply["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        except BotoCoreError as error:
            raise self.describe(error, "get_object (reading)", key, attempts=1)
        finally:
            body.close()


def _socket_timeout(error):
    """True for a botocore error caused by a socket timeout that botocore did not class as one."""
    import socket

    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        return False  # the store answered
    cause = getattr(error, "kwargs", {}).get("error")
    return isinstance(cause, (socket.timeout, TimeoutError)) or "timed out" in str(error).lower()


class MultipartUpload(object):
    """One multipart upload whose parts are read from a file descriptor.

    The upload is created with its first part. `send` blocks while
    max_concurrency parts are in flight, so no more parts than that are ever
    in memory; a pool of as many threads reads and sends them. End it with
    complete(), or abort() on any failure (abort is a no-op once it has ended).
    """

    def __init__(self, store, key, fd, metadata=None, in_flight=None, exclusive=False):
        self.store = store
        self.key = key
        self.fd = fd
        self.metadata = metadata
        self.exclusive = exclusive
        self.upload_id = None
        self.error = None
        self._futures = []
        self._limit = max(1, min(in_flight or store.max_concurrency, store.max_concurrency))
        self._slots = threading.Semaphore(self._limit)
        self._pool = None
        self._ended = False

    def send(self, number, offset, length):
        """Queue part `number`: `length` bytes at `offset` of the file."""
        store = self.store
        if self.upload_id is None:
            reply = store._call("create_multipart_upload", key=self.key, Bucket=store.bucket, Key=self.key,
                                ChecksumAlgorithm=CHECKSUM, **store._object_args(self.metadata))
            self.upload_id = reply["UploadId"]
            self._pool = ThreadPoolExecutor(max_workers=store.max_concurrency)
        self._slots.acquire()
        if self.error is not None:
            self._slots.release()
            return  # a part failed while this one waited for a slot: sending more only delays the error
        try:
            future = self._pool.submit(self._send_part, number, offset, length)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda done: self._slots.release())
        self._futures.append(future)

    def allow(self, in_flight):
        """Let up to `in_flight` parts (at most max_concurrency) be in flight from now on."""
        while self._limit < min(in_flight, self.store.max_concurrency):
            self._limit += 1
            self._slots.release()

    def _send_part(self, number, offset, length):
        store = self.store
        try:
            data = os.pread(self.fd, length, offset)
            if len(data) != length:
                raise RunbookError("{0} bytes of part {1} of {2} could not be read: the file is shorter than "
                                   "it was when the part was queued.".format(length, number, self.key),
                                   cause="io")
            reply = store._call("upload_part", key=self.key, Bucket=store.bucket, Key=self.key,
                                UploadId=self.upload_id, PartNumber=number, Body=data, ChecksumAlgorithm=CHECKSUM)
        except BaseException as error:
            if self.error is None:
                self.error = error
            raise
        part = {"PartNumber": number, "ETag": reply["ETag"]}
        if reply.get(CHECKSUM_FIELD):
            part[CHECKSUM_FIELD] = reply[CHECKSUM_FIELD]
        return part

    def failed(self):
        return self.error is not None

    def complete(self):
        """Wait for every part, then make the object appear; raises the first part's error."""
        for future in self._futures:
            if future.exception() is not None:
                break
        if self.error is not None:
            raise self.error
        parts = sorted((future.result() for future in self._futures), key=lambda part: part["PartNumber"])
        self._pool.shutdown()
        args = dict(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts})
        try:
            if self.exclusive:
                reply = self.store._write("complete_multipart_upload", self.key, True, **args)
            else:
                reply = self.store._call("complete_multipart_upload", key=self.key, **args)
        except RunbookError:
            self.abort()  # a refused completion leaves the upload open: drop its parts
            raise
        self._ended = True
        return reply

    def abort(self):
        """Drop queued parts, wait for those in flight, and abort the upload in S3."""
        if self._ended:
            return
        self._ended = True
        for future in self._futures:
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown()
        if self.upload_id is not None:
            self.store.abort_upload(self.key, self.upload_id)


WAIT, SEND, DONE, OUTGROWN = "wait", "send", "done", "outgrown"


def part_span(number, part_size, available, final_size=None, max_parts=MAX_PARTS):
    """What to do about part `number` of a file that may still be growing.

    `available` is how many bytes the file holds now; `final_size` stays None
    until the writer has finished. Returns (state, offset, length):
    SEND once the file holds the whole part (or, for the last part, once the
    writer finished), WAIT before that, DONE when the file has no such part,
    OUTGROWN when the file is larger than `max_parts` parts can hold (the last
    allowed part is sent only once the writer finished and the rest fits).
    """
    offset = (number - 1) * part_size
    if final_size is None:
        if number >= max_parts:
            return (OUTGROWN if available > offset + part_size else WAIT), offset, 0
        if available >= offset + part_size:
            return SEND, offset, part_size
        return WAIT, offset, 0
    if offset >= final_size:
        return DONE, offset, 0
    if number >= max_parts and final_size > offset + part_size:
        return OUTGROWN, offset, 0
    return SEND, offset, min(part_size, final_size - offset)


class GrowingFileUpload(object):
    """Upload a file to `key` while another process is still writing it.

    Call start(path) before the writer starts, writer_finished(size) once it
    has written every byte, then complete() to make the object appear; call
    abort() on any failure (safe at any point, a no-op after complete()). A
    thread polls the file's size and sends a part only once the file holds all
    of it; the multipart upload starts with the first whole part, so a file
    smaller than one part causes no S3 traffic at all. An S3 error never
    disturbs the writer: the thread stops sending and complete() raises it.
    While the writer runs (pg_dump and its compressor, with memory of their
    own), at most `in_flight_while_writing` parts are in memory; once it has
    finished, max_concurrency, as upload_file sends.
    complete() returns False when nothing was streamed (the file fit in one
    part, or outgrew the part size chosen before its size was known): the
    caller then uploads the finished file with upload_file.
    """

    def __init__(self, store, key, part_size, metadata=None, on_first_part=None, poll_interval=0.05,
                 in_flight_while_writing=2, exclusive=False):
        self.in_flight_while_writing = in_flight_while_writing
        self.exclusive = exclusive
        self.store = store
        self.key = key
        self.part_size = part_size
        self.metadata = metadata
        self.on_first_part = on_first_part
        self.poll_interval = poll_interval
        self.error = None
        self.outgrown = False
        self.parts_sent = 0  # handed to the upload so far; read by progress reports
        self._path = None
        self._fd = None
        self._final_size = None
        self._upload = None
        self._thread = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()

    def start(self, path):
        self._path = path
        self._thread = threading.Thread(target=self._pump, name="s3-upload " + self.key)
        self._thread.daemon = True
        self._thread.start()

    def writer_finished(self, size):
        """The file is whole at `size` bytes: the rest, the last part included, may go."""
        self._open(required=True)
        with self._lock:
            self._final_size = size
        self._wake.set()

    def _open(self, required=False):
        """The file's descriptor, opened once: renaming its directory later does not disturb it."""
        with self._lock:
            if self._fd is None:
                try:
                    self._fd = os.open(self._path, os.O_RDONLY)
                except FileNotFoundError:
                    if required:
                        raise
                    return None
            return self._fd

    def _pump(self):
        number = 1
        try:
            while not self._stop.is_set():
                with self._lock:
                    final_size = self._final_size
                fd = self._open()
                available = os.fstat(fd).st_size if fd is not None else 0
                state, offset, length = part_span(number, self.part_size, available, final_size)
                if state == WAIT:
                    self._wake.wait(self.poll_interval)
                    continue
                if state != SEND:
                    self.outgrown = state == OUTGROWN
                    return
                if self._upload is None:
                    self._upload = MultipartUpload(self.store, self.key, fd, self.metadata,
                                                   in_flight=self.in_flight_while_writing, exclusive=self.exclusive)
                if final_size is not None:
                    self._upload.allow(self.store.max_concurrency)
                self._upload.send(number, offset, length)
                if number == 1 and self.on_first_part:
                    self.on_first_part()
                if self._upload.failed():
                    return
                self.parts_sent = number
                number += 1
        except BaseException as error:  # noqa: BLE001 - raised by complete(), once the writer has finished
            self.error = error

    def complete(self):
        """Finish sending and make the object appear; False when nothing was streamed."""
        try:
            self._thread.join()
            if self.error is not None:
                raise self.error
            if self._upload is None or self.outgrown:
                self.abort()
                return False
            self._upload.complete()
            return True
        except BaseException:
            self.abort()
            raise
        finally:
            self._close()

    def abort(self):
        """Stop the thread, drop what was sent, and release the file."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        if self._upload is not None:
            self._upload.abort()
        self._close()

    def _close(self):
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
