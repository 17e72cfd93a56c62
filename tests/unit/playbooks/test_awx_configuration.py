"""AWX configuration as code (awx/): what a controller would refuse is refused here, without a controller.

No AWX runs in the test suite. These tests hold awx/ to the rules AWX applies when the configuration is
posted to it, and awx/configure.yml to the awx.awx collection's modules:
- every survey spec of awx/surveys/ by AWX's survey rules (the survey_spec endpoint's validation: question
  types, required keys, unique valid variable names, defaults among the choices, min/max, empty password
  defaults), and every question's variable against the type its playbook's roles declare in argument_specs;
- every schedule's rrule as AWX parses it (python-dateutil, one DTSTART required, FREQ, COUNT limit);
- the job templates: one per playbook, surveys where the file's name says, credential kinds that exist;
- the credential types: injectors refer to their own fields and inject variables the roles read;
- awx/configure.yml passes `ansible-playbook --syntax-check`, and every awx.awx module and option it uses
  exists in the installed collection (`ansible-doc -j`).
"""
import datetime
import glob
import json
import keyword
import os
import re
import subprocess

import pytest
import yaml
from dateutil import rrule as dateutil_rrule

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
AWX = os.path.join(ROOT, "awx")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
SURVEYS = sorted(glob.glob(os.path.join(AWX, "surveys", "*.json")))
TYPES = ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
# Which argument_specs types a survey answer of each kind can fill (multiple choice: a string among the
# choices; "true"/"false" choices fill a bool, which Ansible converts).
COMPATIBLE = {
    "text": {"str", "path", "raw"}, "textarea": {"str", "raw"}, "password": {"str", "raw"},
    "integer": {"int", "raw"}, "float": {"float", "raw"},
    "multiplechoice": {"str", "raw", "bool", "int"}, "multiselect": {"list"},
}


class Loader(yaml.SafeLoader):
    """YAML as Ansible reads awx/: `!unsafe` marks an AWX injector template Ansible must not render."""


Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(name):
    with open(os.path.join(AWX, name)) as handle:
        return yaml.load(handle, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


JOB_TEMPLATES = load_yaml("job_templates.yml")["awx_job_templates"]
SCHEDULES = load_yaml("schedules.yml")["awx_schedules"]
CREDENTIAL_TYPES = load_yaml("credential_types.yml")["awx_credential_types"]


def role_options(playbook):
    """{variable: its option spec} of the collection's roles the playbook imports, and their dependencies."""
    with open(os.path.join(ROOT, "playbooks", playbook)) as handle:
        roles = re.findall(r"name: ops\.runbook\.(\w+)", handle.read())
    options, seen = {}, set()
    while roles:
        role = roles.pop()
        if role in seen:
            continue
        seen.add(role)
        with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
            for entry in yaml.safe_load(handle)["argument_specs"].values():
                for name, spec in (entry.get("options") or {}).items():
                    options.setdefault(name, spec)
        with open(os.path.join(ROOT, "roles", role, "meta", "main.yml")) as handle:
            for dependency in yaml.safe_load(handle).get("dependencies") or []:
                roles.append((dependency["role"] if isinstance(dependency, dict) else dependency).split(".")[-1])
    return options


def choices_of(question):
    choices = question["choices"]
    return [c for c in choices.split("\n") if c] if isinstance(choices, str) else list(choices)


def awx_survey_errors(survey):
    """The reasons AWX's survey_spec endpoint would reject `survey` (empty when it accepts it)."""
    errors = []
    for key in ("name", "description", "spec"):
        if key not in survey:
            errors.append("'{0}' missing from the survey spec".format(key))
    if not isinstance(survey.get("spec"), list) or not survey.get("spec"):
        return errors + ["'spec' must be a non-empty list of questions"]
    seen = set()
    for index, question in enumerate(survey["spec"]):
        where = "question {0} ({1})".format(index, question.get("variable"))
        for key in ("type", "question_name", "variable", "required"):
            if key not in question:
                errors.append("{0}: '{1}' missing".format(where, key))
        kind, variable = question.get("type"), question.get("variable", "")
        if kind not in TYPES:
            errors.append("{0}: type {1!r} is not one of {2}".format(where, kind, ", ".join(TYPES)))
        if not (isinstance(variable, str) and variable.isidentifier() and not keyword.iskeyword(variable)
                and not variable.startswith(("ansible_", "awx_", "tower_"))):
            errors.append("{0}: {1!r} is not a valid variable name".format(where, variable))
        if variable in seen:
            errors.append("{0}: variable {1} duplicated".format(where, variable))
        seen.add(variable)
        if not isinstance(question.get("required"), bool):
            errors.append("{0}: 'required' must be true or false".format(where))
        default = question.get("default")
        for bound in ("min", "max"):
            if bound in question and question[bound] is not None and not isinstance(question[bound], (int, float)):
                errors.append("{0}: '{1}' must be a number".format(where, bound))
        low, high = question.get("min"), question.get("max")
        if low is not None and high is not None and low > high:
            errors.append("{0}: min {1} is above max {2}".format(where, low, high))
        if kind in ("multiplechoice", "multiselect"):
            if not question.get("choices"):
                errors.append("{0}: a {1} question needs choices".format(where, kind))
                continue
            choices = choices_of(question)
            if len(choices) != len(set(choices)):
                errors.append("{0}: duplicated choices".format(where))
            defaults = [] if default in (None, "") else (
                [default] if kind == "multiplechoice" else
                (default if isinstance(default, list) else str(default).split("\n")))
            if kind == "multiplechoice" and "\n" in str(default or ""):
                errors.append("{0}: a multiple choice question has one default".format(where))
            for value in defaults:
                if value and value not in choices:
                    errors.append("{0}: default {1!r} is not among the choices {2}".format(where, value, choices))
        elif kind in ("integer", "float"):
            if default not in (None, ""):
                number = int if kind == "integer" else (int, float)
                if not isinstance(default, number) or isinstance(default, bool):
                    errors.append("{0}: default {1!r} is not an {2}".format(where, default, kind))
                elif (low is not None and default < low) or (high is not None and default > high):
                    errors.append("{0}: default {1} outside {2}..{3}".format(where, default, low, high))
        elif kind in ("text", "textarea", "password"):
            if default is not None and not isinstance(default, str):
                errors.append("{0}: default must be text".format(where))
            elif default and ((low is not None and len(default) < low) or (high is not None and len(default) > high)):
                errors.append("{0}: default's length outside {1}..{2}".format(where, low, high))
            if kind == "password" and default not in (None, ""):
                errors.append("{0}: a password question's default must be empty (AWX would store it)".format(where))
    return errors


def test_the_rules_reject_what_awx_rejects():
    """Not vacuous: each rule above fires on a spec AWX refuses."""
    good = {"question_name": "Q", "variable": "pg_restore_database", "type": "text", "required": True,
            "min": 0, "max": 10, "default": ""}
    bad = [
        dict(good, type="checkbox"), dict(good, variable="2fast"), dict(good, variable="ansible_host"),
        dict(good, required="yes"), dict(good, min=5, max=1), dict(good, default="x" * 11),
        dict(good, type="password", default="hunter2"), dict(good, type="integer", default="3"),
        dict(good, type="integer", min=1, max=5, default=9),
        dict(good, type="multiplechoice", choices=["a", "b"], default="c"),
        dict(good, type="multiselect", choices=["a", "b"], default="a\nc"),
        dict(good, type="multiplechoice", choices=[]),
    ]
    for question in bad:
        assert awx_survey_errors({"name": "n", "description": "d", "spec": [question]}), question
    assert awx_survey_errors({"name": "n", "description": "d", "spec": [good, good]})
    assert awx_survey_errors({"name": "n", "spec": [good]})
    assert not awx_survey_errors({"name": "n", "description": "d", "spec": [good]})


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_survey_passes_awx_survey_rules(path):
    with open(path) as handle:
        survey = json.load(handle)
    assert awx_survey_errors(survey) == []


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_survey_variables_fill_the_roles_arguments_with_their_type(path):
    with open(path) as handle:
        survey = json.load(handle)
    options = role_options(os.path.basename(path)[:-len(".json")] + ".yml")
    for question in survey["spec"]:
        variable, kind = question["variable"], question["type"]
        assert variable in options, "{0} is not an argument of the playbook's roles".format(variable)
        spec = options[variable]
        declared = spec.get("type", "str")
        assert declared in COMPATIBLE[kind], "{0}: a {1} answer for a {2} argument".format(variable, kind, declared)
        if kind == "multiplechoice" and declared == "bool":
            assert set(choices_of(question)) == {"true", "false"}, variable
        allowed = spec.get("choices") or []
        if kind in ("multiplechoice", "multiselect") and allowed and declared != "bool":
            assert set(choices_of(question)) <= set(allowed), "{0}: choices the role refuses".format(variable)


def parse_rrule(rule):
    """The rule as AWX reads it: one DTSTART (with TZID or in UTC), then RRULE lines with a FREQ."""
    starts = re.findall(r"DTSTART[;:]", rule)
    assert len(starts) == 1, "AWX requires exactly one DTSTART: {0}".format(rule)
    assert re.match(r"^DTSTART(;TZID=[\w/+-]+)?:\d{8}T\d{6}Z? ", rule), "DTSTART must come first: " + rule
    assert ";TZID=" in rule or re.match(r"^DTSTART:\d{8}T\d{6}Z ", rule), "a time zone or UTC (Z): " + rule
    rules = re.findall(r"RRULE:(\S+)", rule)
    assert rules, "no RRULE in " + rule
    for line in rules:
        parts = dict(part.split("=", 1) for part in line.split(";"))
        assert parts.get("FREQ") in ("MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"), line
        assert int(parts.get("COUNT", 1)) <= 999, "AWX refuses COUNT above 999: " + line
    return dateutil_rrule.rrulestr(rule.replace(" ", "\n"), forceset=True)


def test_the_rrule_check_rejects_what_awx_rejects():
    for rule in ("RRULE:FREQ=DAILY;INTERVAL=1",
                 "DTSTART;TZID=UTC:20260101T020000 DTSTART;TZID=UTC:20260102T020000 RRULE:FREQ=DAILY",
                 "DTSTART:20260101T020000 RRULE:FREQ=DAILY",
                 "DTSTART;TZID=UTC:20260101T020000 RRULE:FREQ=SECONDLY",
                 "DTSTART;TZID=UTC:20260101T020000 RRULE:FREQ=DAILY;COUNT=1000"):
        with pytest.raises(AssertionError):
            parse_rrule(rule)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda schedule: schedule["name"])
def test_schedule_rrule_parses_and_runs_when_its_description_says(schedule):
    rules = parse_rrule(schedule["rrule"])
    after = datetime.datetime(2026, 12, 6, tzinfo=datetime.timezone.utc)
    upcoming = [rules.after(after)]
    while upcoming[-1] and len(upcoming) < 5:
        upcoming.append(rules.after(upcoming[-1]))
    assert len(upcoming) == 5 and all(upcoming), schedule
    hour = int(re.search(r"T(\d\d)", schedule["rrule"]).group(1))
    assert all(moment.hour == hour for moment in upcoming)
    if "BYDAY=1SU" in schedule["rrule"]:
        assert all(moment.weekday() == 6 and moment.day <= 7 for moment in upcoming)
    names = [template["name"] for template in JOB_TEMPLATES]
    assert schedule["job_template"] in names


def test_one_job_template_per_playbook_with_its_survey():
    playbooks = sorted("playbooks/" + os.path.basename(path) for path in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
    assert len(playbooks) >= 12
    assert sorted(template["playbook"] for template in JOB_TEMPLATES) == playbooks
    names = [template["name"] for template in JOB_TEMPLATES]
    assert len(names) == len(set(names))
    surveys = set(os.path.basename(path) for path in SURVEYS)
    for template in JOB_TEMPLATES:
        expected = os.path.basename(template["playbook"])[:-len(".yml")] + ".json"
        assert template.get("survey") == (expected if expected in surveys else None), template["name"]
    kinds = set(kind["kind"] for kind in CREDENTIAL_TYPES) | {"machine"}
    for template in JOB_TEMPLATES:
        assert set(template["credentials"]) <= kinds, template["name"]
        assert set(template) <= {"name", "playbook", "description", "survey", "credentials", "ask_limit",
                                 "ask_variables", "notify"}, template["name"]


def test_credential_types_inject_their_own_fields_into_variables_the_roles_read():
    declared = set()
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        with open(path) as handle:
            for entry in yaml.safe_load(handle)["argument_specs"].values():
                declared.update(entry.get("options") or {})
    for kind in CREDENTIAL_TYPES:
        fields = [field["id"] for field in kind["inputs"]["fields"]]
        assert set(kind["inputs"]["required"]) <= set(fields), kind["name"]
        assert set(kind["injectors"]) <= {"env", "extra_vars", "file"}, kind["name"]
        for section, values in kind["injectors"].items():
            for name, template in values.items():
                used = re.findall(r"\{\{\s*(\w+)", template)
                assert used and set(used) <= set(fields), (kind["name"], name, template)
                if section == "extra_vars":
                    assert name in declared, "{0} injects {1}, which no role reads".format(kind["name"], name)
        secrets = [field["id"] for field in kind["inputs"]["fields"] if field.get("secret")]
        assert secrets, "{0} has no secret field".format(kind["name"])


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def test_configure_playbook_passes_syntax_check():
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "--syntax-check",
                          os.path.join(AWX, "configure.yml")], cwd=ROOT, env=ansible_env(), capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_configure_playbook_uses_only_awx_modules_and_options_that_exist():
    with open(os.path.join(AWX, "configure.yml")) as handle:
        plays = yaml.load(handle, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    used = {}
    for task in plays[0]["tasks"]:
        for key, value in task.items():
            if key.startswith("awx.awx."):
                used.setdefault(key, set()).update(value)
    assert {"awx.awx.credential_type", "awx.awx.project", "awx.awx.inventory", "awx.awx.job_template",
            "awx.awx.schedule", "awx.awx.notification_template"} <= set(used)
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "-j"] + sorted(used), cwd=ROOT, env=ansible_env(),
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    docs = json.loads(run.stdout)
    for module, options in used.items():
        known = docs[module]["doc"]["options"]
        assert options <= set(known), "{0} has no option {1}".format(module, ", ".join(sorted(options - set(known))))
        for option in options:
            if "choices" in known[option]:
                for task in plays[0]["tasks"]:
                    value = task.get(module, {}).get(option)
                    if isinstance(value, str) and "{{" not in value:
                        assert value in known[option]["choices"], (module, option, value)
