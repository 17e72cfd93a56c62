"""Connection options set once per play with module_defaults on the collection's action groups.

The tasks below pass no connection option at all: the backup, its verification and the health
checks reach the real PostgreSQL, SeaweedFS and Redis only through module_defaults, set either
literally (a user's own playbook) or from the connection roles' variables (the collection's roles).
"""

import yaml

from conftest import DATABASE, ansible_playbook

CONNECTION = ("login_host", "login_port", "login_user", "login_password")
S3 = ("s3_bucket", "s3_endpoint_url", "s3_region", "aws_access_key", "aws_secret_key")


def write_playbook(tmp_path, plays):
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return str(path)


def task_results(run, name):
    """The JSON results the default callback prints for the task called `name`, one per host."""
    marker = "TASK [{}]".format(name)
    assert marker in run.stdout, run.stdout + run.stderr
    return run.stdout.split(marker, 1)[1].split("TASK [", 1)[0]


def test_a_play_sets_the_connection_once_for_backup_verify_and_health(options, tmp_path):
    postgres = {key: options[key] for key in CONNECTION}
    s3 = {key: options[key] for key in S3}
    plays = [{
        "name": "Back up, verify and check with the connection set once",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/ops.runbook.postgres": postgres, "group/ops.runbook.s3": s3},
        "tasks": [
            {"name": "Back up", "ops.runbook.pg_backup": {
                "database": DATABASE, "backup_dir": options["backup_dir"], "s3_prefix": "it"}},
            {"name": "Verify", "ops.runbook.s3_backup_verify": {
                "database": DATABASE, "backup_dir": options["backup_dir"], "s3_prefix": "it"},
             "register": "verified"},
            {"name": "Check", "ops.runbook.pg_health": {"database": DATABASE, "checks": ["connections"]},
             "register": "health"},
            {"name": "Show", "ansible.builtin.debug": {
                "msg": "{{ {'verify': verified.status, 'health': health.status} | to_json }}"}},
        ],
    }]
    run = ansible_playbook(write_playbook(tmp_path, plays), {})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Unsupported parameters" not in run.stdout
    shown = task_results(run, "Show")
    assert '\\"verify\\": \\"pass\\"' in shown and '\\"health\\": \\"pass\\"' in shown, shown
    assert options["aws_secret_key"] not in run.stdout + run.stderr
    assert options["login_password"] not in run.stdout + run.stderr


def test_the_connection_roles_variables_reach_the_modules(pg, start_redis, tmp_path):
    redis = start_redis()
    plays = [{
        "name": "Check PostgreSQL and Redis through the connection roles",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/ops.runbook.postgres": "{{ postgres_module_defaults }}",
                            "group/ops.runbook.redis": "{{ redis_module_defaults }}"},
        "tasks": [
            {"name": "Take the PostgreSQL settings", "ansible.builtin.import_role": {"name": "ops.runbook.postgres"}},
            {"name": "Take the Redis settings", "ansible.builtin.import_role": {"name": "ops.runbook.redis"}},
            {"name": "Check PostgreSQL", "ops.runbook.pg_health": {"database": DATABASE, "checks": ["connections"]}},
            {"name": "Check Redis", "ops.runbook.redis_health": {"min_replicas": 0}, "register": "cache"},
            {"name": "Show", "ansible.builtin.debug": {"msg": "{{ cache.checks | map(attribute='name') | list }}"}},
        ],
    }]
    params = pg.conn_params(DATABASE)
    extra = {"postgres_login_host": params["login_host"], "postgres_login_port": params["login_port"],
             "postgres_login_user": params["login_user"], "postgres_login_password": params["login_password"],
             "redis_host": redis.host, "redis_port": redis.port, "redis_password": redis.password}
    run = ansible_playbook(write_playbook(tmp_path, plays), extra)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Unsupported parameters" not in run.stdout
    assert '"redis_connection"' in task_results(run, "Show")
    for secret in (params["login_password"], redis.password):
        assert secret not in run.stdout + run.stderr

    # The same play aimed at a port nothing listens on fails there: the defaults were used, not the modules' own.
    run = ansible_playbook(write_playbook(tmp_path, plays), dict(extra, postgres_login_port=1))
    assert run.returncode != 0
    failed = task_results(run, "Check PostgreSQL")
    assert "fatal" in failed and ":1" in failed, failed
    for secret in (params["login_password"], redis.password):
        assert secret not in run.stdout + run.stderr
