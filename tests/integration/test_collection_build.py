"""The built collection installs into a clean directory, and its playbooks and modules work by FQCN.

Also the way a newcomer meets it: a fresh clone, the collection built and installed with ansible-galaxy into
the default path (~/.ansible/collections, with HOME in the test's directory), and the README's examples run
from the clone, which has no .build link (scripts/bootstrap was never run).
"""
import glob
import json
import os
import subprocess
import tarfile

import pytest
import yaml
from conftest import ROOT, local_entries, playbook_vars

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOKS = sorted(os.path.basename(p)[:-len(".yml")] for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
MODULES = sorted(os.path.basename(p)[:-len(".py")] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
                 if not p.endswith("__init__.py"))


def clean_env(collections):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The collection built from this checkout and installed into an empty directory."""
    base = tmp_path_factory.mktemp("built")
    out = base / "dist"
    collections = base / "collections"
    env = clean_env(str(collections))
    subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", ROOT, "--output-path", str(out)],
                   cwd=str(base), env=env, check=True, capture_output=True)
    tarball = next(out.glob("ops-runbook-*.tar.gz"))
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
    subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", str(tarball),
                    "-p", str(collections)], cwd=str(base), env=env, check=True, capture_output=True)
    return {"base": base, "env": env, "names": names,
            "path": collections / "ansible_collections" / "ops" / "runbook"}


def test_tarball_holds_the_collection_and_nothing_of_the_workshop(installed):
    names = installed["names"]
    assert "plugins/modules/pg_backup.py" in names and "playbooks/backup.yml" in names
    assert {"playbooks/{}.yml".format(p) for p in PLAYBOOKS} <= set(names)
    assert not [n for n in names if n.startswith((".venv", ".build", "tests/harness", "bench", ".demo",
                                                  "execution-environment/", "molecule"))]


def changelog_files():
    with open(os.path.join(ROOT, "changelogs", "config.yaml")) as handle:
        return [output["file"] for output in yaml.safe_load(handle)["output"]]


def test_tarball_ships_the_release_files_and_leaves_development_files_out(installed):
    """What a user of the installed collection needs is in; galaxy.yml's build_ignore keeps the workshop out."""
    names = set(installed["names"])
    required = {"LICENSE", "README.md", "meta/runtime.yml", "changelogs/changelog.yaml"} | set(changelog_files())
    required |= {os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "*.yml"))}
    required |= {os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, "plugins", "*", "*.py"))
                 + glob.glob(os.path.join(ROOT, "plugins", "*", "*.yml"))}
    assert not sorted(required - names)
    development_dirs = ("tests", "molecule", "bench", "scripts", "execution-environment", "changelogs/fragments")
    development_files = {"ansible.cfg", "pytest.ini", "requirements-test.txt", "changelogs/.plugin-cache.yaml"}
    leaked = [name for name in names
              if name.startswith(".") or name in development_files or name.endswith((".tar.gz", ".pyc"))
              or "__pycache__" in name.split("/") or any(name == d or name.startswith(d + "/") for d in development_dirs)]
    assert not sorted(leaked)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbook_loads_by_fqcn_from_the_installed_collection(installed, playbook):
    """Every module, filter, lookup and role a playbook names resolves from the installed copy alone."""
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "ops.runbook." + playbook, "--syntax-check",
                          "-i", str(installed["path"] / "inventories" / "example" / "hosts.yml")],
                         cwd=str(installed["base"]), env=installed["env"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_every_module_documents_itself_from_the_installed_collection(installed):
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "--json"] + ["ops.runbook." + m for m in MODULES],
                         cwd=str(installed["base"]), env=installed["env"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    docs = json.loads(run.stdout)
    for module in MODULES:
        entry = docs["ops.runbook." + module]
        assert entry["doc"]["short_description"] and entry["examples"] and entry["return"], module


def run_by_fqcn(installed, playbook, extra_vars, tmp_path, *args):
    """ansible-playbook ops.runbook.PLAYBOOK from the installed copy, with the local inventory."""
    extra = tmp_path / "{0}-vars.json".format(playbook)
    extra.write_text(json.dumps(extra_vars))
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "ops.runbook." + playbook,
                          "-i", str(installed["path"] / "inventories" / "local" / "hosts.yml"), "-e", "@" + str(extra)]
                         + list(args), cwd=str(installed["base"]), env=installed["env"], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run.stdout


def test_built_tarball_backs_up_verifies_and_plans_a_restore_by_fqcn(installed, options, tmp_path):
    extra = playbook_vars(options)
    assert "Backed up database bmidb" in run_by_fqcn(installed, "backup", extra, tmp_path)
    assert len(local_entries(options["backup_dir"])) == 1

    run_by_fqcn(installed, "verify_backups", dict(extra, pg_backup_verify_report_dir=str(tmp_path / "reports")), tmp_path)
    report = json.loads((tmp_path / "reports" / "backup-verification-localhost.json").read_text())
    assert report[0]["status"] == "pass" and report[0]["database"] == options["database"]

    backup_id = local_entries(options["backup_dir"])[0]
    extra["pg_restore_database"] = options["database"]
    listing = run_by_fqcn(installed, "restore", dict(extra, pg_restore_list=True), tmp_path)
    assert backup_id + " complete=True" in listing
    plan = run_by_fqcn(installed, "restore", dict(extra, pg_restore_target="fqcn_copy"), tmp_path, "--check")
    assert "Would restore " + backup_id in plan


def test_a_fresh_clone_runs_the_readme_examples_with_the_collection_installed_by_ansible_galaxy(options, tmp_path):
    home, clone = tmp_path / "home", tmp_path / "clone"
    home.mkdir()
    subprocess.run(["git", "clone", "--quiet", ROOT, str(clone)], check=True, capture_output=True)
    assert not (clone / ".build").exists()
    # No ANSIBLE_* variable: the clone's ansible.cfg decides where collections are found, as for a user.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(home), ANSIBLE_NOCOLOR="1", ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote-tmp"),
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])

    def run(*argv, cwd=clone):
        done = subprocess.run(list(argv), cwd=str(cwd), env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, " ".join(argv) + "\n" + done.stdout[-3000:] + done.stderr[-2000:]
        return done.stdout

    run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path / "dist"))
    tarball = next((tmp_path / "dist").glob("ops-runbook-*.tar.gz"))
    # From outside the clone, as from any directory: into the default path under HOME.
    run("ansible-galaxy", "collection", "install", str(tarball), cwd=tmp_path)
    assert (home / ".ansible" / "collections" / "ansible_collections" / "ops" / "runbook" / "MANIFEST.json").is_file()

    assert "login_host" in run("ansible-doc", "ops.runbook.pg_backup")
    extra = tmp_path / "backup-vars.json"
    extra.write_text(json.dumps(playbook_vars(options)))
    assert "Backed up database bmidb" in run("ansible-playbook", "playbooks/backup.yml", "-e", "@" + str(extra))
    assert len(local_entries(options["backup_dir"])) == 1
    assert not (clone / ".build").exists()
