"""Run ansible-playbook from a test and read its result as one line of text.

Molecule verifiers use it to apply a role again with other variables (the
ones it must refuse, a resize, a removal) to the scenario's host; the
integration tests use it on localhost. Results are rendered as JSON, never
wrapped YAML, so a test can look for a whole sentence of a failure message.
"""
import json
import os
import subprocess
import tempfile


def run_playbook(playbook, extra_vars, inventory, *args, env=None):
    """(exit status, stdout and stderr with all whitespace runs made single spaces)."""
    handle, vars_path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(extra_vars, out)
    environment = dict(os.environ if env is None else env, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                       ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    try:
        run = subprocess.run(["ansible-playbook", "-i", inventory, playbook, "-e", "@" + vars_path] + list(args),
                             capture_output=True, text=True, env=environment, check=False)
    finally:
        os.unlink(vars_path)
    return run.returncode, " ".join((run.stdout + run.stderr).split())
