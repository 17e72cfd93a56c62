"""Every numeric option of the backup, verify, restore and maintenance engines against its real range.

Each case goes through the engine's own normalize (what the modules and the
host jobs call first): the boundary values are accepted, one step past them
is refused with a message naming the option, the value and the range.
"""
import grp
import os
import stat

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import pg_backup as backup, pg_backup_cli, pg_maintenance
from ansible_collections.ops.runbook.plugins.module_utils import pg_restore as restore, s3_backup_verify as verify
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.filemodes import FileModes
from ansible_collections.ops.runbook.plugins.module_utils.ranges import Range, check_ranges


def backup_opts(**extra):
    return backup.normalize(dict(database="bmidb", **extra))


def verify_opts(**extra):
    return verify.normalize(dict(database="bmidb", **extra))


def restore_opts(**extra):
    return restore.normalize(dict(database="bmidb", **extra))


def maintenance_opts(**extra):
    return pg_maintenance.normalize(dict(databases=["bmidb"], **extra))


# (engine's normalize, option, extra options, [accepted], [refused])
CASES = [
    (backup_opts, "compression_level", {"compression": "zstd"}, [1, 19], [0, 20, 22, 99, -1]),
    (backup_opts, "compression_level", {"compression": "gzip"}, [1, 9], [0, 10]),
    (backup_opts, "compression_threads", {}, [0, 256], [-1, 257]),
    (backup_opts, "keep_days", {}, [0, 36500], [-1, 36501]),
    (backup_opts, "keep_count", {}, [0, 1000000], [-1, 1000001]),
    (backup_opts, "s3_keep_days", {}, [0, 36500], [-1, 36501]),
    (backup_opts, "s3_keep_count", {}, [0, 1000000], [-1, 1000001]),
    (backup_opts, "lock_timeout", {}, [0, 86400], [-1, 86401]),
    (backup_opts, "s3_part_size_mb", {}, [5, 5120], [4, 5121]),
    (backup_opts, "s3_max_concurrency", {}, [1, 64], [0, 65]),
    (backup_opts, "login_port", {}, [1, 65535], [0, 65536]),
    (backup_opts, "connect_timeout", {}, [1, 3600], [0, 3601]),
    (backup_opts, "job_timeout", {}, [1, 10 ** 6], [0, -1]),
    (backup_opts, "dump_lock_timeout", {}, [1, 86400], [0, 86401]),
    (backup_opts, "s3_timeout", {}, [1, 3600], [0, 3601]),
    (verify_opts, "max_age_hours", {}, [0.001, 26, 100000.5], [0, -1.0]),
    (verify_opts, "min_size_bytes", {}, [0, 10 ** 12], [-1]),
    (verify_opts, "max_size_drop", {}, [0, 0.5, 1], [-0.01, 1.01]),
    (verify_opts, "incomplete_grace_minutes", {}, [0, 10 ** 6], [-1]),
    (verify_opts, "s3_part_size_mb", {}, [5, 5120], [4, 5121]),
    (verify_opts, "s3_max_concurrency", {}, [1, 64], [0, 65]),
    (verify_opts, "login_port", {}, [1, 65535], [0, 65536]),
    (verify_opts, "connect_timeout", {}, [1, 3600], [0, 3601]),
    (verify_opts, "s3_timeout", {}, [1, 3600], [0, 3601]),
    (verify_opts, "max_row_drop", {}, [0, 0.5, 1], [-0.1, 1.5]),
    (restore_opts, "s3_timeout", {}, [1, 3600], [0, 3601]),
    (verify_opts, "job_timeout", {}, [1, 10 ** 6], [0, -1]),
    (restore_opts, "job_timeout", {}, [1, 10 ** 6], [0, -1]),
    (restore_opts, "s3_part_size_mb", {}, [5, 5120], [4, 5121]),
    (restore_opts, "s3_max_concurrency", {}, [1, 64], [0, 65]),
    (restore_opts, "login_port", {}, [1, 65535], [0, 65536]),
    (restore_opts, "connect_timeout", {}, [1, 3600], [0, 3601]),
    (maintenance_opts, "lock_timeout", {}, [1, 2147483], [0, 2147484]),
    (maintenance_opts, "statement_timeout", {}, [0, 2147483], [-1, 2147484]),
    (maintenance_opts, "slow_statements_top", {}, [1, 1000], [0, 1001]),
    (maintenance_opts, "slow_statements_min_calls", {}, [0, 10 ** 6], [-1]),
    (maintenance_opts, "login_port", {}, [1, 65535], [0, 65536]),
    (maintenance_opts, "connect_timeout", {}, [1, 3600], [0, 3601]),
]
ACCEPTED = [(n, o, e, v) for n, o, e, good, _bad in CASES for v in good]
REFUSED = [(n, o, e, v) for n, o, e, _good, bad in CASES for v in bad]


def case_id(value):
    return getattr(value, "__name__", None) or (str(sorted(value.items())) if isinstance(value, dict) else None)


@pytest.mark.parametrize("normalize,option,extra,value", ACCEPTED, ids=case_id)
def test_boundary_values_are_accepted(normalize, option, extra, value):
    assert normalize(**dict(extra, **{option: value}))[option] == value


@pytest.mark.parametrize("normalize,option,extra,value", REFUSED, ids=case_id)
def test_one_past_the_range_is_refused_naming_option_value_and_range(normalize, option, extra, value):
    with pytest.raises(RunbookError) as caught:
        normalize(**dict(extra, **{option: value}))
    error = caught.value
    assert error.details["cause"] == "invalid"
    assert [p["option"] for p in error.details["invalid"]] == [option]
    assert "{0} is {1!r}; it must be ".format(option, value) in error.message
    assert "Nothing was done" in str(error)


def test_every_numeric_option_of_each_engine_has_a_case():
    """A new numeric option without a range (or without a test of it) fails here."""
    covered = {(n, o) for n, o, _e, _g, _b in CASES}
    tables = [(backup_opts, backup.RANGES), (verify_opts, verify.RANGES), (maintenance_opts, pg_maintenance.RANGES)]
    for normalize, table in tables:
        assert {(normalize, name) for name in table} <= covered
    assert (backup_opts, "compression_level") in covered


def test_compression_level_must_be_unset_without_compression():
    assert backup_opts(compression="none")["compression_level"] is None
    with pytest.raises(RunbookError, match="compression_level is 3; it must be unset with compression none"):
        backup_opts(compression="none", compression_level=3)


def test_defaults_are_in_range_and_levels_filled_in():
    assert backup_opts()["compression_level"] == 1
    assert backup_opts(compression="gzip")["compression_level"] == 6
    verify_opts()
    maintenance_opts()


@pytest.mark.parametrize("value", [True, False, "high", "1.5", 1.5, float("nan"), float("inf"), [3], {}])
def test_values_that_are_not_whole_numbers_are_refused(value):
    with pytest.raises(RunbookError, match="compression_level is"):
        backup_opts(compression_level=value)


def test_whole_numbers_written_as_text_or_float_are_converted():
    """The host job reads JSON a template rendered: "5" and 5.0 are the number 5, recorded as such."""
    opts = backup_opts(compression_level="5", keep_days=3.0, s3_part_size_mb=" 8 ")
    assert (opts["compression_level"], opts["keep_days"], opts["s3_part_size_mb"]) == (5, 3, 8)
    assert isinstance(verify_opts(max_size_drop="0.25")["max_size_drop"], float)


def test_every_invalid_option_is_named_at_once():
    with pytest.raises(RunbookError) as caught:
        backup_opts(keep_days=-1, login_port=70000, s3_max_concurrency=0)
    assert [p["option"] for p in caught.value.details["invalid"]] == ["keep_days", "login_port", "s3_max_concurrency"]
    assert caught.value.message.startswith("Invalid options: ")


def test_unset_options_are_left_unset():
    opts = {"a": None}
    assert check_ranges(opts, {"a": Range(1, 2), "b": Range(1, 2)}) == {"a": None}


def test_the_host_job_validates_every_job_without_running_it(tmp_path, capsys):
    config = tmp_path / "pg_backup.json"
    config.write_text('{"jobs": [{"database": "a", "backup_dir": "/nonexistent/a"},'
                      ' {"database": "b", "compression": "gzip", "compression_level": 10}],'
                      ' "verify": {"max_size_drop": 2}}')
    assert pg_backup_cli.main(["--validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "backup options of b are invalid: Invalid option: compression_level is 10" in err
    assert "verification options of a are invalid: Invalid option: max_size_drop is 2" in err
    assert not os.path.exists("/nonexistent")
    config.write_text('{"jobs": [{"database": "a", "compression_level": 19}], "verify": {"max_size_drop": 1}}')
    assert pg_backup_cli.main(["--validate", "--config", str(config)]) == 0


# -- file modes --------------------------------------------------------------

@pytest.fixture
def umask():
    saved = os.umask(0o022)
    os.umask(saved)

    def set_umask(value):
        os.umask(value)

    yield set_umask
    os.umask(saved)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077], ids=["umask000", "umask022", "umask077"])
def test_files_and_directories_are_private_whatever_the_umask(tmp_path, umask, mask):
    umask(mask)
    modes = FileModes()
    modes.mkdir(str(tmp_path / "set"))
    with modes.create(str(tmp_path / "set" / "dump")) as handle:
        assert mode(str(tmp_path / "set" / "dump")) == 0o600  # before a byte is written
        handle.write(b"data")
    assert (mode(str(tmp_path / "set")), mode(str(tmp_path / "set" / "dump"))) == (0o700, 0o600)


@pytest.mark.parametrize("mask", [0o000, 0o077], ids=["umask000", "umask077"])
def test_a_group_gets_read_access_and_nothing_more(tmp_path, umask, mask):
    group = grp.getgrnam("nogroup")
    umask(mask)
    modes = FileModes("nogroup")
    modes.mkdir(str(tmp_path / "set"))
    with modes.create(str(tmp_path / "set" / "dump")) as handle:
        handle.write(b"data")
    for path, expected in ((tmp_path / "set", 0o750), (tmp_path / "set" / "dump", 0o640)):
        assert (mode(str(path)), os.stat(str(path)).st_gid) == (expected, group.gr_gid)


def test_an_existing_file_is_never_reused(tmp_path):
    target = tmp_path / "dump"
    target.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        FileModes().create(str(target))
    assert target.read_bytes() == b"someone else's"


def test_an_unknown_group_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    # Checked in the job's preflight, after the search for pg_dump (a host without PostgreSQL hears
    # that first) and before connecting or writing.
    monkeypatch.setattr(backup, "pg_tool", lambda opts, name, *args: "/usr/bin/pg_dump")
    monkeypatch.setattr(backup, "connect", lambda *args: pytest.fail("connected before checking the group"))
    job = backup.BackupJob(dict(database="bmidb", backup_group="no-such-group-here",
                                backup_dir=str(tmp_path / "backups")))
    with pytest.raises(RunbookError, match="backup_group is 'no-such-group-here', a group that does not exist"):
        job.plan()
    assert not os.path.exists(str(tmp_path / "backups"))


def test_the_host_job_validation_refuses_an_unknown_group():
    messages = []
    assert pg_backup_cli._validate([{"database": "bmidb", "backup_group": "no-such-group-here"}], {},
                                   messages.append) == 1
    assert any("a group that does not exist" in message for message in messages), messages


def test_a_group_the_user_is_not_in_is_refused(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    monkeypatch.setattr(os, "getegid", lambda: 4242)
    monkeypatch.setattr(os, "getgroups", lambda: [4242])
    with pytest.raises(RunbookError, match="is not a member of it"):
        FileModes("nogroup")
    monkeypatch.setattr(os, "getgroups", lambda: [4242, grp.getgrnam("nogroup").gr_gid])
    assert FileModes("nogroup").gid == grp.getgrnam("nogroup").gr_gid
