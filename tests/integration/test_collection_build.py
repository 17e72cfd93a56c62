"""The built collection installs into a clean directory, and its playbooks and modules work by FQCN."""
import glob
import json
import os
import subprocess
import tarfile

import pytest
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
