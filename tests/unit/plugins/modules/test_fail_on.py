"""Every check module takes the same `fail_on`, documented once, through the one module runner."""
import ast
import glob
import importlib
import os

import pytest
import yaml
from ansible.module_utils import basic

from ansible_collections.ops.runbook.plugins.doc_fragments.checks import ModuleDocFragment
from ansible_collections.ops.runbook.plugins.module_utils import _module

MODULES_DIR = os.path.join(os.path.dirname(_module.__file__), "..", "modules")
CHECK_MODULES = ["cert_check", "container_health", "deploy_health", "health_report", "host_health", "http_health", "log_report",
                 "pg_health", "pgbackrest_health", "redis_health", "s3_backup_verify"]
# Modules whose result carries health checks that prove an action, not a report: the task fails when the
# action did not succeed, whatever a fail_on would say.
ACTION_MODULES = {"service_restart": "its checks prove the restart; a service not proven up fails the task",
                  "pg_pitr": "its checks prove the recovered cluster; a drill or recovery not proven fails the task"}
CHOICES = ["never", "warn", "fail"]


def all_modules():
    return sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(MODULES_DIR, "*.py"))
                  if not os.path.basename(path).startswith("_"))


def documents(name):
    """DOCUMENTATION and RETURN of a module, read from its source."""
    with open(os.path.join(MODULES_DIR, name + ".py")) as handle:
        tree = ast.parse(handle.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("DOCUMENTATION", "RETURN"):
            found[node.targets[0].id] = yaml.safe_load(node.value.value) or {}
    return found["DOCUMENTATION"], found["RETURN"]


class _Built(Exception):
    """Raised instead of building the AnsibleModule: the spec the module would run with."""


def effective_spec(name, monkeypatch):
    """The argument spec the module's main() gives AnsibleModule, shared specs included."""

    def capture(argument_spec, **_options):
        raise _Built(argument_spec)

    monkeypatch.setattr(basic, "AnsibleModule", capture)
    module = importlib.import_module("ansible_collections.ops.runbook.plugins.modules." + name)
    with pytest.raises(_Built) as built:
        module.main()
    return built.value.args[0]


def test_the_check_modules_are_every_module_that_returns_checks():
    returning = [name for name in all_modules()
                 if "status" in documents(name)[1] and ({"checks", "counts"} & set(documents(name)[1]))]
    assert sorted(set(returning) - set(ACTION_MODULES)) == CHECK_MODULES


@pytest.mark.parametrize("name", CHECK_MODULES)
def test_every_check_module_takes_the_same_fail_on(name, monkeypatch):
    option = effective_spec(name, monkeypatch)["fail_on"]
    assert option == {"type": "str", "choices": CHOICES, "default": "fail"}


@pytest.mark.parametrize("name", CHECK_MODULES)
def test_fail_on_is_documented_once_in_the_checks_fragment(name):
    documentation, _returned = documents(name)
    assert "ops.runbook.checks" in documentation["extends_documentation_fragment"]
    assert "fail_on" not in documentation["options"]


def test_the_fragment_documents_the_runners_option():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["fail_on"]
    spec = _module.checks_argument_spec()["fail_on"]
    assert (documented["type"], documented["choices"], documented["default"]) == (
        spec["type"], spec["choices"], spec["default"]) == ("str", CHOICES, "fail")


@pytest.mark.parametrize("name", sorted(set(all_modules()) - set(CHECK_MODULES)))
def test_other_modules_take_no_fail_on(name, monkeypatch):
    assert "fail_on" not in effective_spec(name, monkeypatch)


@pytest.mark.parametrize("name", all_modules())
def test_no_module_keeps_another_name_for_it(name, monkeypatch):
    assert not {"report_only", "fail_on_error"} & set(effective_spec(name, monkeypatch))


@pytest.mark.parametrize("status, fail_on, fails", [
    ("pass", "warn", False), ("warn", "warn", True), ("fail", "warn", True),
    ("pass", "fail", False), ("warn", "fail", False), ("fail", "fail", True),
    ("fail", "never", False), ("warn", "never", False),
])
def test_fail_on_decides_from_the_worst_status(status, fail_on, fails):
    assert _module.fails_on(status, fail_on) is fails
