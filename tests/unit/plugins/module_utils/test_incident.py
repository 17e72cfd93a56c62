"""The incident's quick-fix plan and its timeline, from host_health / disk_cleanup / service_restart results."""
import time

from ansible_collections.ops.runbook.plugins.module_utils import health, incident

NOW = time.time()


def snap(active=True, state="active", detail="running", result="success", exists=True, since_epoch=None):
    return {"exists": exists, "active": active, "state": state, "detail": detail, "result": result,
            "active_since_epoch": since_epoch}


def diagnosis(services, oom_units=None, disks=(("/", 40.0),), fail_at=95):
    checks = []
    for unit, state in services.items():
        checks.append(health.check("service:" + unit, health.PASS if state["active"] else health.FAIL,
                                   state["state"], "active", "{0} is {1}.".format(unit, state["state"]), host="web1"))
    for mount, used in disks:
        status = health.FAIL if used >= fail_at else health.PASS
        checks.append(health.check("disk:" + mount, status, used, {"warn": 80, "fail": fail_at},
                                   "{0} is {1}% full.".format(mount, used), unit="percent", host="web1", mount=mount))
    return {"checks": checks, "status": health.worst(checks), "counts": health.counts(checks),
            "time": "2026-02-24T02:00:00Z", "host": "web1",
            "facts": {"services": services, "oom": {"units": oom_units or {}, "kernel_kills": []}}}


def test_a_crashed_service_is_restarted_and_a_healthy_one_is_not():
    plan = incident.plan(diagnosis({"bmi-backend.service": snap(False, "failed", "failed", "signal"),
                                    "nginx.service": snap()}), ["bmi-backend", "nginx"])
    assert [item["unit"] for item in plan["restart"]] == ["bmi-backend.service"]
    assert plan["restart"][0]["reason"] == "it is failed (failed), result signal"
    assert plan["cleanup"] is False and plan["needed"] is True


def test_an_oom_kill_after_the_current_start_restarts_even_an_active_service():
    started = NOW - 3600
    plan = incident.plan(diagnosis({"bmi-backend.service": snap(since_epoch=started)},
                                   oom_units={"bmi-backend.service": {"kills": 2, "last": started + 60}}),
                         ["bmi-backend"])
    assert plan["restart"][0]["reason"] == "the OOM killer killed its processes 2 time(s) since it started"


def test_an_oom_kill_before_the_current_start_needs_no_restart():
    started = NOW - 60
    plan = incident.plan(diagnosis({"bmi-backend.service": snap(since_epoch=started)},
                                   oom_units={"bmi-backend.service": {"kills": 1, "last": started - 600}}),
                         ["bmi-backend"])
    assert plan["restart"] == [] and plan["needed"] is False


def test_a_full_disk_plans_a_cleanup_and_a_missing_unit_is_a_note():
    plan = incident.plan(diagnosis({"bmi-backend.service": snap(exists=False, active=False, state="inactive")},
                                   disks=(("/", 40.0), ("/var/log", 97.2))), ["bmi-backend"])
    assert plan["cleanup"] is True
    assert plan["full_disks"] == [{"mount": "/var/log", "check": "disk:/var/log", "used_percent": 97.2,
                                   "threshold": {"warn": 80, "fail": 95}}]
    assert plan["restart"] == []
    assert plan["notes"] == ["bmi-backend.service: its state could not be checked (systemd does not know this unit); "
                             "nothing is restarted."]
    assert plan["services_unchecked"] == [{"unit": "bmi-backend.service",
                                           "reason": "systemd does not know this unit"}]


def restart_result(ok=True):
    return {"target": "bmi-backend.service", "failed": not ok, "status": "pass" if ok else "fail",
            "msg": "bmi-backend.service was restarted and verified" if ok else "bmi-backend.service did not stay up",
            "downtime_seconds": 1.23 if ok else None, "started_at": "2026-02-24T02:00:05Z"}


CLEANUP = {"started_at": "2026-02-24T02:00:02Z", "finished_at": "2026-02-24T02:00:03Z",
           "rules": [{"name": "journal", "action": "deleted", "files": 0, "bytes": 0},
                     {"name": "rotated logs", "action": "deleted", "files": 30, "bytes": 31457280}],
           "filesystems": [{"path": "/var/log", "used_percent_before": 97.2, "used_percent_after": 12.5}]}


def verification(disk_used=12.5, backend_active=True):
    return dict(diagnosis({"bmi-backend.service": snap(backend_active, "active" if backend_active else "failed")},
                          disks=(("/var/log", disk_used),)), time="2026-02-24T02:00:10Z")


def crashed_and_full():
    found = diagnosis({"bmi-backend.service": snap(False, "failed", "failed", "signal")},
                      disks=(("/var/log", 97.2),))
    return found, incident.plan(found, ["bmi-backend"])


def test_timeline_of_a_resolved_incident_in_order():
    found, plan = crashed_and_full()
    record = incident.timeline("web1", found, plan, ["bmi-backend"], cleanup=CLEANUP, restarts=[restart_result()],
                               verification=verification(), remediate=True)
    assert record["outcome"] == incident.RESOLVED
    assert record["summary"].startswith("Resolved: restart bmi-backend.service (it is failed (failed), result "
                                        "signal); free space on /var/log")
    assert [event["phase"] for event in record["events"]] == [
        "diagnose", "diagnose", "diagnose", "plan", "plan", "remediate", "remediate", "remediate", "remediate",
        "verify"]
    details = [event["detail"] for event in record["events"]]
    assert "deleted 30 files, 30.0 MiB" in details
    assert "97.2% before, 12.5% after" in details
    assert "bmi-backend.service was restarted and verified Downtime 1.2 s." in details
    assert (record["started_at"], record["finished_at"]) == ("2026-02-24T02:00:00Z", "2026-02-24T02:00:10Z")


def test_a_failed_restart_or_a_still_full_disk_leaves_it_unresolved():
    found, plan = crashed_and_full()
    record = incident.timeline("web1", found, plan, ["bmi-backend"], cleanup=CLEANUP,
                               restarts=[restart_result(ok=False)], verification=verification(96.0, False),
                               remediate=True)
    assert record["outcome"] == incident.UNRESOLVED
    assert record["summary"] == ("Not resolved: failed: bmi-backend.service; still failing: "
                                 "service:bmi-backend.service, disk:/var/log.")
    assert any(event["what"] == "Still failing: disk:/var/log" for event in record["events"])


def test_check_mode_and_no_opt_in_only_plan():
    found, plan = crashed_and_full()
    planned = incident.timeline("web1", found, plan, ["bmi-backend"], remediate=True, check_mode=True)
    assert planned["outcome"] == incident.PLANNED
    assert planned["summary"].startswith("Diagnosed only (check mode). The plan: restart bmi-backend.service")
    assert "remediate" not in [event["phase"] for event in planned["events"]]
    not_enabled = incident.timeline("web1", found, plan, ["bmi-backend"], restarts=[restart_result()])
    assert "remediation was not enabled" in not_enabled["summary"]
    assert "remediate" not in [event["phase"] for event in not_enabled["events"]]


def test_nothing_to_do_is_said_plainly():
    found = diagnosis({"bmi-backend.service": snap()})
    record = incident.timeline("web1", found, incident.plan(found, ["bmi-backend"]), ["bmi-backend"], remediate=True)
    assert record["outcome"] == incident.HEALTHY


def test_markdown_has_the_outcome_the_timeline_and_the_final_checks():
    found, plan = crashed_and_full()
    record = incident.timeline("web1", found, plan, ["bmi-backend"], cleanup=CLEANUP, restarts=[restart_result()],
                               verification=verification(), remediate=True)
    text = incident.render_markdown(record)
    assert text.startswith("# Incident on web1: RESOLVED\n")
    assert "| 2026-02-24T02:00:05Z | remediate | Restart bmi-backend.service with verification | pass |" in text
    assert "## Health of web1 after remediation: PASS" in text
    assert "| pass | web1 | disk:/var/log | 12.5 percent | fail 95, warn 80 | /var/log is 12.5% full. |" in text


NO_SYSTEMD = ("systemd is not running this host as PID 1, so systemctl cannot tell a unit's state (System has not "
              "been booted with systemd as init system (PID 1). Can't operate.).")


def blind_diagnosis(services, disks=(("/", 40.0),), journal=True):
    """A host_health result where systemctl could not answer for `services` (and the journal was not kept)."""
    found = diagnosis({}, disks=disks)
    for unit in services:
        found["checks"].insert(0, health.unchecked("service:" + unit, "Could not check {0}: {1}".format(
            unit, NO_SYSTEMD), host="web1", unit_name=unit))
        found["facts"]["services"][unit] = {"unchecked": True, "reason": NO_SYSTEMD}
        if journal:
            found["checks"].append(health.unchecked("journal_errors:" + unit, "Could not read the journal of {0}: "
                                                    "this host keeps no journal files.".format(unit), host="web1"))
    found.update(status=health.worst(found["checks"]), counts=health.counts(found["checks"]))
    return found


def test_a_host_where_no_service_could_be_checked_is_never_healthy():
    found = blind_diagnosis(["bmi-backend.service", "nginx.service"])
    plan = incident.plan(found, ["bmi-backend", "nginx"])
    assert plan["needed"] is False and plan["restart"] == []
    assert [item["unit"] for item in plan["services_unchecked"]] == ["bmi-backend.service", "nginx.service"]
    record = incident.timeline("web1", found, plan, ["bmi-backend", "nginx"], remediate=True)
    assert record["outcome"] == incident.UNCHECKED != incident.HEALTHY
    assert record["summary"].startswith(
        "Could not decide: no service could be checked (bmi-backend.service, nginx.service): systemd is not running "
        "this host as PID 1")
    assert "Not checked either: journal_errors:bmi-backend.service, journal_errors:nginx.service" in record["summary"]
    assert "every service is active" not in record["summary"]
    whats = [event["what"] for event in record["events"]]
    assert "Could not check: service:nginx.service" in whats
    assert "Could not check: journal_errors:nginx.service" in whats
    text = incident.render_markdown(record)
    assert text.startswith("# Incident on web1: COULD NOT CHECK\n")
    assert "NO ACTION NEEDED" not in text


def test_a_partly_checked_host_lists_what_could_not_be_checked_and_is_not_healthy():
    found = diagnosis({"bmi-backend.service": snap()})
    found["checks"].append(health.unchecked("journal_errors:bmi-backend.service", "Could not read the journal of "
                                            "bmi-backend.service: this host keeps no journal files.", host="web1"))
    plan = incident.plan(found, ["bmi-backend"])
    record = incident.timeline("web1", found, plan, ["bmi-backend"])
    assert record["outcome"] == incident.UNCHECKED
    assert record["summary"] == ("Could not decide: one check could not be made. Not checked: "
                                 "journal_errors:bmi-backend.service. The timeline says why for each and what to do.")
    assert record["unchecked"] == [{"name": "journal_errors:bmi-backend.service", "output": (
        "Could not read the journal of bmi-backend.service: this host keeps no journal files.")}]


def test_a_plan_for_what_could_be_checked_still_names_what_could_not():
    found = diagnosis({"bmi-backend.service": snap(False, "failed", "failed", "signal"),
                       "nginx.service": snap()})
    found["checks"].append(health.unchecked("oom_kills", "Could not check OOM kills: no journal.", host="web1"))
    plan = incident.plan(found, ["bmi-backend", "nginx"])
    record = incident.timeline("web1", found, plan, ["bmi-backend", "nginx"])
    assert record["outcome"] == incident.PLANNED
    assert record["summary"].endswith(" Could not check: oom_kills.")


def test_no_service_checked_and_a_full_disk_is_still_could_not_check_until_remediated():
    found = blind_diagnosis(["bmi-backend.service"], disks=(("/var/log", 97.2),), journal=False)
    found["checks"].append(health.unchecked("disk:/srv", "Could not check the disk use of /srv: Permission denied.",
                                            host="web1", mount="/srv"))
    plan = incident.plan(found, ["bmi-backend"])
    # A disk that could not be read is not a full disk: nothing is cleaned on a guess.
    assert [disk["mount"] for disk in plan["full_disks"]] == ["/var/log"]
    record = incident.timeline("web1", found, plan, ["bmi-backend"])
    assert record["outcome"] == incident.UNCHECKED
    assert "The plan for what could be checked: free space on /var/log." in record["summary"]
    verified = blind_diagnosis(["bmi-backend.service"], disks=(("/var/log", 12.5),), journal=False)
    record = incident.timeline("web1", found, plan, ["bmi-backend"], cleanup=CLEANUP, verification=verified,
                               remediate=True)
    assert record["outcome"] == incident.UNRESOLVED
    assert "still failing: service:bmi-backend.service" in record["summary"]


# -- container hosts ---------------------------------------------------------------

def container(name, down, reason, logs=()):
    return {"kind": "container", "name": name, "target": "container " + name, "down": down, "reason": reason,
            "logs": list(logs)}


OOMED = container("bmi-backend", True, "container bmi-backend is exited; exit code 137; killed by the OOM killer.",
                  ["2026-02-24T01:59:58Z allocating cache"])
UP_AGAIN = container("bmi-backend", False, "container bmi-backend is running.")


def containers(*entries):
    return {"containers": list(entries), "down": [entry for entry in entries if entry["down"]]}


def test_a_container_that_is_down_is_planned_for_a_restart_without_systemd_services():
    plan = incident.plan(diagnosis({}), [], containers=containers(OOMED, container("redis", False, "up.")))
    assert plan["needed"] and plan["restart"] == []
    assert plan["restart_containers"] == [{"kind": "container", "name": "bmi-backend",
                                           "target": "container bmi-backend", "reason": OOMED["reason"]}]


def test_timeline_names_the_oom_kill_the_restart_and_the_second_look():
    found = diagnosis({})
    plan = incident.plan(found, [], containers=containers(OOMED))
    restarted = dict(restart_result(), target="container bmi-backend", msg="container bmi-backend was restarted")
    record = incident.timeline("web1", found, plan, [], restarts=[restarted], verification=None, remediate=True,
                               containers=containers(OOMED), containers_after=containers(UP_AGAIN))
    assert record["outcome"] == incident.RESOLVED, record["summary"]
    whats = [(event["phase"], event["what"], event["status"]) for event in record["events"]]
    assert ("diagnose", "Found: container bmi-backend", "fail") in whats
    assert ("diagnose", "Last log lines of container bmi-backend", "note") in whats
    assert ("remediate", "Restart container bmi-backend with verification", "pass") in whats
    assert ("verify", "Checked again: container bmi-backend", "pass") in whats
    assert "killed by the OOM killer" in incident.render_markdown(record)


def test_a_container_still_down_after_its_restart_leaves_the_incident_unresolved():
    found = diagnosis({})
    plan = incident.plan(found, [], containers=containers(OOMED))
    record = incident.timeline("web1", found, plan, [], restarts=[dict(restart_result(False),
                                                                       target="container bmi-backend")],
                               remediate=True, containers=containers(OOMED), containers_after=containers(OOMED))
    assert record["outcome"] == incident.UNRESOLVED
    assert "container bmi-backend" in record["summary"]
