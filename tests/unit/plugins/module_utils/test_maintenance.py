"""The gates of a maintenance window: a fresh verified backup, free space, a healthy fleet."""
from ansible_collections.ops.runbook.plugins.module_utils import health, maintenance

GIB = 1024 ** 3


def backups(*items):
    return {"results": [dict({"pg_backup_database": database, "backup_id": backup_id, "changed": True}, **extra)
                        for database, backup_id, extra in items]}


def verifications(*items):
    return {"results": [dict({"pg_verify_database": database, "backup_id": backup_id, "status": status}, **extra)
                        for database, backup_id, status, extra in items]}


def gate(backup, verification, check_mode=False):
    return maintenance.backup_gate(["db1"], {"db1": backup}, {"db1": verification}, check_mode=check_mode)


def test_a_fresh_backup_verified_as_that_very_set_passes():
    checks = gate(backups(("bmidb", "bmidb-20260224T020000Z", {})),
                  verifications(("bmidb", "bmidb-20260224T020000Z", "pass", {})))
    assert [(item["name"], item["status"], item["host"]) for item in checks] == [("backup:bmidb", "pass", "db1")]
    assert checks[0]["output"] == "Backed up bmidb on db1 as bmidb-20260224T020000Z and verified it (all checks pass)."


def test_a_failed_backup_fails_with_its_message():
    checks = gate(backups(("bmidb", None, {"failed": True, "msg": "Module failed: PostgreSQL at 127.0.0.1:5432 "
                                                                  "rejected the login of user 'backup'."})),
                  verifications(("bmidb", "bmidb-20260101T020000Z", "pass", {})))
    assert checks[0]["status"] == "fail"
    assert checks[0]["output"] == ("The backup of bmidb on db1 failed: PostgreSQL at 127.0.0.1:5432 rejected the "
                                   "login of user 'backup'.")


def test_an_older_set_verified_instead_of_the_fresh_one_fails():
    checks = gate(backups(("bmidb", "bmidb-20260224T020000Z", {})),
                  verifications(("bmidb", "bmidb-20260223T020000Z", "pass", {})))
    assert checks[0]["status"] == "fail" and checks[0]["observed_value"] == "other set verified"


def test_a_failed_verification_fails_and_a_warning_passes():
    failed = gate(backups(("bmidb", "b1", {})), verifications(("bmidb", "b1", "fail", {"msg": "sha256 differs"})))
    assert failed[0]["status"] == "fail" and failed[0]["output"].endswith("failed its verification: sha256 differs")
    warned = gate(backups(("bmidb", "b1", {})), verifications(("bmidb", "b1", "warn", {})))
    assert warned[0]["status"] == "pass" and warned[0]["output"].endswith("(with warnings).")


def test_every_database_is_judged_and_one_not_verified_fails():
    checks = gate(backups(("bmidb", "b1", {}), ("other", "o1", {})), verifications(("bmidb", "b1", "pass", {})))
    assert [(item["name"], item["status"]) for item in checks] == [("backup:bmidb", "pass"), ("backup:other", "fail")]


def test_a_host_without_results_fails():
    checks = maintenance.backup_gate(["db1", "db2"], {"db1": backups(("bmidb", "b1", {})), "db2": None},
                                     {"db1": verifications(("bmidb", "b1", "pass", {})), "db2": None})
    assert [(item["host"], item["status"]) for item in checks] == [("db1", "pass"), ("db2", "fail")]
    assert checks[1]["output"].startswith("No backup result from db2:")


def test_check_mode_passes_on_the_newest_existing_set_that_verifies():
    checks = gate(backups(("bmidb", None, {})), verifications(("bmidb", "bmidb-20260223T020000Z", "pass", {})),
                  check_mode=True)
    assert checks[0]["status"] == "pass"
    assert checks[0]["output"] == ("Would back up bmidb on db1 and verify it; its newest backup "
                                   "bmidb-20260223T020000Z verifies now.")


def host_health_disks(*disks):
    return {"checks": [health.check("disk:" + mount, health.PASS, 40, {"warn": 80, "fail": 95}, "fine",
                                    unit="percent", host="web1", mount=mount, available_bytes=free)
                       for mount, free in disks] + [health.check("memory", health.PASS, 5, {}, "fine")]}


def test_the_disk_gate_holds_each_file_system_against_the_floor():
    checks = maintenance.disk_gate("web1", host_health_disks(("/", 5 * GIB), ("/var", GIB // 2)), GIB)
    assert [(item["name"], item["status"], item["observed_value"]) for item in checks] == [
        ("free_space:/", "pass", 5 * GIB), ("free_space:/var", "fail", GIB // 2)]
    assert checks[1]["output"] == "/var has 512.0 MiB free, less than the 1.0 GiB the maintenance needs."


def test_the_disk_gate_fails_when_the_space_could_not_be_read():
    checks = maintenance.disk_gate("web1", {"failed": True, "msg": "Module failed: permission denied"}, GIB)
    assert checks[0]["status"] == "fail"
    assert checks[0]["output"] == "The free disk space of web1 could not be read: permission denied"


def test_a_file_system_whose_space_could_not_be_read_is_not_dropped_from_the_disk_gate():
    result = host_health_disks(("/", 5 * GIB))
    result["checks"].append(health.unchecked("disk:/srv/data", "Could not check the disk use of /srv/data: "
                                             "Permission denied.", host="web1", mount="/srv/data"))
    checks = maintenance.disk_gate("web1", result, GIB)
    assert [(item["name"], item["status"]) for item in checks] == [("free_space:/srv/data", "fail"),
                                                                   ("free_space:/", "pass")]
    assert checks[0]["unchecked"] is True
    assert checks[0]["output"] == ("The free disk space of /srv/data on web1 could not be read: Could not check the "
                                   "disk use of /srv/data: Permission denied.")
    assert maintenance.decide(passing("backup:bmidb"), checks, {"status": "pass"})["go"] is False
    only = maintenance.disk_gate("web1", {"checks": result["checks"][-1:]}, GIB)
    assert [(item["name"], item["status"]) for item in only] == [("free_space:/srv/data", "fail")]


def passing(*names):
    return [health.check(name, health.PASS, "ok", "ok", "fine", host="db1") for name in names]


def test_the_decision_goes_when_every_gate_passes():
    decision = maintenance.decide(passing("backup:bmidb"), passing("free_space:/"), {"status": "warn"})
    assert decision["go"] is True and decision["refusals"] == []


def test_the_decision_names_every_refusal():
    failed_backup = [health.check("backup:bmidb", health.FAIL, "backup failed", "x", "The backup failed.")]
    full = [health.check("free_space:/", health.FAIL, 1, 2, "/ has 1 B free.", host="web1")]
    decision = maintenance.decide(failed_backup, full, {"status": "fail", "failing": ["web1 service:nginx: down."]})
    assert decision["go"] is False
    assert decision["refusals"] == [
        "Backup gate: The backup failed.",
        "Health gate: web1 service:nginx: down. (set maintenance_window_health_override=true to start anyway).",
        "Disk gate: web1 / has 1 B free.",
    ]


def test_the_override_lets_a_failing_health_check_through_and_says_so():
    decision = maintenance.decide(passing("backup:bmidb"), [], {"status": "fail", "failing": ["x"]},
                                  override_health=True)
    assert decision["go"] is True and decision["health_overridden"] is True


def test_no_backup_at_all_refuses():
    assert maintenance.decide([], [], {"status": "pass"})["go"] is False
