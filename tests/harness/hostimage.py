"""The Debian 12 systemd host image for podman: molecule's test hosts and the benchmarks'.

No image can be pulled on the machines the project runs on, so the image is
built here with debootstrap and `podman import`. Its tag is a hash of its
definition (suite, packages, mirrors, build version), so it is built once and
reused until that definition changes.

podman's default runtime (crun) cannot start containers on these machines;
every podman call made here, and by scripts/molecule, uses
molecule/containers.conf (runc, no default ulimits) through CONTAINERS_CONF.

    PYTHONPATH=tests python -m harness.hostimage          # prints the image name
    PYTHONPATH=tests python -m harness.hostimage --env    # shell exports for scripts
"""
import argparse
import fcntl
import glob
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE_DIR = os.path.join(ROOT, ".cache", "hostimage")
APT_ARCHIVES_DIR = os.path.join(ROOT, ".cache", "apt-archives")
CONTAINERS_CONF = os.path.join(ROOT, "molecule", "containers.conf")

REPOSITORY = "localhost/ops-runbook-debian12"
SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "sudo", "cron", "logrotate",
            "ca-certificates", "iproute2", "procps")
# Part of the tag, with the settings above and below: raise it whenever the
# build steps change the image.
BUILD_VERSION = "1"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
FALLBACK_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# They would take the dpkg lock at a random moment of a test run and fail its
# package tasks with "could not get lock".
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer")

APT_CONF = """\
// Test hosts: retry flaky downloads, skip translations and recommends.
Acquire::Retries "5";
Acquire::Languages "none";
APT::Install-Recommends "false";
"""


def say(message):
    print("hostimage: " + message, file=sys.stderr, flush=True)


def podman_env():
    """Environment for podman (and molecule, which runs podman): runc, no default ulimits."""
    return dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)


def _source_entries():
    """(types, uris, suites) of every enabled apt source of this machine."""
    entries = []
    for path in sorted(glob.glob("/etc/apt/sources.list") + glob.glob("/etc/apt/sources.list.d/*.list")):
        with open(path) as handle:
            for line in handle:
                words = line.split("#", 1)[0].split()
                if words and words[0] == "deb":
                    words = words[1:]
                    if words and words[0].startswith("["):
                        while words and not words[0].endswith("]"):
                            words = words[1:]
                        words = words[1:]
                    if len(words) >= 2:
                        entries.append((["deb"], [words[0]], [words[1]]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as handle:
            stanzas = handle.read().split("\n\n")
        for stanza in stanzas:
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if fields.get("enabled", ["yes"])[0].lower() == "no":
                continue
            if "uris" in fields and "suites" in fields:
                entries.append((fields.get("types", []), fields["uris"], fields["suites"]))
    return entries


def debian_mirrors():
    """The Debian mirror and security mirror this machine uses for bookworm, with fallbacks.

    The image is built from, and its apt points at, the mirror the host already
    reaches, so package installs in test hosts work wherever the host's do.
    """
    mirror = security = None
    for types, uris, suites in _source_entries():
        http = [uri.rstrip("/") for uri in uris if uri.startswith(("http://", "https://"))]
        if "deb" not in types or not http:
            continue
        if mirror is None and SUITE in suites:
            mirror = http[0]
        if security is None and SUITE + "-security" in suites:
            security = http[0]
    return mirror or FALLBACK_MIRROR, security or FALLBACK_SECURITY_MIRROR


def image_tag(mirrors=None):
    mirror, security = mirrors or debian_mirrors()
    definition = "\n".join([BUILD_VERSION, SUITE, mirror, security, APT_CONF] + sorted(PACKAGES) + sorted(MASKED_UNITS))
    return hashlib.sha256(definition.encode()).hexdigest()[:12]


def image_name(mirrors=None):
    return "{}:{}".format(REPOSITORY, image_tag(mirrors))


def _podman(args, **kwargs):
    return subprocess.run(["podman"] + args, env=podman_env(), check=False, **kwargs)


def image_exists(name):
    return _podman(["image", "exists", name]).returncode == 0


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def _configure_rootfs(rootfs, mirror, security):
    os.unlink(os.path.join(rootfs, "etc/apt/sources.list"))
    _write(os.path.join(rootfs, "etc/apt/sources.list.d/debian.sources"),
           "Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
           "Types: deb\nURIs: {security}\nSuites: {suite}-security\nComponents: main\n"
           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n".format(
               mirror=mirror, security=security, suite=SUITE))
    _write(os.path.join(rootfs, "etc/apt/apt.conf.d/90ops-runbook-test-host"), APT_CONF)
    # A container's disk is thrown away: dpkg's fsyncs only slow installs down.
    _write(os.path.join(rootfs, "etc/dpkg/dpkg.cfg.d/90ops-runbook-unsafe-io"), "force-unsafe-io\n")
    for unit in MASKED_UNITS:
        link = os.path.join(rootfs, "etc/systemd/system", unit)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink("/dev/null", link)
    # systemd generates a fresh machine id at each boot when the file is empty.
    _write(os.path.join(rootfs, "etc/machine-id"), "", mode=0o444)
    for leftover in glob.glob(os.path.join(rootfs, "var/lib/apt/lists/*")) + \
            glob.glob(os.path.join(rootfs, "var/cache/apt/*.bin")):
        if os.path.isfile(leftover):
            os.unlink(leftover)


def _image_id(name):
    result = _podman(["image", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def _prune_superseded(keep, replaced_id):
    """Remove older definitions' images and the one a rebuild of `keep` untagged (about 270 MB each)."""
    listing = _podman(["images", "--noheading", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY],
                      capture_output=True, text=True)
    stale = [name for name in listing.stdout.split() if name != keep]
    if replaced_id and replaced_id != _image_id(keep):
        stale.append(replaced_id)
    for image in stale:
        # An image a container still uses stays; that is fine.
        _podman(["rmi", image], capture_output=True)


def _mounts_under(path):
    with open("/proc/self/mounts") as handle:
        points = [line.split()[1] for line in handle]
    return sorted((p for p in points if p.startswith(path + "/")), key=len, reverse=True)


def _remove_rootfs(rootfs):
    """Delete a rootfs, first unmounting what an interrupted debootstrap left mounted in it.

    debootstrap mounts /proc and /sys there (and bind-mounts the host's /dev
    when it runs in a container); deleting through such a mount would delete
    the host's files.
    """
    for point in _mounts_under(rootfs):
        subprocess.run(["umount", "--lazy", point], check=False)
    if _mounts_under(rootfs):
        raise SystemExit("hostimage: {} still has mounts in it; unmount them and retry".format(rootfs))
    shutil.rmtree(rootfs, ignore_errors=True)


def build(name, mirrors=None):
    """debootstrap a rootfs, configure it for tests, import it as `name`, remove the rootfs."""
    if os.geteuid() != 0:
        raise SystemExit("hostimage: debootstrap needs root to build {}".format(name))
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise SystemExit("hostimage: debootstrap is missing; run scripts/bootstrap --hosts")
    mirror, security = mirrors or debian_mirrors()
    replaced_id = _image_id(name)
    rootfs = os.path.join(CACHE_DIR, "rootfs-" + name.rsplit(":", 1)[1])
    debs = os.path.join(CACHE_DIR, "debs")
    os.makedirs(debs, exist_ok=True)
    _remove_rootfs(rootfs)
    try:
        started = time.monotonic()
        say("debootstrap {} from {} into {}".format(SUITE, mirror, os.path.relpath(rootfs, ROOT)))
        result = subprocess.run([debootstrap, "--variant=minbase", "--cache-dir=" + debs,
                                 "--include=" + ",".join(PACKAGES), SUITE, rootfs, mirror],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit("hostimage: debootstrap failed (exit {}):\n{}".format(
                result.returncode, "\n".join(result.stdout.splitlines()[-30:])))
        say("debootstrap took {:.0f} s".format(time.monotonic() - started))
        _configure_rootfs(rootfs, mirror, security)
        started = time.monotonic()
        tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "-C", rootfs, "-c", "."],
                               stdout=subprocess.PIPE)
        imported = _podman(["import", "--quiet", "--change", "CMD=/lib/systemd/systemd",
                            "--change", "LABEL=org.ops-runbook.definition=" + name.rsplit(":", 1)[1],
                            "-", name], stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise SystemExit("hostimage: importing {} into podman failed".format(name))
        say("podman import took {:.0f} s".format(time.monotonic() - started))
    finally:
        _remove_rootfs(rootfs)
    _prune_superseded(name, replaced_id)


def apt_archives_dir():
    """Host directory test hosts mount as /var/cache/apt/archives, so packages are downloaded once."""
    os.makedirs(os.path.join(APT_ARCHIVES_DIR, "partial"), exist_ok=True)
    return APT_ARCHIVES_DIR


def ensure_image(rebuild=False):
    """Name of the host image, built first when it does not exist yet."""
    mirrors = debian_mirrors()
    name = image_name(mirrors)
    os.makedirs(CACHE_DIR, exist_ok=True)
    # Scenarios and benchmarks may ask at the same time; only one builds.
    with open(os.path.join(CACHE_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild or not image_exists(name):
            started = time.monotonic()
            say("building {}".format(name))
            build(name, mirrors)
            say("built {} in {:.0f} s".format(name, time.monotonic() - started))
    return name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--rebuild", action="store_true", help="build the image even if it exists")
    parser.add_argument("--env", action="store_true",
                        help="print shell exports of OPS_RUNBOOK_HOST_IMAGE, CONTAINERS_CONF and "
                             "OPS_RUNBOOK_APT_ARCHIVES instead of the bare image name")
    args = parser.parse_args(argv)
    name = ensure_image(rebuild=args.rebuild)
    if args.env:
        for key, value in (("OPS_RUNBOOK_HOST_IMAGE", name), ("CONTAINERS_CONF", CONTAINERS_CONF),
                           ("OPS_RUNBOOK_APT_ARCHIVES", apt_archives_dir())):
            print("export {}={}".format(key, shlex.quote(value)))
    else:
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
