"""Every playbook of playbooks/ is run under ansible-runner by the integration suite.

harness.runner appends each run of the session to the file conftest.py names in OPS_RUNBOOK_RUNNER_RECORD.
This module's name sorts last, so pytest runs it after every other integration test of the session: when
every integration test file that runs playbooks (calls ansible_playbook or run_playbook) had tests selected,
as when the whole suite runs, each playbook must have started under ansible-runner at least once (a
`playbook_on_start` event: parsed and run, not only handed over). A partial run (one file, -k) cannot prove
that and says so by skipping; the static test below holds every time: each playbook is named by an
integration test file that runs playbooks.
"""
import glob
import json
import os
import re

import pytest

from conftest import ROOT
from harness.runner import RECORD_VARIABLE

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNERS = re.compile(r"\b(ansible_playbook|run_playbook)\(")


def playbooks():
    found = sorted(os.path.realpath(path) for path in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
    # Not vacuous: the collection has more than a dozen playbooks.
    assert len(found) >= 12, found
    return found


def runner_files():
    """{path: text} of the integration test files (and conftest.py) that run playbooks through harness.runner."""
    sources = {}
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))) + [os.path.join(HERE, "conftest.py")]:
        with open(path) as handle:
            text = handle.read()
        if RUNNERS.search(text) and not path.endswith("test_zz_runner_coverage.py"):
            sources[path] = text
    return sources


def test_every_playbook_is_named_by_an_integration_test_that_runs_playbooks():
    sources = runner_files()
    missing = [os.path.basename(book) for book in playbooks()
               if not any(os.path.basename(book) in text for text in sources.values())]
    assert not missing, "no integration test runs these playbooks: {0}".format(", ".join(missing))


def test_every_playbook_ran_under_ansible_runner_in_this_session(request):
    files = [path for path in runner_files() if not path.endswith("conftest.py")]
    selected = set(str(item.fspath) for item in request.session.items)
    unselected = [os.path.basename(path) for path in files if path not in selected]
    if unselected:
        pytest.skip("only part of the integration suite was selected ({0} of {1} files not selected, e.g. {2}): "
                    "the coverage is checked when it all runs".format(len(unselected), len(files), unselected[0]))
    with open(os.environ[RECORD_VARIABLE]) as handle:
        runs = [json.loads(line) for line in handle if line.strip()]
    started = set(run["playbook"] for run in runs if run["started"] and run["status"] in ("successful", "failed"))
    missing = [os.path.basename(book) for book in playbooks() if book not in started]
    assert not missing, "these playbooks never started under ansible-runner in this session: {0}".format(
        ", ".join(missing))
    slowest = max(runs, key=lambda run: run["elapsed"])
    print("{0} ansible-runner jobs of {1} playbooks; the longest {2:.1f} s ({3})".format(
        len(runs), len(started), slowest["elapsed"], os.path.basename(slowest["playbook"])))
