# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one `main()` of every module of the collection (private: modules only).

A module is an argument spec and a call to its engine; everything around the
call is the same for all of them and lives here:
- build the AnsibleModule (check mode is always supported);
- for check modules, add the shared `fail_on` option (doc fragment
  ops.runbook.checks) and decide once whether the checks fail the task;
- check the libraries the engine always needs, before it runs;
- collect the engine's progress lines and return them as `log`;
- turn a RunbookError into fail_json with its message (the hint included) and
  its details, and the engine's warnings into Ansible warnings;
- end with fail_json when the engine says the run failed, else exit_json.

The engines stay plain Python (common.py): this is the only place where the
collection's modules touch AnsibleModule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from . import health
from .common import RunbookError

FAIL_ON = ("never", "warn", "fail")


def checks_argument_spec():
    """The options every check module shares (documented in the ops.runbook.checks doc fragment)."""
    return dict(fail_on=dict(type="str", choices=list(FAIL_ON), default="fail"))


def fails_on(status, fail_on):
    """True when checks of overall `status` fail a task run with `fail_on` (never, warn or fail)."""
    return fail_on != "never" and health.at_least(status, fail_on)


def _error_result(params, error):
    return {"msg": str(error)}


def run_module(argument_spec, run, checks=False, progress=False, requires=(), error_result=_error_result,
               **module_options):
    """Run a module whose engine is called by `run(params, check_mode, log)`, which returns the result.

    - checks: the result is health checks with a `status`; `fail_on` (added to
      the spec) decides whether the task fails. An `error` the engine returns
      (a RunbookError it reported as a failed check) gives its details to the
      failed task's result, as a raised one would.
    - a result with `failed` true fails the task; `warnings` become Ansible
      warnings; `changed` is false unless the result says otherwise.
    - progress: the engine's progress lines are returned as `log`, on failure too.
    - requires: functions that import a library the engine always needs; their
      RunbookError (what to install) ends the module before the engine runs.
    - error_result(params, error): the result a RunbookError from the engine
      fails with (its details are added); default its message.
    - module_options: passed to AnsibleModule (supports_check_mode, which every module of the
      collection declares, required_if, mutually_exclusive, ...).
    """
    # Imported here, as postgres.py imports env_fallback: the runbook_engine role installs every file of
    # module_utils on hosts without ansible, where each must still import.
    from ansible.module_utils.basic import AnsibleModule

    spec = dict(argument_spec)
    if checks:
        spec.update(checks_argument_spec())
    module = AnsibleModule(argument_spec=spec, **module_options)
    lines = []
    extra = {"log": lines} if progress else {}
    try:
        for library in requires:
            library()
        result = run(module.params, module.check_mode, lines.append)
    except RunbookError as error:
        failure = error_result(module.params, error)
        failure.update(error.details)
        failure.update(extra)
        module.fail_json(**failure)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    error = result.pop("error", None)
    result.update(extra)
    failed = result.pop("failed", False)
    if checks and fails_on(result["status"], module.params["fail_on"]):
        if error is not None:
            result.update(error.details)
        failed = True
    if failed:
        module.fail_json(**result)
    result.setdefault("changed", False)
    module.exit_json(**result)
