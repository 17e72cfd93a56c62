# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled disk cleanup on a host: the same engine as the disk_cleanup module.

Installed by the disk_cleanup role as /usr/local/bin/ops-runbook-disk-cleanup.
Reads a JSON config ({"rules": [...], "protected_paths": [...]}), runs the
cleanup (or only plans it with --check), prints one JSON line with the result
on stdout and a sentence on stderr, and exits 1 when the config is bad or a
rule failed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import sys

from .disk_cleanup import run_cleanup
from .common import RunbookError

DEFAULT_CONFIG = "/etc/ops-runbook/disk_cleanup.json"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ops-runbook-disk-cleanup", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--check", action="store_true", help="report what would be deleted; delete nothing")
    args = parser.parse_args(argv)
    try:
        with open(args.config) as handle:
            config = json.load(handle)
    except (IOError, OSError) as error:
        sys.stderr.write("disk cleanup failed: cannot read {0}: {1}\n".format(args.config, error.strerror or error))
        return 1
    except ValueError as error:
        sys.stderr.write("disk cleanup failed: {0} is not valid JSON: {1}\n".format(args.config, error))
        return 1
    try:
        result = run_cleanup(config, check_mode=args.check)
    except RunbookError as error:
        sys.stderr.write("disk cleanup failed: {0}\n".format(error))
        sys.stdout.write(json.dumps({"failed": True, "msg": str(error)}, sort_keys=True) + "\n")
        return 1
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stderr.write("disk cleanup: {0}\n".format(result["msg"]))
    for error in result["errors"]:
        sys.stderr.write("disk cleanup error: {0}\n".format(error))
    return 1 if result["errors"] else 0
