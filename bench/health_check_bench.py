"""health_check.yml benchmark: the morning check of several hosts against the same check of one.

One run on this machine: `--hosts` systemd containers of the project's host
image (tests/harness/hostimage.py) are started with podman directly and
reached through the containers.podman connection. Then, round-robin,
`--repeat` times each (after one untimed warm-up over every host):

  one host     ansible-playbook playbooks/health_check.yml --limit FIRST_HOST
  all hosts    ansible-playbook playbooks/health_check.yml over every host

whole wall time, with every host_health category, one report written. It
prints both medians, their ratio against its target (several hosts should
cost little more than one: at most 1.5 for 4 hosts) and the cost of each
host after the first. Run it through `scripts/bench health_check`. The exit
status is 0 whether or not the target is met: benchmarks report, tests assert.
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

from harness import hostimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOK = os.path.join(ROOT, "playbooks", "health_check.yml")
TARGET = 1.5  # all hosts / one host, for the default of 4 hosts
# A PLAY RECAP line; the role ignores unreachable hosts and failed checks (they become failed rows of the report),
# so a run that exits 0 may still have reached nothing: the recap says whether it did.
RECAP_LINE = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s.*\bunreachable=(\d+)\s+failed=(\d+)\s.*\bignored=(\d+)", re.M)


def say(message):
    print("==> " + message, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, default=4, help="hosts of the several-hosts line (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each line; the median counts (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--workdir", help="directory for the inventory and reports (default: the system temp dir)")
    args = parser.parse_args(argv)
    if args.hosts < 2 or args.repeat < 1:
        parser.error("--hosts must be at least 2 and --repeat at least 1")
    return args


def checkout_id():
    # podman's names are machine-wide: the checkout's id keeps two checkouts' benchmarks apart.
    return hashlib.sha256(ROOT.encode()).hexdigest()[:8]


def container_names(count):
    return ["health-check-bench-{0}-{1}".format(checkout_id(), index + 1) for index in range(count)]


def podman(*args, check=True):
    return subprocess.run(["podman"] + list(args), env=hostimage.podman_env(), capture_output=True, text=True,
                          check=check)


def start_hosts(image, names, run_options=None):
    """Start one systemd container per name and wait for systemd; run_options: name -> more `podman run` options."""
    for name in names:
        podman("rm", "-f", name, check=False)
        podman("run", "-d", "--name", name, "--hostname", name, "--systemd=always",
               *(run_options or {}).get(name, ()), image, "/lib/systemd/systemd")
    deadline = time.monotonic() + 120
    waiting = list(names)
    while waiting and time.monotonic() < deadline:
        state = podman("exec", waiting[0], "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            waiting.pop(0)
        else:
            time.sleep(0.5)
    if waiting:
        raise RuntimeError("systemd did not come up in {0} within 120 s".format(", ".join(waiting)))


def stop_hosts(names):
    for name in names:
        podman("rm", "-f", "-t", "0", name, check=False)


def write_inventory(path, names):
    hosts = dict((name, {"ansible_connection": "containers.podman.podman", "ansible_host": name,
                         "ansible_python_interpreter": "/usr/bin/python3"}) for name in names)
    with open(path, "w") as handle:
        json.dump({"all": {"hosts": hosts}}, handle)


def run_playbook(inventory, extra_vars_path, forks, limit=None, hosts=None, env=None):
    """Seconds of one whole ansible-playbook run; raises when it did not finish or did not check every host.

    hosts: the hosts the run must have reached (default: the limit's); env: more environment for Ansible.
    """
    env = dict(hostimage.podman_env(), ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"), ANSIBLE_NOCOLOR="1",
               **(env or {}))
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    command = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, PLAYBOOK, "-e", "@" + extra_vars_path,
               "--forks", str(forks)]
    if limit:
        command += ["--limit", limit]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError("health_check.yml failed (exit {0}):\n{1}".format(
            done.returncode, "\n".join(output.splitlines()[-30:])))
    expected = hosts or (limit.split(",") if limit else [])
    recap = dict((match[0], [int(count) for count in match[1:]]) for match in RECAP_LINE.findall(done.stdout))
    missed = [host for host in expected if host not in recap or recap[host][0] == 0 or any(recap[host][1:])]
    if missed:
        raise RuntimeError("health_check.yml did not check {0} (unreachable, failed or ignored tasks):\n{1}".format(
            ", ".join(missed), "\n".join(output.splitlines()[-40:])))
    return seconds


def report(figures, hosts):
    one, several = figures["one_host_seconds"], figures["all_hosts_seconds"]
    ratio = several / one
    figures.update(ratio=ratio, per_extra_host_seconds=(several - one) / (hosts - 1), target=TARGET,
                   target_met=ratio <= TARGET)
    print()
    print("health_check.yml, median of {0} runs each (load average {1:.2f} at the start):".format(
        figures["repeat"], figures["load_at_start"]))
    rows = [("one host", "{0:7.1f} s".format(one)),
            ("{0} hosts".format(hosts), "{0:7.1f} s".format(several)),
            ("{0} hosts / one host".format(hosts), "{0:7.2f}   target <= {1}  {2}".format(
                ratio, TARGET, "met" if ratio <= TARGET else "MISSED")),
            ("each host after the first", "{0:7.1f} s".format(figures["per_extra_host_seconds"]))]
    for label, value in rows:
        print("  {0:<26}{1}".format(label, value))


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # leave through the same clean-up as Ctrl-C


def main(argv=None):
    args = parse_args(argv)
    if not shutil.which("podman"):
        print("podman is not installed: run scripts/bootstrap --hosts first", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    load_at_start = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="ops-runbook-bench-health-", dir=args.workdir)
    names = container_names(args.hosts)
    try:
        image = hostimage.ensure_image()
        say("starting {0} systemd hosts from {1}".format(args.hosts, image))
        start_hosts(image, names)
        inventory = os.path.join(workdir, "inventory.json")
        write_inventory(inventory, names)
        extra_vars = os.path.join(workdir, "vars.json")
        with open(extra_vars, "w") as handle:
            # The verdict does not matter here, only the time: never fail, one report per run.
            json.dump({"health_check_services": ["cron"], "health_check_fail_on": "never",
                       "health_check_report_dir": os.path.join(workdir, "reports")}, handle)
        forks = max(5, args.hosts)
        say("warming up: one untimed run over every host")
        run_playbook(inventory, extra_vars, forks, hosts=names)
        one, several = [], []
        for index in range(args.repeat):
            one.append(run_playbook(inventory, extra_vars, forks, limit=names[0]))
            several.append(run_playbook(inventory, extra_vars, forks, hosts=names))
            say("run {0}/{1}: one host {2:.1f} s, {3} hosts {4:.1f} s".format(
                index + 1, args.repeat, one[-1], args.hosts, several[-1]))
        figures = {"hosts": args.hosts, "repeat": args.repeat, "load_at_start": load_at_start,
                   "one_host_seconds": statistics.median(one), "all_hosts_seconds": statistics.median(several),
                   "one_host_runs": one, "all_hosts_runs": several}
        report(figures, args.hosts)
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
