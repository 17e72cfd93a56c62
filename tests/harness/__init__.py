"""Real test infrastructure, started by the project itself.

One implementation each of: a PostgreSQL server with sample data, a local
S3-compatible store (SeaweedFS) and the Debian 12 systemd host image. The demo
(scripts/demo), the pytest suites and the benchmarks in bench/ all use these.
"""
