"""One temporary directory per test run, removed when the run ends.

Everything the tests and the processes they start put in the temp dir (pytest's tmp_path, the harness's
servers with their Unix sockets and logs, ansible-playbook, tempfile defaults) goes there instead of the
shared /tmp, through tempfile.tempdir and TMPDIR. scripts/test makes the directory for its whole run and
names it in OPS_RUNBOOK_RUN_TMP; pytest on its own makes one. It is short (Unix socket paths must stay under
108 bytes) and others may traverse it (0711): the PostgreSQL servers run as postgres.
"""
import os
import shutil
import tempfile

RUN_TMP_VARIABLE = "OPS_RUNBOOK_RUN_TMP"


def pytest_configure(config):
    given = os.environ.get(RUN_TMP_VARIABLE)
    if given and os.path.isdir(given):
        run_tmp, owned = given, False
    else:
        run_tmp, owned = tempfile.mkdtemp(prefix="ops-runbook-tests-"), True
        os.chmod(run_tmp, 0o711)
    config.ops_runbook_run_tmp = (run_tmp, owned)
    os.environ["TMPDIR"] = run_tmp
    tempfile.tempdir = run_tmp


def pytest_unconfigure(config):
    run_tmp, owned = getattr(config, "ops_runbook_run_tmp", (None, False))
    if owned:
        shutil.rmtree(run_tmp, ignore_errors=True)
