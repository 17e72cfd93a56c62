# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL health on the host: a Nagios plugin and a textfile-collector writer.

The same engine as the pg_health module (pg_health.run_health). Reads the
module's options from a JSON file (without one: every check, on the local
socket as the user running it) and the password from a credentials file
kept apart (mode 0600). Prints the Nagios line (or, with --json, the whole
result) and exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (it could not run).
With --prometheus-file it also writes the Prometheus text there atomically,
for node_exporter's textfile collector; --report-only then exits 0 whatever
the checks found, as a cron job should.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import sys

from .common import RunbookError, read_json
from .pg_health import run_health

DEFAULT_CONFIG = "/etc/ops-runbook/pg_health.json"
DEFAULT_CREDENTIALS = "/etc/ops-runbook/pg_health.credentials.json"
NAGIOS_UNKNOWN = 3


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ops-runbook-pg-health", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", help="JSON file of pg_health module options (default: {0} when it "
                                         "exists, else every check on the local socket)".format(DEFAULT_CONFIG))
    parser.add_argument("--credentials", default=DEFAULT_CREDENTIALS, help="JSON file with login_password")
    parser.add_argument("--prometheus-file", help="also write the Prometheus text to this file")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.add_argument("--report-only", action="store_true", help="exit 0 whatever the checks found")
    args = parser.parse_args(argv)
    try:
        options = read_json(args.config or DEFAULT_CONFIG, "config", required=bool(args.config))
        secrets = read_json(args.credentials, "credentials", required=False)
        if secrets.get("login_password") is not None:
            options["login_password"] = secrets["login_password"]
        if args.prometheus_file:
            options["prometheus_file"] = args.prometheus_file
        result = run_health(options)
    except RunbookError as error:
        sys.stdout.write("POSTGRES UNKNOWN - {0}\n".format(error))
        return NAGIOS_UNKNOWN
    result.pop("error", None)
    if args.json:
        sys.stdout.write(json.dumps(result, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write(result["nagios"]["line"] + "\n")
    return 0 if args.report_only else result["nagios"]["exit_code"]
