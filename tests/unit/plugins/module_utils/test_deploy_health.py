"""deploy_health judges the newest record of each application, on real records in a temporary directory."""
import datetime

from ansible_collections.ops.runbook.plugins.module_utils import deploy_health, deploy_record

START = datetime.datetime(2026, 12, 6, 3, 0, 0, tzinfo=datetime.timezone.utc)


def write(directory, application, outcome, message="", minute=0):
    record = deploy_record.new_record(application, "release", {"release": "A"}, {"release": "B"},
                                      who={"user": "ops"}, now=START + datetime.timedelta(minutes=minute))
    if outcome != "in_progress":
        deploy_record.finish(record, outcome, message, now=START + datetime.timedelta(minutes=minute + 1))
    deploy_record.write_record(directory, record)


def by_component(result):
    return {check["component"]: check for check in result["checks"]}


def test_each_outcome_has_its_status_and_the_records_sentence(tmp_path):
    directory = str(tmp_path)
    write(directory, "ok-app", "rolled_back", "old", minute=0)
    write(directory, "ok-app", "deployed", "B is live.", minute=5)
    write(directory, "back-app", "rolled_back", "B failed its health URL; A is live again.")
    write(directory, "broken-app", "rollback_failed", "B failed and A did not come back.")
    write(directory, "dead-app", "in_progress", minute=-90)
    write(directory, "busy-app", "in_progress", minute=-5)
    result = deploy_health.run_deploy_health({"records_dir": directory}, now=START)
    checks = by_component(result)
    assert checks["ok-app"]["status"] == "pass" and checks["ok-app"]["output"] == "B is live."
    assert checks["back-app"]["status"] == "warn" and "A is live again" in checks["back-app"]["output"]
    assert checks["broken-app"]["status"] == "fail" and "did not come back" in checks["broken-app"]["output"]
    assert checks["dead-app"]["status"] == "fail" and checks["dead-app"]["observed_value"] == 90.0
    assert "died half-way" in checks["dead-app"]["output"] and checks["dead-app"]["threshold"] == 60
    assert checks["busy-app"]["status"] == "pass"
    assert result["status"] == "fail"


def test_an_application_without_records_passes_and_no_directory_means_no_checks(tmp_path):
    result = deploy_health.run_deploy_health({"records_dir": str(tmp_path), "applications": ["new-app"]}, now=START)
    assert result["checks"][0]["status"] == "pass" and "No deployment" in result["checks"][0]["output"]
    nothing = deploy_health.run_deploy_health({"records_dir": str(tmp_path / "none")})
    # Skipped, so the health check leaves the host's deploy_health out instead of failing a module that ran
    # but returned no check.
    assert nothing["checks"] == [] and nothing["skipped"] is True and "nothing to check" in nothing["msg"]
