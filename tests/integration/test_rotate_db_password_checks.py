"""rotate_db_password.yml stops before its first change when an input or the current state is wrong.

Run on this machine (local connection, the harness's PostgreSQL): each case
must fail with the reason an operator can act on, without the password in the
output, and leave the config file, the vault file and the store command alone.
The rotation itself, its rollback and check mode are proven on a systemd host
by the rotate_db_password molecule scenario.
"""
import json
import os
import sys
import uuid

import pytest

from conftest import ROOT
from harness.runner import run_playbook

ROLE = "rotation_app"
PASSWORD = "Current-" + uuid.uuid4().hex
CONFIG = "# app\nDATABASE_PASSWORD='{0}'\nJWT_SECRET=other\n".format(PASSWORD)


@pytest.fixture
def place(tmp_path):
    """The controller-side paths and the application's config file of one run."""
    (tmp_path / "vault").mkdir()
    (tmp_path / "store").mkdir()
    (tmp_path / "vault-password").write_text("vault-" + uuid.uuid4().hex + "\n")
    (tmp_path / "env").write_text(CONFIG)
    return tmp_path


def settings(place, **extra):
    values = {
        "rotate_db_password_hosts": "all",
        "rotate_db_password_role": ROLE,
        "rotate_db_password_config_file": str(place / "env"),
        "rotate_db_password_service": "bmi-backend",
        "rotate_db_password_vault_file": str(place / "vault" / "db.yml"),
        "rotate_db_password_vault_password_file": str(place / "vault-password"),
        "rotate_db_password_store_command": ["sh", "-c", 'cat > "$0/$ROTATE_DB_PASSWORD_EVENT"', str(place / "store")],
        "rotate_db_password_install_requirements": False,
        "rotate_db_password_confirm": True,
    }
    values.update(extra)
    return dict((key, value) for key, value in values.items() if value is not None)


def rotate(place, extra_vars, hosts=None):
    """Run the playbook on this machine; (exit status, output)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "ansible_become_method": "su"}
    hosts = hosts or {"app1": {}}
    inventory = place / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": dict((name, dict(local, **host_vars))
                                                           for name, host_vars in hosts.items())}}))
    # Under ansible-runner, as AWX runs it (its private data directory holds the variables, mode 0600).
    result = run_playbook(os.path.join(ROOT, "playbooks", "rotate_db_password.yml"), extra_vars,
                          inventory=str(inventory), timeout=300)
    # The job events AWX stores (task arguments and results) never hold the password either.
    assert result.events and PASSWORD not in json.dumps(result.events)
    return result.returncode, result.stdout


def assert_untouched(place):
    assert (place / "env").read_text() == CONFIG
    assert os.listdir(place / "vault") == [] and os.listdir(place / "store") == []


@pytest.mark.parametrize("change, message", [
    ({"rotate_db_password_role": None}, "missing required arguments: rotate_db_password_role"),
    ({"rotate_db_password_config_format": "yaml"},
     "value of rotate_db_password_config_format must be one of: env, url, got: yaml"),
    ({"rotate_db_password_confirm": None}, "Add -e rotate_db_password_confirm=true to rotate, or run with --check"),
    ({"rotate_db_password_vault_file": None, "rotate_db_password_store_command": None},
     "The runbook stores the new password before the database user changes"),
    ({"rotate_db_password_vault_file": "vault/db.yml"}, "an absolute path on the controller"),
    ({"rotate_db_password_vault_password_file": "/nonexistent/vault-pass"},
     "Missing on the controller: /nonexistent/vault-pass"),
])
def test_wrong_settings_stop_the_play_before_anything(place, change, message):
    rc, output = rotate(place, settings(place, **change))
    assert rc != 0
    assert message in " ".join(output.split()), output
    assert "TASK [Read the application's config file]" not in output
    assert_untouched(place)


def test_a_password_that_breaks_the_policy_is_refused_without_being_shown(place):
    rc, output = rotate(place, settings(place, rotate_db_password_new_password="short'pw"))
    assert rc != 0
    assert ("rotate_db_password_new_password is refused: it has 8 characters; at least 16 are required; "
            "it holds a single quote") in output
    assert "short'pw" not in output
    assert_untouched(place)


def test_a_value_parsers_read_differently_is_refused_with_the_reason(place):
    (place / "env").write_text(CONFIG.replace("'\n", "' # set 2024\n", 1))
    rc, output = rotate(place, settings(place))
    assert rc != 0
    assert "The value of DATABASE_PASSWORD in {0} is followed by more text after its closing quote".format(
        place / "env") in " ".join(output.split())
    assert PASSWORD not in output
    assert (place / "env").read_text() == CONFIG.replace("'\n", "' # set 2024\n", 1)


def test_hosts_that_disagree_on_the_password_are_refused(place):
    (place / "other.env").write_text(CONFIG.replace(PASSWORD, "Other-" + uuid.uuid4().hex))
    # Per host, in the inventory: extra vars would override host vars.
    rc, output = rotate(place, settings(place, rotate_db_password_config_file=None), hosts={
        "app1": {"rotate_db_password_config_file": str(place / "env")},
        "app2": {"rotate_db_password_config_file": str(place / "other.env")}})
    assert rc != 0
    assert "The hosts app1, app2 hold different passwords for role rotation_app" in " ".join(output.split())
    assert PASSWORD not in output
    assert_untouched(place)


def test_a_current_password_that_does_not_log_in_stops_the_rotation(place, pg):
    """Without a working current password, a rollback would have nothing to return to."""
    pg.execute("DROP ROLE IF EXISTS {0}".format(ROLE))
    pg.create_role(ROLE, "Another-" + uuid.uuid4().hex)
    rc, output = rotate(place, settings(place, rotate_db_password_app_db_host=pg.host,
                                        rotate_db_password_app_db_port=pg.port))
    assert rc != 0
    assert "Role 'rotation_app' cannot log in to database 'postgres' at 127.0.0.1:{0} with this password".format(
        pg.port) in " ".join(output.split())
    assert "password authentication failed" in output
    assert PASSWORD not in output
    assert "TASK [Generate new password]" not in output
    assert_untouched(place)
