"""The application host after converge (A, B, C rolled back, D refused, rollback to A, C with a failed
rollback to a broken A, E), and the playbooks in
check mode as an operator would run them: each prints its plan and changes nothing."""
import json
import os
import subprocess
import sys

import testinfra.utils.ansible_runner

# testinfra's own podman backend: much faster than one ansible run per command.
CONTAINERS = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
testinfra_hosts = ["podman://" + name for name in CONTAINERS]

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
RECORDS = "/var/lib/ops-runbook/deploys/shop"


def releases(host):
    return sorted(host.check_output("ls /srv/shop/releases").split())


def records(host):
    names = sorted(host.check_output("ls %s", RECORDS).split(), reverse=True)
    return [json.loads(host.file(os.path.join(RECORDS, name)).content_string) for name in names]


def through_nginx(host, path):
    script = ("import urllib.request\n"
              "r = urllib.request.urlopen('http://127.0.0.1:8080{0}', timeout=5)\n"
              "print(r.headers['X-Release'], r.read().decode())\n").format(path)
    header, body = host.check_output("python3 -c %s", script).split(" ", 1)
    return header, json.loads(body)


def test_e_is_live_through_nginx_with_its_snippet_and_the_shared_env(host):
    header, body = through_nginx(host, "/version")
    assert header == "E" and body == {"release": "E", "env": "SHOP_ENV=production"}
    assert host.file("/srv/shop/current").is_symlink
    assert host.file("/srv/shop/current").linked_to.endswith("-E")
    assert host.service("shop").is_running


def test_the_releases_directory_keeps_two_the_current_and_the_rollback_target(host):
    kept = releases(host)
    assert [name.rsplit("-", 1)[1] for name in kept] == ["A", "E"]
    built = host.file("/srv/shop/releases/{0}/BUILD".format(kept[1]))
    assert built.content_string == "built\n"
    # The build commands ran as deploy_build_user, on a release it owns; the shared .env stays root's.
    assert host.file("/srv/shop/releases/{0}/BUILT_BY".format(kept[1])).content_string == "shopbuild\n"
    assert built.user == "shopbuild" and host.file("/srv/shop/releases/{0}".format(kept[1])).user == "shopbuild"
    assert host.file("/srv/shop/shared/.env").user == "root"
    assert host.file("/srv/shop/releases/{0}/.env".format(kept[1])).linked_to == "/srv/shop/shared/.env"
    assert not host.file("/srv/shop/incoming").exists


def test_every_run_left_its_record(host):
    found = records(host)
    summary = [(r["outcome"], r["to"]["operation"], (r["to"]["release"] or "").rsplit("-", 1)[-1]) for r in found]
    assert summary == [("deployed", "deploy", "E"), ("rollback_failed", "deploy", "C"), ("deployed", "rollback", "A"),
                       ("failed", "deploy", "D"), ("rolled_back", "deploy", "C"), ("deployed", "deploy", "B"),
                       ("deployed", "deploy", "A")]
    rollback_failed = found[1]
    assert rollback_failed["from"]["release"].endswith("-A")
    assert [g["name"] for g in rollback_failed["gates"] if g["status"] == "fail"] == ["restart"]
    assert "back failed too" in rollback_failed["message"] and "503" in rollback_failed["message"]
    rolled_back = found[4]
    assert rolled_back["from"]["release"].endswith("-B")
    failed_gate = [g for g in rolled_back["gates"] if g["status"] == "fail"]
    assert failed_gate[0]["name"] == "restart" and "503" in failed_gate[0]["message"]
    assert "is live again and healthy" in rolled_back["message"]
    assert [g["name"] for g in found[3]["gates"]] == ["nginx -t"] and "removed" in found[3]["message"]
    assert all(r["finished"] for r in found)


def playbook(name, *args):
    inventory = {"all": {"hosts": {container: {"ansible_connection": "containers.podman.podman"}
                                   for container in CONTAINERS}}}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".build", "collections"),
               CONTAINERS_CONF=os.path.join(PROJECT, "molecule", "containers.conf"), ANSIBLE_NOCOLOR="1")
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "check-inventory.json")
    with open(path, "w") as handle:
        json.dump(inventory, handle)
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", path,
               os.path.join(PROJECT, "playbooks", name), "-e", "deploy_hosts=all", "-e", "deploy_application=shop",
               "-e", "deploy_app_root=/srv/shop", "-e", "deploy_service=shop"] + list(args)
    return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300, check=False)


def test_check_mode_prints_the_plans_and_changes_nothing(host):
    before = (releases(host), len(records(host)), host.file("/srv/shop/current").linked_to)
    deploy = playbook("deploy.yml", "--check", "-e", "deploy_archive=https://example.invalid/shop-F.tar.gz",
                      "-e", "deploy_release=F")
    assert deploy.returncode == 0, deploy.stdout
    assert "-> " in deploy.stdout and "-F from archive https://example.invalid/shop-F.tar.gz" in deploy.stdout
    rollback = playbook("rollback.yml", "--check")
    assert rollback.returncode == 0, rollback.stdout
    assert "Roll shop back" in rollback.stdout and "-A" in rollback.stdout
    assert (releases(host), len(records(host)), host.file("/srv/shop/current").linked_to) == before
