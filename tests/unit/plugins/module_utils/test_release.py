"""release.py's logic on real temporary directories: ids, the pruning choice, the plan, building (from a real
local git repository and a real tar archive), the atomic switch, removal of a release that fails to build, and
nginx -t guarding the snippet (a stand-in test command: nginx itself runs in the molecule scenario)."""
import datetime
import io
import os
import pwd
import subprocess
import tarfile

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import release
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

MOMENT = datetime.datetime(2026, 12, 6, 3, 40, 5, tzinfo=datetime.timezone.utc)


def options(root, **kwargs):
    opts = dict(release.DEFAULTS, app_root=str(root))
    opts.update(kwargs)
    return opts


def make_archive(path, files, top=None):
    with tarfile.open(str(path), "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("{0}/{1}".format(top, name) if top else name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def fake_release(root, *ids):
    for name in ids:
        os.makedirs(os.path.join(str(root), "releases", name))


def test_ids_sort_by_creation_and_carry_a_clean_label():
    assert release.release_id(MOMENT, "v1.4") == "20261206T034005Z-v1.4"
    assert release.release_id(MOMENT, "feature/login page") == "20261206T034005Z-feature-login-page"
    assert release.release_id(MOMENT) == "20261206T034005Z"
    assert release.is_release_id("20261206T034005Z-v1.4") and not release.is_release_id("../etc")
    assert release.label_for({"archive": "/tmp/app-1.2.tar.gz"}) == "app-1.2"
    assert release.label_for({"git_repo": "x", "git_ref": "main"}) == "main"


def test_pruning_keeps_current_and_the_rollback_target_and_counts_them():
    ids = ["20261201T000000Z-a", "20261202T000000Z-b", "20261203T000000Z-c", "20261204T000000Z-d"]
    assert release.prune_choice(ids, 3, {ids[3], ids[2]}) == [ids[0]]
    # The previous live release is old (a rollback went back to it): it stays, a newer unused one goes.
    assert release.prune_choice(ids, 2, {ids[3], ids[0]}) == [ids[1], ids[2]]
    assert release.prune_choice(ids, 5, {ids[3]}) == []
    with pytest.raises(RunbookError, match="at least 2"):
        release.prune_choice(ids, 1, ())


def test_a_label_names_a_release_when_it_is_unique():
    ids = ["20261201T000000Z-a", "20261202T000000Z-b", "20261203T000000Z-b"]
    assert release.resolve(ids, "a") == ids[0]
    assert release.resolve(ids, ids[2]) == ids[2]
    with pytest.raises(RunbookError, match="several releases"):
        release.resolve(ids, "b")
    with pytest.raises(RunbookError, match="no release 'z'"):
        release.resolve(ids, "z")


def test_check_mode_returns_the_plan_and_creates_nothing(tmp_path):
    result = release.run_release(options(tmp_path / "app", archive="/tmp/app-2.tar.gz", shared_paths=[".env"],
                                         build_commands=["npm ci"]), check_mode=True, now=MOMENT)
    assert result["release"] == "20261206T034005Z-app-2"
    assert result["plan"][0].startswith("create {0}/app/releases/20261206T034005Z-app-2".format(tmp_path))
    assert any(".env to" in step for step in result["plan"]) and "run `npm ci`" in result["plan"][-1]
    assert not (tmp_path / "app").exists()


def test_an_archive_release_is_built_linked_and_switched_atomically(tmp_path):
    root = tmp_path / "app"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / ".env").write_text("SECRET=1\n")
    archive = make_archive(tmp_path / "app-1.tar.gz", {"app.py": "print(1)\n", ".env": "stale\n"}, top="app-1")
    built = release.run_release(options(root, archive=archive, strip_components=1, shared_paths=[".env"],
                                        build_commands=[["sh", "-c", "echo built > BUILD"]]), now=MOMENT)
    path = root / "releases" / built["release"]
    assert (path / "app.py").exists() and (path / "BUILD").read_text() == "built\n"
    assert os.readlink(str(path / ".env")) == str(root / "shared" / ".env")
    assert built["current"] is None
    switched = release.run_release(options(root, state="current", release=built["release"]))
    assert switched["previous"] is None and switched["current"] == built["release"]
    assert os.readlink(str(root / "current")) == "releases/" + built["release"]
    assert not [n for n in os.listdir(str(root)) if n.startswith(".current-")]


def test_a_git_release_checks_out_the_ref(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "VERSION").write_text("one\n")
    subprocess.run(git + ["add", "VERSION"], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    subprocess.run(git + ["tag", "v1"], check=True)
    (repo / "VERSION").write_text("two\n")
    subprocess.run(git + ["commit", "-qam", "two"], check=True)
    built = release.run_release(options(tmp_path / "app", git_repo=str(repo), git_ref="v1"), now=MOMENT)
    assert built["release"] == "20261206T034005Z-v1" and len(built["commit"]) == 40
    assert (tmp_path / "app" / "releases" / built["release"] / "VERSION").read_text() == "one\n"


def test_a_failed_build_is_removed_and_current_untouched_with_the_output_tail(tmp_path):
    root = tmp_path / "app"
    fake_release(root, "20261201T000000Z-a")
    os.symlink("releases/20261201T000000Z-a", str(root / "current"))
    archive = make_archive(tmp_path / "b.tar", {"app.py": "x"})
    failing = ["sh", "-c", "for i in $(seq 1 40); do echo line $i; done; exit 3"]
    with pytest.raises(RunbookError) as raised:
        release.run_release(options(root, archive=archive, build_commands=[failing]), now=MOMENT)
    message = raised.value.message
    assert "was not built and was removed" in message and "exit status 3" in message
    assert "line 40" in message and "line 20\n" not in message
    assert release.Layout(str(root)).releases_list() == ["20261201T000000Z-a"]
    assert os.readlink(str(root / "current")) == "releases/20261201T000000Z-a"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the build user needs root, as the module has with become")
def test_build_commands_run_as_the_build_user_on_a_release_it_owns_and_shared_files_keep_their_owner(tmp_path):
    nobody = pwd.getpwnam("nobody")
    root = tmp_path / "app"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / ".env").write_text("SECRET=1\n")
    archive = make_archive(tmp_path / "app-1.tar.gz", {"app.py": "print(1)\n"})
    build = ["sh", "-c", "id -un > WHO; echo $HOME > HOME_SEEN; mkdir -p node_modules/x"]
    plan = release.run_release(options(root, archive=archive, shared_paths=[".env"], build_commands=[build],
                                       build_user="nobody"), check_mode=True, now=MOMENT)
    assert plan["plan"][-1].endswith(" as nobody")
    built = release.run_release(options(root, archive=archive, shared_paths=[".env"], build_commands=[build],
                                        build_user="nobody"), now=MOMENT)
    path = root / "releases" / built["release"]
    assert (path / "WHO").read_text() == "nobody\n"
    assert (path / "HOME_SEEN").read_text() == nobody.pw_dir + "\n"
    assert os.stat(str(path / "node_modules" / "x")).st_uid == nobody.pw_uid
    assert os.stat(str(path)).st_uid == nobody.pw_uid and os.stat(str(path / "app.py")).st_uid == nobody.pw_uid
    # The link to the shared .env is the build user's; the file it points to is not handed over.
    assert os.lstat(str(path / ".env")).st_uid == nobody.pw_uid
    assert os.stat(str(root / "shared" / ".env")).st_uid == 0


def test_a_build_user_that_does_not_exist_fails_the_plan_and_creates_nothing(tmp_path):
    root = tmp_path / "app"
    archive = make_archive(tmp_path / "app-1.tar.gz", {"app.py": "print(1)\n"})
    for check_mode in (True, False):
        with pytest.raises(RunbookError) as raised:
            release.run_release(options(root, archive=archive, build_commands=[["true"]],
                                        build_user="no-such-build-user"), check_mode=check_mode, now=MOMENT)
        assert "The build user no-such-build-user does not exist on this host; nothing was created." in \
            raised.value.message
        assert not root.exists()


def test_an_archive_cannot_write_outside_the_release(tmp_path):
    archive = make_archive(tmp_path / "evil.tar", {"../../escape": "x"})
    with pytest.raises(RunbookError, match="outside the release"):
        release.run_release(options(tmp_path / "app", archive=archive), now=MOMENT)
    assert not (tmp_path / "escape").exists()


def test_a_snippet_failing_the_config_test_is_put_back_and_current_stays(tmp_path):
    root = tmp_path / "app"
    fake_release(root, "20261201T000000Z-a", "20261202T000000Z-b")
    for name, text in (("20261201T000000Z-a", "good a\n"), ("20261202T000000Z-b", "broken\n")):
        (root / "releases" / name / "nginx.conf").write_text(text)
    os.symlink("releases/20261201T000000Z-a", str(root / "current"))
    dest = tmp_path / "site.conf"
    dest.write_text("good a\n")
    # The stand-in for nginx -t fails when the installed snippet says "broken".
    test = ["sh", "-c", "! grep -q broken {0} || {{ echo 'unexpected end of file' >&2; exit 1; }}".format(dest)]
    opts = options(root, state="current", release="b", nginx_snippet="nginx.conf", nginx_snippet_dest=str(dest),
                   nginx_test_command=test)
    with pytest.raises(RunbookError) as raised:
        release.run_release(opts)
    assert "unexpected end of file" in raised.value.message and "was not reloaded" in raised.value.message
    assert dest.read_text() == "good a\n"
    assert os.readlink(str(root / "current")) == "releases/20261201T000000Z-a"


def test_rollback_goes_to_the_release_before_the_current_one(tmp_path):
    root = tmp_path / "app"
    fake_release(root, "20261201T000000Z-a", "20261202T000000Z-b", "20261203T000000Z-c")
    os.symlink("releases/20261202T000000Z-b", str(root / "current"))
    planned = release.run_release(options(root, state="rolled_back"), check_mode=True)
    assert planned["release"] == "20261201T000000Z-a" and planned["changed"]
    assert os.readlink(str(root / "current")) == "releases/20261202T000000Z-b"
    done = release.run_release(options(root, state="rolled_back"))
    assert done["previous"] == "20261202T000000Z-b" and done["current"] == "20261201T000000Z-a"
    named = release.run_release(options(root, state="rolled_back", release="c"))
    assert named["current"] == "20261203T000000Z-c"


def test_prune_never_removes_current(tmp_path):
    root = tmp_path / "app"
    ids = ["20261201T000000Z-a", "20261202T000000Z-b", "20261203T000000Z-c", "20261204T000000Z-d"]
    fake_release(root, *ids)
    os.symlink("releases/" + ids[0], str(root / "current"))
    result = release.run_release(options(root, state="pruned", keep=2))
    assert result["removed"] == ids[1:3] and release.Layout(str(root)).releases_list() == [ids[0], ids[3]]
    with pytest.raises(RunbookError, match="current release"):
        release.remove_release(release.Layout(str(root)), ids[0])


def test_an_archive_url_is_downloaded_and_unpacked(tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    make_archive(tmp_path / "app-3.tar.gz", {"app.py": "print(3)\n"})
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:{0}/app-3.tar.gz".format(server.server_address[1])
        built = release.run_release(options(tmp_path / "app", archive=url), now=MOMENT)
    finally:
        server.shutdown()
        server.server_close()
    path = tmp_path / "app" / "releases" / built["release"]
    assert built["release"] == "20261206T034005Z-app-3"
    assert sorted(os.listdir(str(path))) == ["app.py"]
