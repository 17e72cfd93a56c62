"""Reading apt's simulation, dpkg, rpm, dnf and the reboot signals the way the package managers write them."""
from ansible_collections.ops.runbook.plugins.module_utils import packages

# Captured from `apt-get -s upgrade --with-new-pkgs` on a Debian 12 host with the Debian archives and two
# flat repositories (one labelled as a security source), plus a new dependency, a removal and a kept-back package.
APT_SIMULATION = """\
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following packages have been kept back:
  linux-image-amd64 ops-demo-held
The following packages will be upgraded:
  libssl3 ops-demo-feature ops-demo-secfix tzdata
4 upgraded, 1 newly installed, 1 to remove and 2 not upgraded.
Remv ops-demo-old [0.9]
Inst libssl3 [3.0.20-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Inst python3.11 [3.11.2-6+deb12u8] (3.11.2-6+deb12u9 Debian-Security:12/oldstable-security [amd64]) []
Inst libfoo2 (2.0-1 Debian:12.15/oldstable [amd64])
Inst tzdata [2026b-0+deb12u1] (2026f-0+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [all])
Inst ops-demo-feature [1.0] (2.0 OpsTest:stable [all])
Inst ops-demo-secfix [1.0] (1.1 OpsTest-Security:stable-security [all])
Inst libc6:i386 [2.36-9+deb12u7] (2.36-9+deb12u9 Debian:12.15/oldstable [i386])
Conf libssl3 (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Conf ops-demo-secfix (1.1 OpsTest-Security:stable-security [all])
"""


def test_every_inst_line_becomes_an_update_with_its_sources():
    simulated = packages.parse_apt_simulation(APT_SIMULATION)
    by_name = dict((update["name"], update) for update in simulated["upgrades"])
    assert list(by_name) == ["libssl3", "python3.11", "tzdata", "ops-demo-feature", "ops-demo-secfix", "libc6:i386"]
    assert by_name["libssl3"] == {"name": "libssl3", "arch": "amd64", "old": "3.0.20-1~deb12u2",
                                  "new": "3.0.22-1~deb12u2", "releases": ["Debian-Security:12/oldstable-security"],
                                  "security": True}
    # The trailing "[]" apt prints for a package with broken dependencies does not confuse the reading.
    assert by_name["python3.11"]["new"] == "3.11.2-6+deb12u9" and by_name["python3.11"]["security"]
    assert by_name["tzdata"]["releases"] == ["Debian:12.15/oldstable", "Debian-Security:12/oldstable-security"]
    assert by_name["tzdata"]["security"] is True
    assert by_name["ops-demo-feature"]["security"] is False
    assert by_name["ops-demo-secfix"]["security"] is True
    assert by_name["libc6:i386"]["arch"] == "i386" and by_name["libc6:i386"]["security"] is False
    assert simulated["new"] == [{"name": "libfoo2", "arch": "amd64", "new": "2.0-1",
                                 "releases": ["Debian:12.15/oldstable"], "security": False}]
    assert simulated["removals"] == [{"name": "ops-demo-old", "old": "0.9"}]
    assert simulated["kept_back"] == ["linux-image-amd64", "ops-demo-held"]


def test_the_security_pattern_decides_what_a_security_source_is():
    simulated = packages.parse_apt_simulation(APT_SIMULATION, security_pattern=r"^OpsTest-Security:")
    assert [update["name"] for update in simulated["upgrades"] if update["security"]] == ["ops-demo-secfix"]
    assert packages.is_security(["Ubuntu:22.04/jammy-security"])
    assert not packages.is_security(["Ubuntu:22.04/jammy-updates", "localhost"])
    assert not packages.is_security([])


def test_nothing_pending():
    simulated = packages.parse_apt_simulation("Reading package lists...\n0 upgraded, 0 newly installed, 0 to "
                                              "remove and 0 not upgraded.\n")
    assert simulated == {"upgrades": [], "new": [], "removals": [], "kept_back": []}


def test_exclusion_patterns_ignore_the_architecture_qualifier():
    assert packages.matches_any("postgresql-15:amd64", ["postgresql-*"])
    assert not packages.matches_any("libpq5", ["postgresql-*"])
    assert not packages.matches_any("libpq5", [])


DPKG = ("ii \tlibssl3\tamd64\t3.0.20-1~deb12u2\n"
        "ii \tlibc6\ti386\t2.36-9+deb12u7\n"
        "rc \told-package\tamd64\t1.0\n"
        "un \tnever-installed\tamd64\t\n"
        "iF \thalf-configured\tall\t2.0\n")


def test_dpkg_lists_packages_with_files_only():
    assert packages.parse_dpkg_query(DPKG) == {"libssl3:amd64": {"3.0.20-1~deb12u2"}, "libc6:i386": {"2.36-9+deb12u7"},
                                               "half-configured:all": {"2.0"}}


def test_a_diff_reports_old_and_new_versions_installs_and_removals():
    before = packages.parse_dpkg_query(DPKG)
    after = dict(before, **{"libssl3:amd64": {"3.0.22-1~deb12u2"}, "libfoo2:amd64": {"2.0-1"}})
    del after["half-configured:all"]
    changes = packages.diff_installed(before, after, native_arches=("amd64", "all"))
    assert changes == {
        "upgraded": [{"name": "libssl3", "arch": "amd64", "old": "3.0.20-1~deb12u2", "new": "3.0.22-1~deb12u2"}],
        "installed": [{"name": "libfoo2", "arch": "amd64", "version": "2.0-1"}],
        "removed": [{"name": "half-configured", "arch": "all", "version": "2.0"}],
    }
    foreign = packages.diff_installed({"libc6:i386": {"1"}}, {"libc6:i386": {"2"}}, native_arches=("amd64", "all"))
    assert foreign["upgraded"][0]["name"] == "libc6:i386"
    assert packages.diff_installed(before, before) == {"upgraded": [], "installed": [], "removed": []}


def test_rpm_keeps_install_only_kernels_side_by_side():
    before = packages.parse_rpm_query("kernel-core\tx86_64\t0:5.14.0-362.8.1.el9_3\n"
                                      "openssl-libs\tx86_64\t1:3.0.7-24.el9\n")
    assert before == {"kernel-core:x86_64": {"5.14.0-362.8.1.el9_3"}, "openssl-libs:x86_64": {"1:3.0.7-24.el9"}}
    after = {"kernel-core:x86_64": {"5.14.0-362.8.1.el9_3", "5.14.0-362.13.1.el9_3"},
             "openssl-libs:x86_64": {"1:3.0.7-25.el9"}}
    changes = packages.diff_installed(before, after, native_arches=("x86_64", "noarch"))
    assert changes["upgraded"] == [
        {"name": "kernel-core", "arch": "x86_64", "old": "5.14.0-362.8.1.el9_3", "new": "5.14.0-362.13.1.el9_3"},
        {"name": "openssl-libs", "arch": "x86_64", "old": "1:3.0.7-24.el9", "new": "1:3.0.7-25.el9"},
    ]


DNF_CHECK_UPDATE = """\
Last metadata expiration check: 0:12:44 ago on Mon 24 Feb 2026 02:00:00 AM UTC.

kernel-core.x86_64                       5.14.0-362.13.1.el9_3         baseos
openssl-libs.x86_64                      1:3.0.7-25.el9                baseos
tzdata.noarch                            2026a-1.el9                   appstream
Obsoleting Packages
grub2-tools.x86_64                       1:2.06-70.el9                 baseos
    grub2-tools.x86_64                   1:2.06-61.el9                 @baseos
"""


def test_dnf_check_update_lists_updates_but_not_obsoletes():
    assert packages.parse_dnf_check_update(DNF_CHECK_UPDATE) == [
        {"name": "kernel-core", "arch": "x86_64", "new": "5.14.0-362.13.1.el9_3", "repo": "baseos"},
        {"name": "openssl-libs", "arch": "x86_64", "new": "1:3.0.7-25.el9", "repo": "baseos"},
        {"name": "tzdata", "arch": "noarch", "new": "2026a-1.el9", "repo": "appstream"},
    ]


def test_needs_restarting_exit_status_is_the_answer():
    text = ("Core libraries or services have been updated since boot-up:\n  * kernel\n  * systemd\n\n"
            "Reboot is required to fully utilize these updates.\nMore information: https://access.redhat.com/\n")
    assert packages.parse_needs_restarting(1, text) == (True, ["kernel", "systemd"])
    assert packages.parse_needs_restarting(0, "No core libraries or services have been updated since boot-up.\n") == \
        (False, [])
    assert packages.parse_needs_restarting(2, "Error: ...") == (None, [])


def test_a_newer_kernel_of_the_running_flavour_asks_for_a_reboot():
    installed = ["6.1.0-9-amd64", "6.1.0-30-amd64", "6.1.0-31-cloud-amd64"]
    assert packages.newer_kernel("6.1.0-9-amd64", installed) == "6.1.0-30-amd64"
    assert packages.newer_kernel("6.1.0-30-amd64", installed) is None
    # Another flavour is not an upgrade of this one.
    assert packages.newer_kernel("6.1.0-30-cloud-amd64", ["6.1.0-30-cloud-amd64", "6.1.0-40-amd64"]) is None
    assert packages.newer_kernel("6.8.0-45-generic", ["6.8.0-45-generic", "6.8.0-49-generic"]) == "6.8.0-49-generic"
    # A container runs the host's kernel and has none in /boot; unknown forms are not guessed at.
    assert packages.newer_kernel("6.1.0-30-amd64", []) is None
    assert packages.newer_kernel("5.14.0-362.8.1.el9_3.x86_64", ["5.14.0-362.13.1.el9_3.x86_64"]) is None


def test_the_reboot_flag_and_the_packages_that_set_it(tmp_path):
    flag = str(tmp_path / "reboot-required")
    assert packages.read_reboot_flag(flag) == (False, [])
    (tmp_path / "reboot-required").write_text("*** System restart required ***\n")
    assert packages.read_reboot_flag(flag) == (True, [])
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.1.0-30-amd64\nlibc6\nlibc6\n")
    assert packages.read_reboot_flag(flag) == (True, ["libc6", "linux-image-6.1.0-30-amd64"])


def test_installed_kernels_are_read_from_boot(tmp_path):
    for name in ("vmlinuz-6.1.0-30-amd64", "vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-30-amd64"):
        (tmp_path / name).write_text("")
    assert sorted(packages.installed_kernels(str(tmp_path))) == ["6.1.0-30-amd64", "6.1.0-9-amd64"]


def test_packages_that_normally_ask_for_a_reboot():
    updates = [{"name": "linux-image-6.1.0-31-amd64"}, {"name": "libc6:i386"}, {"name": "tzdata"},
               {"name": "libc6"}]
    assert packages.reboot_packages_in(updates) == ["libc6", "libc6:i386", "linux-image-6.1.0-31-amd64"]
    assert packages.reboot_packages_in(updates, ["tz*"]) == ["tzdata"]
