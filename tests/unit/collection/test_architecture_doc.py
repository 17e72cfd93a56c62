"""docs/architecture.md tells the truth about the tree: what it names exists, and nothing a reader looks for is missing.

Paths count when written in backticks from the repository root (`plugins/modules/pg_backup.py`, `roles/swap/`);
a glob (`plugins/module_utils/*.py`) must match something.
"""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOC = os.path.join(ROOT, "docs", "architecture.md")
# What must be in the file map: every module, engine, role, playbook and script.
REQUIRED = ["plugins/modules/*.py", "plugins/module_utils/*.py", "roles/*/", "playbooks/*.yml", "scripts/*"]


def code_spans():
    with open(DOC) as handle:
        text = handle.read()
    # Fenced blocks show file layouts on hosts and in S3, not paths of this repository.
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return set(re.findall(r"`([^`\n]+)`", text))


def top_level():
    return {entry for entry in os.listdir(ROOT) if not entry.startswith(".")}


def looks_like_repo_path(span):
    if re.search(r"[\s<>{}()\[\]=,'\"]", span) or span.startswith("/"):
        return False
    return span.split("/", 1)[0] in top_level() and ("/" in span or "." in span)


def mentioned():
    return {span.rstrip("/") for span in code_spans() if looks_like_repo_path(span)}


def test_every_repo_path_the_doc_names_exists():
    missing = sorted(span for span in mentioned() if not glob.glob(os.path.join(ROOT, span)))
    assert not missing, "docs/architecture.md names paths that do not exist: {0}".format(missing)


def test_the_doc_names_every_module_engine_role_playbook_and_script():
    required = set()
    for pattern in REQUIRED:
        for path in glob.glob(os.path.join(ROOT, pattern)):
            if os.path.basename(path.rstrip(os.sep)) not in ("__init__.py", "__pycache__"):
                required.add(os.path.relpath(path, ROOT).rstrip(os.sep))
    unnamed = sorted(required - mentioned())
    assert not unnamed, "docs/architecture.md's file map lacks: {0}".format(unnamed)


def test_the_check_sees_paths_and_ignores_host_paths():
    assert looks_like_repo_path("plugins/modules/pg_backup.py") and looks_like_repo_path("galaxy.yml")
    assert not looks_like_repo_path("/usr/local/bin/ops-runbook-pg-backup")
    assert not looks_like_repo_path("<database>/<backup_id>/manifest.json")
    assert not looks_like_repo_path("pg_backup.py")
