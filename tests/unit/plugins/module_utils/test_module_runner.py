"""The one module runner: how an engine's result or error becomes the task's result."""
import pytest
from ansible.module_utils import basic

from ansible_collections.ops.runbook.plugins.module_utils import _module
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


class Ended(Exception):
    pass


class FakeModule(object):
    """Stands in for AnsibleModule: records what the module ended with."""

    def __init__(self, argument_spec, supports_check_mode, **options):
        self.spec = argument_spec
        self.options = options
        self.params = dict((name, option.get("default")) for name, option in argument_spec.items())
        self.params.update(FakeModule.given)
        self.check_mode = FakeModule.check_mode
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)

    def fail_json(self, **result):
        raise Ended("fail", result, self)

    def exit_json(self, **result):
        raise Ended("exit", result, self)


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(basic, "AnsibleModule", FakeModule)

    def running(engine, given=None, check_mode=False, **options):
        FakeModule.given = given or {}
        FakeModule.check_mode = check_mode
        with pytest.raises(Ended) as ended:
            _module.run_module({"name": {"type": "str"}}, engine, supports_check_mode=True, **options)
        return ended.value.args

    return running


def test_a_result_exits_unchanged_unless_it_says_otherwise(run):
    how, result, module = run(lambda params, check_mode, log: {"value": 1}, required_if=[("a", "b", ["c"])])
    assert (how, result) == ("exit", {"value": 1, "changed": False})
    assert module.options == {"required_if": [("a", "b", ["c"])]}


def test_an_error_fails_with_its_message_hint_and_details(run):
    def engine(params, check_mode, log):
        log("connecting")
        raise RunbookError("Cannot reach db1.", hint="Is it running?", cause="unreachable")

    how, result, _module_ = run(engine, progress=True)
    assert how == "fail"
    assert result == {"msg": "Cannot reach db1. Is it running?", "cause": "unreachable", "log": ["connecting"]}


def test_an_error_result_replaces_the_message(run):
    def engine(params, check_mode, log):
        raise RunbookError("bad option", cause="invalid")

    how, result, _module_ = run(engine, error_result=lambda params, error: {"msg": "report: " + str(error),
                                                                            "checks": []})
    assert (how, result) == ("fail", {"msg": "report: bad option", "checks": [], "cause": "invalid"})


def test_a_missing_library_ends_the_module_before_the_engine_runs(run):
    def missing():
        raise RunbookError("The Python library psycopg2 is not installed where this task runs.")

    how, result, _module_ = run(lambda params, check_mode, log: pytest.fail("the engine ran"), requires=[missing])
    assert how == "fail" and result["msg"].startswith("The Python library psycopg2")


def test_warnings_become_ansible_warnings_and_failed_fails(run):
    how, result, module = run(lambda params, check_mode, log: {"warnings": ["careful"], "failed": True, "msg": "no"})
    assert (how, result, module.warnings) == ("fail", {"msg": "no"}, ["careful"])


def test_check_modules_get_fail_on_and_fail_by_it(run):
    checks = {"status": "warn", "checks": [], "msg": "WARNING"}
    how, result, module = run(lambda params, check_mode, log: dict(checks), checks=True)
    assert module.spec["fail_on"] == {"type": "str", "choices": ["never", "warn", "fail"], "default": "fail"}
    assert how == "exit"
    how, result, module = run(lambda params, check_mode, log: dict(checks), {"fail_on": "warn"}, checks=True)
    assert (how, result) == ("fail", checks)


def test_an_error_reported_as_a_check_gives_its_details_when_the_task_fails(run):
    error = RunbookError("Cannot reach db1.", cause="unreachable")

    def engine(params, check_mode, log):
        return {"status": "fail", "checks": [], "msg": str(error), "error": error}

    how, result, _module_ = run(engine, checks=True)
    assert (how, result) == ("fail", {"status": "fail", "checks": [], "msg": "Cannot reach db1.",
                                      "cause": "unreachable"})
    how, result, _module_ = run(engine, {"fail_on": "never"}, checks=True)
    assert (how, result) == ("exit", {"status": "fail", "checks": [], "msg": "Cannot reach db1.", "changed": False})


def test_the_engine_sees_check_mode(run):
    how, result, _module_ = run(lambda params, check_mode, log: {"would": check_mode}, check_mode=True)
    assert result["would"] is True
