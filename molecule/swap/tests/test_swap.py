"""The swap role's effect on a real host: swap really on with the requested size, back after a
reboot's `swapon -a`, resized, removed, and refused (with nothing changed) where it would hurt.

Tests run in file order: checks of the converged host, refusals, then resize and removal.
"""
import os

import testinfra.utils.ansible_runner
from harness.playbook import run_playbook

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWAP_FILE = "/srv/swap/swapfile"
SYSCTL_FILE = "/etc/sysctl.d/60-ops-runbook-swap.conf"
MIB = 1024 * 1024
PAGE = 4096
CONVERGED = {"swap_file_path": SWAP_FILE, "swap_file_size": "64M", "swap_swappiness": 10, "swap_vfs_cache_pressure": 50}


def run_role(extra_vars, *args):
    """Apply the role to the scenario's host with these variables: (exit status, output on one line)."""
    return run_playbook(os.path.join(SCENARIO_DIR, "apply_role.yml"), extra_vars,
                        os.environ["MOLECULE_INVENTORY_FILE"], *args)


def active_swap(host, path=SWAP_FILE):
    """Size in bytes of `path` in the kernel's /proc/swaps, None when it is not in use."""
    for line in host.file("/proc/swaps").content_string.splitlines()[1:]:
        fields = line.split()
        if fields[0] == path:
            return int(fields[2]) * 1024
    return None


def file_identity(host, path=SWAP_FILE):
    return host.check_output("stat -c '%%i %%s %%Y' %s", path)


def fstab_lines(host, path=SWAP_FILE):
    return [line for line in host.file("/etc/fstab").content_string.splitlines() if line.split()[:1] == [path]]


def test_swap_is_active_with_the_requested_size(host):
    # mkswap keeps the first page for its header.
    assert active_swap(host) == 64 * MIB - PAGE
    swap_file = host.file(SWAP_FILE)
    assert (swap_file.user, swap_file.group, swap_file.mode, swap_file.size) == ("root", "root", 0o600, 64 * MIB)
    assert "swap" in host.check_output("blkid -p -o value -s TYPE %s", SWAP_FILE)


def test_swap_is_in_fstab_and_comes_back_from_it(host):
    assert fstab_lines(host) == [SWAP_FILE + " none swap sw 0 0"]
    host.run_expect([0], "swapoff %s", SWAP_FILE)
    assert active_swap(host) is None
    # What the boot does with /etc/fstab.
    host.run_expect([0], "swapon --all")
    assert active_swap(host) == 64 * MIB - PAGE


def test_kernel_settings_are_set_now_and_at_boot(host):
    assert host.file("/proc/sys/vm/swappiness").content_string.strip() == "10"
    assert host.file("/proc/sys/vm/vfs_cache_pressure").content_string.strip() == "50"
    assert host.file(SYSCTL_FILE).content_string.splitlines()[-2:] == ["vm.swappiness = 10", "vm.vfs_cache_pressure = 50"]
    # What the boot does with /etc/sysctl.d: every file in order, the last one wins.
    host.run_expect([0], "sysctl --system")
    assert host.file("/proc/sys/vm/swappiness").content_string.strip() == "10"


def test_check_mode_reports_a_resize_without_doing_it(host):
    before = file_identity(host)
    status, output = run_role(dict(CONVERGED, swap_file_size="96M"), "--check")
    assert status == 0, output
    assert ("Would turn off swap on /srv/swap/swapfile; replace /srv/swap/swapfile (64.0 MiB) with a new 96.0 MiB"
            " swap file; turn on swap on /srv/swap/swapfile.") in output
    assert file_identity(host) == before
    assert active_swap(host) == 64 * MIB - PAGE


def test_size_over_free_disk_is_refused_before_anything_changes(host):
    before = file_identity(host)
    status, output = run_role(dict(CONVERGED, swap_file_size="100T"))
    assert status != 0
    assert "Refusing to write a 100.0 TiB swap file at /srv/swap/swapfile: the file system has" in output
    assert "less than the 1.0 GiB that must stay free" in output
    assert "Nothing was changed." in output
    assert file_identity(host) == before
    assert active_swap(host) == 64 * MIB - PAGE


def test_the_disk_margin_counts(host):
    free = int(host.check_output("df --block-size=1 --output=avail /srv/swap | tail -1"))
    # The file would fit, but would leave less than the margin.
    status, output = run_role(dict(CONVERGED, swap_file_path="/srv/swap/second", swap_file_size="64M",
                                   swap_file_min_free="{0}M".format(free // MIB)))
    assert status != 0
    assert "that must stay free" in output
    assert not host.file("/srv/swap/second").exists


def test_overlay_root_is_refused(host):
    status, output = run_role(dict(CONVERGED, swap_file_path="/var/tmp/swapfile"))
    assert status != 0
    assert "/var/tmp/swapfile is on a file system of type overlay, where the kernel refuses swap files." in output
    assert not host.file("/var/tmp/swapfile").exists


def test_host_without_swap_permission_is_refused(host):
    status, output = run_role(dict(CONVERGED, swap_file_path="/srv/swap/second",
                                   ansible_python_interpreter="/usr/local/bin/python3-without-cap-sys-admin"))
    assert status != 0
    assert "Cannot enable swap on this host: the kernel does not let this process manage swap" in output
    assert "Nothing was changed." in output
    assert not host.file("/srv/swap/second").exists


def test_a_later_sysctl_file_that_would_win_at_boot_fails_the_run(host):
    host.run_expect([0], "printf 'vm.swappiness = 60\\n' > /etc/sysctl.d/99-local.conf")
    try:
        status, output = run_role(CONVERGED)
    finally:
        host.run_expect([0], "rm -f /etc/sysctl.d/99-local.conf")
    assert status != 0
    assert "At boot another sysctl file sets vm.swappiness after {0}, to 60 instead of 10.".format(SYSCTL_FILE) in output


def test_resize_turns_off_rewrites_and_turns_on(host):
    status, output = run_role(dict(CONVERGED, swap_file_size="96M"))
    assert status == 0, output
    assert active_swap(host) == 96 * MIB - PAGE
    assert host.file(SWAP_FILE).size == 96 * MIB
    assert host.file(SWAP_FILE).mode == 0o600
    assert fstab_lines(host) == [SWAP_FILE + " none swap sw 0 0"]
    assert not host.file("/srv/swap/.swapfile.partial").exists


def test_absent_turns_off_and_removes_everything(host):
    status, output = run_role(dict(CONVERGED, swap_file_state="absent"))
    assert status == 0, output
    assert active_swap(host) is None
    assert not host.file(SWAP_FILE).exists
    assert fstab_lines(host) == []
    assert not host.file(SYSCTL_FILE).exists
