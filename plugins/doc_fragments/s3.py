# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  s3_bucket:
    description:
      - Bucket that holds the backups. The bucket must exist; the collection never creates buckets.
      - When not set, backups stay in the local directory only.
    type: str
  s3_prefix:
    description: Key prefix inside the bucket, for example C(backups/db1). Sets live under C(PREFIX/DATABASE/BACKUP_ID/).
    type: str
    default: ''
  s3_endpoint_url:
    description:
      - URL of an S3-compatible store (MinIO, SeaweedFS, Ceph RGW, ...). Leave unset for AWS.
      - Falls back to E(AWS_ENDPOINT_URL_S3) or E(AWS_ENDPOINT_URL).
    type: str
  s3_region:
    description: Region of the bucket. Falls back to E(AWS_REGION) or E(AWS_DEFAULT_REGION).
    type: str
  aws_access_key:
    description:
      - Access key ID. Falls back to E(AWS_ACCESS_KEY_ID).
      - When no key is given, the usual AWS sources apply (environment, shared credentials file,
        O(aws_profile), instance or task role).
    type: str
  aws_secret_key:
    description: Secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY). Never shown in output.
    type: str
  aws_session_token:
    description: Session token for temporary credentials. Falls back to E(AWS_SESSION_TOKEN).
    type: str
  aws_profile:
    description: Named profile of the shared AWS credentials file. Falls back to E(AWS_PROFILE).
    type: str
  s3_sse:
    description: Server-side encryption of uploaded objects.
    type: str
    choices: [AES256, 'aws:kms']
  s3_sse_kms_key_id:
    description: KMS key for O(s3_sse=aws:kms); the bucket's default key when unset.
    type: str
  s3_storage_class:
    description: Storage class of uploaded objects, for example C(STANDARD_IA).
    type: str
  s3_part_size_mb:
    description: Part size of multipart uploads in MiB (raised automatically to stay under 10,000 parts).
    type: int
    default: 16
  s3_max_concurrency:
    description: Parts uploaded at once. Memory use is about O(s3_part_size_mb) times this.
    type: int
    default: 4
  s3_timeout:
    description:
      - Seconds of silence from the S3 store allowed for each request (the read timeout; connecting may take at
        most 10 of them). One operation, its retries included, never lasts longer than twice this; a retry only
        starts when it can end in time.
      - With the default a store that accepts connections and never answers fails the task within 60 seconds,
        and no operation waits more than 2 minutes. The message names the endpoint, the operation, the object
        and the deadline. A multipart upload that times out is aborted (one attempt, also bounded).
    type: int
    default: 60
requirements:
  - boto3 (Debian package python3-boto3) where the module runs, when O(s3_bucket) is set.
"""
