"""PITR benchmark: the data a lost host costs (RPO) and the time to a running recovered cluster (RTO).

Everything runs on this machine against the real parts of tests/harness: a
SeaweedFS store serving S3 over TLS as `localhost` on free loopback ports, and
PgBackRestStack clusters (PostgreSQL 15 archiving its WAL with pgBackRest into
a bucket of that store).

RPO, `--repeat` times, each on a fresh cluster:
  a full backup, then a writer commits a marker row every 100 ms and notes, on
  the client, when each commit was acknowledged. After a random delay (the seed
  is printed; `--seed` repeats it) the whole cluster is SIGKILLed as if the host
  were lost: the postmaster and every process below it (backends, archiver, an
  archive-push under way) are frozen, then killed. Its data directory is
  deleted. The collection's recovery engine (pg_pitr) recovers the backup plus
  the archived WAL to the end of the archive into a new data directory on a
  free port. Lost: the newest acknowledged marker's time minus the newest
  recovered marker's time, and the number of acknowledged markers missing.
  Target: at most archive_timeout + 5 s.

RTO, on a database of `--size-mb`, `--rto-repeat` rounds (median):
  baseline   `pgbackrest restore --pg1-path=<empty directory>` of the backup,
             alone, nothing started;
  engine     the collection's recovery engine, from the plan to a started,
             promoted cluster that answers and passed its checks;
  and the ratio engine / baseline. There is no target in the issue: it is
  reported only.

Run it through `scripts/bench pitr`, which installs what it needs first. The
exit status is 0 whether or not the target is met: benchmarks report, tests assert.
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

from backup_bench import COLLECTIONS, Bench, _descendants, _stop_on_sigterm, mb, say, summarize
from cpu_meter import CpuMeter, describe as describe_cpu

from harness.pgbackrest import PgBackRestStack, tls_store

sys.path.insert(0, COLLECTIONS)

DATABASE = "benchdb"
MARKER_INTERVAL = 0.1        # seconds between two marker commits, as in the issue
RPO_MARGIN = 5.0             # the target: at most archive_timeout + 5 s of committed markers lost
RECOVERY_TIMEOUT = 3600      # seconds the engine may take to reach a promoted cluster
RESTORE_TIMEOUT = 3600       # seconds `pgbackrest restore` may take


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--archive-timeout", type=int, default=60,
                        help="PostgreSQL's archive_timeout in seconds (default 60, the role's default; "
                             "10 for a quick run)")
    parser.add_argument("--repeat", type=int, default=1, help="RPO trials, each on a fresh cluster (default 1)")
    parser.add_argument("--seed", type=int, help="seed of the random kill delays (default: a new one, printed)")
    parser.add_argument("--size-mb", type=int, default=1024,
                        help="size of the RTO database on disk in MB (default 1024)")
    parser.add_argument("--random-share", type=float, default=0.2,
                        help="share of the RTO database that is random bytes, which do not compress (default 0.2)")
    parser.add_argument("--rto-repeat", type=int, default=1,
                        help="rounds of the two RTO lines, round-robin; the median counts (default 1)")
    parser.add_argument("--only", choices=("rpo", "rto"), help="run one half only")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--workdir", help="directory for the servers (default: the system temp dir)")
    args = parser.parse_args(argv)
    if min(args.archive_timeout, args.repeat, args.rto_repeat) < 1 or args.size_mb < 16 or not 0 <= args.random_share < 1:
        parser.error("--archive-timeout, --repeat and --rto-repeat must be >= 1, --size-mb >= 16, --random-share in [0, 1)")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2 ** 32)
    return args


# -- the collection's recovery engine ----------------------------------------------------

def recover_with_engine(stack, restore_dir, port):
    """Recover the stack's stanza to the end of the archive into `restore_dir` (new, on 127.0.0.1:`port`) with
    the collection's engine, as the module ops.runbook.pg_pitr runs it (mode=recover, target_type=latest): the
    module's defaults, the stack's pgBackRest options, a socket connection as postgres. The engine's result."""
    try:
        from ansible_collections.ops.runbook.plugins.module_utils import pg_pitr
        from ansible_collections.ops.runbook.plugins.modules.pg_pitr import argument_spec
    except ImportError as error:
        raise RuntimeError("recovery engine missing: plugins/module_utils/pg_pitr.py and the module "
                           "ops.runbook.pg_pitr are not in this checkout ({0})".format(error))
    params = dict((name, spec.get("default")) for name, spec in argument_spec().items())
    params.update(stack.module_params())
    params.update(mode="recover", target_type="latest", restore_dir=restore_dir, copy_port=port,
                  login_user="postgres", login_password=None, login_db="postgres",
                  recovery_timeout=RECOVERY_TIMEOUT, pgbackrest_timeout=RESTORE_TIMEOUT)
    try:
        result = pg_pitr.run_pitr(params, False, lambda line: None)
    except pg_pitr.RunbookError as error:
        raise RuntimeError("the recovery engine (pg_pitr) failed: {0}".format(error))
    if result.get("failed"):
        raise RuntimeError("the recovery engine failed: {0}".format(result.get("msg")))
    return result


# -- processes -----------------------------------------------------------------------

def postmaster_pid(data_dir):
    with open(os.path.join(data_dir, "postmaster.pid")) as handle:
        return int(handle.readline())


def _alive(pid):
    """True while `pid` runs (a zombie has ended)."""
    try:
        with open("/proc/{0}/stat".format(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def lose_host(data_dir, timeout=30):
    """SIGKILL the cluster as a lost host would end it: the postmaster is frozen first (it forks nothing more),
    then every process below it (backends, the archiver and an archive-push it runs), until none is left
    unfrozen; then all are killed. Nothing gets to finish a commit or a push. The pids are returned."""
    pid = postmaster_pid(data_dir)
    frozen = []
    pending = [pid]
    while pending:
        for each in pending:
            try:
                os.kill(each, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            frozen.append(each)
        pending = [each for each in _descendants(pid) if each not in frozen]
    for each in frozen:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(_alive(each) for each in frozen):
        if time.monotonic() > deadline:
            raise RuntimeError("processes {0} outlived SIGKILL".format([p for p in frozen if _alive(p)]))
        time.sleep(0.05)
    return frozen


def stop_cluster(data_dir):
    """Stop a cluster the engine started, by its postmaster's PID: SIGINT (fast shutdown), SIGKILL after 60 s."""
    try:
        pid = postmaster_pid(data_dir)
    except (OSError, ValueError):
        return
    for sig, wait in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _alive(pid):
            return


def as_postgres(stack, path):
    """An empty directory owned by the cluster's user, mode 0700, as PostgreSQL wants its data directory."""
    os.mkdir(path, 0o700)
    stack._chown(path)
    return path


# -- RPO ------------------------------------------------------------------------------

class MarkerWriter(threading.Thread):
    """Commits a marker row every 100 ms (label: its sequence number) with synchronous_commit on, and notes
    the client's wall-clock time of each acknowledged commit. It stops at the first error (the kill)."""

    def __init__(self, pg):
        super().__init__(daemon=True)
        self.conn = pg.connect()
        with self.conn.cursor() as cur:
            cur.execute("SET synchronous_commit = on")
        self.acknowledged = []   # (sequence, time.time() when the commit returned)
        self.error = None
        self._halt = threading.Event()

    def run(self):
        start = time.monotonic()
        sequence = 0
        try:
            while not self._halt.is_set():
                with self.conn.cursor() as cur:
                    cur.execute("INSERT INTO markers (label) VALUES (%s)", (str(sequence),))
                self.acknowledged.append((sequence, time.time()))
                sequence += 1
                pause = start + sequence * MARKER_INTERVAL - time.monotonic()
                if pause > 0:
                    self._halt.wait(pause)
        except Exception as error:  # noqa: BLE001 - the kill ends the connection with some psycopg2 error
            self.error = "{0}: {1}".format(type(error).__name__, str(error).strip().splitlines()[0] if str(error) else "")

    def stop(self):
        self._halt.set()
        self.join(30)
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - the server is gone
            pass


def marker_labels(restore_dir, port):
    """The labels of the marker rows in the recovered cluster (its socket directory is its data directory)."""
    import psycopg2

    conn = psycopg2.connect(host=restore_dir, port=port, user="postgres", dbname="postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT label FROM markers")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def rpo_trial(env, index, rng, archive_timeout):
    """One trial: backup, writer, kill at a random moment, recovery, the markers lost."""
    stack = env.stack("rpo-{0}".format(index), archive_timeout, {"synchronous_commit": "on", "fsync": "on"})
    restore_dir = os.path.join(stack.base_dir, "recovered")
    try:
        stack.backup("full")
        delay = rng.uniform(archive_timeout, 2 * archive_timeout)
        writer = MarkerWriter(stack.pg)
        writer.start()
        say("RPO trial {0}: writing a marker every {1:.0f} ms; the host is lost in {2:.1f} s".format(
            index, MARKER_INTERVAL * 1000, delay))
        time.sleep(delay)
        killed_at = time.time()
        killed = lose_host(stack.pg.data_dir)
        writer.stop()
        shutil.rmtree(stack.pg.data_dir)  # the host is gone: recovery has the archive only
        say("SIGKILLed {0} processes of the cluster (writer: {1}); its data directory is deleted".format(
            len(killed), writer.error or "stopped"))
        port = free_port()
        started = time.monotonic()
        recover_with_engine(stack, as_postgres(stack, restore_dir), port)
        recovery_seconds = time.monotonic() - started
        recovered = set(int(label) for label in marker_labels(restore_dir, port))
        stop_cluster(restore_dir)
        return rpo_figures(writer.acknowledged, recovered, killed_at, delay, recovery_seconds, archive_timeout)
    finally:
        stop_cluster(restore_dir)
        stack.destroy()


def rpo_figures(acknowledged, recovered, killed_at, delay, recovery_seconds, archive_timeout):
    if not acknowledged:
        raise RuntimeError("the writer had no commit acknowledged before the kill")
    times = dict(acknowledged)
    newest_sequence, newest_time = acknowledged[-1]
    present = sorted(sequence for sequence in recovered if sequence in times)
    if present:
        newest_recovered = present[-1]
        seconds_lost = newest_time - times[newest_recovered]
    else:
        # Nothing the writer saw acknowledged came back: everything since its first marker is lost.
        newest_recovered = None
        seconds_lost = newest_time - acknowledged[0][1] + MARKER_INTERVAL
    holes = sorted(set(range(newest_recovered + 1 if newest_recovered is not None else 0)) - recovered)
    target = archive_timeout + RPO_MARGIN
    return {
        "kill_delay_seconds": round(delay, 2),
        "markers_acknowledged": len(acknowledged),
        "markers_recovered": len(present),
        "markers_lost": len(acknowledged) - len(present),
        "seconds_lost": round(seconds_lost, 2),
        # A commit under way at the kill may be in the archive although the client never saw it acknowledged.
        "recovered_unacknowledged": len(recovered) - len(present),
        "holes_below_newest_recovered": holes[:20],
        "newest_acknowledged_to_kill_seconds": round(killed_at - newest_time, 3),
        "recovery_seconds": round(recovery_seconds, 2),
        "target_seconds": target,
        "met": seconds_lost <= target and not holes,
        "newest_acknowledged": newest_sequence,
        "newest_recovered": newest_recovered,
    }


def free_port():
    from harness.ports import free_ports

    return free_ports(1)[0]


# -- RTO ------------------------------------------------------------------------------

def restore_alone(stack, directory):
    """The baseline: `pgbackrest restore` of the stack's newest backup into an empty directory, nothing started."""
    as_postgres(stack, directory)
    meter = CpuMeter()
    started = time.monotonic()
    try:
        stack.run("restore", "--pg1-path=" + directory, timeout=RESTORE_TIMEOUT)
        return {"seconds": time.monotonic() - started, "cpu": meter.stop()}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def recovery(stack, directory):
    """The engine's line: a recovery to a running cluster; it is stopped and removed after the check that the
    marker written after the backup (in the archive only) came back."""
    as_postgres(stack, directory)
    port = free_port()
    meter = CpuMeter()
    started = time.monotonic()
    try:
        result = recover_with_engine(stack, directory, port)
        figures = {"seconds": time.monotonic() - started, "cpu": meter.stop(),
                   "checks": [check["status"] for check in result.get("checks", [])]}
        figures["reached_end"] = "after the backup" in marker_labels(directory, port)
        return figures
    finally:
        stop_cluster(directory)
        shutil.rmtree(directory, ignore_errors=True)


def rto(env, args):
    stack = env.stack("rto", args.archive_timeout, {})
    try:
        bench = Bench(argparse.Namespace(random_share=args.random_share), stack.base_dir, stack.pg, env.s3)
        database = bench.create(DATABASE, args.size_mb / 1024.0)
        say("full backup of the cluster")
        started = time.monotonic()
        stack.backup("full")
        backup_seconds = time.monotonic() - started
        stack.write_marker("after the backup")
        stack.switch_wal()
        # The cluster is not lost here, only quiet: nothing else competes for the CPUs while both lines run.
        stack.pg.stop()
        info = json.loads(stack.run("info", "--output=json").stdout)[0]["backup"][-1]
        say("backup {0}: {1:.0f} MB in the repository, {2:.0f} MB of cluster, in {3:.0f} s".format(
            info["label"], mb(info["info"]["repository"]["delta"]), mb(info["info"]["size"]), backup_seconds))
        lines = {"baseline": (restore_alone, "restore-baseline"), "engine": (recovery, "restore-engine")}
        runs = {"baseline": [], "engine": []}
        for index in range(args.rto_repeat):
            # Round-robin, the order swapped every round: neither line always gets the warmer cache.
            order = ("baseline", "engine") if index % 2 == 0 else ("engine", "baseline")
            for line in order:
                measure, name = lines[line]
                runs[line].append(measure(stack, os.path.join(stack.base_dir, name)))
            say("RTO round {0}/{1}: pgbackrest restore {2:.2f} s, recovery engine {3:.2f} s".format(
                index + 1, args.rto_repeat, runs["baseline"][-1]["seconds"], runs["engine"][-1]["seconds"]))
        baseline, engine = summarize(runs["baseline"]), summarize(runs["engine"])
        return {
            "database": database,
            "backup": {"label": info["label"], "repository_bytes": info["info"]["repository"]["delta"],
                       "cluster_bytes": info["info"]["size"], "seconds": round(backup_seconds, 1)},
            "baseline": {"seconds": round(baseline["seconds"], 2), "cpu": baseline["cpu"], "runs": baseline["runs"]},
            "engine": {"seconds": round(engine["seconds"], 2), "cpu": engine["cpu"], "runs": engine["runs"],
                       "checks": engine["checks"]},
            "engine_to_baseline": round(engine["seconds"] / baseline["seconds"], 3),
            "marker_after_backup_recovered": all(run["reached_end"] for run in runs["engine"]),
        }
    finally:
        stack.destroy()


# -- the store and the report -----------------------------------------------------------

class Environment:
    """The TLS SeaweedFS store every stack archives into, and the stacks made on it (one bucket each)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.s3 = tls_store(workdir, days=2)

    def start(self):
        self.s3.start()
        return self

    def stack(self, name, archive_timeout, settings):
        """A started PgBackRestStack in a bucket of its own; `settings` change the cluster's (e.g. fsync)."""
        bucket = self.s3.create_bucket("pitr-bench-" + name)
        stack = PgBackRestStack(os.path.join(self.workdir, name), self.s3, bucket, stanza="bench",
                                archive_timeout=archive_timeout)
        stack.pg.settings.update(settings)
        try:
            return stack.start()
        except BaseException:
            stack.destroy()
            raise

    def destroy(self):
        self.s3.destroy()


def print_report(fig):
    print()
    if "rpo" in fig:
        rpo_fig = fig["rpo"]
        print("RPO: archive_timeout {0} s, a marker every {1:.0f} ms, host lost at a random moment (seed {2})".format(
            fig["archive_timeout"], MARKER_INTERVAL * 1000, fig["seed"]))
        for number, trial in enumerate(rpo_fig["trials"], 1):
            print("  trial {0}: killed after {1:>6.1f} s; lost {2:>6.2f} s, {3} of {4} markers; recovery {5:.1f} s"
                  "{6}".format(number, trial["kill_delay_seconds"], trial["seconds_lost"], trial["markers_lost"],
                               trial["markers_acknowledged"], trial["recovery_seconds"],
                               "; HOLES below the newest recovered: {0}".format(trial["holes_below_newest_recovered"])
                               if trial["holes_below_newest_recovered"] else ""))
        worst = rpo_fig["worst"]
        print("{0:<46} {1:>7.2f} s  target <= {2:.0f} s  {3}".format(
            "RPO, worst of {0}: committed markers lost".format(len(rpo_fig["trials"])), worst["seconds_lost"],
            worst["target_seconds"], "met" if all(t["met"] for t in rpo_fig["trials"]) else "MISSED"))
        print()
    if "rto" in fig:
        rto_fig = fig["rto"]
        print("RTO: a {0:.0f} MB database, backup {1} ({2:.0f} MB in the repository), median of {3}".format(
            mb(rto_fig["database"]["size_bytes"]), rto_fig["backup"]["label"],
            mb(rto_fig["backup"]["repository_bytes"]), len(rto_fig["engine"]["runs"])))
        print("{0:<46} {1:>7.2f} s".format("baseline: pgbackrest restore alone", rto_fig["baseline"]["seconds"]))
        print("     " + describe_cpu(rto_fig["baseline"], fig["cpus"]))
        print("{0:<46} {1:>7.2f} s".format("engine: pg_pitr to a running cluster", rto_fig["engine"]["seconds"]))
        print("     " + describe_cpu(rto_fig["engine"], fig["cpus"]))
        print("{0:<46} {1:>7.2f}   (no target; reported)".format("engine / baseline", rto_fig["engine_to_baseline"]))
        print("the marker written after the backup is in the recovered cluster: {0}".format(
            "yes (it replayed the archive to its end)" if rto_fig["marker_after_backup_recovered"] else "NO"))


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    load_at_start = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="ops-runbook-bench-pitr-", dir=args.workdir)
    os.chmod(workdir, 0o755)  # the clusters and pgBackRest run as postgres when we are root
    env = None
    try:
        env = Environment(workdir)
        env.start()
        say("S3 over TLS at {0}; seed {1}; load average {2:.2f}".format(
            env.s3.endpoint_url, args.seed, load_at_start))
        figures = {"archive_timeout": args.archive_timeout, "seed": args.seed, "cpus": os.cpu_count(),
                   "load_1min_at_start": round(load_at_start, 2)}
        if args.only != "rto":
            rng = random.Random(args.seed)
            trials = [rpo_trial(env, index, rng, args.archive_timeout) for index in range(1, args.repeat + 1)]
            figures["rpo"] = {"trials": trials, "worst": max(trials, key=lambda t: t["seconds_lost"]),
                              "median_seconds_lost": round(statistics.median(t["seconds_lost"] for t in trials), 2)}
        if args.only != "rpo":
            figures["rto"] = rto(env, args)
        figures["load_1min_at_end"] = round(os.getloadavg()[0], 2)
        print_report(figures)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(figures, handle, indent=2, sort_keys=True)
                handle.write("\n")
            say("figures written to {0}".format(args.json))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not leave SeaweedFS running: it has a session of its own.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if env is not None:
            env.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
