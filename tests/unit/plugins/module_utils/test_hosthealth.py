"""Host health: thresholds, and reading /proc, df, apt and the journal the way the runbooks mean them."""
import collections

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import hosthealth
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

RUNBOOK_THRESHOLDS = {  # inventories/example/group_vars/all.yml
    "disk_used_percent": {"warn": 80, "fail": 95},
    "memory_used_percent": {"warn": 85, "fail": 95},
    "cpu_used_percent": {"warn": 80, "fail": 95},
    "api_response_ms": {"warn": 500, "fail": 2000},
    "idle_session_minutes": 10,
}


def test_the_inventorys_runbook_thresholds_pass_as_they_are():
    merged = hosthealth.merge_thresholds(RUNBOOK_THRESHOLDS)
    assert merged["disk_used_percent"] == {"warn": 80, "fail": 95}
    assert "api_response_ms" not in merged and "idle_session_minutes" not in merged
    assert merged["load_per_core"] == hosthealth.DEFAULT_THRESHOLDS["load_per_core"]


def test_a_threshold_may_change_one_level_or_be_one_number():
    merged = hosthealth.merge_thresholds({"disk_used_percent": {"warn": 70}, "memory_used_percent": 90})
    assert merged["disk_used_percent"] == {"warn": 70, "fail": 95}
    assert merged["memory_used_percent"] == {"warn": None, "fail": 90.0}


@pytest.mark.parametrize("given, message", [
    ({"disk_used_percent": {"warn": 96, "fail": 95}}, "warn \\(96\\) is above fail \\(95\\)"),
    ({"disk_used_percent": {"critical": 99}}, "unknown keys critical"),
    ({"disk_used_percent": {"warn": "lots"}}, "must be a number"),
])
def test_bad_thresholds_are_refused(given, message):
    with pytest.raises(RunbookError, match=message):
        hosthealth.merge_thresholds(given)


@pytest.mark.parametrize("value, status", [(79.9, "pass"), (80, "warn"), (94.9, "warn"), (95, "fail"), (100, "fail")])
def test_grade_warns_and_fails_at_or_above_the_limits(value, status):
    assert hosthealth.grade(value, {"warn": 80, "fail": 95}) == status


def test_grade_without_a_fail_limit_only_warns():
    assert hosthealth.grade(1000, {"warn": 1, "fail": None}) == "warn"
    assert hosthealth.grade(0, {"warn": 1, "fail": None}) == "pass"


MOUNTS = """\
overlay / overlay rw,relatime,lowerdir=/x 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev tmpfs rw,nosuid,size=65536k,mode=755 0 0
/dev/sda1 /boot ext4 rw,relatime 0 0
/dev/sda2 /var/log ext4 rw,relatime 0 0
/dev/sda2 /var/log/bind\\040mount ext4 rw,relatime 0 0
/dev/sr0 /media/cdrom iso9660 ro,relatime 0 0
/dev/sda3 /srv/read\\040only ext4 ro,relatime 0 0
"""


def test_mounts_are_read_with_their_escapes():
    mounts = hosthealth.parse_mounts(MOUNTS)
    assert ("/dev/sda2", "/var/log/bind mount", "ext4", ["rw", "relatime"]) in mounts


def test_only_writable_real_filesystems_are_checked_once_per_device():
    chosen = hosthealth.select_mounts(hosthealth.parse_mounts(MOUNTS), set(hosthealth.PSEUDO_FSTYPES))
    assert [point for _device, point, _fstype in chosen] == ["/", "/boot", "/var/log"]


StatVFS = collections.namedtuple("StatVFS", "f_frsize f_blocks f_bfree f_bavail f_files f_ffree f_favail")


def test_disk_use_is_computed_as_df_does():
    # 1000 blocks, 100 free of which 50 are reserved for root: df says 900 / (900 + 50) = 95 %.
    usage = hosthealth.usage_from_statvfs(StatVFS(4096, 1000, 100, 50, 1000, 250, 200))
    assert usage["used_percent"] == 94.7
    assert usage["used_bytes"] == 900 * 4096
    assert usage["available_bytes"] == 50 * 4096
    assert usage["inodes_used_percent"] == round(100.0 * 750 / 950, 1)


def test_a_filesystem_without_inode_counts_has_no_inode_figure():
    assert hosthealth.usage_from_statvfs(StatVFS(4096, 1000, 500, 500, 0, 0, 0))["inodes_used_percent"] is None


MEMINFO = """\
MemTotal:        8000000 kB
MemFree:          500000 kB
MemAvailable:    1000000 kB
Buffers:          100000 kB
Cached:          2000000 kB
SwapTotal:       2000000 kB
SwapFree:        1500000 kB
"""


def test_memory_in_use_is_total_minus_available():
    info = hosthealth.parse_meminfo(MEMINFO)
    assert info["used_percent"] == 87.5
    assert info["swap_used_percent"] == 25.0
    assert info["total_bytes"] == 8000000 * 1024


def test_memory_without_memavailable_counts_caches_as_available():
    text = "\n".join(line for line in MEMINFO.splitlines() if not line.startswith("MemAvailable"))
    assert hosthealth.parse_meminfo(text)["used_percent"] == round(100.0 * (8000000 - 2600000) / 8000000, 1)


def test_no_swap_is_zero_percent():
    assert hosthealth.parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 500 kB\nSwapTotal: 0 kB\n")[
        "swap_used_percent"] == 0.0


def test_cpu_busy_excludes_idle_and_iowait():
    first = hosthealth.parse_cpu_times("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n")
    second = hosthealth.parse_cpu_times("cpu  160 0 140 750 150 0 0 0 0 0\n")
    # busy +100, idle + iowait +100
    assert hosthealth.cpu_percent(first, second) == 50.0


def test_load_average():
    assert hosthealth.parse_loadavg("0.50 1.25 2.00 3/400 12345\n") == [0.5, 1.25, 2.0]


APT_SIMULATION = """\
Reading package lists...
Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst openssl [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])
Conf libssl3 (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
"""


def test_pending_updates_and_security_updates_are_counted_from_apt():
    assert hosthealth.parse_apt_simulation(APT_SIMULATION) == (3, 2)
    assert hosthealth.parse_apt_simulation("Reading package lists...\n0 upgraded, 0 newly installed\n") == (0, 0)


def test_ubuntu_apt_check_output():
    assert hosthealth.parse_apt_check("12;3") == (12, 3)
    assert hosthealth.parse_apt_check("E: something") is None


def entry(message, priority=6, unit="bmi-backend.service", transport="journal", subject="", time=1700000000000000):
    return {"time": time, "priority": priority, "unit": unit, "subject_unit": subject, "identifier": "node",
            "transport": transport, "message": message}


def test_journal_errors_are_by_priority_or_by_word():
    entries = [entry("GET /health 200"), entry("Error: connect ECONNREFUSED 127.0.0.1:5432"),
               entry("database down", priority=3), entry("an ERROR in caps"), entry("all fine", priority=4)]
    found = hosthealth.journal_error_lines(entries, "error", 3)
    assert [item["message"] for item in found] == ["Error: connect ECONNREFUSED 127.0.0.1:5432", "database down",
                                                   "an ERROR in caps"]
    assert len(hosthealth.journal_error_lines(entries, "", 3)) == 1


def test_oom_kills_from_the_kernel_and_from_systemd():
    entries = [
        entry("Out of memory: Killed process 4242 (node) total-vm:2000000kB", transport="kernel", unit=""),
        entry("node invoked oom-killer: gfp_mask=0x140cca", transport="kernel", unit=""),
        entry("bmi-backend.service: A process of this unit has been killed by the OOM killer.", transport="journal",
              unit="init.scope", subject="bmi-backend.service"),
        entry("bmi-backend.service: Failed with result 'oom-kill'.", subject="bmi-backend.service", unit="init.scope"),
        entry("Started bmi-backend.service.", subject="bmi-backend.service", unit="init.scope"),
    ]
    kernel, units = hosthealth.oom_events(entries)
    assert [(kill["pid"], kill["process"]) for kill in kernel] == [(4242, "node")]
    assert units == {"bmi-backend.service": {"kills": 1, "last": 1700000000.0}}


class FakeRunner:
    """Answers systemctl and journalctl as a host with the given units would."""

    def __init__(self, units, failed=(), journal=""):
        self.units = units
        self.failed = failed
        self.journal = journal
        self.calls = []

    def __call__(self, argv, timeout=None, env=None):
        self.calls.append(list(argv))
        if argv[:2] == ["systemctl", "show"]:
            properties = self.units.get(argv[2], {"LoadState": "not-found", "ActiveState": "inactive"})
            return Result(argv, 0, "\n".join("{0}={1}".format(k, v) for k, v in properties.items()), "")
        if argv[:2] == ["systemctl", "list-units"]:
            return Result(argv, 0, "".join("{0} loaded failed failed X\n".format(name) for name in self.failed), "")
        if argv[0] == "journalctl":
            return Result(argv, 0, self.journal, "")
        raise AssertionError("unexpected command {0}".format(argv))


def test_service_checks_pass_active_units_and_fail_the_others(tmp_path):
    runner = FakeRunner({
        "nginx.service": {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "MainPID": "10"},
        "bmi-backend.service": {"LoadState": "loaded", "ActiveState": "failed", "SubState": "failed",
                                "Result": "oom-kill"},
    }, failed=["bmi-backend.service"])
    result = hosthealth.collect({"services": ["nginx", "bmi-backend", "postgresql"],
                                 "categories": ["services", "failed_units", "oom"], "host_label": "web1"},
                                runner=runner)
    by_name = dict((check["name"], check) for check in result["checks"])
    assert by_name["service:nginx.service"]["status"] == "pass"
    assert by_name["service:bmi-backend.service"]["status"] == "fail"
    assert "result oom-kill" in by_name["service:bmi-backend.service"]["output"]
    assert by_name["service:postgresql.service"]["output"] == "postgresql.service does not exist."
    assert by_name["failed_units"]["observed_value"] == 1
    # systemd's Result=oom-kill counts as an OOM kill even when the journal has no message about it.
    assert by_name["oom_kills"]["observed_value"] == 1
    assert result["facts"]["oom"]["units"] == {"bmi-backend.service": {"kills": 1, "last": None}}
    assert result["status"] == "fail"
    assert all(check["host"] == "web1" for check in result["checks"])


def test_a_category_that_cannot_be_read_warns_and_the_rest_still_runs():
    def runner(argv, timeout=None, env=None):
        if argv[0] == "journalctl":
            return Result(argv, 1, "", "No journal files were opened due to insufficient permissions.")
        return FakeRunner({})(argv)
    result = hosthealth.collect({"services": ["nginx"], "categories": ["journal", "services"]}, runner=runner)
    names = [(check["name"], check["status"]) for check in result["checks"]]
    assert ("journal", "warn") in names
    assert ("service:nginx.service", "fail") in names
    journal = [check for check in result["checks"] if check["name"] == "journal"][0]
    assert "insufficient permissions" in journal["output"] and "systemd-journal" in journal["output"]


def test_unknown_categories_are_refused():
    with pytest.raises(RunbookError, match="Unknown check categories smart"):
        hosthealth.normalize({"categories": ["disk", "smart"]})
