"""Real test infrastructure, started by the project itself.

One implementation each of: a PostgreSQL server with sample data, a local
S3-compatible store (SeaweedFS) and the Debian 12 systemd host image. The demo
(scripts/demo), the pytest suites and the benchmarks in bench/ all use these.
"""
import os

# Every process the harness, the tests, the demo and the benchmarks start inherits this:
# botocore never asks the instance-metadata address for credentials, so a "no
# credentials" path fails on this machine instead of sending traffic off it.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
