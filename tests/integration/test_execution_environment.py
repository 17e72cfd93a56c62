"""execution-environment.yml builds a valid ansible-builder context with the collection in it."""
import os
import shutil
import subprocess

from conftest import ROOT

VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def test_ansible_builder_creates_the_context_with_every_dependency(tmp_path):
    project = tmp_path / "project"
    dist = project / "execution-environment" / "dist"
    dist.mkdir(parents=True)
    for name in ("execution-environment.yml", "requirements.txt", "bindep.txt"):
        shutil.copy(os.path.join(ROOT, name), str(project / name))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", ROOT, "--output-path", str(dist)],
                   cwd=str(tmp_path), env=env, check=True, capture_output=True)
    context = tmp_path / "context"
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-builder"), "create", "--file",
                          str(project / "execution-environment.yml"), "--context", str(context)],
                         cwd=str(project), env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr

    containerfile = (context / "Containerfile").read_text()
    assert 'EE_BASE_IMAGE="registry.access.redhat.com/ubi9/python-311:latest"' in containerfile
    assert "dnf module enable -y postgresql:16" in containerfile
    # Python 3.11, not UBI 9's /usr/bin/python3 (3.9): every pip, bindep and ansible step runs with it.
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert 'ARG PYPKG="python3.11"' in containerfile
    assert "$PYCMD -m pip install" in containerfile and "/usr/bin/python3 " not in containerfile
    assert "ansible-galaxy collection install /tmp/ops-runbook-collection/ops-runbook-*.tar.gz" in containerfile
    build = context / "_build"
    python_requirements = (build / "requirements.txt").read_text()
    for package in ("boto3", "psycopg2-binary"):
        assert package in python_requirements
    assert "postgresql [platform:rpm]" in (build / "bindep.txt").read_text()
    assert list((build / "collection").glob("ops-runbook-*.tar.gz"))
