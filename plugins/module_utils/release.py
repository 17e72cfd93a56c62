# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Releases of an application on a systemd host (runbook 000's `git pull && npm install && restart`).

Layout under the application root:

    <app_root>/releases/<id>     one directory per release, never changed once live
    <app_root>/shared/<path>     what every release shares (.env, uploads), linked into each
    <app_root>/current           symlink to releases/<id>; the unit runs from here

A release id is `<UTC stamp>-<label>` (label from the git ref, the archive or the
caller), so names sort by creation time. A new release is unpacked and built
beside the live one; `current` moves only after the build passed, atomically
(a symlink under a temporary name renamed over `current`), so a reader sees the
old or the new release, never none. A release that fails to build, or whose
nginx snippet fails `nginx -t`, is REMOVED (its output is in the error and the
deploy record) and `current` stays where it was.

Plain Python: the module, the tests and any host job share it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import tarfile
import tempfile

from .common import RunbookError, utc_now

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
OUTPUT_TAIL_LINES = 20
_ID = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<label>[A-Za-z0-9][A-Za-z0-9_.-]{0,63}))?$")
_LABEL_JUNK = re.compile(r"[^A-Za-z0-9_.-]+")


def release_id(now=None, label=None):
    """`<UTC stamp>-<label>`: sortable by creation; the label is cleaned to one path component."""
    stamp = (now or utc_now()).strftime(STAMP_FORMAT)
    cleaned = _LABEL_JUNK.sub("-", label or "").strip("-.")[:64]
    return "{0}-{1}".format(stamp, cleaned) if cleaned else stamp


def is_release_id(name):
    return bool(_ID.match(name or ""))


def label_for(source):
    """A short label naming the source: the git ref, or the archive's name without its extension."""
    if source.get("git_repo"):
        return source.get("git_ref") or "HEAD"
    archive = os.path.basename((source.get("archive") or "").rstrip("/").split("?")[0])
    return re.sub(r"\.(tar\.gz|tgz|tar\.bz2|tar\.xz|tar|zip)$", "", archive)


class Layout:
    """The paths of one application root."""

    def __init__(self, app_root):
        if not app_root or not os.path.isabs(app_root):
            raise RunbookError("The application root must be an absolute path, not {0!r}.".format(app_root))
        self.root = app_root.rstrip("/") or "/"
        self.releases = os.path.join(self.root, "releases")
        self.shared = os.path.join(self.root, "shared")
        self.current = os.path.join(self.root, "current")

    def path(self, release):
        if not is_release_id(release):
            raise RunbookError("{0!r} is not a release id (expected <UTC stamp>[-label], e.g. "
                               "20261206T101500Z-v1.4).".format(release))
        return os.path.join(self.releases, release)

    def releases_list(self):
        """Release ids, oldest first."""
        try:
            names = os.listdir(self.releases)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if is_release_id(n) and os.path.isdir(os.path.join(self.releases, n)))

    def current_release(self):
        """The id `current` points at, or None when there is no `current`."""
        try:
            target = os.readlink(self.current)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise RunbookError("{0} is not a symlink ({1}); a release layout needs `current` to be one.".format(
                self.current, error.strerror or error),
                hint="Move the application out of {0} and deploy it as a release.".format(self.current))
        return os.path.basename(target.rstrip("/"))


def resolve(releases, wanted):
    """The release id named by `wanted`: an exact id, or the one id whose label is `wanted`."""
    if wanted in releases:
        return wanted
    matches = [r for r in releases if _ID.match(r).group("label") == wanted]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunbookError("There is no release {0!r}; releases on this host: {1}.".format(
            wanted, ", ".join(releases) or "none"))
    raise RunbookError("{0!r} names several releases ({1}); give the full id.".format(wanted, ", ".join(matches)))


def previous_of(releases, current):
    """The newest release older than `current`, or None."""
    older = [r for r in releases if current is None or r < current]
    return older[-1] if older else None


def prune_choice(releases, keep, protect=()):
    """Ids to delete so that `keep` releases remain: those in `protect` (current, the previous live one) always
    stay and count toward `keep`; the newest of the others fill the rest."""
    if keep < 2:
        raise RunbookError("Keep at least 2 releases (the current one and the one to roll back to), not {0}.".format(
            keep))
    kept = [r for r in releases if r in protect]
    for release in reversed(releases):
        if len(kept) >= keep:
            break
        if release not in kept:
            kept.append(release)
    return [r for r in releases if r not in kept]


def _tail(text, lines=OUTPUT_TAIL_LINES):
    return "\n".join(text.rstrip().splitlines()[-lines:])


def as_argv(command):
    """A command as an argument list: a list as given, a string split like a shell would (no shell runs it)."""
    if isinstance(command, (list, tuple)):
        argv = [str(part) for part in command]
    else:
        argv = shlex.split(str(command))
    if not argv:
        raise RunbookError("An empty command cannot run.")
    return argv


class BuildUser(object):
    """The unprivileged account build commands run as (`build_user`): its ids, groups and home."""

    def __init__(self, name):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise RunbookError("The build user {0} does not exist on this host; nothing was created.".format(name),
                               hint="Create the account (e.g. `useradd --system --create-home {0}`) or leave "
                                    "build_user unset to build as the task's user.".format(name), cause="invalid")
        self.name = name
        self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, entry.pw_dir
        self.groups = sorted(set(g.gr_gid for g in grp.getgrall() if name in g.gr_mem) | {self.gid})
        if os.geteuid() not in (0, self.uid):
            raise RunbookError("Build commands can run as {0} only when the module runs as root or as {0} (it runs "
                               "as uid {1}).".format(name, os.geteuid()), hint="Use become: true.", cause="invalid")

    def environment(self):
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    def demote(self):
        """preexec_fn of a build command: drop to the build user before exec (groups first, then gid, then uid)."""
        if os.geteuid() == self.uid:
            return
        os.setgroups(self.groups)
        os.setgid(self.gid)
        os.setuid(self.uid)

    def take(self, path):
        """Give the release directory to the build user so its commands can write there. Links (the shared paths)
        are changed themselves, never followed: what they point to keeps its owner."""
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), self.uid, self.gid)
        os.lchown(path, self.uid, self.gid)


def run_in(argv, cwd, timeout, env=None, what="command", user=None):
    """Run `argv` in `cwd` (as `user`, a BuildUser, when given); RunbookError with the tail of its output when
    it fails."""
    environment = dict(os.environ)
    environment.update(env or {})
    if user is not None:
        environment.update(user.environment())
    shown = " ".join(shlex.quote(a) for a in argv)
    try:
        proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, env=environment, check=False,
                              preexec_fn=user.demote if user is not None else None)
    except FileNotFoundError:
        raise RunbookError("The {0} `{1}` cannot run: {2} is not installed on this host.".format(what, shown, argv[0]),
                           hint="Install it, or change the command.")
    except subprocess.TimeoutExpired:
        raise RunbookError("The {0} `{1}` did not finish within {2} s and was killed.".format(what, shown, timeout))
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RunbookError("The {0} `{1}` failed with exit status {2}. Last lines of its output:\n{3}".format(
            what, shown, proc.returncode, _tail(output) or "(none)"), rc=proc.returncode, output_tail=_tail(output))
    return output


def _safe_members(archive, destination):
    """The archive's members, refusing any that would land outside `destination` or is a device."""
    root = os.path.realpath(destination)
    for member in archive.getmembers():
        target = os.path.realpath(os.path.join(root, member.name))
        if target != root and not target.startswith(root + os.sep):
            raise RunbookError("The archive member {0!r} would be written outside the release.".format(member.name))
        if member.issym() or member.islnk():
            link = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname)) \
                if member.issym() else os.path.realpath(os.path.join(root, member.linkname))
            if link != root and not link.startswith(root + os.sep):
                raise RunbookError("The archive link {0!r} -> {1!r} points outside the release.".format(
                    member.name, member.linkname))
        if member.isdev():
            raise RunbookError("The archive member {0!r} is a device file.".format(member.name))
        yield member


def unpack(archive_path, destination, strip_components=0):
    try:
        with tarfile.open(archive_path) as archive:
            members = []
            for member in _safe_members(archive, destination):
                parts = member.name.lstrip("./").split("/")
                if strip_components:
                    if len(parts) <= strip_components:
                        continue
                    member.name = "/".join(parts[strip_components:])
                members.append(member)
            archive.extractall(destination, members=members)
    except (tarfile.TarError, OSError) as error:
        raise RunbookError("Cannot unpack the archive {0}: {1}.".format(archive_path, error),
                           hint="Give a tar archive (.tar, .tar.gz, .tgz, .tar.xz, .tar.bz2).")


def download(url, directory, timeout):
    """Fetch `url` into `directory`; the local path."""
    import urllib.request  # imported here: only the URL source needs it

    path = os.path.join(directory, ".download.tar")
    try:
        with urllib.request.build_opener().open(url, timeout=timeout) as answer, open(path, "wb") as out:
            shutil.copyfileobj(answer, out)
    except (OSError, ValueError) as error:
        raise RunbookError("Cannot download the release archive {0}: {1}.".format(url, error),
                           hint="Check the URL and that the host can reach it.")
    return path


def fetch_source(source, directory, timeout):
    """Put the release's files into `directory` (created): a git checkout or an unpacked archive."""
    if source.get("git_repo"):
        run_in(["git", "clone", "--quiet", "--no-checkout", source["git_repo"], directory], None, timeout,
               what="git clone")
        run_in(["git", "-c", "advice.detachedHead=false", "checkout", "--quiet", source.get("git_ref") or "HEAD"],
               directory, timeout, what="git checkout")
        return run_in(["git", "rev-parse", "HEAD"], directory, timeout, what="git rev-parse").strip()
    os.makedirs(directory)
    archive = source["archive"]
    if re.match(r"^[a-z][a-z0-9+.-]*://", archive):
        local = download(archive, directory, timeout)
        unpack(local, directory, source.get("strip_components", 0))
        os.unlink(local)
    else:
        if not os.path.isfile(archive):
            raise RunbookError("The release archive {0} does not exist on this host.".format(archive),
                               hint="Copy it to the host first (the deploy role does), or give a URL.")
        unpack(archive, directory, source.get("strip_components", 0))
    return None


def link_shared(layout, directory, shared_paths):
    """Replace each shared path in the release with a link to `<app_root>/shared/<path>`."""
    for relative in shared_paths:
        clean = os.path.normpath(relative)
        if os.path.isabs(clean) or clean.startswith(".."):
            raise RunbookError("The shared path {0!r} must be relative to the release.".format(relative))
        origin = os.path.join(layout.shared, clean)
        if not os.path.lexists(origin):
            raise RunbookError("The shared path {0} does not exist.".format(origin),
                               hint="Create it once (the .env file, the uploads directory) before deploying.")
        link = os.path.join(directory, clean)
        if os.path.isdir(link) and not os.path.islink(link):
            shutil.rmtree(link)
        elif os.path.lexists(link):
            os.unlink(link)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(origin, link)


def switch(layout, release):
    """Point `current` at `release` atomically; the id it pointed at before (or None)."""
    previous = layout.current_release()
    temporary = os.path.join(layout.root, ".current-{0}".format(secrets.token_hex(4)))
    os.symlink(os.path.join("releases", release), temporary)
    try:
        os.replace(temporary, layout.current)
    except OSError as error:
        os.unlink(temporary)
        raise RunbookError("Cannot switch {0} to {1}: {2}.".format(layout.current, release, error.strerror or error))
    return previous


def remove_release(layout, release):
    if release == layout.current_release():
        raise RunbookError("Refusing to remove {0}: it is the current release.".format(release))
    shutil.rmtree(layout.path(release), ignore_errors=True)


def test_nginx(command, timeout):
    """RunbookError with nginx's words when the configuration test fails."""
    argv = as_argv(command)
    try:
        run_in(argv, None, timeout, what="nginx configuration test")
    except RunbookError as error:
        raise RunbookError(error.message + "\nnginx was not reloaded and keeps serving its current configuration.",
                           hint="Fix the release's nginx snippet.", **error.details)


def install_snippet(layout, release, snippet, destination, test_command, timeout):
    """Install the release's nginx snippet at `destination` and prove the whole configuration with `nginx -t`;
    on failure put the file that was there back (nginx is never reloaded here). True when the file changed."""
    source = os.path.join(layout.path(release), snippet)
    if not os.path.isfile(source):
        raise RunbookError("The release {0} has no nginx snippet {1}.".format(release, snippet))
    with open(source, "rb") as handle:
        wanted = handle.read()
    try:
        with open(destination, "rb") as handle:
            before = handle.read()
    except FileNotFoundError:
        before = None
    if before == wanted:
        test_nginx(test_command, timeout)
        return False
    _write_atomically(destination, wanted)
    try:
        test_nginx(test_command, timeout)
    except RunbookError:
        if before is None:
            os.unlink(destination)
        else:
            _write_atomically(destination, before)
        raise
    return True


def _write_atomically(path, content):
    handle, temporary = tempfile.mkstemp(prefix=".ops-runbook-", dir=os.path.dirname(path))
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


DEFAULTS = {
    "shared_paths": [],
    "build_commands": [],
    "build_environment": {},
    "build_timeout": 900,
    "build_user": None,
    "strip_components": 0,
    "keep": 5,
    "nginx_test_command": ["nginx", "-t"],
}


def _source(opts):
    return {"git_repo": opts.get("git_repo"), "git_ref": opts.get("git_ref"), "archive": opts.get("archive"),
            "strip_components": opts.get("strip_components") or 0}


def _describe_source(source):
    if source.get("git_repo"):
        return "git {0} at {1}".format(source["git_repo"], source.get("git_ref") or "HEAD")
    return "archive {0}".format(source["archive"])


def build_release(opts, check_mode=False, now=None, log=lambda line: None):
    """Create and build a new release beside the live one; `current` is not touched."""
    layout = Layout(opts["app_root"])
    source = _source(opts)
    if not source["git_repo"] and not source["archive"]:
        raise RunbookError("A release needs a source: git_repo (with git_ref) or archive.")
    release = opts.get("release") or release_id(now, opts.get("label") or label_for(source))
    path = layout.path(release)
    current = layout.current_release()
    plan = ["create {0} from {1}".format(path, _describe_source(source))]
    plan += ["link {0} to {1}".format(os.path.join(path, p), os.path.join(layout.shared, p))
             for p in opts["shared_paths"]]
    user = BuildUser(opts["build_user"]) if opts.get("build_user") and opts["build_commands"] else None
    as_user = " as {0}".format(user.name) if user else ""
    plan += ["run `{0}` in {1}{2}".format(" ".join(shlex.quote(a) for a in as_argv(c)), path, as_user)
             for c in opts["build_commands"]]
    result = {"changed": not check_mode, "release": release, "path": path, "current": current, "plan": plan,
              "commit": None}
    if check_mode:
        return result
    if os.path.lexists(path):
        raise RunbookError("The release {0} exists already.".format(path),
                           hint="Give another release name, or remove the old directory.")
    os.makedirs(layout.releases, exist_ok=True)
    os.makedirs(layout.shared, exist_ok=True)
    try:
        result["commit"] = fetch_source(source, path, opts["build_timeout"])
        link_shared(layout, path, opts["shared_paths"])
        env = dict((str(k), str(v)) for k, v in opts["build_environment"].items())
        if user is not None:
            user.take(path)
        for command in opts["build_commands"]:
            argv = as_argv(command)
            log("build{0}: {1}".format(as_user, " ".join(argv)))
            run_in(argv, path, opts["build_timeout"], env=env, what="build command", user=user)
    except BaseException as error:
        shutil.rmtree(path, ignore_errors=True)
        if isinstance(error, RunbookError):
            raise RunbookError("The release {0} was not built and was removed; {1} is unchanged ({2}). {3}".format(
                release, layout.current, current or "none", error.message), hint=error.hint, **error.details)
        raise
    return result


def make_current(opts, release, check_mode=False):
    """Install the release's nginx snippet (tested with `nginx -t`), then switch `current` to it."""
    layout = Layout(opts["app_root"])
    release = resolve(layout.releases_list(), release)
    current = layout.current_release()
    plan = []
    snippet = opts.get("nginx_snippet")
    if snippet:
        plan.append("install {0} from the release's {1} and run `{2}`; refuse the switch when it fails".format(
            opts["nginx_snippet_dest"], snippet, " ".join(as_argv(opts["nginx_test_command"]))))
    plan.append("switch {0} from {1} to {2}".format(layout.current, current or "nothing", release))
    result = {"changed": False, "release": release, "previous": current, "plan": plan, "nginx_changed": False,
              "path": layout.path(release)}
    if check_mode:
        result["changed"] = current != release
        return result
    if snippet:
        result["nginx_changed"] = install_snippet(layout, release, snippet, opts["nginx_snippet_dest"],
                                                  opts["nginx_test_command"], opts["build_timeout"])
    if current != release:
        switch(layout, release)
        result["changed"] = True
    result["changed"] = result["changed"] or result["nginx_changed"]
    return result


def roll_back(opts, check_mode=False):
    """Make the named release (or the newest one older than the current) current again."""
    layout = Layout(opts["app_root"])
    releases = layout.releases_list()
    current = layout.current_release()
    target = resolve(releases, opts["release"]) if opts.get("release") else previous_of(releases, current)
    if target is None:
        raise RunbookError("There is no release older than {0} to roll back to.".format(current or "none"),
                           hint="Name one with release; releases on this host: {0}.".format(
                               ", ".join(releases) or "none"))
    return make_current(opts, target, check_mode=check_mode)


def prune(opts, protect=(), check_mode=False):
    """Delete releases beyond `keep`, never the current one or those in `protect`."""
    layout = Layout(opts["app_root"])
    releases = layout.releases_list()
    current = layout.current_release()
    # The release to roll back to: the caller's (the previous live one, from the deploy records), else the
    # newest older than the current.
    keep_safe = set(p for p in protect if p) or ({previous_of(releases, current)} if current else set())
    keep_safe |= {current} if current else set()
    doomed = prune_choice(releases, opts["keep"], keep_safe)
    if not check_mode:
        for release in doomed:
            remove_release(layout, release)
    return {"changed": bool(doomed) and not check_mode, "removed": doomed,
            "releases": [r for r in releases if r not in doomed],
            "plan": ["remove {0}".format(layout.path(r)) for r in doomed]}


def remove(opts, release, check_mode=False):
    layout = Layout(opts["app_root"])
    if not os.path.isdir(layout.path(release)):
        return {"changed": False, "removed": [], "plan": []}
    if not check_mode:
        remove_release(layout, release)
    return {"changed": not check_mode, "removed": [release], "plan": ["remove {0}".format(layout.path(release))]}


def status(opts):
    layout = Layout(opts["app_root"])
    releases = layout.releases_list()
    current = layout.current_release()
    return {"changed": False, "current": current, "releases": releases,
            "previous": previous_of(releases, current) if current else None, "plan": []}


def run_release(opts, check_mode=False, now=None, log=lambda line: None):
    """One entry point for the module: `state` picks the step."""
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in opts.items() if v is not None})
    state = merged.get("state", "built")
    if state == "built":
        result = build_release(merged, check_mode=check_mode, now=now, log=log)
    elif state == "current":
        if not merged.get("release"):
            raise RunbookError("state=current needs the release to switch to (release).")
        result = make_current(merged, merged["release"], check_mode=check_mode)
    elif state == "rolled_back":
        result = roll_back(merged, check_mode=check_mode)
    elif state == "pruned":
        result = prune(merged, protect=merged.get("protect") or (), check_mode=check_mode)
    elif state == "absent":
        if not merged.get("release"):
            raise RunbookError("state=absent needs the release to remove (release).")
        result = remove(merged, merged["release"], check_mode=check_mode)
    elif state == "status":
        result = status(merged)
    else:
        raise RunbookError("Unknown state {0!r}.".format(state))
    result.setdefault("releases", Layout(merged["app_root"]).releases_list())
    result.setdefault("current", Layout(merged["app_root"]).current_release())
    return result
