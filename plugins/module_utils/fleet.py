# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One health report for a fleet: every host's checks in one list.

The health_check role registers each checking module's result on every host
(host_health, pg_health, http_health, cert_check, redis_health). These
functions turn those results into the collection's checks (health.py), so
that what could not be checked is a failed check in the report, never a line
lost in the job log:

- a host Ansible could not reach is a failed `host_reachable` check;
- a module that failed without returning checks (bad credentials, a missing
  library) is a failed check named after the module, with its message;
- a host of the play that has no result at all (it failed or went away
  before its checks finished) is a failed `host_reachable` check;
- a module that ran but returned no check at all is a failed check marked
  `unchecked`: nothing it was run for was checked.

Checks a module could not make (marked `unchecked`, see health.unchecked) are
failures like any other; the summary also lists them as "could not check".

Plain Python, no Ansible imports: the filters of the role and the tests call it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from . import health, health_report as report

REACHABLE = "host_reachable"
# The threshold of checks that are not measurements: what passing means.
_REACHED = "reached"
_RUNS = "runs"


def _sentence(text):
    text = " ".join(str(text or "").split())
    if not text:
        return "no message"
    return text if text[-1] in ".!?" else text + "."


def _message(result):
    """The reason a task result gives, without Ansible's 'Task failed:' prefixes."""
    text = result.get("msg") or result.get("module_stderr") or result.get("stderr") or ""
    for prefix in ("Task failed: ", "Module failed: "):
        while str(text).startswith(prefix):
            text = str(text)[len(prefix):]
    return _sentence(text)


def unreachable_check(host, reason):
    return health.check(REACHABLE, health.FAIL, "unreachable", _REACHED,
                        "Ansible could not reach {0}: {1} Check that the host is up and that SSH (or its "
                        "connection) works, then run the health check again.".format(host, _sentence(reason)),
                        host=host)


def missing_check(host):
    return health.check(REACHABLE, health.FAIL, "no result", _REACHED,
                        "No checks came back from {0}: it became unreachable or a task failed before its checks "
                        "finished (see the job output for {0}).".format(host), host=host)


def host_checks(host, connection, results):
    """Every check of one host, in a stable order.

    `connection` is the registered result of the task that first connects to
    the host (a ping); `results` maps each checking module's name to its
    registered result (skipped ones are left out). A module's own checks are
    kept as they are, with `host` set where the module does not set it.
    """
    connection = connection if isinstance(connection, dict) else {}
    checks = []
    unreachable = connection.get("msg") if connection.get("unreachable") else None
    if connection.get("failed") and not unreachable:
        reason = _message(connection)
        checks.append(health.check(REACHABLE, health.FAIL, "no modules", _REACHED,
                                   "Ansible reached {0} but cannot run modules there: {1} Check its Python "
                                   "(ansible_python_interpreter) and the login user.".format(host, reason),
                                   host=host))
    for source in sorted(results or {}):
        result = results[source]
        if not isinstance(result, dict) or result.get("skipped"):
            continue
        if result.get("unreachable"):
            unreachable = unreachable or result.get("msg") or "the connection was lost"
            continue
        found = result.get("checks")
        if isinstance(found, list) and found:
            for item in found:
                item = dict(item)
                item.setdefault("host", host)
                checks.append(item)
        elif result.get("failed"):
            checks.append(health.check(source, health.FAIL, "error", _RUNS,
                                       "{0} could not run on {1}: {2}".format(source, host, _message(result)),
                                       host=host))
        else:
            checks.append(health.unchecked(source, "Could not check anything with {0} on {1}: it ran but returned no "
                                                   "check. Give it something to check (its categories, services or "
                                                   "endpoints), or leave it out.".format(source, host),
                                           threshold=_RUNS, host=host))
    if unreachable:
        checks.insert(0, unreachable_check(host, _message({"msg": unreachable})))
    elif not any(item["name"] == REACHABLE for item in checks):
        checks.insert(0, health.check(REACHABLE, health.PASS, "reached", _REACHED,
                                      "Ansible reached {0}.".format(host), host=host))
    return checks


def fleet_checks(hosts, collected):
    """The checks of every host of the play, in the play's host order.

    `collected` maps a host to its `host_checks` list, or to None when the
    host never got that far; such a host is reported as a failed check.
    """
    checks = []
    for host in hosts:
        found = (collected or {}).get(host)
        if found is None:
            checks.append(missing_check(host))
        else:
            checks.extend(found)
    return checks


def _line(item):
    return "{0} {1}: {2}".format(item.get("host") or "-", item["name"], " ".join(str(item.get("output")).split()))


def summary(checks, files=None):
    """What a job log, set_stats and a gate need: status, counts, a headline, the failing and warning checks, the Nagios line.

    `files` is the `files` list health_report returns; its paths are listed by format.
    """
    ordered = report.worst_first(checks)
    line, code = report.render_nagios(checks, service="HEALTH_CHECK")
    hosts = []
    for item in checks:
        if item.get("host") and item["host"] not in hosts:
            hosts.append(item["host"])
    failed_hosts = sorted(set(item.get("host") or "-" for item in checks if item["status"] == health.FAIL))
    status = health.worst(checks)
    tally = health.counts(checks)
    unchecked = health.not_checked(ordered)
    return {
        "status": status,
        "counts": tally,
        "headline": "{0}: {1} fail, {2} warn, {3} pass on {4} host{5}{6}.".format(
            status.upper(), tally[health.FAIL], tally[health.WARN], tally[health.PASS], len(hosts),
            "" if len(hosts) == 1 else "s",
            "; {0} of the failures could not be checked".format(len(unchecked)) if unchecked else ""),
        "unchecked": [_line(item) for item in unchecked],
        "hosts": len(hosts),
        "failed_hosts": failed_hosts,
        "failing": [_line(item) for item in ordered if item["status"] == health.FAIL],
        "warning": [_line(item) for item in ordered if item["status"] == health.WARN],
        "nagios": line,
        "nagios_exit_code": code,
        "reports": dict((item["format"], item["path"]) for item in files or []),
    }
