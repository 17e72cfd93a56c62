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

MiB = 1024 * 1024
MAX_PARTS = 10000
TRANSIENT_CODES = frozenset([
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "ConnectionError",
    "InternalError", "ServiceUnavailable", "SlowDown", "Throttling", "ThrottlingException",
    "RequestThrottled", "TooManyRequests", "BandwidthLimitExceeded", "500", "502", "503", "504",
])
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


def join_key(*parts):
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class S3Store(object):
    """A bucket (and prefix) reached with one client and one error policy."""

    def __init__(self, params, attempts=5, base_delay=0.5, max_delay=8.0, sleep=time.sleep):
        boto3 = import_boto3()
        from botocore.config import Config

        self.bucket = params["s3_bucket"]
        self.prefix = (params.get("s3_prefix") or "").strip("/")
        self.endpoint_url = params.get("s3_endpoint_url") or None
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self.part_size = max(5, int(params.get("s3_part_size_mb") or 16)) * MiB
        self.max_concurrency = max(1, int(params.get("s3_max_concurrency") or 4))
        self.extra_args = {}
        if params.get("s3_sse"):
            self.extra_args["ServerSideEncryption"] = params["s3_sse"]
            if params["s3_sse"] == "aws:kms" and params.get("s3_sse_kms_key_id"):
                self.extra_args["SSEKMSKeyId"] = params["s3_sse_kms_key_id"]
        if params.get("s3_storage_class"):
            self.extra_args["StorageClass"] = params["s3_storage_class"]

        session_args = {}
        if params.get("aws_profile") and not params.get("aws_access_key"):
            session_args["profile_name"] = params["aws_profile"]
        if params.get("aws_access_key"):
            session_args["aws_access_key_id"] = params["aws_access_key"]
            session_args["aws_secret_access_key"] = params.get("aws_secret_key")
            session_args["aws_session_token"] = params.get("aws_session_token")
        config = Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=10, read_timeout=120,
            max_pool_connections=self.max_concurrency + 2,
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
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(1, self.attempts + 1):
            try:
                return getattr(self.client, operation)(**kwargs)
            except (ClientError, BotoCoreError) as error:
                if attempt == self.attempts or not self._transient(error):
                    raise self.describe(error, operation, key)
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                self._sleep(random.uniform(delay / 2, delay))

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

    def describe(self, error, operation, key=None):
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        target = self.where(key)
        if isinstance(error, NoCredentialsError):
            return RunbookError(
                "No AWS credentials were found for {0} on {1}.".format(operation, target),
                hint="Set aws_access_key/aws_secret_key, the AWS_* environment variables, "
                     "aws_profile, or an instance role.", cause="credentials")
        if isinstance(error, EndpointConnectionError):
            return RunbookError(
                "Cannot reach the S3 endpoint for {0} on {1} after {2} attempts: {3}".format(
                    operation, target, self.attempts, error),
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

    def check_bucket(self):
        """Fail early, with the real cause, before any data moves."""
        self._call("head_bucket", Bucket=self.bucket)

    def upload_file(self, path, key, metadata=None):
        """Stream a local file to `key` with SHA-256 checksums.

        Large files go as a multipart upload read part by part from disk (at
        most max_concurrency parts in memory); any failure aborts the upload,
        so nothing ever appears under `key` unless the whole file arrived.
        """
        size = os.path.getsize(path)
        extra = dict(self.extra_args)
        if metadata:
            extra["Metadata"] = metadata
        if size <= self.part_size:
            with open(path, "rb") as handle:
                body = handle.read()
            return self._call("put_object", key=key, Bucket=self.bucket, Key=key, Body=body,
                              ChecksumAlgorithm="SHA256", **extra)
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        upload = self._call("create_multipart_upload", key=key, Bucket=self.bucket, Key=key,
                            ChecksumAlgorithm="SHA256", **extra)
        upload_id = upload["UploadId"]
        local = threading.local()

        def send(number):
            offset = (number - 1) * part_size
            if not hasattr(local, "handle"):
                local.handle = open(path, "rb")
            local.handle.seek(offset)
            data = local.handle.read(part_size)
            reply = self._call("upload_part", key=key, Bucket=self.bucket, Key=key, UploadId=upload_id,
                               PartNumber=number, Body=data, ChecksumAlgorithm="SHA256")
            return {"PartNumber": number, "ETag": reply["ETag"], "ChecksumSHA256": reply.get("ChecksumSHA256")}

        numbers = range(1, -(-size // part_size) + 1)
        try:
            with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
                parts = list(pool.map(send, numbers))
            for part in parts:
                if part["ChecksumSHA256"] is None:
                    del part["ChecksumSHA256"]
            return self._call("complete_multipart_upload", key=key, Bucket=self.bucket, Key=key,
                              UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            self.abort_upload(key, upload_id)
            raise

    def abort_upload(self, key, upload_id):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            pass  # the original error is what the operator needs; S3 lifecycle rules reap leftovers

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        return self._call("put_object", key=key, Bucket=self.bucket, Key=key, Body=data,
                          ContentType=content_type, ChecksumAlgorithm="SHA256", **self.extra_args)

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
            raise self.describe(error, "get_object (reading)", key)
        finally:
            body.close()
