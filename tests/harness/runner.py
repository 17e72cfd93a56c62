"""Run a playbook the way AWX / Automation Controller does: with ansible-runner, from a private data directory.

AWX's job runs `ansible_runner.run()` on a private data directory it writes for the job:

    project/          the project's checkout (here: a link to this checkout, with its ansible.cfg)
    inventory/hosts   the inventory (here: a copy of the file, with its group_vars/ and host_vars/ linked)
    env/extravars     the job's extra variables (survey answers, credentials' injected variables), mode 0600
    env/envvars       the job's environment (credentials' injected variables), mode 0600
    env/settings      ansible-runner's own settings (job timeout)
    env/cmdline       further ansible-playbook arguments (--check, --limit, -e ...)
    artifacts/<ident>/ what the run leaves: status, rc, stdout, job_events/*.json, fact_cache/

and reads the job's status, rc, stdout and events back, and the `set_stats` data (the `playbook_on_stats`
event's `artifact_data`) that a workflow hands on to its next nodes. `run_playbook()` does the same and
returns all of that as a `RunnerResult`; the private data directory, with the extra variables and the
environment in it, is removed before it returns.

Every run is appended, one JSON line (playbook, status, rc, number of events), to the file named by the
environment variable OPS_RUNBOOK_RUNNER_RECORD when it is set: the integration suite sets it, and
tests/integration/test_zz_runner_coverage.py checks that every playbook of playbooks/ ran under ansible-runner.
"""
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time

import ansible_runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
RECORD_VARIABLE = "OPS_RUNBOOK_RUNNER_RECORD"
# The ops.runbook collection as AWX finds it: a collections path (the execution environment's, or the
# project's collections/ that AWX installs from collections/requirements.yml). Here the checkout's link.
COLLECTIONS_PATH = os.path.join(ROOT, ".build", "collections")


class RunnerResult:
    """An ansible-runner job's outcome; `returncode`/`stdout`/`stderr` as subprocess.CompletedProcess has them.

    ansible-runner runs ansible-playbook on a terminal, as AWX does: its standard error is part of `stdout`,
    and `stderr` is always empty.
    """

    def __init__(self, args, status, rc, stdout, events, elapsed):
        self.args = args
        self.status = status
        self.rc = rc
        self.returncode = rc
        self.stdout = stdout
        self.stderr = ""
        self.events = events
        self.elapsed = elapsed

    @property
    def stats(self):
        """The `playbook_on_stats` event's data (ok, failures, changed... per host), or {}."""
        for event in reversed(self.events):
            if event.get("event") == "playbook_on_stats":
                return event.get("event_data", {})
        return {}

    @property
    def artifact_data(self):
        """What the playbook published with `set_stats` (aggregated), as an AWX workflow passes it on."""
        return self.stats.get("artifact_data", {})

    def failed_messages(self):
        """The `msg` of every failed task's result (runner_on_failed, runner_item_on_failed events)."""
        messages = []
        for event in self.events:
            if event.get("event") in ("runner_on_failed", "runner_item_on_failed", "runner_on_unreachable"):
                res = event.get("event_data", {}).get("res", {})
                if res.get("msg"):
                    messages.append(res["msg"])
        return messages

    def check_returncode(self):
        if self.rc != 0:
            raise subprocess.CalledProcessError(self.rc, self.args, self.stdout, self.stderr)


def _inventory(private, inventory):
    """inventory/hosts: the inventory file, with the group_vars/ and host_vars/ next to it linked; a host list
    ("localhost,") becomes a file of those hosts."""
    target = os.path.join(private, "inventory")
    if not os.path.exists(inventory) and "," in inventory:
        os.mkdir(target)
        hosts = dict((name.strip(), {}) for name in inventory.split(",") if name.strip())
        _write(os.path.join(target, "hosts"), json.dumps({"all": {"hosts": hosts}}))
        return
    inventory = os.path.abspath(inventory)
    if os.path.isdir(inventory):
        os.symlink(inventory, target)
        return
    os.mkdir(target)
    shutil.copyfile(inventory, os.path.join(target, "hosts"))
    for name in ("group_vars", "host_vars"):
        beside = os.path.join(os.path.dirname(inventory), name)
        if os.path.isdir(beside):
            os.symlink(beside, os.path.join(target, name))


def _write(path, text, mode=0o600):
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(handle, "w") as out:
        out.write(text)


def _record(playbook, result):
    path = os.environ.get(RECORD_VARIABLE)
    if not path:
        return
    playbook = os.path.realpath(playbook)
    with open(path, "a") as out:
        out.write(json.dumps({"playbook": playbook, "status": result.status, "rc": result.rc,
                              "events": len(result.events), "elapsed": round(result.elapsed, 3),
                              "started": any(e.get("event") == "playbook_on_start" for e in result.events)}) + "\n")


def run_playbook(playbook, extra_vars, inventory=None, args=(), env=None, project=ROOT, timeout=None):
    """Run `playbook` under ansible-runner from a fresh private data directory; returns a RunnerResult.

    `playbook`: a path relative to `project` (e.g. "playbooks/backup.yml") or an absolute one.
    `extra_vars`: a dict, written to env/extravars (mode 0600). `inventory`: a file, a directory or a host
    list such as "localhost," (default: the checkout's inventories/local). `args`: more ansible-playbook arguments (env/cmdline).
    `env`: environment variables for the job (env/envvars, mode 0600), on top of this process's own.
    """
    inventory = inventory or os.path.join(ROOT, "inventories", "local", "hosts.yml")
    private = tempfile.mkdtemp(prefix="ops-rb-runner-")
    try:
        os.symlink(os.path.abspath(project), os.path.join(private, "project"))
        _inventory(private, inventory)
        os.mkdir(os.path.join(private, "env"), 0o700)
        _write(os.path.join(private, "env", "extravars"), json.dumps(extra_vars or {}))
        envvars = {"ANSIBLE_CONFIG": os.path.join(os.path.abspath(project), "ansible.cfg"),
                   "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                   "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}
        envvars.update(env or {})
        _write(os.path.join(private, "env", "envvars"), json.dumps(envvars))
        settings = {"suppress_ansible_output": True}
        if timeout:
            settings["job_timeout"] = int(timeout)
        _write(os.path.join(private, "env", "settings"), json.dumps(settings))
        if args:
            _write(os.path.join(private, "env", "cmdline"), " ".join(shlex.quote(str(arg)) for arg in args))
        started = time.monotonic()
        job = ansible_runner.run(private_data_dir=private, playbook=playbook, quiet=True)
        elapsed = time.monotonic() - started
        stdout = job.stdout.read().replace("\r\n", "\n")
        job.stdout.close()
        result = RunnerResult(job.config.command, job.status, job.rc, stdout, list(job.events), elapsed)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    _record(playbook if os.path.isabs(playbook) else os.path.join(project, playbook), result)
    return result
