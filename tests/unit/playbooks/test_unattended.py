"""Every playbook can run unattended as an AWX job template or from cron.

The promises checked here are the collection's own (README, docs/awx.md): no
prompts, no pause without a limit, inputs validated before anything changes,
results published with set_stats for workflows, and play variables that never
hide what an inventory sets for a host.
"""
import glob
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOKS = sorted(glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
VALIDATION = ("ansible.builtin.assert", "ansible.builtin.validate_argument_spec", "ansible.builtin.fail")
# How many leading tasks of a play may come before its input validation
# (e.g. skipping hosts that are disabled, or filling in unset settings).
VALIDATION_WITHIN = 3


def plays(path):
    with open(path) as handle:
        document = yaml.safe_load(handle)
    return [play for play in document if "hosts" in play]


ROLE_IMPORTS = ("ansible.builtin.import_role", "ansible.builtin.include_role")


def role_tasks(task):
    """The tasks of the collection's role a task imports, led by its argument validation when it has one."""
    for key in ROLE_IMPORTS:
        spec = task.get(key)
        if isinstance(spec, dict) and str(spec.get("name", "")).startswith("ops.runbook."):
            role = os.path.join(ROOT, "roles", spec["name"].split(".")[-1])
            entry = spec.get("tasks_from", "main")
            specs_file = os.path.join(role, "meta", "argument_specs.yml")
            if os.path.exists(specs_file):
                with open(specs_file) as handle:
                    if entry in (yaml.safe_load(handle) or {}).get("argument_specs", {}):
                        # Ansible runs this validation before the entry point's first task.
                        yield {"ansible.builtin.validate_argument_spec": {"role": spec["name"], "entry": entry}}
            with open(os.path.join(role, "tasks", entry + ".yml")) as handle:
                yield from tasks(yaml.safe_load(handle))


def tasks(items):
    """Every task, also inside blocks and the collection's roles a task imports, in order."""
    for item in items or []:
        imported = list(role_tasks(item))
        if imported:
            yield from imported
            continue
        yield item
        for key in ("block", "rescue", "always"):
            yield from tasks(item.get(key))


def all_tasks(play):
    for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
        yield from tasks(play.get(section))


def name(path):
    return os.path.basename(path)


def test_there_are_playbooks():
    assert len(PLAYBOOKS) >= 7


@pytest.mark.parametrize("path", PLAYBOOKS, ids=name)
def test_no_prompts_and_no_endless_pauses(path):
    for play in plays(path):
        assert "vars_prompt" not in play, "{}: vars_prompt would wait forever in AWX".format(name(path))
        for task in all_tasks(play):
            pause = task.get("ansible.builtin.pause", task.get("pause"))
            if pause is not None:
                assert isinstance(pause, dict) and ({"seconds", "minutes"} & set(pause)), \
                    "{}: task '{}' pauses without a limit".format(name(path), task.get("name"))


@pytest.mark.parametrize("path", PLAYBOOKS, ids=name)
def test_inputs_are_validated_before_anything_else(path):
    first = plays(path)[0]
    leading = list(tasks(first.get("pre_tasks") or first.get("tasks")))[:VALIDATION_WITHIN]
    assert any(set(task) & set(VALIDATION) for task in leading), \
        "{}: none of its first {} tasks validates the inputs".format(name(path), VALIDATION_WITHIN)


@pytest.mark.parametrize("path", PLAYBOOKS, ids=name)
def test_results_are_published_for_awx_workflows(path):
    assert any("ansible.builtin.set_stats" in task for play in plays(path) for task in all_tasks(play)), \
        "{}: publishes nothing with set_stats".format(name(path))


def literals(value):
    """The values inside `value` that are not templates (derived from other variables)."""
    if isinstance(value, dict):
        return [item for sub in value.values() for item in literals(sub)]
    if isinstance(value, list):
        return [item for sub in value for item in literals(sub)]
    return [] if isinstance(value, str) and "{{" in value else [value]


@pytest.mark.parametrize("path", PLAYBOOKS, ids=name)
def test_play_vars_never_hide_inventory_settings(path):
    """Play vars outrank inventory vars: a literal default there silently replaces a host's setting."""
    for play in plays(path):
        for key, value in (play.get("vars") or {}).items():
            assert not literals(value), \
                "{}: play variable {} = {!r} overrides the inventory; default it where it is used".format(
                    name(path), key, value)
