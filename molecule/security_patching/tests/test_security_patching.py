"""The hosts after converge, then the role and the playbook run again as an operator would.

Converge installed the security updates with reboots not allowed;
idempotence proved a second run changes nothing. Here: what changed (and what
did not), the reboot that was refused, the unattended-upgrades configuration as
unattended-upgrade itself reads it, then a reboot once allowed, every update,
the playbook's input checks, its check mode, and a two-host rollout that stops
at the host whose service is not healthy after patching.
"""
import json
import os
import subprocess
import sys

import pytest
import testinfra
import testinfra.utils.ansible_runner
import yaml

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
INVENTORY = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
CONTAINERS = INVENTORY.get_hosts("all")
UNATTENDED = INVENTORY.get_hosts("unattended")
testinfra_hosts = ["podman://" + name for name in CONTAINERS]

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
SCENARIO = os.path.join(PROJECT, "molecule", "security_patching")


def podman(name):
    return testinfra.get_host("podman://" + name)


def version(host, package):
    return host.check_output("dpkg-query -W -f '${Version}' %s", package)


def boot(host):
    """PID 1's start time: a new value means systemd started again (the container rebooted)."""
    return host.check_output("cut -d' ' -f22 /proc/1/stat")


def health(host):
    return json.loads(host.check_output("python3 -c %s", "import urllib.request; print(urllib.request.urlopen("
                                        "'http://127.0.0.1:8081/health', timeout=5).read().decode())"))


def alias(container, **variables):
    return dict({"ansible_connection": "containers.podman.podman", "ansible_host": container}, **variables)


def run_playbook(path, inventory, tmp_path, *args, structured=False):
    """ansible-playbook against the scenario's containers; with `structured`, its results as the json callback gives them."""
    inventory_file = tmp_path / "inventory.yml"
    inventory_file.write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".build", "collections"),
               CONTAINERS_CONF=os.path.join(PROJECT, "molecule", "containers.conf"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)  # an operator's extra callbacks would print into the json
    if structured:
        env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_SHOW_CUSTOM_STATS="1")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory_file), path]
    return subprocess.run(command + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if structured else subprocess.STDOUT, text=True, timeout=600,
                          check=False)


def task_results(output, task_name):
    """{host: result} of every run of the task named `task_name` in the json callback's output."""
    found = {}
    for play in json.loads(output)["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == task_name:
                found.update(task["hosts"])
    return found


def patch(container, tmp_path, **variables):
    """Run the role on one host through patch.yml (unattended-upgrades left as converge set it); its results."""
    variables.update(patch_result_dir=str(tmp_path), security_patching_unattended_upgrades="unmanaged")
    inventory = {"all": {"hosts": {container: alias(container)}}}
    result = run_playbook(os.path.join(SCENARIO, "patch.yml"), inventory, tmp_path, "-e", json.dumps(variables))
    assert result.returncode == 0, result.stdout
    with open(os.path.join(str(tmp_path), container + ".json")) as handle:
        return json.load(handle), result.stdout


def kept(prefix, container):
    with open(os.path.join(EPHEMERAL, "{0}-{1}.json".format(prefix, container))) as handle:
        return json.load(handle)


def names(items):
    return [(item["name"], item.get("old"), item.get("new")) for item in items]


# -- after converge ------------------------------------------------------------------

def test_only_the_security_update_was_installed(host):
    assert version(host, "ops-demo-app") == "1.1"
    assert version(host, "ops-demo-tool") == "1.0"      # pending, but not a security update
    assert version(host, "ops-demo-pinned") == "1.0"    # a security update, but excluded
    assert health(host) == {"status": "healthy", "version": "1.1"}


@pytest.mark.parametrize("container", CONTAINERS)
def test_the_result_lists_each_package_old_to_new(container):
    patched = kept("patched", container)
    assert patched["upgraded"] == [{"name": "ops-demo-app", "arch": "all", "old": "1.0", "new": "1.1",
                                    "security": True, "requested": True}]
    assert patched["installed"] == [] and patched["removed"] == []


@pytest.mark.parametrize("container", CONTAINERS)
def test_the_required_reboot_was_refused_without_the_opt_in(container):
    host = podman(container)
    reboot = kept("patched", container)["reboot"]
    assert reboot["required"] is True and reboot["allowed"] is False and reboot["action"] == "not_allowed"
    assert reboot["packages"] == ["ops-demo-app"]
    assert reboot["message"].startswith("A reboot is required (/var/run/reboot-required exists) but not allowed")
    assert host.file("/var/run/reboot-required").exists
    assert boot(host) == host.file("/var/tmp/boot-at-prepare").content_string.strip()


def test_unattended_upgrades_takes_the_security_origin_only():
    host = podman(UNATTENDED[0])
    config = host.check_output("apt-config dump Unattended-Upgrade")
    assert 'Unattended-Upgrade::Origins-Pattern:: "origin=OpsTest,label=OpsTest-Security";' in config
    assert "Debian-Security" not in config                      # the package's own list was cleared
    assert 'Unattended-Upgrade::Package-Blacklist:: "ops\\-demo\\-pinned$";' in config
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config
    assert 'APT::Periodic::Unattended-Upgrade "1";' in host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    # Pending now: ops-demo-tool 2.0 (not from the security origin) and ops-demo-pinned 1.1 (excluded).
    dry_run = host.run("unattended-upgrade --dry-run --debug")
    assert dry_run.rc == 0, dry_run.stderr
    output = dry_run.stdout + dry_run.stderr
    assert "Allowed origins are: origin=OpsTest,label=OpsTest-Security" in output
    assert "No packages found that can be upgraded unattended" in output
    assert "Packages that will be upgraded" not in output


def test_the_unattended_upgrade_timer_runs_on_the_chosen_schedule():
    host = podman(UNATTENDED[0])
    assert host.check_output("systemctl is-enabled apt-daily-upgrade.timer") == "enabled"
    calendar = host.check_output("systemctl show -p TimersCalendar --value apt-daily-upgrade.timer")
    assert "Sun *-*-* 03:00:00" in calendar and "06:00" not in calendar


# -- the role again, as an operator runs it ---------------------------------------------

def test_with_the_opt_in_the_host_really_reboots_and_its_services_are_verified(tmp_path):
    """Every update this time (scope all), and the reboot converge was not allowed to do."""
    container = CONTAINERS[0]
    host = podman(container)
    before = boot(host)
    ran, output = patch(container, tmp_path, security_patching_reboot_allowed=True, security_patching_scope="all")
    assert names(ran["result"]["upgraded"]) == [("ops-demo-tool", "1.0", "2.0")]
    assert ran["result"]["upgraded"][0]["security"] is False
    assert names(ran["result"]["not_selected"]) == [("ops-demo-pinned", "1.0", "1.1")]
    assert ran["result"]["not_selected"][0]["reason"] == "excluded"
    assert version(host, "ops-demo-tool") == "2.0" and version(host, "ops-demo-pinned") == "1.0"
    assert ran["result"]["reboot"]["action"] == "reboot"
    assert ran["reboot"]["rebooted"] is True and ran["reboot"]["changed"] is True
    assert boot(host) != before
    assert host.file("/var/tmp/boot-at-prepare").exists         # the same host, started again
    assert not host.file("/var/run/reboot-required").exists
    verified = ran["verified"]["results"][0]
    assert verified["state"] == "verified" and verified["status"] == "pass", verified["msg"]
    assert [check["name"] for check in verified["checks"]] == ["active", "stable", "port", "health"]
    assert ran["summary"]["rebooted"] is True and ran["summary"]["reboot"] == "reboot"
    assert host.service("ops-demo-app").is_running
    assert health(host)["version"] == "1.1"
    assert "but not allowed" not in output


# -- the playbook: a rollout through two hosts ------------------------------------------

def publish_broken_build():
    """ops-demo-app 1.2, a security update whose /health answers 503, in both hosts' security repository."""
    for container in CONTAINERS:
        podman(container).run_expect([0], "cp /srv/pool/ops-demo-app_1.2_all.deb /srv/repo-security/ && "
                                          "ops-demo-repo publish")


def rollout_inventory(**variables):
    """web1 and web2, in this order, on the two containers, with the scenario's settings."""
    with open(os.path.join(SCENARIO, "vars", "patching.yml")) as handle:
        settings = yaml.safe_load(handle)
    settings.update(security_patching_unattended_upgrades="unmanaged", **variables)
    return {"all": {"hosts": {"web1": alias(CONTAINERS[0], **settings), "web2": alias(CONTAINERS[1], **settings)}}}


def test_the_playbook_refuses_bad_inputs_and_a_failed_backup_before_touching_a_host(tmp_path):
    playbook = os.path.join(PROJECT, "playbooks", "security_patching.yml")
    inventory = rollout_inventory()
    del inventory["all"]["hosts"]["web2"]["security_patching_services"]
    result = run_playbook(playbook, inventory, tmp_path)
    assert result.returncode != 0
    assert "missing required arguments: security_patching_services" in result.stdout
    assert "PLAY [Apply the security updates" not in result.stdout
    # Both are database hosts: web1 a standby whose backups are off, web2 one whose backup fails (it has no
    # PostgreSQL). No host is patched.
    inventory = rollout_inventory()
    inventory["all"]["children"] = {"db_servers": {"hosts": {"web1": {"pg_backup_enabled": False},
                                                             "web2": {"pg_backup_databases": ["bmidb"]}}}}
    result = run_playbook(playbook, inventory, tmp_path)
    assert result.returncode != 0
    assert "pg_dump is not installed on this host" in result.stdout, result.stdout[-4000:]
    assert "The database backup failed on web2 (see" in result.stdout and "so no host is patched" in result.stdout
    assert "PLAY [Apply the security updates" not in result.stdout
    result = run_playbook(playbook, rollout_inventory(), tmp_path, "-e", "security_patching_scope=everything")
    assert result.returncode != 0
    assert "value of security_patching_scope must be one of: security, all, got: everything" in result.stdout
    assert "PLAY [Apply the security updates" not in result.stdout
    result = run_playbook(playbook, rollout_inventory(), tmp_path, "-e", "security_patching_serial=0")
    assert result.returncode != 0
    assert "security_patching_serial must be a number of hosts" in result.stdout
    assert "PLAY [Apply the security updates" not in result.stdout


def test_the_playbook_in_check_mode_lists_the_upgrades_and_the_reboot_but_changes_nothing(tmp_path):
    publish_broken_build()
    first, second = podman(CONTAINERS[0]), podman(CONTAINERS[1])
    boots = [boot(first), boot(second)]
    inventory = rollout_inventory()
    inventory["all"]["hosts"]["web1"]["security_patching_reboot_allowed"] = True
    result = run_playbook(os.path.join(PROJECT, "playbooks", "security_patching.yml"), inventory, tmp_path, "--check",
                          "-e", "security_patching_serial=2", structured=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    plans = task_results(result.stdout, "Install the security updates")
    for name in ("web1", "web2"):
        assert names(plans[name]["planned"]) == [("ops-demo-app", "1.1", "1.2")], plans[name]["msg"]
        assert plans[name]["planned"][0]["security"] is True
        assert plans[name]["upgraded"] == []
        assert ("ops-demo-pinned", "excluded") in [(item["name"], item["reason"]) for item in plans[name]["not_selected"]]
        assert plans[name]["msg"].startswith("Would upgrade 1 package (security updates only): ops-demo-app 1.1 -> 1.2")
    # web2 still has the reboot converge was not allowed to do; web1 rebooted since, but ops-demo-app asks for one.
    assert plans["web1"]["reboot"]["expected"] is True and plans["web1"]["reboot"]["action"] == "reboot"
    assert "A reboot would follow (the upgrade of ops-demo-app normally asks for one); reboots are allowed" \
        in plans["web1"]["msg"]
    assert plans["web2"]["reboot"]["required"] is True and plans["web2"]["reboot"]["action"] == "not_allowed"
    assert [warning for warning in plans["web2"]["warnings"] if "but is not allowed" in warning]
    assert ("ops-demo-tool", "not a security update") in [
        (item["name"], item["reason"]) for item in plans["web2"]["not_selected"]]
    stats = json.loads(result.stdout)["global_custom_stats"]["security_patching"]
    assert names(stats["web1"]["planned"]) == [("ops-demo-app", "1.1", "1.2")] and stats["web1"]["rebooted"] is False
    for host, before in zip((first, second), boots):
        assert version(host, "ops-demo-app") == "1.1"
        assert boot(host) == before


def test_the_rollout_stops_at_the_first_host_whose_service_is_not_healthy(tmp_path):
    playbook = os.path.join(PROJECT, "playbooks", "security_patching.yml")
    # The broken build answers 503 for good: a short verification timeout keeps the scenario quick.
    result = run_playbook(playbook, rollout_inventory(security_patching_reboot_allowed=True,
                                                      security_patching_service_timeout=6), tmp_path)
    assert result.returncode != 0
    rollout = result.stdout.split("PLAY [Apply the security updates one batch of hosts at a time]", 1)[1]
    assert "ops-demo-app.service was checked but is not healthy" in rollout
    assert "answered HTTP 503" in rollout
    assert "[web2]" not in rollout, rollout
    first, second = podman(CONTAINERS[0]), podman(CONTAINERS[1])
    assert version(first, "ops-demo-app") == "1.2"
    assert version(second, "ops-demo-app") == "1.1"            # never patched
    assert health(second) == {"status": "healthy", "version": "1.1"}
