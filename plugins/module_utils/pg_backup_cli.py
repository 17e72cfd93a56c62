# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled backup and verification on a host: the engines the modules run.

Installed by the pg_backup role as /usr/local/bin/ops-runbook-pg-backup.
Reads a JSON config ({"jobs": [options, ...], "verify": {...}} or one options
object) and a JSON credentials file kept apart (mode 0600), runs each job,
prints one JSON line per job on stdout and progress on stderr, and exits 1 if
any job failed.

With --verify it backs nothing up: it verifies the newest backup of each job's
database where that job writes it (s3_backup_verify's engine, with the
config's "verify" options on top of the job's), and a failed check fails the
run, so the timer's unit shows as failed and the log says which check.

With --validate it only checks every job's options (and the verification's)
with the engines' own normalize, connects to nothing and writes nothing: the
pg_backup role runs it on a new config file before putting it in place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import sys
import time

from . import health
from . import pg_backup as backup, s3_backup_verify as verify
from .pg_backup import KINDS, SECRET_OPTIONS, run_backup
from .common import RunbookError, read_json
from .filemodes import FileModes
from .s3_backup_verify import error_result, verify_backup

DEFAULT_CONFIG = "/etc/ops-runbook/pg_backup.json"
DEFAULT_CREDENTIALS = "/etc/ops-runbook/pg_backup.credentials.json"


def _stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _emit(document):
    """One JSON line on stdout per job: what a log shipper or a wrapper script parses."""
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ops-runbook-pg-backup", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--credentials", default=DEFAULT_CREDENTIALS)
    parser.add_argument("--check", action="store_true", help="report what would be done; change nothing")
    parser.add_argument("--verify", action="store_true",
                        help="verify the newest backup of each database instead of backing up")
    parser.add_argument("--kind", choices=KINDS, default="scheduled",
                        help="why the sets are taken, recorded in their manifests, unless a job sets its own "
                             "(default: scheduled)")
    parser.add_argument("--validate", action="store_true",
                        help="only check the options of every job; connect to nothing, write nothing")
    args = parser.parse_args(argv)

    def log(message):
        sys.stderr.write("{0} {1}\n".format(_stamp(), message))
        sys.stderr.flush()

    try:
        config = read_json(args.config, "config")
        secrets = read_json(args.credentials, "credentials", required=False)
    except RunbookError as error:
        log("pg_backup failed: {0}".format(error))
        return 1
    jobs = config.get("jobs", [config])
    if args.validate:
        return _validate(jobs, config.get("verify") or {}, log)
    run_job = _verify_job if args.verify else _backup_job
    failed = 0
    for options in jobs:
        options = dict(options)
        for name in SECRET_OPTIONS + ("aws_access_key",):
            if secrets.get(name) is not None:
                options[name] = secrets[name]
        if args.verify:
            options.update(config.get("verify") or {})
        else:
            options.setdefault("kind", args.kind)
        if not run_job(options, args.check, log):
            failed += 1
    sys.stdout.flush()
    return 1 if failed else 0


def _validate(jobs, verify_options, log):
    """Check every job's options as a backup and as a verification would; 1 if any is invalid."""
    failed = 0
    for options in jobs:
        name = options.get("database", "?")
        for engine, what in ((backup, "backup"), (verify, "verification")):
            try:
                checked = engine.normalize(dict(options, **verify_options) if engine is verify else dict(options))
                if engine is backup:
                    FileModes(checked["backup_group"])  # the group must exist and be ours to give
            except RunbookError as error:
                log("{0} options of {1} are invalid: {2}".format(what, name, error))
                failed += 1
    if not failed:
        log("the options of {0} job(s) are valid".format(len(jobs)))
    return 1 if failed else 0


def _backup_job(options, check_mode, log):
    name = options.get("database", "?")
    log("pg_backup of {0} started{1}".format(name, " (check mode)" if check_mode else ""))
    try:
        result = run_backup(options, check_mode=check_mode, log=log)
    except RunbookError as error:
        log("pg_backup of {0} failed: {1}".format(name, error))
        _emit({"database": name, "failed": True, "msg": str(error)})
        return False
    for warning in result.get("warnings", []):
        log("pg_backup of {0}: warning: {1}".format(name, warning))
    log("pg_backup of {0} succeeded: {1}".format(name, result["msg"]))
    _emit(dict(result["summary"], retention=result["retention"], warnings=result.get("warnings", [])))
    return True


def _verify_job(options, check_mode, log):
    name = options.get("database", "?")
    log("verification of {0} started{1}".format(name, " (check mode)" if check_mode else ""))
    try:
        result = verify_backup(options, check_mode=check_mode, log=log)
    except RunbookError as error:  # a configuration error: the verification could not start
        result = error_result(options, error)
    passed = result["status"] != health.FAIL
    # The same sentence the module and verify_backups.yml give: the database, its set and each check not passed.
    log("verification of {0} {1}: {2}".format(
        name, "passed" if passed else "failed", result["msg"]))
    _emit({"database": name, "backup_id": result["backup_id"], "status": result["status"],
           "counts": result["counts"], "failed": not passed, "failed_checks": result["failed_checks"],
           "msg": result["msg"],
           "problems": [c["output"] for c in result["checks"] if c["status"] != health.PASS]})
    return passed
