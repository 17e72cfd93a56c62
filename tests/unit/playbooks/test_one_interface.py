"""Each procedure has one interface: a variable's name, type and default live in one role argument spec.

A playbook that restates a role's option with its own `| default(...)` gives the option a second
default that drifts (backup.yml once defaulted globals to false where the pg_backup role said true);
a role default that differs from its argument spec documents one value and runs another. These
tests read the roles' meta/argument_specs.yml and fail on either, and on a variable declared by two
roles (one name, one place).
"""
import glob
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(os.path.basename(path) for path in glob.glob(os.path.join(ROOT, "roles", "*"))
               if os.path.isdir(path))
PLAYBOOK_FILES = sorted(glob.glob(os.path.join(ROOT, "playbooks", "**", "*.yml"), recursive=True))
PLAYBOOKS = sorted(glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
DEFAULTED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\|\s*default\(")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def role_specs(role):
    path = os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")
    return (load(path) or {}).get("argument_specs", {}) if os.path.exists(path) else {}


def role_options(role):
    """Every option of every entry point of the role: name -> spec (entry points may share one)."""
    options = {}
    for entry in role_specs(role).values():
        for name, spec in (entry.get("options") or {}).items():
            options.setdefault(name, spec)
    return options


def role_defaults(role):
    found = {}
    for path in [os.path.join(ROOT, "roles", role, "defaults", "main.yml")] + sorted(
            glob.glob(os.path.join(ROOT, "roles", role, "defaults", "main", "*.yml"))):
        if os.path.exists(path):
            found.update(load(path) or {})
    return found


DECLARED = {name: role for role in ROLES for name in role_options(role)}


def rel(path):
    return os.path.relpath(path, ROOT)


def test_every_role_has_an_argument_spec():
    assert [role for role in ROLES if not role_specs(role)] == []


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_are_the_argument_spec_defaults(role):
    options, defaults = role_options(role), role_defaults(role)
    undeclared = sorted(set(defaults) - set(options))
    assert not undeclared, "roles/{}/defaults sets {} that meta/argument_specs.yml does not declare".format(
        role, ", ".join(undeclared))
    for name, spec in options.items():
        if "default" in spec:
            assert name in defaults, "{}: {} has a default in the argument spec but not in defaults/".format(role, name)
            assert defaults[name] == spec["default"], \
                "{}: {} defaults to {!r} in defaults/ and to {!r} in the argument spec".format(
                    role, name, defaults[name], spec["default"])
        else:
            # A default derived from other variables (a template) cannot be a literal in the spec; the
            # spec's description says how it is derived.
            assert name not in defaults or defaults[name] is None or "{{" in str(defaults[name]), \
                "{}: {} has no default in the argument spec but {!r} in defaults/".format(role, name, defaults[name])


def test_no_variable_is_declared_by_two_roles():
    seen = {}
    for role in ROLES:
        for name in role_options(role):
            seen.setdefault(name, []).append(role)
    assert {name: roles for name, roles in seen.items() if len(roles) > 1} == {}


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=rel)
def test_playbooks_give_no_default_to_a_role_variable(path):
    with open(path) as handle:
        text = handle.read()
    restated = sorted({"{} (declared by role {})".format(name, DECLARED[name])
                       for name in DEFAULTED.findall(text) if name in DECLARED})
    assert not restated, "{} restates the default of {}: call the role's entry point, which has it".format(
        rel(path), ", ".join(restated))


TARGET = re.compile(r"^\s*(hosts|runbook_hosts): ")


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=rel)
def test_playbooks_define_no_defaults_but_their_target(path):
    """A playbook is a list of role entry points: the only default it may hold is the hosts it aims at."""
    with open(path) as handle:
        lines = [(number, line) for number, line in enumerate(handle, 1)
                 if "| default(" in line.replace(" |default(", "| default(") and not TARGET.match(line)]
    assert not lines, "{} defines defaults; move them into the role's argument spec and defaults:\n{}".format(
        rel(path), "".join("  {}: {}".format(number, line) for number, line in lines))


@pytest.mark.parametrize("path", PLAYBOOKS, ids=rel)
def test_playbooks_fail_when_no_host_matches(path):
    """Ansible skips a play whose pattern matches no host and exits 0; every playbook checks first."""
    document = load(path)
    guard, plays = document[0], [play for play in document if "hosts" in play]
    assert guard.get("ansible.builtin.import_playbook") == "plays/require_hosts.yml", \
        "{}: the first entry must import plays/require_hosts.yml".format(rel(path))
    assert guard["vars"]["runbook_hosts"] == plays[0]["hosts"], \
        "{}: the guard checks {!r} but the play targets {!r}".format(rel(path), guard["vars"]["runbook_hosts"],
                                                                     plays[0]["hosts"])
    assert guard["vars"]["runbook_hosts_variable"] in plays[0]["hosts"]
