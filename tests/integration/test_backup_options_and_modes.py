"""Options out of their range never run, and backups are readable by their owner (and group) only.

Against a real PostgreSQL and a real S3 store (SeaweedFS).
"""
import grp
import json
import os
import socket
import stat

import pytest
from conftest import DATABASE, ansible_module, local_entries, module_result, s3_keys

from ansible_collections.ops.runbook.plugins.module_utils import pg_backup_cli
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import LOCK_NAME, run_backup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_restore import run_restore
from ansible_collections.ops.runbook.plugins.module_utils.s3_backup_verify import verify_backup


def module_args(options, **extra):
    """pg_backup module arguments from engine options (the harness's login_db is not one)."""
    args = dict(options, **extra)
    args.pop("login_db", None)
    return args


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def tree_modes(root):
    """{path relative to root: (mode, gid)} of root and everything under it."""
    found = {".": (mode(root), os.lstat(root).st_gid)}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = (mode(path), os.lstat(path).st_gid)
    return found


@pytest.fixture
def umask():
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


# -- ranges ------------------------------------------------------------------

@pytest.mark.parametrize("compression,level", [("zstd", 99), ("zstd", 20), ("gzip", 10), ("gzip", 0)])
def test_an_impossible_compression_level_is_refused_before_anything_is_written(s3, options, compression, level):
    """zstd quietly lowers a level above 19 to 19, and the manifest used to record 99."""
    options.update(compression=compression, compression_level=level)
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    assert caught.value.details["cause"] == "invalid"
    assert "compression_level is {0}; it must be a whole number from 1 to {1}".format(
        level, 19 if compression == "zstd" else 9) in str(caught.value)
    assert not os.path.exists(options["backup_dir"])
    assert s3_keys(s3, options["s3_bucket"]) == []


def test_the_highest_real_levels_back_up_and_are_recorded_as_used(s3, options):
    options.update(compression="gzip", compression_level=9, globals=False)
    result = run_backup(options)
    assert result["manifest"]["compression_level"] == 9
    uploaded = json.loads(s3.client().get_object(Bucket=options["s3_bucket"], Key=result["s3_keys"][-1])
                          ["Body"].read())
    assert uploaded["compression_level"] == 9


def test_the_module_refuses_out_of_range_options_naming_each(s3, options):
    args = module_args(options, compression="gzip", compression_level=10, keep_days=-1, s3_part_size_mb=4)
    run = ansible_module("ops.runbook.pg_backup", args)
    result = module_result(run)
    assert result.get("failed") is True
    assert "compression_level is 10; it must be a whole number from 1 to 9" in result["msg"]
    assert "keep_days is -1" in result["msg"] and "s3_part_size_mb is 4" in result["msg"]
    assert sorted(p["option"] for p in result["invalid"]) == ["compression_level", "keep_days", "s3_part_size_mb"]
    assert not os.path.exists(options["backup_dir"])
    assert s3_keys(s3, options["s3_bucket"]) == []


def test_the_host_job_refuses_the_job_and_runs_the_valid_one(s3, options, tmp_path, capsys):
    """One invalid job fails the run (exit 1) with its reason in the log; it writes nothing, the other backs up."""
    bad = dict(options, compression_level=99, backup_dir=str(tmp_path / "bad"))
    config = tmp_path / "pg_backup.json"
    config.write_text(json.dumps({"jobs": [bad, options]}))
    assert pg_backup_cli.main(["--config", str(config), "--credentials", str(tmp_path / "none.json")]) == 1
    err = capsys.readouterr().err
    assert "pg_backup of bmidb failed: Invalid option: compression_level is 99" in err
    assert not os.path.exists(str(tmp_path / "bad"))
    assert len(local_entries(options["backup_dir"])) == 1
    assert all(k.endswith(("manifest.json", ".dump.zst")) for k in s3_keys(s3, options["s3_bucket"]))


def test_verification_and_restore_refuse_impossible_limits_before_reading_anything(options):
    with pytest.raises(RunbookError, match=r"max_size_drop is 1.5; it must be a number from 0 to 1"):
        verify_backup(dict(options, max_size_drop=1.5))
    with pytest.raises(RunbookError, match=r"max_age_hours is 0; it must be a number more than 0"):
        verify_backup(dict(options, max_age_hours=0))
    with pytest.raises(RunbookError, match=r"login_port is 0; it must be a whole number from 1 to 65535"):
        run_restore(dict(options, login_port=0, target="never_created"))


@pytest.fixture
def listeners():
    """Two TCP listeners standing in for PostgreSQL and S3: any connection the engine makes waits in their queue."""
    made = []
    for _attempt in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        made.append(sock)
    yield made
    for sock in made:
        sock.close()


def connections_made(sock):
    try:
        conn, _address = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.mark.parametrize("engine,extra", [
    (run_backup, {"compression_level": 99}),
    (run_backup, {"s3_max_concurrency": 65}),
    (run_backup, {"lock_timeout": -5}),
    (verify_backup, {"min_size_bytes": -1}),
    (run_restore, {"connect_timeout": 0}),
])
def test_an_invalid_option_opens_no_connection_and_takes_no_lock(options, listeners, engine, extra):
    pg_listener, s3_listener = listeners
    options.update(login_host="127.0.0.1", login_port=pg_listener.getsockname()[1], connect_timeout=2,
                   s3_endpoint_url="http://127.0.0.1:{0}".format(s3_listener.getsockname()[1]))
    options.update(extra)
    os.makedirs(options["backup_dir"])
    with pytest.raises(RunbookError) as caught:
        engine(options)
    assert caught.value.details["cause"] == "invalid"
    assert not connections_made(pg_listener) and not connections_made(s3_listener)
    assert os.listdir(options["backup_dir"]) == []  # not even the lock file


# -- modes -------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_backup_files_are_0600_and_directories_0700_whatever_the_umask(options, tmp_path, umask, mask):
    site = tmp_path / "site.conf"
    site.write_text("server {}\n")
    options.update(globals=True, config_files=[str(site)], backup_dir=str(tmp_path / "new" / "backups"))
    umask(mask)
    result = run_backup(options)
    found = tree_modes(options["backup_dir"])
    set_rel = os.path.join(DATABASE, result["backup_id"])
    expected_dirs = {".", DATABASE, set_rel, os.path.join(set_rel, "config")}
    expected_files = {os.path.join(set_rel, name) for name in [f["name"] for f in result["files"]] + ["manifest.json"]}
    expected_files.add(LOCK_NAME)
    assert set(found) == expected_dirs | expected_files
    assert {path: found[path][0] for path in expected_dirs} == dict.fromkeys(expected_dirs, 0o700)
    assert {path: found[path][0] for path in expected_files} == dict.fromkeys(expected_files, 0o600)
    # A parent the engine had to create is a plain directory, never writable by others.
    assert mode(str(tmp_path / "new")) & 0o022 == 0
    assert result["warnings"] == []


@pytest.mark.parametrize("mask", [0o077, 0o000], ids=["umask077", "umask000"])
def test_with_backup_group_files_are_0640_and_directories_0750_of_that_group(options, tmp_path, umask, mask):
    group = grp.getgrnam("nogroup")
    options.update(globals=True, backup_group="nogroup")
    umask(mask)
    result = run_backup(options)
    found = tree_modes(options["backup_dir"])
    for path, (path_mode, gid) in found.items():
        if path == LOCK_NAME:
            assert path_mode == 0o600
            continue
        is_dir = os.path.isdir(os.path.join(options["backup_dir"], path))
        assert (path, path_mode, gid) == (path, 0o750 if is_dir else 0o640, group.gr_gid)
    assert len(found) == 1 + 1 + 1 + 1 + len(result["files"]) + 1  # root, database, set, lock, files, manifest


def test_a_wider_existing_backup_dir_is_kept_and_reported(options, umask):
    umask(0o022)
    os.makedirs(options["backup_dir"])
    os.chmod(options["backup_dir"], 0o755)
    result = run_backup(options)
    assert mode(options["backup_dir"]) == 0o755  # the operator's directory: reported, not changed
    assert len(result["warnings"]) == 1
    assert "{0} is open to its group and every user (mode 0755)".format(options["backup_dir"]) in result["warnings"][0]
    assert "chmod g-rwx,o-rwx" in result["warnings"][0]
    assert mode(result["local_path"]) == 0o700
    assert mode(result["dump_path"]) == 0o600


def test_the_module_returns_the_warning_and_writes_the_group_modes(options):
    os.makedirs(options["backup_dir"])
    os.chmod(options["backup_dir"], 0o777)
    run = ansible_module("ops.runbook.pg_backup", module_args(options, backup_group="nogroup"))
    result = module_result(run)
    assert result.get("failed") is not True, result.get("msg")
    assert any("open to its group and every user (mode 0777)" in w for w in result["warnings"])
    assert mode(result["dump_path"]) == 0o640
    assert os.stat(result["dump_path"]).st_gid == grp.getgrnam("nogroup").gr_gid


def test_an_unknown_backup_group_writes_nothing(s3, options):
    options.update(backup_group="no-such-group-" + os.urandom(3).hex())
    with pytest.raises(RunbookError, match="a group that does not exist on this host"):
        run_backup(options)
    assert not os.path.exists(options["backup_dir"])
    assert s3_keys(s3, options["s3_bucket"]) == []


def test_the_safety_backup_before_a_restore_is_private_too(pg, options, umask):
    """The pre-restore backup of the replaced database goes through the same engine and modes."""
    umask(0o000)
    run_backup(options)
    target = "modes_restore_target"
    pg.create_database(target)
    result = run_restore(dict(options, target=target, overwrite=True, s3_bucket=None))
    pre = result["pre_restore_backup"]
    assert mode(os.path.join(options["backup_dir"], target)) == 0o700
    set_dir = os.path.join(options["backup_dir"], target, pre["backup_id"])
    assert mode(set_dir) == 0o700
    assert {mode(os.path.join(set_dir, name)) for name in os.listdir(set_dir)} == {0o600}
