# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The P1 "service down" incident: what to remediate, and the timeline of what happened.

The runbook's quick fixes are: restart the crashed service; if the disk is full,
vacuum the journal; if the OOM killer struck, restart the service. `plan`
decides those from a host_health result, `timeline` turns the results of the
diagnosis, the cleanup, the restarts and the final check into a dated record
(the runbook's "Document incident"), and `render_markdown` writes it for a
person, with the final health table rendered by health_report.py.

What could not be checked (no systemd, a unit systemd does not know, no
journal) is listed in the plan's `unchecked` and in the timeline; a host where
something could not be checked is never reported as needing no action.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from . import health, health_report as report
from .common import human_size
from .systemd import unit_name

RESOLVED = "resolved"
UNRESOLVED = "unresolved"
PLANNED = "planned"
HEALTHY = "no action needed"
UNCHECKED = "could not check"


def _checks_named(result, prefix):
    return [check for check in (result or {}).get("checks", []) if check["name"].startswith(prefix)]


def plan(diagnosis, services, containers=None):
    """What the runbook's quick fixes would do on this host, from its host_health result.

    - `restart`: each of `services` that is not active (crashed, stopped), or that the OOM
      killer hit after its current start, with the reason;
    - `cleanup`: true when a disk or inode check failed (above its critical threshold),
      with the full mounts in `full_disks`;
    - `notes`: what the playbook will not fix (a unit that does not exist);
    - `unchecked`: every check that could not be made ({name, output}), and `services_unchecked`,
      the units whose state is unknown ({unit, reason}: no systemd, a unit systemd does not know);
    - `restart_containers`: the containers and compose services the container_incident result
      `containers` found down ({kind, name, target, reason}), restarted by service_restart.
    """
    facts = (diagnosis or {}).get("facts", {})
    states = facts.get("services", {})
    oom_units = (facts.get("oom") or {}).get("units", {})
    restart, notes, unknown = [], [], []
    for name in services:
        unit = unit_name(name)
        snap = states.get(unit)
        if snap is None:
            notes.append("{0} was not diagnosed.".format(unit))
            unknown.append({"unit": unit, "reason": "it was not diagnosed"})
            continue
        if snap.get("unchecked") or not snap.get("exists", True):
            reason = str(snap.get("reason") or "systemd does not know this unit").rstrip(".")
            notes.append("{0}: its state could not be checked ({1}); nothing is restarted.".format(unit, reason))
            unknown.append({"unit": unit, "reason": reason})
            continue
        if not snap.get("active"):
            reason = "it is {0} ({1}){2}".format(snap.get("state"), snap.get("detail"),
                                                 ", result " + snap["result"] if snap.get("result") not in (
                                                     None, "", "success") else "")
            restart.append({"service": name, "unit": unit, "reason": reason})
            continue
        killed = oom_units.get(unit)
        if killed:
            last = killed.get("last")
            since = snap.get("active_since_epoch")
            if last is None or since is None or last >= since:
                restart.append({"service": name, "unit": unit,
                                "reason": "the OOM killer killed its processes {0} time(s) since it started".format(
                                    killed.get("kills", 1))})
    full = [check for check in _checks_named(diagnosis, "disk:") + _checks_named(diagnosis, "inodes:")
            if check["status"] == health.FAIL and not check.get("unchecked")]
    unchecked = [{"name": check["name"], "output": check["output"]}
                 for check in health.not_checked((diagnosis or {}).get("checks", []))]
    down = [{"kind": item["kind"], "name": item["name"], "target": item["target"], "reason": item["reason"]}
            for item in (containers or {}).get("down", [])]
    return {
        "restart": restart,
        "restart_containers": down,
        "cleanup": bool(full),
        "full_disks": [{"mount": check.get("mount") or check["name"].split(":", 1)[1], "check": check["name"],
                        "used_percent": check["observed_value"], "threshold": check.get("threshold")}
                       for check in full],
        "notes": notes,
        "unchecked": unchecked,
        "services_unchecked": unknown,
        "needed": bool(restart or full or down),
    }


def _event(moment, phase, what, status, detail=""):
    return {"time": moment, "phase": phase, "what": what, "status": status, "detail": detail}


def timeline(host, diagnosis, incident_plan, services, cleanup=None, restarts=(), verification=None,
             remediate=False, check_mode=False, containers=None, containers_after=None):
    """The incident record: outcome, summary and dated events, from the registered results.

    `containers` and `containers_after` are container_incident results, before the restarts and after.
    """
    events = []
    diagnosis = diagnosis or {}
    for item in (containers or {}).get("containers", []):
        events.append(_event(diagnosis.get("time"), "diagnose", ("Found: " if item["down"] else "Checked: ")
                             + item["target"], health.FAIL if item["down"] else health.PASS, item["reason"]))
        if item["down"] and item.get("logs"):
            events.append(_event(diagnosis.get("time"), "diagnose", "Last log lines of " + item["target"], "note",
                                 " / ".join(item["logs"][-5:])))
    for item in incident_plan.get("restart_containers", []):
        events.append(_event(diagnosis.get("time"), "plan", "Restart " + item["target"], "planned", item["reason"]))
    found = [check for check in diagnosis.get("checks", []) if check["status"] != health.PASS]
    events.append(_event(diagnosis.get("time"), "diagnose",
                         "Checked services {0}, the journal, disks, memory and OOM kills".format(
                             ", ".join(unit_name(s) for s in services)),
                         diagnosis.get("status", health.PASS),
                         "{0} fail, {1} warn{2}".format(
                             *[diagnosis.get("counts", {}).get(k, 0) for k in ("fail", "warn")] + [
                                 "; {0} could not be checked".format(len(incident_plan["unchecked"]))
                                 if incident_plan.get("unchecked") else ""])))
    for check in report.worst_first(found):
        what = ("Could not check: " if check.get("unchecked") else "Found: ") + check["name"]
        events.append(_event(diagnosis.get("time"), "diagnose", what, check["status"], check["output"]))
    for item in incident_plan.get("restart", []):
        events.append(_event(diagnosis.get("time"), "plan", "Restart {0}".format(item["unit"]), "planned",
                             item["reason"]))
    if incident_plan.get("cleanup"):
        events.append(_event(diagnosis.get("time"), "plan", "Free disk space on " + ", ".join(
            "{0} ({1:g}%)".format(disk["mount"], disk["used_percent"]) for disk in incident_plan["full_disks"]),
            "planned", "journal vacuum and rotated-log cleanup"))
    for note in incident_plan.get("notes", []):
        events.append(_event(diagnosis.get("time"), "plan", "Not remediated", "note", note))

    acted = remediate and not check_mode
    failed_actions = []
    if acted and cleanup:
        for rule in cleanup.get("rules", []):
            events.append(_event(cleanup.get("started_at"), "remediate", "Cleanup rule {0}".format(rule["name"]),
                                 "done", "{0} {1} files, {2}".format(rule["action"], rule["files"],
                                                                     human_size(rule["bytes"]))))
        for disk in cleanup.get("filesystems", []):
            if "used_percent_after" in disk:
                events.append(_event(cleanup.get("finished_at"), "remediate", "Disk use of " + disk["path"], "done",
                                     "{0:g}% before, {1:g}% after".format(disk["used_percent_before"],
                                                                          disk["used_percent_after"])))
        if cleanup.get("failed"):
            failed_actions.append("cleanup")
            events.append(_event(cleanup.get("finished_at"), "remediate", "Cleanup failed", health.FAIL,
                                 cleanup.get("msg", "")))
    for result in restarts if acted else ():
        ok = not result.get("failed")
        if not ok:
            failed_actions.append(result.get("target", "?"))
        detail = result.get("msg", "")
        if result.get("downtime_seconds") is not None:
            detail += " Downtime {0:.1f} s.".format(result["downtime_seconds"])
        events.append(_event(result.get("started_at"), "remediate", "Restart {0} with verification".format(
            result.get("target", "?")), health.PASS if ok else health.FAIL, detail.strip()))
    still_down = [item["target"] for item in (containers_after or {}).get("down", [])] if acted else []
    if acted and containers_after:
        for item in containers_after.get("containers", []):
            events.append(_event((verification or diagnosis).get("time"), "verify", (
                "Still down: " if item["down"] else "Checked again: ") + item["target"],
                health.FAIL if item["down"] else health.PASS, item["reason"]))
    if acted and verification:
        events.append(_event(verification.get("time"), "verify", "Checked the host again",
                             verification.get("status", health.PASS), "{0} fail, {1} warn".format(
                                 *[verification.get("counts", {}).get(k, 0) for k in ("fail", "warn")])))
        for check in report.worst_first(verification.get("checks", [])):
            if check["status"] == health.FAIL:
                events.append(_event(verification.get("time"), "verify", "Still failing: " + check["name"],
                                     check["status"], check["output"]))

    unchecked = incident_plan.get("unchecked") or []
    unknown = incident_plan.get("services_unchecked") or []
    blind = bool(services) and len(unknown) >= len(services)
    if (not incident_plan.get("needed") and (unchecked or unknown)) or (blind and not acted):
        outcome = UNCHECKED
        planned = " The plan for what could be checked: {0}.".format(_plan_sentence(incident_plan)) \
            if incident_plan.get("needed") else ""
        summary = "Could not decide: {0}.{1}".format(_unchecked_sentence(unchecked, unknown, services), planned)
    elif not incident_plan.get("needed"):
        outcome = HEALTHY
        summary = "Nothing to remediate: every service and container is up and no disk is above its critical threshold."
    elif not acted:
        outcome = PLANNED
        reason = "check mode" if check_mode else "remediation was not enabled (incident_remediate=true)"
        summary = "Diagnosed only ({0}). The plan: {1}.".format(reason, _plan_sentence(incident_plan))
    else:
        still_failing = [check["name"] for check in (verification or {}).get("checks", [])
                         if check["status"] == health.FAIL] + still_down
        if failed_actions or still_failing:
            outcome = UNRESOLVED
            summary = "Not resolved: {0}.".format("; ".join(
                (["failed: " + ", ".join(failed_actions)] if failed_actions else [])
                + (["still failing: " + ", ".join(still_failing)] if still_failing else [])))
        else:
            outcome = RESOLVED
            summary = "Resolved: {0}; the host passes its critical checks again.".format(_plan_sentence(incident_plan))
    if unchecked and outcome != UNCHECKED:
        summary += " Could not check: {0}.".format(", ".join(item["name"] for item in unchecked))
    times = [event["time"] for event in events if event["time"]]
    return {
        "host": host,
        "outcome": outcome,
        "summary": summary,
        "started_at": min(times) if times else None,
        "finished_at": max(times) if times else None,
        "remediate": bool(remediate),
        "check_mode": bool(check_mode),
        "plan": incident_plan,
        "unchecked": unchecked,
        "events": sorted(events, key=lambda event: (event["time"] or "")),
        "checks": (verification if acted and verification else diagnosis).get("checks", []),
    }


def _unchecked_sentence(unchecked, unknown, services):
    """What could not be checked, short: the services and why, then the names of the other checks."""
    units = [item["unit"] for item in unknown]
    reasons = []
    for item in unknown:
        if item["reason"] not in reasons:
            reasons.append(item["reason"])
    if units:
        head = "{0} ({1}): {2}".format(
            "no service could be checked" if len(units) >= len(services) else "{0} of {1} services could not be "
            "checked".format(len(units), len(services)), ", ".join(units), "; ".join(reasons))
    else:
        head = "{0} could not be made".format("one check" if len(unchecked) == 1 else "{0} checks".format(
            len(unchecked)))
    others = [item["name"] for item in unchecked if item["name"] not in ["service:" + unit for unit in units]]
    if others:
        head += ". {0}: {1}".format("Not checked either" if units else "Not checked", ", ".join(others))
    return head + ". The timeline says why for each and what to do"


def _plan_sentence(incident_plan):
    parts = ["restart {0} ({1})".format(item["unit"], item["reason"]) for item in incident_plan.get("restart", [])]
    parts += ["restart {0} ({1})".format(item["target"], item["reason"].rstrip("."))
              for item in incident_plan.get("restart_containers", [])]
    if incident_plan.get("cleanup"):
        parts.append("free space on " + ", ".join(disk["mount"] for disk in incident_plan["full_disks"]))
    return "; ".join(parts) or "nothing"


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(record):
    """The incident record for a person: outcome, timeline, and the final health table (health_report.py)."""
    lines = [
        "# Incident on {0}: {1}".format(record["host"], record["outcome"].upper()),
        "",
        record["summary"],
        "",
        "From {0} to {1} (UTC).{2}".format(record.get("started_at") or "?", record.get("finished_at") or "?",
                                           " Check mode: nothing was changed." if record.get("check_mode") else ""),
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Phase | What | Result | Detail |",
        "| --- | --- | --- | --- | --- |",
    ]
    for event in record["events"]:
        lines.append("| {0} | {1} | {2} | {3} | {4} |".format(*[_cell(event[key] or "") for key in (
            "time", "phase", "what", "status", "detail")]))
    table = report.render_markdown(record["checks"], title="Health of {0} {1}".format(
        record["host"], "after remediation" if record.get("remediate") and not record.get("check_mode")
        else "at diagnosis"))
    lines += ["", "#" + table]
    return "\n".join(lines).rstrip("\n") + "\n"
