"""Playbooks under ansible-runner, the engine AWX runs them with, and what AWX reads back from a job.

Every playbook the integration suite runs goes through harness.runner (conftest.ansible_playbook): an
AWX-style private data directory, ansible_runner.run(), the job's status, rc, events and set_stats data.
These tests hold the harness itself to what AWX does and needs:
- a job that fails on its inputs is `failed` with rc 2, and the failed task's message is in the job events
  (what AWX shows and a notification carries), for pgbackrest.yml, which needs no server to get there;
- the extra variables are in a file of mode 0600 while the job runs, and gone with the private data
  directory afterwards; the job's events never hold a secret given as an extra variable;
- set_stats data reaches the `playbook_on_stats` event's artifact_data, as a workflow's next node gets it.
"""
import json
import os
import time

from conftest import ROOT, ansible_playbook
from harness.runner import run_playbook

SECRET = "Runner-Secret-" + "7f3a9c"


def test_a_job_that_fails_on_its_inputs_is_failed_with_the_message_in_its_events():
    started = time.monotonic()
    run = ansible_playbook("pgbackrest.yml", {"pgbackrest_hosts": "localhost", "pgbackrest_s3_key": SECRET})
    assert run.status == "failed" and run.rc == 2, run.stdout[-3000:]
    messages = " ".join(run.failed_messages())
    # The role's argument spec names what to set, before anything changes.
    assert "pgbackrest_s3_bucket" in messages and "pgbackrest_s3_key_secret" in messages, messages
    assert SECRET not in json.dumps(run.events) and SECRET not in run.stdout
    print("pgbackrest.yml refused under ansible-runner in {0:.1f} s".format(time.monotonic() - started))


def test_extra_variables_are_private_to_the_job_and_removed_after_it(tmp_path):
    playbook = tmp_path / "inspect.yml"
    playbook.write_text("""---
- name: Look at the private data directory from inside the job
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Stat the extra variables file
      ansible.builtin.stat:
        path: "{{ lookup('ansible.builtin.env', 'AWX_ISOLATED_DATA_DIR') }}/../../env/extravars"
      register: extravars
    - name: Publish what was found
      ansible.builtin.set_stats:
        data:
          extravars: {path: "{{ extravars.stat.path }}", mode: "{{ extravars.stat.mode }}"}
          answer: "{{ runner_answer }}"
    - name: Use the secret in a task argument, as a connection variable is used
      ansible.builtin.debug:
        msg: "{{ runner_secret | length }} characters"
""")
    run = run_playbook(str(playbook), {"runner_answer": 42, "runner_secret": SECRET}, project=ROOT)
    assert run.status == "successful", run.stdout[-3000:]
    found = run.artifact_data["extravars"]
    assert found["mode"] == "0600"
    assert not os.path.exists(found["path"]) and not os.path.exists(os.path.dirname(os.path.dirname(found["path"])))
    assert run.artifact_data["answer"] == 42
    assert "{0} characters".format(len(SECRET)) in run.stdout
    assert SECRET not in json.dumps(run.events) and SECRET not in run.stdout
