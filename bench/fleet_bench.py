"""Fleet benchmark: health_check.yml on 1, 4 and 16 systemd hosts, in one run, and how the time grows.

`--max-hosts` containers of the project's host image (tests/harness/hostimage.py) are started once with
podman and reached through the containers.podman connection (as bench/health_check_bench.py does). Then,
round-robin, `--repeat` times each (after one untimed warm-up over every host), for every size of `--sizes`:

  ansible-playbook playbooks/health_check.yml --forks FORKS --limit FIRST_N_HOSTS

whole wall time, every host_health category, one report written. FORKS is the largest size (16 by default:
every host gets a worker, so hosts are checked side by side and the per-run cost is what grows; Ansible's
default of 5 would run 16 hosts in four waves). It prints each size's median, its ratio to one host, and the
target (16 hosts at most 2.5 times one host). Run it through `scripts/bench fleet`. Not part of CI. The exit
status is 0 whether or not the target is met: benchmarks report, tests assert.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile

from health_check_bench import container_names, run_playbook, say, start_hosts, stop_hosts, write_inventory
from harness import hostimage

TARGET = 2.5  # largest size / one host


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="1,4,16", help="host counts to time, comma-separated (default 1,4,16)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each size; the median counts (default 3)")
    parser.add_argument("--forks", type=int, help="Ansible forks (default: the largest size)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--workdir", help="directory for the inventory and reports (default: the system temp dir)")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted(set(int(size) for size in args.sizes.split(",")))
    except ValueError:
        parser.error("--sizes takes host counts such as 1,4,16")
    if args.sizes[0] != 1 or len(args.sizes) < 2 or args.repeat < 1:
        parser.error("--sizes must start with 1 and name another size; --repeat must be at least 1")
    args.forks = args.forks or args.sizes[-1]
    return args


def report(figures):
    one = figures["seconds"]["1"]
    largest = str(figures["sizes"][-1])
    ratio = figures["seconds"][largest] / one
    figures.update(ratio=ratio, target=TARGET, target_met=ratio <= TARGET)
    print()
    print("health_check.yml with --forks {0}, median of {1} runs each (load average {2:.2f} at the start):".format(
        figures["forks"], figures["repeat"], figures["load_at_start"]))
    for size in figures["sizes"]:
        seconds = figures["seconds"][str(size)]
        print("  {0:>3} host{1:<2}{2:8.1f} s   {3:5.2f} x one host".format(
            size, "s" if size > 1 else "", seconds, seconds / one))
    print("  {0} hosts / one host: {1:.2f}   target <= {2}  {3}".format(
        largest, ratio, TARGET, "met" if ratio <= TARGET else "MISSED"))


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # leave through the same clean-up as Ctrl-C


def main(argv=None):
    args = parse_args(argv)
    if not shutil.which("podman"):
        print("podman is not installed: run scripts/bootstrap --hosts first", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    load_at_start = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="ops-runbook-bench-fleet-", dir=args.workdir)
    names = [name.replace("health-check-bench-", "fleet-bench-") for name in container_names(args.sizes[-1])]
    try:
        image = hostimage.ensure_image()
        say("starting {0} systemd hosts from {1}".format(len(names), image))
        start_hosts(image, names)
        inventory = os.path.join(workdir, "inventory.json")
        write_inventory(inventory, names)
        extra_vars = os.path.join(workdir, "vars.json")
        with open(extra_vars, "w") as handle:
            # The verdict does not matter here, only the time: never fail, one report per run.
            json.dump({"health_check_services": ["cron"], "health_check_fail_on": "never",
                       "health_check_report_dir": os.path.join(workdir, "reports")}, handle)
        say("warming up: one untimed run over every host (--forks {0})".format(args.forks))
        run_playbook(inventory, extra_vars, args.forks)
        runs = dict((size, []) for size in args.sizes)
        for index in range(args.repeat):
            for size in args.sizes:
                runs[size].append(run_playbook(inventory, extra_vars, args.forks, limit=",".join(names[:size])))
            say("run {0}/{1}: {2}".format(index + 1, args.repeat, ", ".join(
                "{0} host(s) {1:.1f} s".format(size, runs[size][-1]) for size in args.sizes)))
        figures = {"sizes": args.sizes, "forks": args.forks, "repeat": args.repeat, "load_at_start": load_at_start,
                   "seconds": dict((str(size), statistics.median(runs[size])) for size in args.sizes),
                   "runs": dict((str(size), runs[size]) for size in args.sizes)}
        report(figures)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(figures, handle, indent=2)
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_hosts(names)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
