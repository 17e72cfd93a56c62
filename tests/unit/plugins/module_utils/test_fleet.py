"""One report for a fleet: registered task results turned into checks, nothing lost on the way."""
from ansible_collections.ops.runbook.plugins.module_utils import fleet, health

SKIPPED = {"skipped": True, "changed": False}
PING = {"ping": "pong", "changed": False}


def disk(host, used, status):
    return health.check("disk:/", status, used, {"warn": 80, "fail": 95}, "/ is {0}% full.".format(used),
                        unit="percent", host=host, mount="/")


def test_a_reached_host_passes_host_reachable_and_keeps_every_module_check():
    redis = {"checks": [health.check("redis_memory", health.PASS, 10, {"warn": 90, "fail": 95}, "fine")]}
    checks = fleet.host_checks("web1", PING, {"host_health": {"checks": [disk("web1", 40, health.PASS)]},
                                              "redis_health": redis, "http_health": SKIPPED})
    assert [(item["name"], item["status"], item["host"]) for item in checks] == [
        ("host_reachable", "pass", "web1"), ("disk:/", "pass", "web1"), ("redis_memory", "pass", "web1")]
    assert "host" not in redis["checks"][0]  # the registered result is not changed


def test_an_unreachable_host_is_one_failed_check_with_the_reason():
    connection = {"unreachable": True, "msg": "Task failed: Failed to connect to the host via ssh: Connection refused"}
    checks = fleet.host_checks("db1", connection, {"host_health": SKIPPED, "cert_check": SKIPPED})
    assert len(checks) == 1
    assert checks[0]["name"] == "host_reachable" and checks[0]["status"] == "fail" and checks[0]["host"] == "db1"
    assert checks[0]["output"].startswith(
        "Ansible could not reach db1: Failed to connect to the host via ssh: Connection refused. Check that")


def test_a_host_lost_halfway_is_unreachable_and_keeps_the_checks_that_came_back():
    lost = {"unreachable": True, "msg": "Data could not be sent to remote host"}
    checks = fleet.host_checks("web1", PING, {"host_health": {"checks": [disk("web1", 40, health.PASS)]},
                                              "http_health": lost})
    assert [(item["name"], item["status"]) for item in checks] == [("host_reachable", "fail"), ("disk:/", "pass")]


def test_a_module_that_could_not_run_is_a_failed_check_named_after_it():
    refused = {"failed": True, "msg": "Module failed: Redis at localhost:6379 rejected the password."}
    checks = fleet.host_checks("cache1", PING, {"redis_health": refused})
    assert checks[1] == {"name": "redis_health", "status": "fail", "observed_value": "error", "threshold": "runs",
                         "output": "redis_health could not run on cache1: Redis at localhost:6379 rejected the "
                                   "password.", "host": "cache1"}


def test_a_failed_module_that_still_returned_checks_counts_by_its_checks():
    failing = {"failed": True, "msg": "1 fail", "checks": [disk("web1", 97, health.FAIL)]}
    checks = fleet.host_checks("web1", PING, {"host_health": failing})
    assert [(item["name"], item["status"]) for item in checks] == [("host_reachable", "pass"), ("disk:/", "fail")]


def test_a_host_where_modules_cannot_run_fails_host_reachable():
    broken = {"failed": True, "msg": "/usr/bin/python3: not found"}
    checks = fleet.host_checks("web1", broken, {"host_health": SKIPPED})
    assert [(item["name"], item["status"]) for item in checks] == [("host_reachable", "fail")]
    assert "cannot run modules there: /usr/bin/python3: not found." in checks[0]["output"]


def test_the_fleet_keeps_the_play_order_and_reports_a_host_without_results():
    web = fleet.host_checks("web1", PING, {"host_health": {"checks": [disk("web1", 40, health.PASS)]}})
    checks = fleet.fleet_checks(["db1", "web1"], {"web1": web, "db1": None})
    assert [(item["host"], item["name"], item["status"]) for item in checks] == [
        ("db1", "host_reachable", "fail"), ("web1", "host_reachable", "pass"), ("web1", "disk:/", "pass")]
    assert checks[0]["output"].startswith("No checks came back from db1:")


def test_the_summary_lists_failures_then_warnings_and_the_report_files():
    checks = [disk("web1", 40, health.PASS), disk("db1", 97, health.FAIL), disk("app1", 85, health.WARN)]
    files = [{"format": "json", "path": "/r/h.json", "changed": True, "written": True}]
    summary = fleet.summary(checks, files)
    assert summary["status"] == "fail"
    assert summary["counts"] == {"pass": 1, "warn": 1, "fail": 1}
    assert summary["hosts"] == 3 and summary["failed_hosts"] == ["db1"]
    assert summary["headline"] == "FAIL: 1 fail, 1 warn, 1 pass on 3 hosts."
    assert summary["failing"] == ["db1 disk:/: / is 97% full."]
    assert summary["warning"] == ["app1 disk:/: / is 85% full."]
    assert summary["reports"] == {"json": "/r/h.json"}
    assert summary["nagios"].startswith("HEALTH_CHECK CRITICAL - db1 disk:/: / is 97% full.; app1 disk:/")
    assert summary["nagios_exit_code"] == 2


def test_an_empty_fleet_passes():
    assert fleet.summary([])["status"] == "pass"


def test_checks_that_could_not_be_made_fail_and_are_named_as_such():
    journal = health.unchecked("journal_errors:nginx.service", "Could not read the journal of nginx.service: this host "
                               "keeps no journal files.", host="web1")
    checks = fleet.host_checks("web1", PING, {"host_health": {"checks": [disk("web1", 40, health.PASS), journal]},
                                              "pg_health": {"checks": [], "status": "pass"}})
    by_name = dict((item["name"], item) for item in checks)
    # A module that ran and checked nothing is not a silent pass.
    assert (by_name["pg_health"]["status"], by_name["pg_health"]["unchecked"]) == ("fail", True)
    assert by_name["pg_health"]["output"].startswith("Could not check anything with pg_health on web1")
    summary = fleet.summary(checks)
    assert summary["status"] == "fail"
    assert summary["headline"] == "FAIL: 2 fail, 0 warn, 2 pass on 1 host; 2 of the failures could not be checked."
    assert summary["unchecked"] == [
        "web1 journal_errors:nginx.service: Could not read the journal of nginx.service: this host keeps no journal "
        "files.", "web1 pg_health: " + by_name["pg_health"]["output"]]
    assert fleet.summary([disk("web1", 40, health.PASS)])["unchecked"] == []
