"""The host after converge's rotation, then rotate_db_password.yml run again as an operator would.

After converge: bmi-backend is healthy with the new password, which is in the
vault file and was handed to the store command; the old password is refused;
the environment file changed only in DATABASE_PASSWORD and kept its mode and
owner; its backup holds the old file; the server's log (every statement is
logged) never saw the password. Then, in order: check mode changes nothing,
a rotation of the password inside DATABASE_URL under -vvv (the output must not
hold the old or the new password), and a rotation pointed at the wrong variable
(the application keeps reading DATABASE_URL), which must be rolled back. The
checks that stop the play before any change run without a container, in
tests/integration/test_rotate_db_password_checks.py.
"""
import json
import os
import subprocess
import sys
import urllib.parse

import pytest
import testinfra.utils.ansible_runner
import yaml

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
CONTAINERS = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
testinfra_hosts = ["podman://" + name for name in CONTAINERS]

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
BIN = os.path.dirname(sys.executable)
INITIAL_PASSWORD = "Initial-Passw0rd-of-bmi-app"
ENV_FILE = "/etc/bmi-backend/env"
VAULT_FILE = os.path.join(EPHEMERAL, "vault", "bmi_app_db.yml")
VAULT_PASSWORD_FILE = os.path.join(EPHEMERAL, "vault-password")
STORE_DIR = os.path.join(EPHEMERAL, "store")
# The settings converge.yml gives the playbook.
ROTATION = {
    "rotate_db_password_hosts": "all",
    "rotate_db_password_role": "bmi_app",
    "rotate_db_password_config_file": ENV_FILE,
    "rotate_db_password_config_key": "DATABASE_PASSWORD",
    "rotate_db_password_service": "bmi-backend",
    "rotate_db_password_service_port": 3000,
    "rotate_db_password_service_health_url": "http://127.0.0.1:3000/health",
    "rotate_db_password_settle_seconds": 2,
    "rotate_db_password_timeout": 10,
    "postgres_become": True,
    "rotate_db_password_app_db_name": "bmidb",
    "rotate_db_password_vault_file": VAULT_FILE,
    "rotate_db_password_vault_password_file": VAULT_PASSWORD_FILE,
    "rotate_db_password_store_command": ["sh", "-c", 'cat > "$0/$ROTATE_DB_PASSWORD_EVENT"', STORE_DIR],
}
# Converge installed the client library; the runs here skip that apt check.
RUN = dict(ROTATION, rotate_db_password_install_requirements=False)


def vaulted_password():
    text = subprocess.run([os.path.join(BIN, "ansible-vault"), "view", "--vault-password-file", VAULT_PASSWORD_FILE,
                           VAULT_FILE], check=True, stdout=subprocess.PIPE, text=True).stdout
    return yaml.safe_load(text)["db_password"]


def stored(event):
    with open(os.path.join(STORE_DIR, event)) as handle:
        return handle.read()


def env_file(host):
    return host.file(ENV_FILE).content_string


def env_value(host, key):
    for line in env_file(host).splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip("'")
    raise AssertionError("{0} is not in {1}".format(key, ENV_FILE))


def can_log_in(host, password):
    """Whether bmi_app logs in over TCP with `password` (the password goes in the environment, not argv)."""
    result = host.run("env PGPASSWORD=%s psql -h 127.0.0.1 -U bmi_app -d bmidb -XtAc 'SELECT current_user'", password)
    if result.rc == 0:
        return True
    assert "password authentication failed" in result.stderr, result.stderr
    return False


def health(host):
    script = ("import urllib.request, urllib.error\n"
              "try:\n"
              "    r = urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=5)\n"
              "    print(r.status, r.read().decode())\n"
              "except urllib.error.HTTPError as e:\n"
              "    print(e.code, e.read().decode())\n")
    status, body = host.check_output("python3 -c %s", script).split(" ", 1)
    return int(status), json.loads(body)


def main_pid(host):
    return host.check_output("systemctl show -p MainPID --value bmi-backend")


def stored_verifier(host):
    return host.check_output("runuser -u postgres -- psql -XtAc %s",
                             "SELECT rolpassword FROM pg_authid WHERE rolname = 'bmi_app'")


def playbook(tmp_path, settings, *args):
    """rotate_db_password.yml against the scenario's container, as an operator runs it; (rc, output)."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {name: {"ansible_connection": "containers.podman.podman",
                                                              "ansible_host": name} for name in CONTAINERS}}}))
    extra = tmp_path / "rotation.json"
    extra.write_text(json.dumps(settings))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".build", "collections"),
               CONTAINERS_CONF=os.path.join(PROJECT, "molecule", "containers.conf"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_SHOW_CUSTOM_STATS="1")
    command = [os.path.join(BIN, "ansible-playbook"), "-i", str(inventory),
               os.path.join(PROJECT, "playbooks", "rotate_db_password.yml"), "-e", "@" + str(extra)] + list(args)
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=600, check=False)
    return result.returncode, result.stdout


def assert_no_password(output, *passwords):
    for password in passwords:
        assert len(password) >= 16
        for form in (password, urllib.parse.quote(password, safe="")):
            assert form not in output, "a password appeared in the playbook's output"


# -- after converge --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def converged_password():
    return vaulted_password()


def test_the_application_is_healthy_with_the_new_password(host, converged_password):
    assert converged_password != INITIAL_PASSWORD and len(converged_password) == 32
    assert env_value(host, "DATABASE_PASSWORD") == converged_password
    status, body = health(host)
    assert status == 200 and body["dependencies"]["database"]["status"] == "healthy"


def test_the_new_password_logs_in_and_the_old_one_is_refused(host, converged_password):
    assert can_log_in(host, converged_password)
    assert not can_log_in(host, INITIAL_PASSWORD)
    assert stored_verifier(host).startswith("SCRAM-SHA-256$4096:")


def test_the_store_command_received_the_new_password_on_stdin(host, converged_password):
    assert stored("rotate") == converged_password
    assert not os.path.exists(os.path.join(STORE_DIR, "rollback"))
    assert oct(os.stat(VAULT_FILE).st_mode & 0o777) == "0o600"
    with open(VAULT_FILE) as handle:
        assert handle.readline().startswith("$ANSIBLE_VAULT;1.1;AES256")


def test_only_the_password_changed_in_the_file_which_kept_its_mode_and_owner(host, converged_password):
    config = host.file(ENV_FILE)
    assert (config.mode, config.user, config.group) == (0o640, "root", "bmi")
    backups = host.check_output("ls %s", "/etc/bmi-backend").split()
    backups = [name for name in backups if name.startswith("env.") and name.endswith(".bak")]
    assert len(backups) == 1, backups
    backup = host.file("/etc/bmi-backend/" + backups[0])
    assert (backup.mode, backup.user, backup.group) == (0o640, "root", "bmi")
    old_lines, new_lines = backup.content_string.splitlines(), config.content_string.splitlines()
    changed = [(old, new) for old, new in zip(old_lines, new_lines) if old != new]
    assert len(old_lines) == len(new_lines)
    assert changed == [("DATABASE_PASSWORD='{0}'".format(INITIAL_PASSWORD),
                        "DATABASE_PASSWORD='{0}'".format(converged_password))]


def test_the_database_server_never_saw_the_password(host, converged_password):
    log = host.check_output("cat /var/log/postgresql/postgresql-15-main.log")
    assert "statement: SELECT 1" in log          # every statement is logged: here bmi-backend's health queries
    assert converged_password not in log
    # As a superuser the module switched statement logging off for the change: not even the verifier is logged.
    assert "SCRAM-SHA-256$" not in log
    assert "log_statement" in log


# -- the playbook again, as an operator runs it ------------------------------------------------

def test_check_mode_reports_the_plan_and_changes_nothing(host, tmp_path, converged_password):
    before = (env_file(host), stored_verifier(host), main_pid(host))
    with open(VAULT_FILE, "rb") as handle:
        vault_before = handle.read()
    rc, output = playbook(tmp_path, RUN, "--check")
    assert rc == 0, output
    assert "Would set a new password for role 'bmi_app' at the local socket:5432" in output
    assert "Would set DATABASE_PASSWORD in /etc/bmi-backend/env (1 assignment), keeping mode 0640" in output
    assert "Would systemctl restart bmi-backend.service" in output
    assert "Would store the new password in vault file {0} and store command `sh -c".format(VAULT_FILE) in output
    assert "'outcome': 'planned'" in output or '"outcome": "planned"' in output
    assert (env_file(host), stored_verifier(host), main_pid(host)) == before
    with open(VAULT_FILE, "rb") as handle:
        assert handle.read() == vault_before
    assert_no_password(output, converged_password)


def use_database_url(host, password):
    """Make bmi-backend read DATABASE_URL (with `password`, which must be current) and restart it."""
    url = "postgresql://bmi_app:{0}@127.0.0.1:5432/bmidb?application_name=bmi-backend".format(
        urllib.parse.quote(password, safe=""))
    text = env_file(host)
    lines = [line for line in text.splitlines() if not line.startswith("DATABASE_URL=")]
    lines.append('DATABASE_URL="{0}"'.format(url))
    host.run_expect([0], "printf '%%s\\n' %s > %s", "\n".join(lines), ENV_FILE)
    host.run_expect([0], "systemctl restart bmi-backend")
    host.run_expect([0], "python3 -c %s", "import time, urllib.request\nfor _ in range(50):\n    try:\n"
                                          "        urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=2)\n"
                                          "        break\n    except Exception:\n        time.sleep(0.2)\n")


def test_a_url_rotation_leaves_no_password_in_verbose_output(host, tmp_path, converged_password):
    use_database_url(host, converged_password)
    rc, output = playbook(tmp_path, dict(RUN, rotate_db_password_confirm=True,
                                         rotate_db_password_config_key="DATABASE_URL",
                                         rotate_db_password_config_format="url"), "-vvv")
    assert rc == 0, output[-3000:]
    new = vaulted_password()
    assert new != converged_password and stored("rotate") == new
    assert_no_password(output, converged_password, new)
    assert "keep-me-unchanged" not in output          # nor another secret of the file it read
    assert "<{0}> EXEC".format(CONTAINERS[0]) in output or "ESTABLISH" in output   # it really was -vvv
    assert '"outcome": "rotated"' in output or "'outcome': 'rotated'" in output
    assert 'DATABASE_URL="postgresql://bmi_app:{0}@127.0.0.1:5432/bmidb?application_name=bmi-backend"'.format(new) \
        in env_file(host)
    assert env_value(host, "DATABASE_PASSWORD") == converged_password   # another key: untouched
    assert can_log_in(host, new) and not can_log_in(host, converged_password)
    status, body = health(host)
    assert status == 200 and body["dependencies"]["database"]["status"] == "healthy"


def test_a_rotation_the_application_does_not_follow_is_rolled_back(host, tmp_path):
    """The rotation rewrites DATABASE_PASSWORD, but bmi-backend reads DATABASE_URL: it cannot log in, so all is undone."""
    current = vaulted_password()
    text = env_file(host)
    lines = [line if not line.startswith("DATABASE_PASSWORD=") else "DATABASE_PASSWORD='{0}'".format(current)
             for line in text.splitlines()]
    host.run_expect([0], "printf '%%s\\n' %s > %s", "\n".join(lines), ENV_FILE)
    use_database_url(host, current)
    file_before = env_file(host)
    rc, output = playbook(tmp_path, dict(RUN, rotate_db_password_confirm=True), "-vvv")
    assert rc != 0
    attempted = stored("rotate")
    assert attempted != current and len(attempted) == 32
    assert_no_password(output, current, attempted)
    assert "The rotation of role bmi_app's password failed and was rolled back: Restart API service failed on" \
        in output, output[-3000:]
    assert "dependencies.database.status is 'unhealthy'" in output
    assert "'outcome': 'rolled back'" in output or '"outcome": "rolled back"' in output
    assert can_log_in(host, current) and not can_log_in(host, attempted)
    assert env_file(host) == file_before
    assert (host.file(ENV_FILE).mode, host.file(ENV_FILE).group) == (0o640, "bmi")
    assert vaulted_password() == current
    assert stored("rollback") == current
    status, body = health(host)
    assert status == 200 and body["dependencies"]["database"]["status"] == "healthy"
