"""Run ansible-playbook from a test and read its result as one line of text.

Molecule verifiers use it to apply a role again with other variables (the
ones it must refuse, a resize, a removal) to the scenario's host; the
integration tests use it on localhost. Results are rendered as JSON, never
wrapped YAML, so a test can look for a whole sentence of a failure message.
It runs the playbook under ansible-runner (harness.runner), as AWX does.
"""
import os

from harness import runner


def run_playbook(playbook, extra_vars, inventory, *args, env=None):
    """(exit status, stdout and stderr with all whitespace runs made single spaces).

    The playbook runs under ansible-runner, as AWX runs it (harness.runner); `env` is the whole environment
    (default: this process's). The caller's Ansible settings (molecule's ANSIBLE_CONFIG and collections path)
    are the job's.
    """
    environment = dict(os.environ if env is None else env, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                       ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    job_env = dict((key, value) for key, value in environment.items()
                   if key.startswith("ANSIBLE_") or os.environ.get(key) != value)
    run = runner.run_playbook(playbook, extra_vars, inventory=inventory, args=args, env=job_env)
    return run.returncode, " ".join(run.stdout.split())
