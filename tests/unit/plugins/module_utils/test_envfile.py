"""Reading and rewriting one secret in an environment file, and the file's atomic replacement with its backup."""
import os
import stat

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import env_secret as envfile
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

ENV = (
    "# bmi-backend\n"
    "NODE_ENV=production\n"
    "export DATABASE_PASSWORD = 'Old-pass_word-1'\r\n"
    "DATABASE_URL=\"postgresql://bmi_app:Old%40pw@db1:5433,db2:5433/bmidb?sslmode=require#x\"\n"
    "JWT_SECRET=keep-me\n"
    "\n"
)


def test_the_current_secret_is_read_as_the_parsers_read_it():
    assert envfile.current_secret(ENV, "DATABASE_PASSWORD", "env")["value"] == "Old-pass_word-1"
    found = envfile.current_secret(ENV, "DATABASE_URL", "url", role="bmi_app")
    assert found == {"value": "Old@pw", "assignments": 1, "user": "bmi_app", "host": "db1", "port": 5433,
                     "database": "bmidb"}


def test_only_the_value_changes_and_every_other_byte_stays():
    text, count = envfile.replace_secret(ENV, "DATABASE_PASSWORD", "env", "New-Pass_word-22")
    assert count == 1
    assert text == ENV.replace("'Old-pass_word-1'", "'New-Pass_word-22'")


def test_the_url_keeps_everything_but_its_password_which_is_percent_encoded():
    text, _count = envfile.replace_secret(ENV, "DATABASE_URL", "url", "N3w/pass~word@x:y", role="bmi_app")
    assert text == ENV.replace("Old%40pw", "N3w%2Fpass%7Eword%40x%3Ay")
    assert envfile.current_secret(text, "DATABASE_URL", "url")["value"] == "N3w/pass~word@x:y"


@pytest.mark.parametrize("line, secret, expected", [
    ("KEY=old-secret", "New-secret_1", "KEY=New-secret_1"),
    ("KEY=old-secret", "New$ecret#1", "KEY='New$ecret#1'"),
    ("KEY='old'", "New-secret_1", "KEY='New-secret_1'"),
    ('KEY="old"', "New-secret_1", 'KEY="New-secret_1"'),
    ('KEY="old"', "New$ecret-1", "KEY='New$ecret-1'"),
    ('KEY="old"', 'New"ecret-1', "KEY='New\"ecret-1'"),
    ("KEY=", "New-secret_1", "KEY=New-secret_1"),
])
def test_the_new_value_keeps_the_quoting_where_it_fits(line, secret, expected):
    assert envfile.replace_secret(line + "\n", "KEY", "env", secret)[0] == expected + "\n"


def test_an_unchanged_secret_leaves_the_text_as_it_was():
    assert envfile.replace_secret(ENV, "JWT_SECRET", "env", "keep-me")[0] == ENV


def test_equal_assignments_are_all_rewritten_and_different_ones_refused():
    text, count = envfile.replace_secret("K=a\nexport K=a\n", "K", "env", "b-b-b-b-b-b-b-b")
    assert (text, count) == ("K=b-b-b-b-b-b-b-b\nexport K=b-b-b-b-b-b-b-b\n", 2)
    with pytest.raises(RunbookError, match="set 2 times in the file, with different values"):
        envfile.current_secret("K=a\nK=b\n", "K", "env")


@pytest.mark.parametrize("line, reason", [
    ("KEY='old' # note", "followed by more text after its closing quote"),
    ("KEY=old # note", "unquoted but holds whitespace"),
    ("KEY='old", "opens a quote it does not close"),
    ('KEY="o\\$ld"', "backslash inside quotes"),
    ("KEY=old\\", "continues on the next line"),
])
def test_values_the_parsers_read_differently_are_refused(line, reason):
    with pytest.raises(RunbookError, match=reason) as caught:
        envfile.current_secret(line + "\n", "KEY", "env", path="/etc/app/env")
    assert caught.value.details["cause"] == "ambiguous"
    assert "KEY in /etc/app/env" in caught.value.message


def test_a_missing_key_is_refused_and_a_similar_one_does_not_count():
    with pytest.raises(RunbookError, match="DATABASE_PASSWORD is not set in /etc/app/env") as caught:
        envfile.current_secret("DATABASE_PASSWORD_FILE=/run/x\n# DATABASE_PASSWORD=x\n", "DATABASE_PASSWORD", "env",
                               path="/etc/app/env")
    assert caught.value.details["cause"] == "missing_key"


@pytest.mark.parametrize("url, message", [
    ("mysql://app:pw@db/x", "is not a postgresql:// URL"),
    ("postgresql://db:5432/x", "names no user"),
    ("postgresql://app@db/x", "has no password"),
    ("postgresql://other:pw@db/x", "logs in as 'other', not as role 'app'"),
    ("postgresql://app:p@w@db/x", "unencoded @"),
    ("postgresql://app@db/x?password=pw", "sets the user or password in its query string"),
])
def test_urls_that_do_not_hold_the_roles_password_are_refused(url, message):
    with pytest.raises(RunbookError, match=message):
        envfile.current_secret("DATABASE_URL={0}\n".format(url), "DATABASE_URL", "url", role="app")


def test_url_endpoints_default_like_libpq():
    assert envfile.DatabaseUrl("postgres://app:pw@[::1]:6432").endpoint() == {
        "user": "app", "host": "::1", "port": 6432, "database": "app"}
    assert envfile.DatabaseUrl("postgresql://app:pw@%2Fvar%2Frun%2Fpostgresql/bmidb").endpoint() == {
        "user": "app", "host": "/var/run/postgresql", "port": None, "database": "bmidb"}


def test_a_value_no_parser_reads_alike_is_never_written():
    with pytest.raises(RunbookError, match="single quote, a backslash or a line break"):
        envfile.quote_value("it's")


# -- the file -------------------------------------------------------------------------------

@pytest.fixture
def env_path(tmp_path):
    path = tmp_path / "env"
    path.write_bytes(ENV.encode())
    os.chmod(path, 0o640)
    os.utime(path, (1000000000, 1000000000))
    return path


def test_the_file_is_replaced_with_its_mode_after_a_backup_of_the_old_one(env_path):
    result = envfile.set_secret({"path": str(env_path), "key": "DATABASE_URL", "format": "url",
                                 "value": "New-Pass_word-22", "role": "bmi_app"})
    assert result["changed"] and result["mode"] == "0640" and result["assignments"] == 1
    assert env_path.read_bytes() == ENV.replace("Old%40pw", "New-Pass_word-22").encode()
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o640
    backup = result["backup_file"]
    assert os.path.dirname(backup) == str(env_path.parent) and backup.endswith(".bak")
    with open(backup, "rb") as handle:
        assert handle.read() == ENV.encode()
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o640
    assert os.stat(backup).st_mtime == 1000000000
    assert sorted(os.listdir(env_path.parent)) == sorted(["env", os.path.basename(backup)])
    assert "the previous file is {0}".format(backup) in result["msg"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_the_file_and_its_backup_keep_the_owner(env_path):
    os.chown(env_path, 4321, 4322)
    result = envfile.set_secret({"path": str(env_path), "key": "JWT_SECRET", "value": "new-jwt-secret-1"})
    for path in (str(env_path), result["backup_file"]):
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (4321, 4322)
    assert "owner 4321:4322" in result["msg"]


def test_check_mode_and_an_unchanged_value_write_nothing(env_path):
    params = {"path": str(env_path), "key": "DATABASE_PASSWORD", "value": "New-Pass_word-22"}
    result = envfile.set_secret(params, check_mode=True)
    assert result["changed"] and result["backup_file"] is None
    assert result["msg"].startswith("Would set DATABASE_PASSWORD in {0} (1 assignment), keeping mode 0640".format(
        env_path))
    unchanged = envfile.set_secret(dict(params, value="Old-pass_word-1"))
    assert not unchanged["changed"] and unchanged["backup_file"] is None
    assert env_path.read_bytes() == ENV.encode() and os.listdir(env_path.parent) == ["env"]


def test_a_symlink_is_followed_and_stays_a_symlink(env_path, tmp_path):
    link = tmp_path / "current.env"
    link.symlink_to(env_path)
    result = envfile.set_secret({"path": str(link), "key": "DATABASE_PASSWORD", "value": "New-Pass_word-22"})
    assert result["path"] == str(env_path)
    assert link.is_symlink() and "'New-Pass_word-22'" in env_path.read_text()


def test_restore_puts_the_backup_back(env_path):
    changed = envfile.set_secret({"path": str(env_path), "key": "DATABASE_PASSWORD", "value": "New-Pass_word-22"})
    os.chmod(env_path, 0o600)
    params = {"path": str(env_path), "backup_file": changed["backup_file"]}
    planned = envfile.restore(params, check_mode=True)
    assert planned["changed"]
    assert planned["msg"] == "Would restore {0} from {1}.".format(env_path, changed["backup_file"])
    assert "New-Pass_word-22" in env_path.read_text()
    restored = envfile.restore(params)
    assert restored["changed"] and env_path.read_bytes() == ENV.encode()
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    assert not envfile.restore(params)["changed"]


def test_file_problems_say_what_to_do(tmp_path):
    with pytest.raises(RunbookError, match="does not exist"):
        envfile.set_secret({"path": str(tmp_path / "missing"), "key": "K", "value": "v"})
    (tmp_path / "binary").write_bytes(b"K=\xff\n")
    with pytest.raises(RunbookError, match="is not UTF-8 text"):
        envfile.set_secret({"path": str(tmp_path / "binary"), "key": "K", "value": "v"})
    with pytest.raises(RunbookError, match="needs backup_file"):
        envfile.restore({"path": str(tmp_path / "binary")})
    (tmp_path / "env").write_text("K=v\n")
    with pytest.raises(RunbookError, match="backup directory .* does not exist"):
        envfile.set_secret({"path": str(tmp_path / "env"), "key": "K", "value": "w",
                            "backup_dir": str(tmp_path / "nowhere")})
    assert (tmp_path / "env").read_text() == "K=v\n"
