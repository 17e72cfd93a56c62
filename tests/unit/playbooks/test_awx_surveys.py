"""The AWX survey specs in awx/surveys/ fit their playbooks and keep dangerous answers opt-in."""
import glob
import json
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SURVEYS = sorted(glob.glob(os.path.join(ROOT, "awx", "surveys", "*.json")))
# Playbooks that delete, replace, restart or reboot: each gets a survey (docs/awx.md).
DESTRUCTIVE = {"restore", "redis_flush", "incident_service_down", "db_maintenance", "security_patching",
               "rotate_db_password", "maintenance_window"}
TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
OPT_IN = re.compile(r"(confirm|overwrite|override|remediate|allow_[a-z_]+|reboot[a-z_]*)$")


def load(path):
    with open(path) as handle:
        return json.load(handle)


ROLE_IMPORT = re.compile(r"ansible\.builtin\.(?:import|include)_role:\s*\n\s+name: ops\.runbook\.(\w+)"
                         r"(?:\s*\n\s+tasks_from: (\w+))?")


def playbook_text(path):
    """The playbook, and the names of the options of the role entry points it imports (the role reads those)."""
    with open(os.path.join(ROOT, "playbooks", os.path.basename(path)[:-len(".json")] + ".yml")) as handle:
        text = handle.read()
    for role, entry in ROLE_IMPORT.findall(text):
        with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
            spec = yaml.safe_load(handle)["argument_specs"].get(entry or "main", {})
        text += "\n" + "\n".join(spec.get("options") or {})
    return text


def role_variables(text):
    """The variables declared by the collection's roles a playbook imports, and by the roles they depend on."""
    names, roles = set(), re.findall(r"name: ops\.runbook\.(\w+)", text)
    while roles:
        role = os.path.join(ROOT, "roles", roles.pop())
        with open(os.path.join(role, "meta", "argument_specs.yml")) as handle:
            for entry in yaml.safe_load(handle)["argument_specs"].values():
                names.update(entry.get("options") or {})
        with open(os.path.join(role, "meta", "main.yml")) as handle:
            roles.extend(dependency["role"].split(".")[-1] for dependency in yaml.safe_load(handle).get("dependencies") or [])
    return names


def test_every_destructive_playbook_has_a_survey():
    names = {os.path.basename(path)[:-len(".json")] for path in SURVEYS}
    assert DESTRUCTIVE <= names


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_survey_is_a_valid_awx_spec_for_its_playbook(path):
    survey = load(path)
    assert survey["name"] and survey["description"]
    text = playbook_text(path)
    declared = role_variables(text)
    variables = [question["variable"] for question in survey["spec"]]
    assert len(variables) == len(set(variables))
    for question in survey["spec"]:
        assert question["question_name"] and question["type"] in TYPES
        assert isinstance(question["required"], bool)
        assert question["variable"] in declared or re.search(r"\b{}\b".format(question["variable"]), text), \
            "{} asks for {}, which the playbook and its roles never read".format(os.path.basename(path),
                                                                                 question["variable"])
        if question["type"] in ("multiplechoice", "multiselect"):
            defaults = str(question.get("default", "")).split("\n")
            assert set(d for d in defaults if d) <= set(question["choices"])


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_dangerous_answers_default_to_no(path):
    for question in load(path)["spec"]:
        if OPT_IN.search(question["variable"]):
            assert question["type"] == "multiplechoice" and question["default"] == "false", question["variable"]
