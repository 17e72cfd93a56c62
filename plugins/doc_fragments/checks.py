# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  fail_on:
    description:
      - When the checks fail the task. C(fail) fails it when a check fails, C(warn) also when a check warns,
        C(never) only reports.
      - The checks are returned either way, so a play that gathers several hosts' checks into one report
        passes C(never) and decides once, at the end.
      - The same option, with the same choices and default, on every module that returns health checks.
    type: str
    choices: [never, warn, fail]
    default: fail
"""
