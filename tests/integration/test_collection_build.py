"""The built collection installs into a clean directory and its playbooks run by FQCN."""
import json
import os
import subprocess
import tarfile

from conftest import ROOT, local_entries, playbook_vars

VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def clean_env(collections):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    return env


def test_built_tarball_installs_and_runs_backup_by_fqcn(options, tmp_path):
    out = tmp_path / "dist"
    collections = tmp_path / "collections"
    env = clean_env(str(collections))
    subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", ROOT, "--output-path", str(out)],
                   cwd=str(tmp_path), env=env, check=True, capture_output=True)
    tarball = next(out.glob("ops-runbook-*.tar.gz"))
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
    assert "plugins/modules/pg_backup.py" in names and "playbooks/backup.yml" in names
    assert not [n for n in names if n.startswith((".venv", ".build", "tests/harness", "bench", ".demo"))]

    subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", str(tarball),
                    "-p", str(collections)], cwd=str(tmp_path), env=env, check=True, capture_output=True)
    installed = collections / "ansible_collections" / "ops" / "runbook"
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(playbook_vars(options)))
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "ops.runbook.backup",
                          "-i", str(installed / "inventories" / "local" / "hosts.yml"), "-e", "@" + str(extra)],
                         cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Backed up database bmidb" in run.stdout
    assert len(local_entries(options["backup_dir"])) == 1
