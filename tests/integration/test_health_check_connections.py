"""The morning health check reaches PostgreSQL and Redis with the connection roles' variables.

roles/health_check passes no login option itself: its dependencies ops.runbook.postgres and
ops.runbook.redis declare postgres_* and redis_* once, and the role hands them to pg_health and
redis_health as module_defaults. Both run here for real, with passwords the servers check, and
the passwords never reach the output.
"""
import json

from conftest import DATABASE, ansible_playbook


def health_check(tmp_path, health_primary, redis, **extra):
    extra_vars = {
        "health_check_hosts": "localhost", "health_check_categories": ["disk"],
        "health_check_postgres": True, "health_check_pg_database": DATABASE, "health_check_pg_checks": ["reachable"],
        "health_check_redis": True, "health_check_report_dir": str(tmp_path),
        "postgres_login_host": health_primary.host, "postgres_login_port": health_primary.port,
        "postgres_login_user": "postgres", "postgres_login_password": health_primary.password,
        "redis_host": redis.host, "redis_port": redis.port, "redis_password": redis.password,
    }
    extra_vars.update(extra)
    run = ansible_playbook("health_check.yml", extra_vars)
    with open(str(tmp_path / "health-check.json")) as handle:
        checks = json.load(handle)["checks"]
    for secret in (extra_vars["postgres_login_password"], extra_vars["redis_password"]):
        assert secret not in run.stdout + run.stderr
    return run, checks


def test_postgres_and_redis_are_reached_with_the_connection_variables(tmp_path, health_primary, start_redis):
    run, checks = health_check(tmp_path, health_primary, start_redis())
    assert checks["localhost:reachable"][0]["status"] == "pass", run.stdout[-3000:]
    assert checks["localhost:redis_memory"][0]["status"] in ("pass", "warn"), run.stdout[-3000:]
    # The summary an AWX workflow gets from the job (ansible-runner's set_stats artifact).
    summary = run.artifact_data["health_check"]
    assert summary["hosts"] == 1 and summary["failed_hosts"] == [], summary
    assert summary["status"] in ("pass", "warn") and summary["counts"]["fail"] == 0, summary
    assert run.status == "successful"


def test_wrong_passwords_are_failed_checks_that_name_the_server(tmp_path, health_primary, start_redis):
    redis = start_redis()
    run, checks = health_check(tmp_path, health_primary, redis, postgres_login_password="not-the-password",
                               redis_password="not-the-password-either")
    assert run.returncode != 0
    postgres, cache = checks["localhost:reachable"][0], checks["localhost:redis_connection"][0]
    assert postgres["status"] == "fail", postgres
    assert postgres["output"].startswith("PostgreSQL at {0}:{1} rejected the login of user 'postgres'".format(
        health_primary.host, health_primary.port)), postgres
    assert cache["status"] == "fail", cache
    assert cache["output"].startswith("Redis at {0}:{1} rejected the password".format(redis.host, redis.port)), cache
