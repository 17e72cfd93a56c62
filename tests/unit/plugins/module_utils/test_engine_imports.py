"""Every engine file imports only what works in both places it runs.

plugins/module_utils runs in two places: inside a module, packed by Ansiballz
under ansible_collections.ops.runbook.plugins.module_utils, and on managed
hosts as the plain package `ops_runbook_utils` that the runbook_engine role
copies for the scheduled jobs, where neither Ansible nor the collection is
installed. Imports that work in both: the standard library, relative imports
of sibling engine files, and, inside a function only (so that importing the
file never needs them), the optional client libraries and
ansible.module_utils. An absolute `ansible_collections...` import works in a
module and breaks the host's copy.
"""
import ast
import os
import shutil
import subprocess
import sys

import pytest

ENGINE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "module_utils"))
FILES = sorted(name for name in os.listdir(ENGINE) if name.endswith(".py") and name != "__init__.py")
# Imported inside a function, where a missing one becomes a RunbookError naming the package to install.
OPTIONAL_LIBRARIES = ("psycopg2", "boto3", "botocore", "redis", "ansible.module_utils")


def _imports(tree):
    """(node, inside_a_function) of every import statement in the file."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def _is_under(module, packages):
    return any(module == package or module.startswith(package + ".") for package in packages)


def import_problems(name, source):
    """Sentences naming each import of engine file `name` that would fail on a managed host or in Ansiballz."""
    problems = []
    for node, in_function in _imports(ast.parse(source, filename=name)):
        where = "{0}:{1}".format(name, node.lineno)
        if isinstance(node, ast.ImportFrom) and node.level:
            targets = [node.module] if node.module else [alias.name for alias in node.names]
            for target in targets:
                sibling = target.split(".")[0] + ".py"
                if node.level != 1 or sibling not in FILES:
                    problems.append("{0}: relative import of {1!r} names no engine file".format(where, target))
            continue
        modules = [node.module] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
        for module in modules:
            top = module.split(".")[0]
            if module == "__future__" or top in sys.stdlib_module_names:
                continue
            if top == "ansible_collections":
                problems.append("{0}: {1} does not exist on a managed host's copy (import it relatively: "
                                "from .x import y)".format(where, module))
            elif not _is_under(module, OPTIONAL_LIBRARIES):
                problems.append("{0}: {1} is neither the standard library nor an optional client library".format(
                    where, module))
            elif not in_function:
                problems.append("{0}: {1} is imported when the file is, so the file cannot load without it "
                                "(import it inside the function that needs it)".format(where, module))
    return problems


@pytest.mark.parametrize("name", FILES)
def test_engine_file_imports_work_in_a_module_and_on_a_host(name):
    with open(os.path.join(ENGINE, name), encoding="utf-8") as handle:
        assert import_problems(name, handle.read()) == []


@pytest.mark.parametrize("source,problem", [
    ("from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError\n",
     "does not exist on a managed host's copy"),
    ("from ansible.module_utils.basic import env_fallback\n", "is imported when the file is"),
    ("import psycopg2\n", "is imported when the file is"),
    ("def f():\n    import yaml\n", "neither the standard library nor an optional client library"),
    ("from ..plugin_utils import x\n", "names no engine file"),
    ("from .nonexistent import x\n", "names no engine file"),
])
def test_the_import_rules_catch_each_kind_of_breakage(source, problem):
    found = import_problems("example.py", source)
    assert len(found) == 1 and problem in found[0], found


def test_every_engine_file_imports_as_the_hosts_package_without_ansible_or_client_libraries(tmp_path):
    """The copy the runbook_engine role installs, imported by a Python that sees only its standard library."""
    package = tmp_path / "ops_runbook_utils"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in FILES:
        shutil.copy(os.path.join(ENGINE, name), str(package / name))
    probe = (
        "import importlib, sys, traceback\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "for name in sys.argv[2:]:\n"
        "    try:\n"
        "        importlib.import_module('ops_runbook_utils.' + name)\n"
        "    except Exception:\n"
        "        print(name + ': ' + traceback.format_exc().strip().splitlines()[-1])\n"
    )
    # -I ignores PYTHONPATH and the user's site; -S leaves site-packages (Ansible, psycopg2, boto3) out.
    run = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(tmp_path)] + [name[:-3] for name in FILES],
                         capture_output=True, text=True, check=False, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
