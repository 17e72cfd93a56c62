"""Fleet benchmark: health_check.yml on 1, 4 and 16 systemd hosts, in one run, and how the time grows.

The largest size's containers of the project's host image (tests/harness/hostimage.py) are started once with
podman and reached over `--transport`:

  ssh     (default) the way users and AWX reach hosts: each container runs sshd on its own loopback port
          (bench/ssh_hosts.py, an image derived once from the host image) and Ansible's ssh connection
          pipelines every module through one ControlPersist connection per host, opened by each run
  podman  the containers.podman connection (as bench/health_check_bench.py does); it cannot pipeline, so
          every module costs several `podman exec` and mount calls per host

Then, round-robin, `--repeat` times each (after one untimed warm-up over every host), for every size of `--sizes`:

  ansible-playbook playbooks/health_check.yml --forks FORKS --limit FIRST_N_HOSTS

whole wall time, every host_health category, one report written. FORKS is the largest size (16 by default:
every host gets a worker, so hosts are checked side by side and the per-run cost is what grows; Ansible's
default of 5 would run 16 hosts in four waves). It prints each size's median, its ratio to one host, and the
target (16 hosts at most 2.5 times one host). Run it through `scripts/bench fleet`. Not part of CI. The exit
status is 0 whether or not the target is met: benchmarks report, tests assert.
"""
import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile

import ssh_hosts
from health_check_bench import container_names, run_playbook, say, start_hosts, stop_hosts, write_inventory
from harness import hostimage

TARGET = 2.5  # largest size / one host


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="1,4,16", help="host counts to time, comma-separated (default 1,4,16)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each size; the median counts (default 3)")
    parser.add_argument("--forks", type=int, help="Ansible forks (default: the largest size)")
    parser.add_argument("--transport", choices=("ssh", "podman"), default="ssh",
                        help="how Ansible reaches the hosts: ssh (default, as users and AWX do) or podman exec")
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
    print("health_check.yml over {0} with --forks {1}, median of {2} runs each (load average {3:.2f} at the "
          "start):".format(figures["transport"], figures["forks"], figures["repeat"], figures["load_at_start"]))
    for size in figures["sizes"]:
        seconds = figures["seconds"][str(size)]
        print("  {0:>3} host{1:<2}{2:8.1f} s   {3:5.2f} x one host".format(
            size, "s" if size > 1 else "", seconds, seconds / one))
    print("  {0} hosts / one host: {1:.2f}   target <= {2}  {3}".format(
        largest, ratio, TARGET, "met" if ratio <= TARGET else "MISSED"))


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # leave through the same clean-up as Ctrl-C


def start_fleet(transport, names, workdir):
    """Start the hosts; returns the inventory's path and a function giving each run its connection context."""
    image = hostimage.ensure_image()
    inventory = os.path.join(workdir, "inventory.json")
    if transport == "podman":
        say("starting {0} systemd hosts from {1}".format(len(names), image))
        start_hosts(image, names)
        write_inventory(inventory, names)
        return inventory, lambda: contextlib.nullcontext({})
    image = ssh_hosts.ensure_image(image)
    say("starting {0} systemd hosts from {1}, sshd on loopback ports".format(len(names), image))
    key = ssh_hosts.make_key(workdir)
    ports = ssh_hosts.start(image, names, workdir, key)
    with open(inventory, "w") as handle:
        json.dump(ssh_hosts.inventory(ports, key), handle)
    return inventory, lambda: ssh_hosts.connections(workdir)


def main(argv=None):
    args = parse_args(argv)
    needed = ["podman"] + (["ssh", "ssh-keygen"] if args.transport == "ssh" else [])
    missing = [command for command in needed if not shutil.which(command)]
    if missing:
        print("{0} not installed: run scripts/bootstrap --hosts first (ssh and ssh-keygen come with "
              "openssh-client)".format(", ".join(missing)), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    load_at_start = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="ops-runbook-bench-fleet-", dir=args.workdir)
    names = [name.replace("health-check-bench-", "fleet-bench-") for name in container_names(args.sizes[-1])]
    try:
        inventory, connections = start_fleet(args.transport, names, workdir)
        extra_vars = os.path.join(workdir, "vars.json")
        with open(extra_vars, "w") as handle:
            # The verdict does not matter here, only the time: never fail, one report per run.
            json.dump({"health_check_services": ["cron"], "health_check_fail_on": "never",
                       "health_check_report_dir": os.path.join(workdir, "reports")}, handle)
        say("warming up: one untimed run over every host ({0}, --forks {1})".format(args.transport, args.forks))
        with connections() as env:
            run_playbook(inventory, extra_vars, args.forks, hosts=names, env=env)
        runs = dict((size, []) for size in args.sizes)
        for index in range(args.repeat):
            for size in args.sizes:
                with connections() as env:
                    runs[size].append(run_playbook(inventory, extra_vars, args.forks, limit=",".join(names[:size]),
                                                   env=env))
            say("run {0}/{1}: {2}".format(index + 1, args.repeat, ", ".join(
                "{0} host(s) {1:.1f} s".format(size, runs[size][-1]) for size in args.sizes)))
        figures = {"transport": args.transport, "sizes": args.sizes, "forks": args.forks, "repeat": args.repeat,
                   "load_at_start": load_at_start,
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
