# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled database maintenance on a host: the same engine as the pg_maintenance module.

Installed by the pg_maintenance role as /usr/local/bin/ops-runbook-pg-maintenance.
Reads the module's options from a JSON file and the password from a
credentials file kept apart (mode 0600), prints progress on stderr and one
JSON line with the result on stdout, and exits 1 when a step failed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import sys
import time

from .common import RunbookError, read_json
from .pg_maintenance import run_maintenance

DEFAULT_CONFIG = "/etc/ops-runbook/pg_maintenance.json"
DEFAULT_CREDENTIALS = "/etc/ops-runbook/pg_maintenance.credentials.json"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ops-runbook-pg-maintenance", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--credentials", default=DEFAULT_CREDENTIALS)
    parser.add_argument("--check", action="store_true", help="list the statements; run none")
    args = parser.parse_args(argv)

    def log(message):
        sys.stderr.write("{0} {1}\n".format(time.strftime("%Y-%m-%dT%H:%M:%S%z"), message))
        sys.stderr.flush()

    try:
        options = read_json(args.config, "config")
        secrets = read_json(args.credentials, "credentials", required=False)
        if secrets.get("login_password") is not None:
            options["login_password"] = secrets["login_password"]
        log("pg_maintenance of {0} started{1}".format(", ".join(options.get("databases") or []),
                                                      " (check mode)" if args.check else ""))
        result = run_maintenance(options, check_mode=args.check, log=log)
    except RunbookError as error:
        log("pg_maintenance failed: {0}".format(error))
        sys.stdout.write(json.dumps({"failed": True, "msg": str(error)}, sort_keys=True) + "\n")
        return 1
    log(result["msg"])
    slow = result.get("slow_statements") or {}
    if slow:
        log("slow-query report: {0}".format(slow["message"]))
        for statement in slow["statements"]:
            log("  {0} ms mean, {1} calls: {2}".format(statement["mean_ms"], statement["calls"], statement["query"]))
    summary = dict((k, result[k]) for k in ("msg", "failed_steps", "dead_tuples_removed", "duration_seconds"))
    step_keys = ("database", "statement", "status", "duration_seconds", "dead_tuples_removed")
    summary["steps"] = [dict((k, s.get(k)) for k in step_keys) for s in result["steps"]]
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 1 if result["failed_steps"] else 0
