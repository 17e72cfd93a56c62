"""CPU time spent during a timed line, for the whole machine and for the servers the benches start.

A ratio of wall times says how long a pipeline took; it does not say whether a
faster one is possible on this machine. The CPU seconds do: work that needs C
CPU-seconds cannot finish in less than C / (number of CPUs) seconds of wall
time however it is scheduled. The benches print that floor next to each line,
so a missed time target can be told apart into "the code waits" (wall well above
its floor) and "the machine is full" (wall at its floor).

Read from /proc (Linux): the machine's busy time from /proc/stat, and each
server's time from /proc/PID/stat of every process whose name starts with one
of `servers`' prefixes, counting also the children it has reaped (PostgreSQL's
backends, which exit with their connection). The rest, "the pipeline", is the
machine's busy time minus the servers': the timed line itself plus anything
else that ran on the machine, which is why the benches print the load average.
"""
import os
import time

SERVERS = (("postgres", "PostgreSQL server"), ("weed", "S3 server (SeaweedFS)"))


def machine_busy_seconds():
    """CPU-seconds the machine has been busy since boot, all CPUs together (not idle, not iowait)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def server_seconds(prefixes):
    """CPU-seconds used so far by the processes named with each prefix, their reaped children included."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = dict((prefix, 0.0) for prefix in prefixes)
    for entry in sorted((name for name in os.listdir("/proc") if name.isdigit()), key=int):
        try:
            with open("/proc/{0}/stat".format(entry)) as handle:
                stat = handle.read()
        except OSError:
            continue  # it exited meanwhile: its parent's reaped-children time has it
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        for prefix in prefixes:
            if name.startswith(prefix):
                fields = stat[stat.rindex(")") + 2:].split()
                # utime stime cutime cstime (fields 14 to 17 of proc(5))
                totals[prefix] += sum(int(value) for value in fields[11:15]) / tick
                break
    return totals


def _settled_server_seconds(prefixes):
    """server_seconds() read twice: a process that exits and is reaped between the
    read of its parent and its own read is in neither. That can hit only one of two
    reads, so the larger of the two holds it."""
    first = server_seconds(prefixes)
    time.sleep(0.05)
    second = server_seconds(prefixes)
    return dict((prefix, max(first[prefix], second[prefix])) for prefix in prefixes)


class CpuMeter(object):
    """meter = CpuMeter(); ...timed work...; figures = meter.stop()"""

    def __init__(self, servers=SERVERS):
        self.prefixes = [prefix for prefix, dummy in servers]
        self.start_busy = machine_busy_seconds()
        self.start_servers = _settled_server_seconds(self.prefixes)

    def stop(self):
        busy = machine_busy_seconds() - self.start_busy
        now = _settled_server_seconds(self.prefixes)
        servers = dict((prefix, max(0.0, now[prefix] - self.start_servers[prefix])) for prefix in self.prefixes)
        return {
            "cpu_seconds": round(busy, 2),
            "servers": dict((prefix, round(value, 2)) for prefix, value in servers.items()),
            "pipeline_cpu_seconds": round(max(0.0, busy - sum(servers.values())), 2),
        }


def floor_seconds(cpu_seconds, cpus=None):
    """The shortest wall time in which this much CPU work fits on this machine."""
    return cpu_seconds / (cpus or os.cpu_count() or 1)


def describe(entry, cpus=None):
    """One line: CPU-seconds, split by server, and the floor they set."""
    cpu = entry.get("cpu")
    if not cpu:
        return None
    labels = dict(SERVERS)
    parts = ["{0} {1:.2f}".format(labels.get(prefix, prefix), value) for prefix, value in sorted(cpu["servers"].items())
             if value >= 0.01]
    return "CPU {0:.2f} s ({1}; the rest {2:.2f}); at least {3:.2f} s of wall time on {4} CPUs".format(
        cpu["cpu_seconds"], ", ".join(parts) or "no server", cpu["pipeline_cpu_seconds"],
        floor_seconds(cpu["cpu_seconds"], cpus), cpus or os.cpu_count())


def floor_against(cpu, baseline, target, cpus=None):
    """What a line's CPU work allows against a baseline's wall time and a time target.

    `cpu` is the line's CpuMeter figures, `baseline` the baseline line ({"seconds", "cpu"}).
    The S3 server runs on the measured machine only in the benches; the figures
    without its share are what a host talking to a remote store must carry.
    """
    cpus = cpus or os.cpu_count() or 1
    seconds = baseline["seconds"]
    s3_server = cpu["servers"].get("weed", 0.0)
    floor = floor_seconds(cpu["cpu_seconds"], cpus)
    return {
        "cpus": cpus,
        "cpu_seconds": cpu["cpu_seconds"],
        "baseline_cores": round(baseline["cpu"]["cpu_seconds"] / seconds, 2),
        "floor_to_baseline": round(floor / seconds, 3),
        "floor_without_s3_server_to_baseline": round(floor_seconds(cpu["cpu_seconds"] - s3_server, cpus) / seconds, 3),
        # The least number of CPUs on which this work fits in the target's wall time, at this CPU speed.
        "cpus_for_target": round(cpu["cpu_seconds"] / (target * seconds), 2),
        "cpus_for_target_without_s3_server": round((cpu["cpu_seconds"] - s3_server) / (target * seconds), 2),
        "target": target,
        "target_reachable_here": floor / seconds <= target,
    }


def floor_lines(floor, line, baseline):
    """The report's lines for floor_against()'s figures; `line` and `baseline` name the two lines."""
    return [
        "What this machine allows: {0}'s CPU work ({1:.2f} CPU-s) spread over all {2} CPUs".format(
            line, floor["cpu_seconds"], floor["cpus"]),
        "{0:<58} {1:>7.2f}   target <= {2:.2f}  {3}".format(
            "  its floor / " + baseline, floor["floor_to_baseline"], floor["target"],
            "fits (necessary, not sufficient)" if floor["target_reachable_here"] else "OUT OF REACH on this machine"),
        "{0:<58} {1:>7.2f}".format("  the same, the bench's S3 server left out",
                                   floor["floor_without_s3_server_to_baseline"]),
        "  the {0} itself keeps {1:.2f} CPUs busy; fitting {2}'s work in {3:.1f}x the {0} takes "
        "{4:.1f} CPUs ({5:.1f} with the S3 server elsewhere)".format(
            baseline, floor["baseline_cores"], line, floor["target"], floor["cpus_for_target"],
            floor["cpus_for_target_without_s3_server"]),
    ]
