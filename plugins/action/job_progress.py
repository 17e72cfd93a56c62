# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for an async job and show its progress in the job log while it runs (documented in modules/job_progress.py).

A module cannot print while it runs, and neither can a task: this action loops on the controller, asking
async_status whether the job ended and the job_progress module what its progress file says, and prints
each new line through Display, which a worker process forwards to the job log (and ansible-runner to AWX).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

# What async_status adds to the job's own result.
ASYNC_KEYS = ("ansible_job_id", "started", "finished", "results_file", "stdout", "stderr", "stdout_lines",
              "stderr_lines")


class ActionModule(ActionBase):
    _supports_check_mode = True
    _requires_connection = True
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        jid = args.get("jid")
        if not jid:
            raise AnsibleActionFail("jid is required: the ansible_job_id of the async task to wait for.")
        progress_file = args.get("progress_file")
        label = args.get("label") or ""
        interval = float(args.get("interval", 5))
        timeout = float(args.get("timeout", 0)) or None
        host = task_vars.get("inventory_hostname", "")
        started = time.monotonic()
        seen = None
        polls = 0
        # Where the job keeps its status: beside the results file the async task named. Without it, as
        # ansible.builtin.async_status finds it - `~` expanded to the home in the password database, which is not
        # where the job wrote when $HOME points elsewhere (a CI job's or a container's HOME).
        results_file = args.get("results_file")
        if results_file:
            async_dir = posixpath.dirname(results_file)
        else:
            async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        try:
            while True:
                status = self._execute_module(module_name="ansible.legacy.async_status",
                                              module_args={"jid": jid, "_async_dir": async_dir}, task_vars=task_vars)
                if status.get("finished") or status.get("failed"):
                    break
                line, seq = self._progress(progress_file, task_vars)
                if line and seq != seen:
                    seen = seq
                    display.display("[{0}] {1}{2}".format(host, label + ": " if label else "", line))
                if timeout and time.monotonic() - started > timeout:
                    return dict(result, failed=True, msg="The job {0} did not finish within {1:.0f} s; it may still "
                                                         "be running on {2}.".format(jid, timeout, host))
                # A short job should not wait a whole interval: look again after 0.5, 1, 2 s, then every interval.
                time.sleep(min(interval, 0.5 * 2 ** polls))
                polls += 1
            self._execute_module(module_name="ansible.legacy.async_status",
                                 module_args={"jid": jid, "mode": "cleanup", "_async_dir": async_dir},
                                 task_vars=task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        for key in ASYNC_KEYS:
            status.pop(key, None)
        result.update(status)
        return result

    def _progress(self, path, task_vars):
        """(line, seq) of the progress file, read by the module of this action; (None, None) when there is none."""
        if not path:
            return None, None
        read = self._execute_module(module_name="ops.runbook.job_progress",
                                    module_args=dict(self._task.args, progress_file=path), task_vars=task_vars)
        document = read.get("progress") or {}
        return document.get("line"), document.get("seq")
