"""The disk_cleanup role copies only the engine modules its job imports: keep that list complete."""
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
RELATIVE_IMPORT = re.compile(r"^from \.(\w*) import (.+)$", re.MULTILINE)


def imported_closure(start):
    """Module files `start` needs, following its relative imports (`from .x import`, `from . import x`)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        with open(os.path.join(MODULE_UTILS, name)) as handle:
            source = handle.read()
        for module, names in RELATIVE_IMPORT.findall(source):
            targets = [module] if module else [word.strip() for word in names.split(",")]
            todo.extend(target + ".py" for target in targets)
    return seen


def test_the_role_copies_exactly_what_the_job_imports():
    with open(os.path.join(ROOT, "roles", "disk_cleanup", "vars", "main.yml")) as handle:
        listed = yaml.safe_load(handle)["disk_cleanup_engine_files"]
    assert sorted(listed) == sorted(imported_closure("cleanup_job.py"))
