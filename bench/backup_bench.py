"""Backup benchmark: playbooks/backup.yml against pg_dump's own speed and the runbook's script.

Everything is measured in one run on this machine, against the real parts of
tests/harness (a PostgreSQL cluster and a SeaweedFS S3 store on free loopback
ports), and every timing is reported as a ratio to a baseline measured in the
same run, so the figures mean the same on a fast and on a slow machine.

Run it through scripts/bench, which installs what it needs first. See
bench/README.md for what each line measures and how to read it. The exit
status is 0 whether or not a target is met: benchmarks report, tests assert.
"""
import argparse
import datetime
import glob
import grp
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from cpu_meter import CpuMeter, describe as describe_cpu, floor_against, floor_lines
from harness.postgres import PostgresServer
from harness.s3 import SeaweedS3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
sys.path.insert(0, COLLECTIONS)

# The collection's own connection environment, so every baseline connects to
# PostgreSQL exactly as the engine does (TCP, password, same sslmode).
from ansible_collections.ops.runbook.plugins.module_utils.postgres import libpq_environment  # noqa: E402

DATABASE = "benchdb"
SMALL_DATABASE = "benchdb_small"
BUCKET = "ops-runbook-bench"

TARGETS = {
    "playbook_to_limit": 1.3,    # backup.yml may take at most 30 % longer than pg_dump alone
    "playbook_to_script": 0.6,   # and at most 60 % of the runbook's shell script
    "peak_rss_mb": 150,          # memory the backup takes on the database host
}

# On-disk size of the harness's sample data (PostgreSQL 15, measured once):
# an empty database, one pgbench scale unit with its indexes (14.9 MB at scale
# 50 and more, a little more at small scales), and one MB of random bytes
# (1 kB bytea rows, seven to an 8 kB page). The size is rounded up from these.
EMPTY_DB_MB = 7.2
PGBENCH_MB_PER_SCALE = 14.9
RANDOM_MB_ON_DISK = 1.18

# The engine, alone, in a child process of its own: its peak RSS is then the
# backup's and not the benchmark's, and the time of run_backup() excludes the
# interpreter's start. Every log line is time-stamped to split it into phases.
ENGINE_CHILD = r"""
import json, resource, sys, time
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup

with open(sys.argv[1]) as handle:
    options = json.load(handle)
marks = []
start = time.monotonic()

def log(message):
    marks.append((round(time.monotonic() - start, 3), message))
    sys.stderr.write(message + "\n")

result = run_backup(options, log=log)
json.dump({
    "seconds": time.monotonic() - start,
    "size_bytes": result["size_bytes"],
    "marks": marks,
    "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}, sys.stdout)
"""

# Extra lines run only to find where the time goes when a target is missed
# (--explore). Shell lines use the same pg_dump and connection as the rest.
EXPLORE_SHELL = [
    ("pg_dump -Fc -Z0 > file", "{pg_dump} -Fc -Z0 {db} > {out}"),
    ("pg_dump -Fc -Z0 | zstd -1 -T1 > file", "{pg_dump} -Fc -Z0 {db} | zstd -q -1 -T1 > {out}"),
    ("pg_dump -Fc -Z0 | zstd -3 -T1 > file", "{pg_dump} -Fc -Z0 {db} | zstd -q -3 -T1 > {out}"),
    ("pg_dump -Fc -Z0 | zstd -1 -T2 > file", "{pg_dump} -Fc -Z0 {db} | zstd -q -1 -T2 > {out}"),
    ("pg_dump -Fc -Z0 | zstd -3 -T2 > file", "{pg_dump} -Fc -Z0 {db} | zstd -q -3 -T2 > {out}"),
]
EXPLORE_ENGINE = [
    ("engine, row_counts: none", {"row_counts": "none"}),
    ("engine, compression_level: 3", {"compression_level": 3}),
    ("engine, compression_threads: 2", {"compression_threads": 2}),
]


def say(message):
    print("==> " + message, flush=True)


def mb(size_bytes):
    return size_bytes / 2 ** 20


# -- running and measuring processes ------------------------------------------

def _descendants(pid):
    """pid and every process below it, from the kernel's per-thread children lists."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for children in glob.glob("/proc/{}/task/*/children".format(current)):
            try:
                with open(children) as handle:
                    queue.extend(int(p) for p in handle.read().split())
            except OSError:
                pass  # the thread or process ended while we looked
    return found


def _memory_kb(pid):
    """A process's share of memory: PSS where the kernel gives it, else RSS.

    PSS splits each page among the processes that map it, so a tree's sum
    counts a page once. RSS would count Python twice for the instant between a
    fork (or vfork) for pg_dump and its exec, when the child still maps all of
    its parent's memory: one such sample read 196 MB for a tree of 125 MB.
    """
    for name, field in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            with open("/proc/{0}/{1}".format(pid, name)) as handle:
                for line in handle:
                    if line.startswith(field):
                        return int(line.split()[1])
        except OSError:
            continue  # no smaps_rollup (Linux < 4.14), or the process is gone
    return 0  # gone, or a zombie (no memory left)


TREE_SAMPLING = os.path.exists("/proc/{0}/task/{0}/children".format(os.getpid()))


class TreeRssSampler(threading.Thread):
    """Peak of the summed memory (PSS) of a process tree, sampled every 20 ms.

    wait4 reports the peak of the largest single process; this adds up the
    processes that run at the same time (Python + pg_dump + zstd). A sample
    can miss a spike shorter than the interval.
    """

    def __init__(self, pid, interval=0.02):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, sum(_memory_kb(p) for p in _descendants(self.pid)))
            self._done.wait(self.interval)

    def stop(self):
        self._done.set()
        self.join()


def run_measured(argv, env, out_path, err_path=None, sample_tree=False):
    """Run argv to completion: (wall seconds, exit code, rusage from wait4, sampled tree peak kB).

    stdout goes to out_path and stderr to err_path (or out_path too), both
    appended. The child gets a session of its own so that on Ctrl-C the whole
    tree it started (a shell pipeline, ansible-playbook's workers) is killed.
    """
    with open(out_path, "ab") as out, open(err_path or out_path, "ab") as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    sampler = TreeRssSampler(proc.pid) if sample_tree and TREE_SAMPLING else None
    if sampler:
        sampler.start()
    try:
        dummy, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        if sampler:
            sampler.stop()
    seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    return seconds, proc.returncode, usage, (sampler.peak_kb if sampler else None)


def tail(path, lines=25):
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


# -- the benchmark -------------------------------------------------------------

class Bench:
    def __init__(self, args, workdir, pg, s3):
        self.args = args
        self.workdir = workdir
        self.pg = pg
        self.s3 = s3
        self.runs = 0
        self.log_path = os.path.join(workdir, "bench.log")

    # -- setup ------------------------------------------------------------
    def database_size(self, database):
        return self.pg.execute("SELECT pg_database_size(%s)", params=(database,))[0][0]

    def create(self, database, size_gb):
        """A database of about size_gb: pgbench data plus a share of random bytes."""
        total_mb = size_gb * 1024
        random_mb = int(round(total_mb * self.args.random_share / RANDOM_MB_ON_DISK))
        rest_mb = total_mb - EMPTY_DB_MB - random_mb * RANDOM_MB_ON_DISK
        scale = max(1, int(math.ceil(rest_mb / PGBENCH_MB_PER_SCALE)))
        say("loading {}: pgbench scale {} and {} MB of random bytes".format(database, scale, random_mb))
        start = time.monotonic()
        self.pg.create_database(database)
        self.pg.load_sample_data(database, scale=scale, incompressible_mb=random_mb)
        # Freeze and set hint bits now, so the first dump does not pay for them.
        self.pg.execute("VACUUM (FREEZE, ANALYZE)", database=database)
        size = self.database_size(database)
        say("{}: {:.1f} MB on disk (pg_database_size), loaded in {:.0f} s".format(
            database, mb(size), time.monotonic() - start))
        return {"name": database, "size_bytes": size, "pgbench_scale": scale, "random_mb": random_mb}

    def new_run(self):
        """A fresh directory and S3 prefix per run: every run does the same work."""
        self.runs += 1
        run_dir = os.path.join(self.workdir, "run-{:03d}".format(self.runs))
        os.mkdir(run_dir, 0o700)
        return run_dir, "bench/run-{:03d}".format(self.runs)

    def clean_run(self, run_dir, prefix):
        shutil.rmtree(run_dir)
        client = self.s3.client()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix + "/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})

    def pg_options(self, database):
        opts = self.pg.conn_params(database)
        opts["database"] = database
        return opts

    # -- one measurement each -----------------------------------------------
    def shell(self, command, database):
        """A bash pipeline under pipefail, connected as the engine connects: its seconds and CPU."""
        env = libpq_environment(self.pg_options(database), database, "ops.runbook bench")
        meter = CpuMeter()
        seconds, code, dummy, dummy = run_measured(["bash", "-o", "pipefail", "-c", command], env, self.log_path)
        cpu = meter.stop()
        if code != 0:
            raise RuntimeError("`{}` failed (exit {}):\n{}".format(command, code, tail(self.log_path)))
        return {"seconds": seconds, "cpu": cpu}

    def pg_dump_cmd(self, database, options=""):
        return "{} {}{}".format(shlex.quote(self.pg_dump), options + " " if options else "", shlex.quote(database))

    def limit(self, database=DATABASE):
        return self.shell(self.pg_dump_cmd(database, "-Fc -Z0") + " > /dev/null", database)

    def script(self, database=DATABASE):
        """The runbook's script: pg_dump | gzip > file, then `aws s3 cp` (boto3's upload_file)."""
        run_dir, prefix = self.new_run()
        try:
            out = os.path.join(run_dir, database + ".sql.gz")
            meter = CpuMeter()
            start = time.monotonic()
            self.shell("{} | gzip > {}".format(self.pg_dump_cmd(database), shlex.quote(out)), database)
            dumped = time.monotonic()
            # A new client per run, as each `aws s3 cp` makes one. The AWS CLI's own
            # start-up (a second or so) is not included: the baseline errs fast.
            self.s3.client().upload_file(out, BUCKET, "{}/{}.sql.gz".format(prefix, database))
            end = time.monotonic()
            return {"seconds": end - start, "dump_seconds": dumped - start, "upload_seconds": end - dumped,
                    "size_bytes": os.path.getsize(out), "cpu": meter.stop()}
        finally:
            self.clean_run(run_dir, prefix)

    def playbook(self, database=DATABASE, check=False):
        """ansible-playbook playbooks/backup.yml with the local inventory, as the demo runs it."""
        run_dir, prefix = self.new_run()
        try:
            backup_dir = os.path.join(run_dir, "backups")
            extra = {
                "postgres_login_host": self.pg.host,
                "postgres_login_port": self.pg.port,
                "postgres_login_user": "postgres",
                "postgres_login_password": self.pg.password,
                "s3_bucket": BUCKET,
                "s3_endpoint_url": self.s3.endpoint_url,
                "s3_region": self.s3.region,
                "s3_access_key": self.s3.access_key,
                "s3_secret_key": self.s3.secret_key,
                "pg_backup_databases": [database],
                "pg_backup_dir": backup_dir,
                "pg_backup_s3_prefix": prefix,
                # The limit (pg_dump of one database) has no cluster globals: neither does the measured run.
                "pg_backup_globals": False,
                # The role's default group (postgres) may not be this user's.
                "pg_backup_group": grp.getgrgid(os.getegid()).gr_name,
            }
            extra_path = write_private_json(os.path.join(run_dir, "extra-vars.json"), extra)
            argv = [os.path.join(VENV_BIN, "ansible-playbook"),
                    "-i", os.path.join(ROOT, "inventories", "local", "hosts.yml"),
                    os.path.join(ROOT, "playbooks", "backup.yml"), "-e", "@" + extra_path]
            argv += ["--check"] if check else []
            # The JSON callback (ansible.posix, in the `ansible` package) reports each
            # task's duration and the module's own result, so the playbook's time can
            # be split in this very run instead of by subtracting another run's.
            env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                       ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                       PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
            out_path = os.path.join(run_dir, "ansible.json")
            log_path = os.path.join(run_dir, "ansible.log")
            meter = CpuMeter()
            seconds, code, dummy, dummy = run_measured(argv, env, out_path, log_path)
            cpu = meter.stop()
            if code != 0:
                raise RuntimeError("backup.yml failed (exit {}): {}".format(
                    code, playbook_failures(out_path) or tail(out_path, 40) + tail(log_path, 20)))
            if check:
                return {"seconds": seconds, "cpu": cpu}
            manifests = glob.glob(os.path.join(backup_dir, database, "*", "manifest.json"))
            if len(manifests) != 1:
                raise RuntimeError("backup.yml left {} backup sets in {}, not 1".format(len(manifests), backup_dir))
            with open(manifests[0]) as handle:
                manifest = json.load(handle)
            return dict(playbook_split(out_path), seconds=seconds, size_bytes=manifest["size_bytes"], cpu=cpu)
        finally:
            self.clean_run(run_dir, prefix)

    def engine(self, database=DATABASE, overrides=None):
        """run_backup() in a child Python process: its time, phases and peak memory."""
        run_dir, prefix = self.new_run()
        try:
            options = self.pg_options(database)
            options.update(self.s3.s3_params(BUCKET, prefix))
            options["backup_dir"] = os.path.join(run_dir, "backups")
            options.update(overrides or {})
            config = write_private_json(os.path.join(run_dir, "options.json"), options)
            out_path = os.path.join(run_dir, "engine.json")
            log_path = os.path.join(run_dir, "engine.log")
            # stdout carries the child's JSON report, stderr its log.
            meter = CpuMeter()
            process_seconds, code, usage, tree_kb = run_measured(
                [os.path.join(VENV_BIN, "python"), "-c", ENGINE_CHILD, config],
                dict(os.environ, PYTHONPATH=COLLECTIONS), out_path, log_path, sample_tree=True)
            cpu = meter.stop()
            if code != 0:
                raise RuntimeError("the engine failed (exit {}):\n{}".format(code, tail(log_path, 40)))
            with open(out_path) as handle:
                report = json.load(handle)
            return {
                "seconds": report["seconds"],
                "process_seconds": process_seconds,
                "size_bytes": report["size_bytes"],
                "phases": engine_phases(report["marks"], report["seconds"]),
                # wait4: the child and every descendant it reaped; the peak of the largest one.
                "wait4_maxrss_kb": usage.ru_maxrss,
                "python_maxrss_kb": report["self_maxrss_kb"],
                "tools_maxrss_kb": report["children_maxrss_kb"],
                "tree_peak_kb": tree_kb,
                "cpu": cpu,
            }
        finally:
            self.clean_run(run_dir, prefix)

    def explore_shell(self, command, database=DATABASE):
        run_dir, prefix = self.new_run()
        try:
            out = os.path.join(run_dir, "dump.out")
            result = self.shell(command.format(pg_dump=shlex.quote(self.pg_dump), db=shlex.quote(database),
                                               out=shlex.quote(out)), database)
            return dict(result, size_bytes=os.path.getsize(out))
        finally:
            self.clean_run(run_dir, prefix)


def _callback_results(callback_path):
    """(task, result) for every host result, and every loop item, in the JSON callback's output."""
    try:
        with open(callback_path) as handle:
            report = json.load(handle)
        found = []
        for play in report["plays"]:
            for task in play["tasks"]:
                for host in task["hosts"].values():
                    found.extend((task, result) for result in host.get("results", [host]))
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []  # no output or another format: the caller falls back


def playbook_split(callback_path):
    """The pg_backup task's time, and run_backup()'s inside it (the module reports duration_seconds)."""
    backups = [(task, result) for task, result in _callback_results(callback_path) if "duration_seconds" in result]
    if not backups:
        return {}
    duration = backups[0][0]["task"]["duration"]
    return {"module_task_seconds": _iso_seconds(duration["end"]) - _iso_seconds(duration["start"]),
            "run_backup_seconds": sum(result["duration_seconds"] for dummy, result in backups)}


def playbook_failures(callback_path):
    """The messages of the failed task results in the JSON callback's output."""
    return "\n".join("{}: {}".format(task["task"]["name"], result.get("msg"))
                     for task, result in _callback_results(callback_path) if result.get("failed"))


def _iso_seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def engine_phases(marks, total):
    """Split run_backup() at its log lines: connect and checks | dump | upload and retention."""
    dump_start = next((t for t, m in marks if m.startswith("dumping ")), None)
    set_done = next((t for t, m in marks if m.startswith("backup set ")), None)
    if dump_start is None or set_done is None:
        return None  # the engine's log lines changed; the total still stands
    return {"preflight": dump_start, "dump": set_done - dump_start, "upload_retention": total - set_done}


def write_private_json(path, data):
    """JSON with passwords in it: readable by this user only."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        json.dump(data, handle)
    return path


def summarize(runs):
    """The median run's figures; every run's time is kept for the JSON."""
    seconds = [r["seconds"] for r in runs]
    middle = sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]
    return dict(middle, seconds=statistics.median(seconds), runs=[round(s, 3) for s in seconds])


def ratio(numerator, denominator, target=None):
    value = numerator / denominator
    entry = {"value": round(value, 3)}
    if target is not None:
        entry.update(target=target, met=value <= target)
    return entry


def peak_mb(engine_runs):
    """The backup's peak memory over runs: the larger of wait4's figure and the sampled sum."""
    wait4 = max(r["wait4_maxrss_kb"] for r in engine_runs) / 1024
    python = max(r["python_maxrss_kb"] for r in engine_runs) / 1024
    tools = max(r["tools_maxrss_kb"] for r in engine_runs) / 1024
    trees = [r["tree_peak_kb"] for r in engine_runs if r["tree_peak_kb"] is not None]
    tree = max(trees) / 1024 if trees else None
    return {"wait4_mb": round(wait4, 1), "python_mb": round(python, 1), "largest_tool_mb": round(tools, 1),
            "tree_sum_mb": round(tree, 1) if tree is not None else None,
            "peak_mb": round(max(wait4, tree or 0), 1)}


# -- reporting -----------------------------------------------------------------

def verdict(entry):
    return "PASS" if entry["met"] else "MISS"


def print_report(fig):
    db = fig["database"]
    p = fig["pipelines"]
    r = fig["ratios"]
    m = fig["memory"]
    print()
    print("Backup benchmark, {} CPUs, {}; {}, median of {} run(s)".format(
        fig["machine"]["cpus"], fig["machine"]["server_version"], fig["machine"]["pg_dump"], fig["repeat"]))
    print("Load average (1 min): {at_start:.2f} before the benchmark started, {at_end:.2f} at its end".format(
        **fig["machine"]["load_1min"]))
    print("Database {}: {:.1f} MB on disk (pg_database_size): pgbench scale {}, {} MB of random bytes".format(
        db["name"], mb(db["size_bytes"]), db["pgbench_scale"], db["random_mb"]))
    print()
    print("{:<58} {:>8} {:>11}".format("pipeline", "wall s", "output MB"))
    rows = [
        ("a  limit: pg_dump -Fc -Z0 > /dev/null", p["limit"], None),
        ("b  runbook script: pg_dump | gzip > file; upload", p["script"],
         "dump {:.2f} s + upload {:.2f} s".format(p["script"]["dump_seconds"], p["script"]["upload_seconds"])),
        ("c  ansible-playbook playbooks/backup.yml", p["playbook"], playbook_detail(p["playbook"])),
        ("d  engine: run_backup() in a child process", p["engine"], engine_detail(p["engine"])),
    ]
    for label, entry, detail in rows:
        size = "{:.1f}".format(mb(entry["size_bytes"])) if "size_bytes" in entry else "-"
        print("{:<58} {:>8.2f} {:>11}".format(label, entry["seconds"], size))
        for line in (detail, describe_cpu(entry, fig["machine"]["cpus"])):
            if line:
                print("     " + line)
    print()
    print("{:<40} {:>7} {:>9}".format("ratio", "value", "target"))
    for label, key in (("backup.yml / limit", "playbook_to_limit"),
                       ("backup.yml / runbook script", "playbook_to_script"),
                       ("engine / limit", "engine_to_limit"),
                       ("engine / runbook script", "engine_to_script")):
        entry = r[key]
        target = ("<= {:.2f}  {}".format(entry["target"], verdict(entry))) if "target" in entry else ""
        print("{:<40} {:>7.2f}   {}".format(label, entry["value"], target))
    print("{:<40} {:>7.2f} s ({})".format(
        "Ansible's share of backup.yml", fig["playbook_overhead_seconds"], fig["playbook_overhead_source"]))
    print("output sizes: runbook script {:.1f} MB (plain SQL, gzip -6), backup.yml {:.1f} MB "
          "(custom format, zstd), {:.1%} of the database".format(
              mb(p["script"]["size_bytes"]), mb(p["playbook"]["size_bytes"]),
              p["playbook"]["size_bytes"] / db["size_bytes"]))
    print()
    for line in floor_lines(fig["cpu_floor"], "backup.yml", "limit"):
        print(line)
    print()
    print("Peak memory of the backup (engine in a child process; target < {} MB)".format(TARGETS["peak_rss_mb"]))
    print("{:<28} {:>9} {:>9} {:>11} {:>11} {:>9}".format(
        "database", "wait4 MB", "Python", "largest tool", "tree sum", "verdict"))
    for key in ("full", "small"):
        entry = m[key]
        tree = "{:.1f}".format(entry["tree_sum_mb"]) if entry["tree_sum_mb"] is not None else "n/a"
        print("{:<28} {:>9.1f} {:>9.1f} {:>11.1f} {:>11} {:>9}".format(
            "{} ({:.0f} MB)".format(entry["database"], mb(entry["database_size_bytes"])), entry["wait4_mb"],
            entry["python_mb"], entry["largest_tool_mb"], tree, "PASS" if entry["met"] else "MISS"))
    print("peak at full size / peak at small size: {:.2f} (database {:.1f}x larger)".format(
        m["growth"], m["full"]["database_size_bytes"] / m["small"]["database_size_bytes"]))
    if fig.get("exploration"):
        print()
        print("EXPLORATION (not targets: where the time goes; same database, median of {} run(s))".format(
            fig["repeat"]))
        print("{:<58} {:>8} {:>11} {:>9}".format("pipeline", "wall s", "output MB", "/ limit"))
        for entry in fig["exploration"]:
            size = "{:.1f}".format(mb(entry["size_bytes"])) if "size_bytes" in entry else "-"
            print("{:<58} {:>8.2f} {:>11} {:>9.2f}".format(
                "x  " + entry["label"], entry["seconds"], size, entry["to_limit"]))
            for line in (engine_detail(entry) if entry.get("phases") else None,
                         describe_cpu(entry, fig["machine"]["cpus"])):
                if line:
                    print("     " + line)
    print()
    print("Total benchmark wall time: {:.0f} s".format(fig["total_seconds"]))


def playbook_detail(entry):
    if "run_backup_seconds" not in entry:
        return None
    return "run_backup() {:.2f} s inside the pg_backup task {:.2f} s; Ansible around it {:.2f} s".format(
        entry["run_backup_seconds"], entry["module_task_seconds"], entry["seconds"] - entry["run_backup_seconds"])


def engine_detail(entry):
    detail = "process {:.2f} s with interpreter start".format(entry["process_seconds"])
    phases = entry.get("phases")
    if phases:
        detail = "checks {:.2f} s + dump {:.2f} s + upload/retention {:.2f} s; ".format(
            phases["preflight"], phases["dump"], phases["upload_retention"]) + detail
    return detail


# -- main ----------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size-gb", type=float, default=1.0,
                        help="database size on disk (default 1.0; 0.2 for a quick try)")
    parser.add_argument("--random-share", type=float, default=0.2,
                        help="share of the database that is random bytes, which do not compress (default 0.2)")
    parser.add_argument("--small-fraction", type=float, default=0.2,
                        help="size of the second database for the memory check, as a fraction (default 0.2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each pipeline; the median counts")
    parser.add_argument("--explore", choices=("auto", "always", "never"), default="auto",
                        help="run the exploration lines: when a time target is missed (auto), always or never")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--workdir", help="directory for the servers and backups (default: the system temp dir)")
    args = parser.parse_args(argv)
    if args.size_gb <= 0 or args.repeat < 1 or not 0 <= args.random_share < 1 or not 0 < args.small_fraction < 1:
        parser.error("--size-gb must be > 0, --repeat >= 1, --random-share in [0, 1), --small-fraction in (0, 1)")
    return args


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # leave through the same clean-up as Ctrl-C


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    # Other work on the machine skews every figure: the load before ours started says if there was any.
    load_at_start = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="ops-runbook-bench-", dir=args.workdir)
    # As root the cluster runs as `postgres`, which must be able to reach its directory.
    os.chmod(workdir, 0o711)
    pg = PostgresServer(os.path.join(workdir, "postgres"))
    s3 = SeaweedS3(os.path.join(workdir, "s3"))
    try:
        say("starting PostgreSQL on {}:{} and SeaweedFS S3".format(pg.host, pg.port))
        pg.start()
        s3.start()
        s3.create_bucket(BUCKET)
        say("S3 at {}".format(s3.endpoint_url))
        bench = Bench(args, workdir, pg, s3)
        figures = run(bench, args)
        figures["total_seconds"] = round(time.monotonic() - started, 1)
        figures["machine"]["load_1min"] = {"at_start": round(load_at_start, 2), "at_end": round(os.getloadavg()[0], 2)}
        print_report(figures)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(figures, handle, indent=2, sort_keys=True)
                handle.write("\n")
            say("figures written to {}".format(args.json))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not leave SeaweedFS running: it has a session of its own.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        s3.destroy()
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def run(bench, args):
    pg = bench.pg
    # The pg_dump the engine finds on PATH, so that every pipeline runs the same binary.
    bench.pg_dump = shutil.which("pg_dump")
    if not bench.pg_dump:
        raise RuntimeError("pg_dump is not on PATH; run scripts/bootstrap")
    full = bench.create(DATABASE, args.size_gb)
    small = bench.create(SMALL_DATABASE, args.size_gb * args.small_fraction)

    # Untimed warm-up: the data in the page cache, and Ansible's and the
    # collection's Python loaded once, so the first timed run is not the odd one.
    say("warming up: one pg_dump and backup.yml in check mode")
    bench.limit()
    bench.playbook(check=True)

    pipelines = {"limit": [], "script": [], "playbook": [], "engine": []}
    for number in range(1, args.repeat + 1):
        # Round-robin, so a slow spell of the machine hits every pipeline alike.
        for name in pipelines:
            say("run {}/{}: {}".format(number, args.repeat, name))
            pipelines[name].append(getattr(bench, name)())
    say("memory at the small size: the engine on {}".format(SMALL_DATABASE))
    small_engine = [bench.engine(SMALL_DATABASE) for dummy in range(args.repeat)]

    p = dict((name, summarize(runs)) for name, runs in pipelines.items())
    ratios = {
        "playbook_to_limit": ratio(p["playbook"]["seconds"], p["limit"]["seconds"], TARGETS["playbook_to_limit"]),
        "playbook_to_script": ratio(p["playbook"]["seconds"], p["script"]["seconds"], TARGETS["playbook_to_script"]),
        "engine_to_limit": ratio(p["engine"]["seconds"], p["limit"]["seconds"]),
        "engine_to_script": ratio(p["engine"]["seconds"], p["script"]["seconds"]),
    }
    cpu_floor = floor_against(p["playbook"]["cpu"], p["limit"], TARGETS["playbook_to_limit"])
    memory = {}
    for key, db, runs in (("full", full, pipelines["engine"]), ("small", small, small_engine)):
        entry = peak_mb(runs)
        entry.update(database=db["name"], database_size_bytes=db["size_bytes"],
                     met=entry["peak_mb"] < TARGETS["peak_rss_mb"])
        memory[key] = entry
    memory["growth"] = round(memory["full"]["peak_mb"] / memory["small"]["peak_mb"], 3)
    memory["target_mb"] = TARGETS["peak_rss_mb"]

    missed = not (ratios["playbook_to_limit"]["met"] and ratios["playbook_to_script"]["met"])
    exploration = []
    if args.explore == "always" or (args.explore == "auto" and missed):
        say("a time target was missed: exploring where the time goes" if missed else "exploring")
        for label, command in EXPLORE_SHELL:
            say("exploration: " + label)
            entry = summarize([bench.explore_shell(command) for dummy in range(args.repeat)])
            exploration.append(dict(entry, label=label, kind="shell", command=command))
        for label, overrides in EXPLORE_ENGINE:
            say("exploration: " + label)
            entry = summarize([bench.engine(overrides=overrides) for dummy in range(args.repeat)])
            exploration.append(dict(entry, label=label, kind="engine", overrides=overrides))
        for entry in exploration:
            entry["to_limit"] = round(entry["seconds"] / p["limit"]["seconds"], 3)

    # Ansible's share: measured within the playbook's own run when the module
    # reported its time, otherwise against line d (another run, so noisier).
    if "run_backup_seconds" in p["playbook"]:
        run_backup_in_playbook = p["playbook"]["run_backup_seconds"]
        overhead_source = "backup.yml minus run_backup() in the same run"
    else:
        run_backup_in_playbook = p["engine"]["seconds"]
        overhead_source = "backup.yml minus line d"
    version = pg.execute("SHOW server_version")[0][0]
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "pg_dump": bench.pg_dump,
                    "server_version": "PostgreSQL " + version},
        "database": full,
        "small_database": small,
        "repeat": args.repeat,
        "pipelines": p,
        "ratios": ratios,
        "playbook_overhead_seconds": round(p["playbook"]["seconds"] - run_backup_in_playbook, 3),
        "playbook_overhead_source": overhead_source,
        "memory": memory,
        "cpu_floor": cpu_floor,
        "targets": TARGETS,
        "exploration": exploration,
    }


if __name__ == "__main__":
    sys.exit(main())
