"""Every role's README is what scripts/role-readmes renders from its argument spec today, so the two never drift."""
import os
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, "scripts", "role-readmes")


def load_script():
    # The script has no .py suffix (it is a command), so it is loaded by its path.
    loader = SourceFileLoader("role_readmes", SCRIPT)
    module = module_from_spec(spec_from_loader("role_readmes", loader))
    loader.exec_module(module)
    return module


ROLE_READMES = load_script()


@pytest.mark.parametrize("role", ROLE_READMES.roles_with_specs())
def test_role_readme_is_rendered_from_its_argument_spec(role):
    assert ROLE_READMES.current(role) == ROLE_READMES.render(role), (
        "roles/{0}/README.md is not what its meta/argument_specs.yml renders; run scripts/role-readmes".format(role))


def test_every_role_has_an_argument_spec():
    roles = sorted(entry for entry in os.listdir(os.path.join(ROOT, "roles"))
                   if os.path.isdir(os.path.join(ROOT, "roles", entry)))
    assert roles and roles == ROLE_READMES.roles_with_specs()


def test_markup_becomes_markdown():
    paragraphs = ROLE_READMES.paragraphs
    assert paragraphs("C(a|b) O(ops.runbook.host_health#module:services) O(x=1) M(ops.runbook.swapfile)") == [
        "`a|b` `services` `x=1` `ops.runbook.swapfile`"]
    assert paragraphs(["I(one)  B(two)", "L(docs,https://example.org) U(https://example.org)"]) == [
        "*one* **two**", "[docs](https://example.org) <https://example.org>"]
    assert ROLE_READMES.cell(ROLE_READMES.code("a|b")) == "`a\\|b`"


def test_example_names_the_variables_an_entry_point_requires():
    spec = {"short_description": "Do a thing", "options": {
        "thing_name": {"type": "str", "required": True, "description": "The thing."},
        "thing_size": {"type": "int", "default": 1, "description": "Its size."}}}
    assert ROLE_READMES.example("ops.runbook.thing", "check", spec) == [
        "```yaml", "---",
        "- name: Do a thing", "  hosts: all", "  become: true", "  tasks:", "    - name: Do a thing",
        "      ansible.builtin.include_role:", "        name: ops.runbook.thing", "        tasks_from: check",
        "      vars:", "        thing_name:  # required, str",
        "```"]
    rows = ROLE_READMES.option_rows(spec["options"])
    assert rows == ["| `thing_name` | str | required |  | The thing. |", "| `thing_size` | int | `1` |  | Its size. |"]
