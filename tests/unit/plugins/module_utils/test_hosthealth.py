"""Host health: reading /proc, df, apt and the journal the way the runbooks mean them."""
import collections

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import host_health as hosthealth
from ansible_collections.ops.runbook.plugins.module_utils.commands import Result
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

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


DOCKER_HOST_MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
/dev/vdb1 /srv ext4 rw,relatime 0 0
overlay /var/lib/docker/overlay2/4cbafed9f83b/merged overlay rw,relatime,lowerdir=/var/lib/docker/overlay2/l/A 0 0
shm /var/lib/docker/containers/2ed8850c1efb/mounts/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k 0 0
nsfs /run/docker/netns/default nsfs rw 0 0
overlay /srv/docker/overlay2/82da09f461f6/merged overlay rw,relatime,lowerdir=/srv/docker/overlay2/l/B 0 0
/dev/vdc1 /var/lib/docker/volumes/pgdata/_data ext4 rw,relatime 0 0
/dev/vdd1 /var/lib/containers/storage/volumes/x ext4 rw,relatime 0 0
tmpfs /run/credentials/systemd-journald.service tmpfs ro,nosuid,nodev,noexec,relatime 0 0
/dev/vde1 /run/credentials/app.service ext4 rw,relatime 0 0
/dev/vdf1 /var/lib/docker ext4 rw,relatime 0 0
"""


def _points(mounts, **options):
    opts = hosthealth.normalize(options)
    return [point for _device, point, _fstype in hosthealth.select_mounts(
        hosthealth.parse_mounts(mounts), set(opts["exclude_fstypes"]), opts["exclude_mount_points"])]


def test_container_mounts_are_left_out_as_node_exporter_does():
    # Overlay layers (also under a data root elsewhere), their shm, and what lives under the engines' data
    # directories; /var/lib/docker itself is a disk of the host and is checked.
    assert _points(DOCKER_HOST_MOUNTS) == ["/", "/srv", "/var/lib/docker"]


def test_the_mount_point_exclusion_can_be_replaced_or_switched_off():
    assert _points(DOCKER_HOST_MOUNTS, exclude_mount_points="^/srv") == [
        "/", "/run/credentials/app.service", "/var/lib/containers/storage/volumes/x", "/var/lib/docker",
        "/var/lib/docker/volumes/pgdata/_data"]
    assert "/var/lib/docker/volumes/pgdata/_data" in _points(DOCKER_HOST_MOUNTS, exclude_mount_points="")


def test_the_overlay_root_of_a_host_that_is_a_container_is_still_checked():
    assert _points("overlay / overlay rw,relatime,lowerdir=/x 0 0\n"
                   "overlay /var/lib/docker/overlay2/a/merged overlay rw 0 0\n"
                   "overlay /data/overlay2/b/merged overlay rw 0 0\n") == ["/"]


def test_an_exclusion_that_is_no_regular_expression_is_refused():
    with pytest.raises(RunbookError, match="exclude_mount_points is not a valid regular expression"):
        hosthealth.normalize({"exclude_mount_points": "^/(dev"})


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
    # A unit systemd does not know could not be checked: a fail marked unchecked, never a pass.
    missing = by_name["service:postgresql.service"]
    assert (missing["status"], missing["unchecked"]) == ("fail", True)
    assert missing["output"].startswith("Could not check postgresql.service: systemd does not know this unit "
                                        "(LoadState=not-found). Check its name")
    assert by_name["failed_units"]["observed_value"] == 1
    # systemd's Result=oom-kill counts as an OOM kill even when the journal has no message about it.
    assert by_name["oom_kills"]["observed_value"] == 1
    assert result["facts"]["oom"]["units"] == {"bmi-backend.service": {"kills": 1, "last": None}}
    assert result["status"] == "fail"
    assert all(check["host"] == "web1" for check in result["checks"])


def test_a_journal_that_cannot_be_read_fails_unchecked_and_the_rest_still_runs():
    def runner(argv, timeout=None, env=None):
        if argv[0] == "journalctl":
            return Result(argv, 1, "", "No journal files were opened due to insufficient permissions.")
        return FakeRunner({})(argv)
    result = hosthealth.collect({"services": ["nginx"], "categories": ["journal", "services"]}, runner=runner)
    names = [(check["name"], check["status"]) for check in result["checks"]]
    assert ("journal_errors:nginx.service", "fail") in names
    assert ("service:nginx.service", "fail") in names
    journal = [check for check in result["checks"] if check["name"] == "journal_errors:nginx.service"][0]
    assert journal["unchecked"] is True
    assert journal["output"].startswith("Could not read the journal of nginx.service since 24 hours ago: "
                                        "`journalctl --disk-usage` failed: No journal files were opened due to "
                                        "insufficient permissions")
    assert "systemd-journal" in journal["output"]
    assert "No error lines" not in journal["output"]


NO_SYSTEMD = "System has not been booted with systemd as init system (PID 1). Can't operate.\n" \
             "Failed to connect to bus: Host is down"


def no_systemd_runner(journal_usage="No journal files were found.\nArchived and active journals take up 0B."):
    """A container: systemctl cannot talk to systemd, journalctl finds no journal files and exits 0."""
    def runner(argv, timeout=None, env=None):
        if argv[0] == "systemctl":
            return Result(argv, 1, "", NO_SYSTEMD)
        if argv[:3] == ["journalctl", "--no-pager", "--disk-usage"]:
            return Result(argv, 0, "", journal_usage)
        if argv[0] == "journalctl":
            return Result(argv, 0, "", "")  # -o json says nothing at all about missing files
        raise AssertionError("unexpected command {0}".format(argv))
    return runner


def test_a_host_without_systemd_or_journal_passes_nothing_it_could_not_check():
    result = hosthealth.collect({"services": ["nginx", "bmi-backend"], "host_label": "box",
                                 "categories": ["services", "failed_units", "journal", "oom"]},
                                runner=no_systemd_runner())
    by_name = dict((check["name"], check) for check in result["checks"])
    assert sorted(by_name) == ["failed_units", "journal_errors:bmi-backend.service", "journal_errors:nginx.service",
                               "oom_kills", "service:bmi-backend.service", "service:nginx.service"]
    assert all(check["status"] == "fail" and check["unchecked"] is True for check in result["checks"])
    assert result["status"] == "fail" and result["unchecked"] == [check["name"] for check in result["checks"]]
    assert by_name["service:nginx.service"]["output"].startswith(
        "Could not check nginx.service: systemd is not running this host as PID 1")
    assert "leave services out of categories" in by_name["service:nginx.service"]["output"]
    assert by_name["journal_errors:nginx.service"]["output"].startswith(
        "Could not read the journal of nginx.service since 24 hours ago: this host keeps no journal files")
    assert "No OOM kills" not in by_name["oom_kills"]["output"]
    assert by_name["oom_kills"]["output"].startswith("Could not check OOM kills since 24 hours ago")
    assert by_name["failed_units"]["output"].startswith("Could not check failed_units: `systemctl list-units")
    assert result["facts"]["services"]["nginx.service"]["unchecked"] is True


def test_journalctl_missing_or_failing_is_never_no_error_lines():
    def missing(argv, timeout=None, env=None):
        if argv[0] == "journalctl":
            raise RunbookError("journalctl is not installed on this host (running `journalctl`).",
                               cause="missing_program")
        raise AssertionError(argv)
    result = hosthealth.collect({"services": ["nginx"], "categories": ["journal"]}, runner=missing)
    check = result["checks"][0]
    assert (check["name"], check["status"], check["unchecked"]) == ("journal_errors:nginx.service", "fail", True)
    assert "journalctl is not installed on this host" in check["output"]

    def failing(argv, timeout=None, env=None):
        if "--disk-usage" in argv:
            return Result(argv, 0, "Archived and active journals take up 8.0M in the file system.", "")
        return Result(argv, 1, "", "Failed to parse timestamp: yesterday-ish")
    result = hosthealth.collect({"services": ["nginx"], "categories": ["journal"]}, runner=failing)
    check = result["checks"][0]
    assert (check["status"], check["unchecked"]) == ("fail", True)
    assert "Failed to parse timestamp" in check["output"]


@pytest.mark.parametrize("rc, stdout, stderr, words", [
    (0, "Archived and active journals take up 48.0M in the file system.", "", None),
    (0, "Archived and active journals take up 0B in the file system.", "No journal files were found.",
     "keeps no journal files"),
    (1, "", "No journal files were opened due to insufficient permissions.", "insufficient permissions"),
    (0, "Archived and active journals take up 8.0M in the file system.",
     "Hint: You are currently not seeing messages from other users and the system.\n"
     "      Users in groups 'adm', 'systemd-journal' can see all messages.", "sees only its own messages"),
])
def test_journal_access_is_read_from_what_journalctl_says(rc, stdout, stderr, words):
    problem = hosthealth.journal_access_problem(Result(["journalctl"], rc, stdout, stderr))
    assert problem is None if words is None else words in problem


def test_updates_and_reboot_without_apt_or_dnf_could_not_be_checked():
    result = hosthealth.collect({"categories": ["updates", "reboot"]}, runner=FakeRunner({}),
                                exists=lambda path: False)
    by_name = dict((check["name"], check) for check in result["checks"])
    assert sorted(by_name) == ["pending_updates", "reboot_required", "security_updates"]
    assert all(check["status"] == "fail" and check["unchecked"] for check in result["checks"])
    assert by_name["pending_updates"]["output"] == (
        "Could not check pending updates: this host has neither apt-get nor dnf. Leave updates out of categories "
        "on this host.")
    assert "neither apt-get nor dnf" in by_name["reboot_required"]["output"]
    assert "No reboot is required" not in by_name["reboot_required"]["output"]


def test_a_dnf_host_counts_updates_and_cannot_tell_a_reboot_without_needs_restarting():
    def runner(argv, timeout=None, env=None):
        if argv[0] == "rpm":
            return Result(argv, 0, "openssl\tx86_64\t1:3.0.7-24.el9\nbash\tx86_64\t0:5.1.8-6.el9\n", "")
        if argv[:3] == ["dnf", "-q", "check-update"]:
            listed = "openssl.x86_64  1:3.0.7-25.el9  baseos\n"
            if "--security" not in argv:
                listed += "bash.x86_64  5.1.8-9.el9  baseos\n"
            return Result(argv, 100, listed, "")
        if "needs-restarting" in argv:
            raise RunbookError("{0} is not installed on this host.".format(argv[0]), cause="missing_program")
        raise AssertionError(argv)
    result = hosthealth.collect({"categories": ["updates", "reboot"]}, runner=runner,
                                exists=lambda path: path == "/usr/bin/dnf")
    by_name = dict((check["name"], check) for check in result["checks"])
    assert (by_name["pending_updates"]["status"], by_name["pending_updates"]["observed_value"]) == ("pass", 2)
    assert (by_name["security_updates"]["status"], by_name["security_updates"]["observed_value"]) == ("warn", 1)
    assert (by_name["reboot_required"]["status"], by_name["reboot_required"]["unchecked"]) == ("fail", True)
    assert "needs-restarting (dnf-utils) is not installed or failed" in by_name["reboot_required"]["output"]


def test_a_filesystem_that_cannot_be_read_is_unchecked_not_full(tmp_path):
    gone = str(tmp_path / "gone")
    result = hosthealth.collect({"categories": ["disk"], "mounts": [gone]}, runner=FakeRunner({}))
    check = result["checks"][0]
    assert (check["name"], check["status"], check["unchecked"]) == ("disk:" + gone, "fail", True)
    assert check["output"].startswith("Could not check the disk use of {0}: No such file or directory".format(gone))


def test_meminfo_without_memtotal_is_not_zero_percent_used(tmp_path):
    (tmp_path / "meminfo").write_text("MemFree: 100 kB\n")
    result = hosthealth.collect({"categories": ["memory"]}, runner=FakeRunner({}), proc_root=str(tmp_path))
    check = result["checks"][0]
    assert (check["name"], check["status"], check["unchecked"]) == ("memory", "fail", True)
    assert "has no MemTotal" in check["output"]


def test_cpu_that_did_not_move_is_not_zero_percent_busy(tmp_path):
    (tmp_path / "stat").write_text("cpu  100 0 50 1000 10 0 0 0 0 0\n")
    result = hosthealth.collect({"categories": ["cpu"], "cpu_sample_seconds": 0.5}, runner=FakeRunner({}),
                                proc_root=str(tmp_path), sleep=lambda seconds: None)
    check = result["checks"][0]
    assert (check["name"], check["status"], check["unchecked"]) == ("cpu", "fail", True)
    assert "did not advance over 0.5 s" in check["output"]
