# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart (or reload, or only verify) a service and prove it came back.

Plain `systemctl restart` succeeds for a service that dies a second later, and
a restart with a broken nginx config takes the site down. Here:

1. the service's config test (`nginx -t`) runs first; when it fails the service
   is never touched;
2. after the action the service must become active and STAY active for a settle
   period: its main PID, restart counter and activation time must not change
   (a restart loop shows up as a new PID or NRestarts + 1 even when every single
   poll sees "active");
3. its port must accept connections and its health URL must answer 2xx (or the
   expected status) with JSON in which every check of http_check's judgement
   passes: the top-level status and every dependency healthy (a degraded one is
   not), and the caller's expect_json; all within one timeout;
4. the downtime is measured (action to first healthy answer), every verification
   is a health check (health.py), and a failure carries the last journal lines.

A plain container or a compose service (compose.py) is judged the same way:
its container id, restart count and start time must not change, and a
container with a healthcheck must report `healthy`; a failure message ends with
the container's last log lines.

The same verification runs with `state: verified` and no action at all, for
playbooks that changed something else (packages, a password) and must prove the
service still works.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex
import socket
import time

from . import health, http_health as http_check
from .commands import display, run
from .common import RunbookError, isoformat, utc_now
from .compose import ComposeService, Container
from .docker import Docker, compose_project_params
from .systemd import SystemdUnit

ACTIONS = {"restarted": "restart", "reloaded": "reload", "verified": None}
DEFAULTS = {
    "name": None,
    "state": "restarted",
    "config_test": None,
    "config_test_in_check_mode": True,
    "port": None,
    "host": "127.0.0.1",
    "health_url": None,
    "expect_status": None,
    "expect_json": None,
    "health_validate_certs": True,
    "health_ca_path": None,
    "health_use_proxy": False,
    "health_request_timeout": 5.0,
    "settle_seconds": 5.0,
    "timeout": 60.0,
    "poll_interval": 0.5,
    "journal_lines": 20,
    "compose_service": None,
    "container": None,
    "stop_timeout": 10,
}
TARGETS = ("name", "container", "compose_service")
# What must stay the same through the settle period, by kind of target (the plan and the stable check say it).
IDENTITY = {"systemd": "main PID", "container": "container id", "compose": "container id"}


def normalize(options):
    opts = dict(DEFAULTS)
    opts.update(dict((key, value) for key, value in options.items() if value is not None))
    if len([key for key in TARGETS if opts.get(key)]) != 1:
        raise RunbookError("Name exactly one service: a systemd unit (name), a container (container) or a compose "
                           "service (compose_service).", cause="invalid")
    if int(opts["stop_timeout"]) < 0:
        raise RunbookError("stop_timeout must be 0 or more seconds, not {0}.".format(opts["stop_timeout"]),
                           cause="invalid")
    for key in ("settle_seconds", "timeout", "poll_interval", "health_request_timeout"):
        opts[key] = float(opts[key])
        if opts[key] < 0 or (key != "settle_seconds" and opts[key] == 0):
            raise RunbookError("{0} must be a positive number of seconds, not {1}.".format(key, opts[key]),
                               cause="invalid")
    if opts["timeout"] <= opts["settle_seconds"]:
        raise RunbookError("timeout ({0:g} s) must be longer than settle_seconds ({1:g} s): the service must stay "
                           "up for the settle period within the timeout.".format(opts["timeout"],
                                                                                 opts["settle_seconds"]),
                           cause="invalid")
    if opts["port"] is not None and not 0 < int(opts["port"]) < 65536:
        raise RunbookError("port must be between 1 and 65535, not {0}.".format(opts["port"]), cause="invalid")
    test = opts["config_test"]
    if isinstance(test, str):
        test = shlex.split(test)
    opts["config_test"] = [str(word) for word in test] if test else None
    opts["health_request"] = health_request(opts)
    return opts


def health_request(opts):
    """The settings the health URL is asked and judged with (http_check), or None without a health URL.

    Asked directly unless health_use_proxy: an http_proxy set for downloads must
    not answer for the service on this host.
    """
    if not opts["health_url"]:
        unused = [key for key in ("expect_status", "expect_json") if opts[key]]
        if unused:
            raise RunbookError("{0} without a health_url: there is no answer to hold it against.".format(
                " and ".join(unused)), cause="invalid")
        return None
    return http_check.endpoint_settings({"url": opts["health_url"]}, dict(
        http_check.DEFAULTS, timeout=opts["health_request_timeout"], validate_certs=opts["health_validate_certs"],
        ca_path=opts["health_ca_path"], use_proxy=opts["health_use_proxy"], expect_status=opts["expect_status"] or None,
        expect_json=opts["expect_json"], require_status=True, check_certificate=False))


def tcp_open(host, port, timeout=3.0):
    """None when `host:port` accepts a TCP connection, else the reason it did not."""
    try:
        connection = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, socket.timeout) as error:
        return getattr(error, "strerror", None) or str(error) or error.__class__.__name__
    connection.close()
    return None


def build_target(opts, runner=run):
    if opts["compose_service"]:
        return ComposeService(opts["compose_service"], Docker(opts, runner=runner),
                              project=compose_project_params(opts), stop_timeout=opts["stop_timeout"])
    if opts["container"]:
        return Container(opts["container"], Docker(opts, runner=runner), stop_timeout=opts["stop_timeout"])
    return SystemdUnit(opts["name"], runner=runner)


def _describe_state(snap):
    parts = [snap["state"]]
    if snap.get("detail"):
        parts[0] += " ({0})".format(snap["detail"])
    if snap.get("pid"):
        parts.append("PID {0}".format(snap["pid"]))
    if snap.get("result") and snap["result"] != "success":
        parts.append("result {0}".format(snap["result"]))
    if snap.get("exit_status"):
        parts.append("exit status {0}".format(snap["exit_status"]))
    return ", ".join(parts)


def identity_changes(reference, current):
    """How `current` shows that the service stopped or restarted since `reference` (empty when it did not)."""
    changes = []
    if not current["active"]:
        changes.append("it is {0}".format(_describe_state(current)))
    if reference.get("restarts") is not None and current.get("restarts") is not None \
            and current["restarts"] != reference["restarts"]:
        changes.append("its restart counter went from {0} to {1}".format(reference["restarts"], current["restarts"]))
    if reference.get("container_id") and current.get("container_id") \
            and current["container_id"] != reference["container_id"]:
        changes.append("its container id changed from {0} to {1}".format(reference["container_id"],
                                                                         current["container_id"]))
    if reference.get("pid") and current.get("pid") and current["pid"] != reference["pid"]:
        changes.append("its main PID changed from {0} to {1}".format(reference["pid"], current["pid"]))
    if reference.get("since") and current.get("since") and current["since"] != reference["since"]:
        changes.append("it became active again")
    return changes


class Verification:
    """Watch a target until it is proven up (or cannot be), within a timeout.

    `clock`, `sleep` and the probes are parameters so the decision logic can be
    tested without waiting.
    """

    def __init__(self, target, opts, clock=time.monotonic, sleep=time.sleep, tcp=tcp_open, fetch=http_check.fetch):
        self.target = target
        self.opts = opts
        self.clock = clock
        self.sleep = sleep
        self.tcp = tcp
        self.fetch = fetch

    def _check(self, name, status, observed, threshold, output, **facts):
        return health.check(name, status, observed, threshold, output, component=self.target.label, **facts)

    def _probe_port(self):
        return self.tcp(self.opts["host"], self.opts["port"], timeout=min(3.0, self.opts["health_request_timeout"]))

    def _probe_health(self):
        """(what is wrong or None, status code, JSON document, what a healthy answer said) of one request."""
        request = self.opts["health_request"]
        try:
            answer = self.fetch(request)
        except RunbookError as error:
            return "got no answer: {0}".format(error.message.rstrip(".")), None, None, None
        checks = http_check.judge_answer(answer, request)
        document = answer.document if answer.is_json else None
        problems = [check["output"] for check in checks if check["status"] != health.PASS]
        if problems:
            return "; ".join(problems), answer.code, document, None
        said = [check["output"] for check in checks[1:]]
        return None, answer.code, document, "{0}{1}".format(checks[0]["output"], ": " + ", ".join(said) if said else "")

    def run(self, action_started=None):
        """(checks, downtime in seconds or None, last snapshot, failure reason or None)."""
        opts, label = self.opts, self.target.label
        started = self.clock()
        deadline = started + opts["timeout"]
        reference = None
        active_at = port_at = health_at = None
        port_error = health_reason = None
        health_status = health_document = None
        snap = None
        checks = []

        def finish(reason):
            downtime = None
            answered = health_at or port_at or active_at
            if action_started is not None and answered is not None:
                downtime = round(answered - action_started, 3)
            return checks, downtime, snap, reason

        while True:
            now = self.clock()
            snap = self.target.snapshot()
            if not snap["exists"]:
                checks.append(self._check("active", health.FAIL, snap["state"], "active",
                                          "{0} does not exist on this host.".format(label)))
                return finish("{0} does not exist on this host".format(label))
            if reference is None:
                if snap["active"]:
                    reference, active_at = snap, now
                elif snap["terminal"]:
                    reason = "{0} is {1}{2}".format(label, _describe_state(snap),
                                                    " after the {0}".format(ACTIONS[opts["state"]])
                                                    if ACTIONS[opts["state"]] else "")
                    checks.append(self._check("active", health.FAIL, snap["state"], "active", reason + "."))
                    return finish(reason)
            else:
                changes = identity_changes(reference, snap)
                if changes:
                    watched = now - active_at
                    reason = "{0} did not stay up: {1}, {2:.1f} s after it was seen active (restart loop or crash)".format(
                        label, " and ".join(changes), watched)
                    checks.append(self._check("active", health.PASS, reference["state"], "active",
                                              "{0} became active ({1}).".format(label, _describe_state(reference))))
                    checks.append(self._check("stable", health.FAIL, round(watched, 1), opts["settle_seconds"],
                                              reason + ".", unit="s", restarts=snap.get("restarts"),
                                              pid=snap.get("pid")))
                    return finish(reason)
            if reference is not None:
                if opts["port"] and port_at is None:
                    port_error = self._probe_port()
                    if port_error is None:
                        port_at = self.clock()
                if opts["health_url"] and health_at is None and (not opts["port"] or port_at is not None):
                    health_reason, health_status, health_document, _said = self._probe_health()
                    if health_reason is None:
                        health_at = self.clock()
                port_done = not opts["port"] or port_at is not None
                health_done = not opts["health_url"] or health_at is not None
                if port_done and health_done and now - active_at >= opts["settle_seconds"]:
                    return self._confirm(reference, active_at, checks, finish)
            if now >= deadline:
                return self._timed_out(snap, reference, active_at, port_error, health_reason, health_status,
                                       health_document, checks, finish)
            self.sleep(min(opts["poll_interval"], max(0.0, deadline - now)))

    def _confirm(self, reference, active_at, checks, finish):
        """Final look after the settle period: still the same process, still answering."""
        opts, label = self.opts, self.target.label
        snap = self.target.snapshot()
        watched = self.clock() - active_at
        changes = identity_changes(reference, snap)
        checks.append(self._check("active", health.PASS, reference["state"], "active",
                                  "{0} is active ({1}).".format(label, _describe_state(reference))))
        if changes:
            reason = "{0} did not stay up: {1}, {2:.1f} s after it was seen active".format(
                label, " and ".join(changes), watched)
            checks.append(self._check("stable", health.FAIL, round(watched, 1), opts["settle_seconds"], reason + ".",
                                      unit="s"))
            return finish(reason)
        checks.append(self._check("stable", health.PASS, round(watched, 1), opts["settle_seconds"],
                                  "{0} stayed active for {1:.1f} s with the same {2} and no restart.".format(
                                      label, watched, IDENTITY[self.target.kind]),
                                  unit="s", restarts=snap.get("restarts"), pid=snap.get("pid")))
        reason = None
        if opts["port"]:
            error = self._probe_port()
            where = "{0}:{1}".format(opts["host"], opts["port"])
            if error:
                reason = "{0} stopped accepting connections: {1}".format(where, error)
                checks.append(self._check("port", health.FAIL, False, True, reason + "."))
            else:
                checks.append(self._check("port", health.PASS, True, True, "{0} accepts connections.".format(where)))
        if opts["health_url"]:
            problem, status, document, said = self._probe_health()
            if problem:
                reason = reason or "{0}: {1}".format(opts["health_url"], problem)
                checks.append(self._check("health", health.FAIL, status, _health_threshold(opts),
                                          "{0}: {1}.".format(opts["health_url"], problem), response=document))
            else:
                checks.append(self._check("health", health.PASS, status, _health_threshold(opts),
                                          "{0} {1}.".format(opts["health_url"], said), response=document))
        return finish(reason)

    def _timed_out(self, snap, reference, active_at, port_error, health_reason, health_status, health_document,
                   checks, finish):
        opts, label = self.opts, self.target.label
        timeout = opts["timeout"]
        if reference is None:
            reason = "{0} did not become active within {1:g} s: it is {2}".format(label, timeout, _describe_state(snap))
            checks.append(self._check("active", health.FAIL, snap["state"], "active", reason + "."))
            return finish(reason)
        checks.append(self._check("active", health.PASS, reference["state"], "active",
                                  "{0} is active ({1}).".format(label, _describe_state(reference))))
        where = "{0}:{1}".format(opts["host"], opts["port"])
        if opts["port"] and port_error:
            reason = "{0} did not accept connections within {1:g} s: {2}".format(where, timeout, port_error)
            checks.append(self._check("port", health.FAIL, False, True, reason + "."))
            return finish(reason)
        if opts["port"]:
            checks.append(self._check("port", health.PASS, True, True, "{0} accepts connections.".format(where)))
        if opts["health_url"] and health_reason:
            reason = "{0} did not report healthy within {1:g} s: {2}".format(opts["health_url"], timeout, health_reason)
            checks.append(self._check("health", health.FAIL, health_status, _health_threshold(opts),
                                      reason + ".", response=health_document))
            return finish(reason)
        reason = "{0} was not watched for the settle period of {1:g} s within the timeout of {2:g} s".format(
            label, opts["settle_seconds"], timeout)
        checks.append(self._check("stable", health.FAIL, round(self.clock() - active_at, 1), opts["settle_seconds"],
                                  reason + ".", unit="s"))
        return finish(reason)


def _expected_status(opts):
    return " or ".join(str(code) for code in opts["expect_status"]) if opts["expect_status"] else "2xx"


def _health_threshold(opts):
    return "{0} and the expected JSON".format(_expected_status(opts))


def _plan(opts, target, verb):
    """What the run does after the config test, in order, as sentences."""
    steps = [target.describe_action(verb)] if verb else []
    proof = ["active and unchanged (same {0}, no restart) for {1:g} s".format(
        IDENTITY[target.kind], opts["settle_seconds"])]
    if opts["port"]:
        proof.append("{0}:{1} accepts connections".format(opts["host"], opts["port"]))
    if opts["health_url"]:
        proof.append("{0} answers {1} with the expected JSON".format(opts["health_url"], _expected_status(opts)))
    steps.append("verify within {0:g} s: {1}".format(opts["timeout"], "; ".join(proof)))
    return steps


def run_service(options, check_mode=False, runner=run, clock=time.monotonic, sleep=time.sleep,
                tcp=tcp_open, fetch=http_check.fetch):
    """Run the action and the verification; a result dict with `failed` set when the service is not proven up."""
    opts = normalize(options)
    target = build_target(opts, runner)
    verb = ACTIONS[opts["state"]]
    started_at = utc_now()
    started = clock()
    result = {
        "changed": False,
        "failed": False,
        "target": target.label,
        "kind": target.kind,
        "state": opts["state"],
        "checks": [],
        "downtime_seconds": None,
        "plan": _plan(opts, target, verb),
        "journal": [],
        "config_test": None,
        "started_at": isoformat(started_at),
    }

    def done(msg, failed=False, with_journal=False):
        result["failed"] = failed
        result["msg"] = msg
        result["status"] = health.worst(result["checks"])
        result["finished_at"] = isoformat(utc_now())
        result["duration_seconds"] = round(clock() - started, 3)
        if with_journal:
            try:
                result["journal"] = target.logs(opts["journal_lines"])
            except RunbookError as error:
                result["journal"] = ["(the log could not be read: {0})".format(error)]
            if target.kind != "systemd":
                result["msg"] += "\nLast log lines of {0}:\n{1}".format(
                    target.label, "\n".join(result["journal"]) or "(none)")
        return result

    before = target.snapshot()
    result["before"] = before
    if not before["exists"]:
        result["checks"].append(health.check("active", health.FAIL, before["state"], "active",
                                             "{0} does not exist on this host.".format(target.label),
                                             component=target.label))
        return done("{0} does not exist on this host: check the name.".format(target.label), failed=True)

    if opts["config_test"] and (not check_mode or opts["config_test_in_check_mode"]):
        test = runner(opts["config_test"], timeout=120)
        command = display(opts["config_test"])
        result["config_test"] = {"command": command, "rc": test.rc, "output": test.output()}
        if not test.ok:
            untouched = "was not {0}".format(opts["state"]) if verb else "was not touched"
            result["checks"].append(health.check(
                "config_test", health.FAIL, test.rc, 0, "`{0}` failed: {1}".format(command, test.output(800)),
                component=target.label))
            return done("The config test `{0}` failed (exit status {1}), so {2} {3}; it keeps running as it was "
                        "({4}). Fix the configuration and run again. Output: {5}".format(
                            command, test.rc, target.label, untouched, _describe_state(before), test.output(800)),
                        failed=True)
        result["checks"].append(health.check("config_test", health.PASS, 0, 0,
                                             "`{0}` passed.".format(command), component=target.label))

    if check_mode and verb:
        result["changed"] = True
        tested = "`{0}` passed. ".format(result["config_test"]["command"]) if result["config_test"] else ""
        return done("{0}Would {1}. {2} is now {3}.".format(
            tested, "; then ".join(result["plan"]), target.label, _describe_state(before)))

    action_started = None
    if verb:
        if verb == "reload" and not before["active"]:
            result["checks"].append(health.check("active", health.FAIL, before["state"], "active",
                                                 "{0} is {1}: there is nothing to reload.".format(
                                                     target.label, _describe_state(before)), component=target.label))
            return done("{0} is {1}, so it cannot be reloaded; restart it instead (state: restarted).".format(
                target.label, _describe_state(before)), failed=True, with_journal=True)
        action_started = clock()
        outcome = getattr(target, verb)()
        result["changed"] = True
        if not outcome.ok:
            result["checks"].append(health.check(verb, health.FAIL, outcome.rc, 0, "`{0}` failed: {1}".format(
                target.describe_action(verb), outcome.output(800)), component=target.label))
            return done("`{0}` failed (exit status {1}): {2}".format(
                target.describe_action(verb), outcome.rc, outcome.output(800)), failed=True, with_journal=True)

    verification = Verification(target, opts, clock=clock, sleep=sleep, tcp=tcp, fetch=fetch)
    checks, downtime, after, reason = verification.run(action_started=action_started)
    result["checks"].extend(checks)
    result["after"] = after
    if verb == "restart":
        result["downtime_seconds"] = downtime
    if reason:
        what = verb + "ed" if verb else "checked"
        return done("{0} was {1} but is not healthy: {2}.".format(target.label, what, reason), failed=True,
                    with_journal=True)
    if verb == "restart":
        summary = "{0} was restarted and verified".format(target.label)
        if downtime is not None:
            summary += " ({0:.1f} s from the restart to the first healthy answer)".format(downtime)
    elif verb == "reload":
        summary = "{0} was reloaded and verified".format(target.label)
    else:
        summary = "{0} is verified".format(target.label)
    passed = [item["output"] for item in result["checks"] if item["name"] != "config_test"]
    return done("{0}: {1}".format(summary, " ".join(passed)))
