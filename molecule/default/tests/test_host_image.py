"""The systemd test host every scenario runs on, as tests/harness/hostimage.py builds it."""
import os
import sys

import testinfra.utils.ansible_runner

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests"))
from harness import hostimage  # noqa: E402

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]


def test_systemd_boots_without_failed_units(host):
    state = host.run("systemctl is-system-running --wait")
    assert state.stdout.strip() == "running", host.run("systemctl --failed --no-legend").stdout
    assert host.check_output("ps -o comm= -p 1") == "systemd"


def test_apt_uses_the_mirror_this_machine_uses(host):
    mirror, security = hostimage.debian_mirrors()
    sources = host.file("/etc/apt/sources.list.d/debian.sources").content_string
    assert "URIs: {}\n".format(mirror) in sources
    assert "URIs: {}\n".format(security) in sources
    assert not host.file("/etc/apt/sources.list").exists


def test_apt_update_reaches_the_mirror(host):
    host.run_expect([0], "apt-get update -qq")


def test_downloaded_packages_are_kept_on_the_host(host):
    assert host.mount_point("/var/cache/apt/archives").exists


def test_no_timer_takes_the_dpkg_lock(host):
    for timer in hostimage.MASKED_UNITS:
        assert host.run("systemctl is-enabled %s", timer).stdout.strip() == "masked"


def test_tools_roles_rely_on(host):
    for command in ("python3", "sudo", "systemctl", "crontab", "logrotate", "ip", "ps"):
        assert host.exists(command), command
