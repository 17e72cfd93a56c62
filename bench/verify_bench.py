"""Verification benchmark: s3_backup_verify's engine against a plain streamed download and decompression.

One run on this machine, against the real parts of tests/harness (a PostgreSQL
cluster and a SeaweedFS S3 store on free loopback ports): a database is backed
up once to S3 with the collection's engine, then, round-robin, `--repeat`
times each:

  baseline   boto3's get_object of the dump, streamed in 1 MiB chunks into
             `zstd -dc > /dev/null`: the least any verification must do to
             read every byte;
  verify     verify_backup() with the checksum and integrity checks (the
             SHA-256 of every byte, full decompression and `pg_restore --list`),
             no restore test, as the verify_backups.yml playbook runs it with
             pg_backup_verify_restore_test=false.

It prints both times, the ratio verify / baseline against its target (1.2)
and the throughput of each. Run it through `scripts/bench verify`, which
installs what it needs first. The exit status is 0 whether or not the target
is met: benchmarks report, tests assert.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from backup_bench import BUCKET, DATABASE, Bench, _stop_on_sigterm, mb, say, summarize
from cpu_meter import CpuMeter, describe as describe_cpu, floor_against, floor_lines

from harness.postgres import PostgresServer
from harness.s3 import SeaweedS3

from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup  # noqa: E402
from ansible_collections.ops.runbook.plugins.module_utils.s3_backup_verify import verify_backup  # noqa: E402

TARGET = 1.2  # verification may take at most 20 % longer than reading and decompressing the dump
CHUNK = 1024 * 1024


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size-gb", type=float, default=1.0,
                        help="database size on disk (default 1.0; 0.2 for a quick try)")
    parser.add_argument("--random-share", type=float, default=0.2,
                        help="share of the database that is random bytes, which do not compress (default 0.2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each line; the median counts (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--workdir", help="directory for the servers (default: the system temp dir)")
    args = parser.parse_args(argv)
    if args.size_gb <= 0 or args.repeat < 1 or not 0 <= args.random_share < 1:
        parser.error("--size-gb must be > 0, --repeat >= 1, --random-share in [0, 1)")
    return args


def baseline(s3, key):
    """Seconds to stream the object through `zstd -dc` into /dev/null, and the bytes downloaded."""
    started = time.monotonic()
    body = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"]
    with open(os.devnull, "wb") as devnull:
        zstd = subprocess.Popen(["zstd", "-dc", "-q"], stdin=subprocess.PIPE, stdout=devnull)
        size = 0
        for data in body.iter_chunks(CHUNK):
            size += len(data)
            zstd.stdin.write(data)
        zstd.stdin.close()
        if zstd.wait() != 0:
            raise RuntimeError("zstd -dc failed on {0}".format(key))
    return time.monotonic() - started, size


def verification(options, checksum=True, integrity=True):
    started = time.monotonic()
    result = verify_backup(dict(options, restore_test=False, checksum=checksum, integrity=integrity))
    seconds = time.monotonic() - started
    if result["status"] == "fail":
        raise RuntimeError("the verification failed: {0}".format(result["msg"]))
    return seconds


def sha256_alone(s3, key):
    """Seconds hashlib's SHA-256 takes over the dump's bytes held in memory: the checksum's floor on this CPU."""
    data = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    started = time.monotonic()
    view = memoryview(data)
    digest = hashlib.sha256()
    for offset in range(0, len(data), CHUNK):
        digest.update(view[offset:offset + CHUNK])
    return time.monotonic() - started


def cpu_has_sha_extensions():
    """True when the CPU hashes SHA-256 in hardware (x86 sha_ni, arm64 sha2), None when unknown."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return None
    return bool(re.search(r"\b(sha_ni|sha2)\b", flags))


def run(pg, s3, args):
    bench = Bench(args, tempfile.gettempdir(), pg, s3)
    database = bench.create(DATABASE, args.size_gb)
    options = bench.pg_options(DATABASE)
    options.update(s3.s3_params(BUCKET, "bench-verify"))
    options["backup_dir"] = tempfile.mkdtemp(prefix="ops-runbook-bench-verify-")
    try:
        backup = run_backup(options)
    finally:
        shutil.rmtree(options["backup_dir"], ignore_errors=True)
    dump_key = backup["s3_keys"][0]
    say("backup {0}: {1:.1f} MB in S3 at {2}".format(backup["backup_id"], mb(backup["size_bytes"]), dump_key))

    # Untimed warm-up of both paths (connections, imports, the object in SeaweedFS's cache).
    baseline(s3, dump_key)
    verification(options)
    base_runs, verify_runs = [], []
    cpu = {"baseline": [], "verify": []}
    for index in range(args.repeat):
        meter = CpuMeter()
        seconds, size = baseline(s3, dump_key)
        cpu["baseline"].append({"seconds": seconds, "cpu": meter.stop()})
        base_runs.append(seconds)
        meter = CpuMeter()
        verify_runs.append(verification(options))
        cpu["verify"].append({"seconds": verify_runs[-1], "cpu": meter.stop()})
        say("run {0}/{1}: baseline {2:.2f} s, verify {3:.2f} s".format(
            index + 1, args.repeat, base_runs[-1], verify_runs[-1]))
    base, verify = statistics.median(base_runs), statistics.median(verify_runs)
    # The CPU figures of each line's median run.
    cpu = dict((line, summarize(runs)["cpu"]) for line, runs in cpu.items())
    # Where the difference goes (reported, not targets): each half of the scan alone.
    parts = {"integrity_only": [], "checksum_only": [], "sha256_in_memory": []}
    for _index in range(args.repeat):
        parts["integrity_only"].append(verification(options, checksum=False))
        parts["checksum_only"].append(verification(options, integrity=False))
        parts["sha256_in_memory"].append(sha256_alone(s3, dump_key))
    return {
        "explore_seconds": dict((k, round(statistics.median(v), 3)) for k, v in parts.items()),
        "cpu_sha_extensions": cpu_has_sha_extensions(),
        "cpus": os.cpu_count(),
        "database": database,
        "dump_bytes": size,
        "baseline_seconds": round(base, 3),
        "verify_seconds": round(verify, 3),
        "runs": {"baseline": [round(s, 3) for s in base_runs], "verify": [round(s, 3) for s in verify_runs]},
        "verify_to_baseline": round(verify / base, 3),
        "cpu": cpu,
        "cpu_floor": floor_against(cpu["verify"], {"seconds": base, "cpu": cpu["baseline"]}, TARGET),
        "target": TARGET,
        "baseline_mb_per_second": round(mb(size) / base, 1),
        "verify_mb_per_second": round(mb(size) / verify, 1),
    }


def print_report(fig):
    print()
    print("verification of a {0:.0f} MB database's backup ({1:.1f} MB compressed dump in S3), median of {2}".format(
        mb(fig["database"]["size_bytes"]), mb(fig["dump_bytes"]), len(fig["runs"]["verify"])))
    print("{0:<46} {1:>7.2f} s  {2:>7.1f} MB/s".format(
        "baseline: streamed download + zstd -dc", fig["baseline_seconds"], fig["baseline_mb_per_second"]))
    print("     " + describe_cpu({"cpu": fig["cpu"]["baseline"]}, fig["cpus"]))
    print("{0:<46} {1:>7.2f} s  {2:>7.1f} MB/s".format(
        "verify: checksum + decompression + TOC", fig["verify_seconds"], fig["verify_mb_per_second"]))
    print("     " + describe_cpu({"cpu": fig["cpu"]["verify"]}, fig["cpus"]))
    ratio = fig["verify_to_baseline"]
    print("{0:<46} {1:>7.2f}   target <= {2}  {3}".format(
        "verify / baseline", ratio, fig["target"], "met" if ratio <= fig["target"] else "MISSED"))
    print()
    for line in floor_lines(fig["cpu_floor"], "verify", "baseline"):
        print(line)
    explore = fig["explore_seconds"]
    print()
    print("where the time goes (not targets; {0} CPUs, SHA-256 in hardware: {1})".format(
        fig["cpus"], {True: "yes", False: "no", None: "unknown"}[fig["cpu_sha_extensions"]]))
    for label, key in (("verify, integrity only (no SHA-256)", "integrity_only"),
                       ("verify, checksum only (no decompression)", "checksum_only"),
                       ("SHA-256 of the dump held in memory", "sha256_in_memory")):
        print("{0:<46} {1:>7.2f} s  {2:>7.2f} x baseline".format(label, explore[key], explore[key] / fig["baseline_seconds"]))


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    workdir = tempfile.mkdtemp(prefix="ops-runbook-bench-", dir=args.workdir)
    os.chmod(workdir, 0o711)  # the cluster runs as postgres when we are root
    pg = PostgresServer(os.path.join(workdir, "postgres"))
    s3 = SeaweedS3(os.path.join(workdir, "s3"))
    try:
        pg.start()
        s3.start()
        s3.create_bucket(BUCKET)
        figures = run(pg, s3, args)
        print_report(figures)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(figures, handle, indent=2, sort_keys=True)
                handle.write("\n")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        s3.destroy()
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
