"""pg_restore against a real PostgreSQL and real backups in S3."""
import json
import time

import pytest
from conftest import s3_keys

from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_restore import run_restore


def restore_options(options, database, **extra):
    return dict(options, database=database, **extra)


@pytest.mark.parametrize("dump_format,compression", [("custom", "zstd"), ("plain", "gzip")])
def test_restore_into_a_new_database_reproduces_every_row_count(pg, options, scratch, dump_format, compression):
    source = scratch("src_{}_{}".format(dump_format, compression))
    backup = run_backup(dict(options, database=source, format=dump_format, compression=compression))
    target = source + "_copy"
    result = run_restore(restore_options(options, source, target=target))
    try:
        assert result["backup_id"] == backup["backup_id"]
        assert result["target_exists"] is False and result["pre_restore_backup"] is None
        assert pg.row_counts(target) == backup["tables"] == result["tables"]
    finally:
        pg.execute('DROP DATABASE IF EXISTS "{}"'.format(target))


def test_existing_target_without_opt_in_is_refused_before_anything_happens(pg, options, scratch):
    source = scratch("src_refuse")
    run_backup(dict(options, database=source))
    pg.execute("DELETE FROM measurements WHERE id > 100", database=source)
    before = pg.row_counts(source)
    with pytest.raises(RunbookError) as caught:
        run_restore(restore_options(options, source))
    assert caught.value.details["cause"] == "target_exists"
    assert "overwrite" in str(caught.value)
    assert pg.row_counts(source) == before
    assert pg.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ops_runbook_restore_%'") == []


def test_overwrite_backs_up_the_target_first_then_brings_the_data_back(pg, s3, options, scratch):
    source = scratch("src_overwrite")
    backup = run_backup(dict(options, database=source))
    pg.execute("DELETE FROM measurements WHERE id > 100; UPDATE pgbench_branches SET bbalance = 42", database=source)
    damaged = pg.row_counts(source)
    result = run_restore(restore_options(options, source, overwrite=True, backup_id=backup["backup_id"]))

    assert pg.row_counts(source) == backup["tables"] != damaged
    pre = result["pre_restore_backup"]
    assert pre and pre["backup_id"] != backup["backup_id"]
    # The pre-restore backup holds the data as it was just before the restore.
    check = run_restore(restore_options(options, source, target=source + "_pre", backup_id=pre["backup_id"]))
    assert check["tables"] == damaged
    assert any(pre["backup_id"] in key and key.endswith("manifest.json")
               for key in s3_keys(s3, options["s3_bucket"]))
    assert pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", params=(source + "_pre_restore%",)) == []


def test_keep_previous_keeps_the_replaced_database(pg, options, scratch):
    source = scratch("src_keep")
    run_backup(dict(options, database=source))
    pg.execute("DELETE FROM measurements", database=source)
    result = run_restore(restore_options(options, source, overwrite=True, keep_previous=True))
    assert pg.execute("SELECT count(*) FROM measurements", database=result["previous_database"])[0][0] == 0
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 5000


def test_a_corrupt_newest_backup_is_skipped_for_the_newest_that_verifies(s3, options, scratch):
    source = scratch("src_skip")
    good = run_backup(dict(options, database=source))
    time.sleep(1.1)  # sets are ordered by their manifests' end times, to the second: make this one newer
    bad = run_backup(dict(options, database=source, backup_dir=options["backup_dir"] + "-2"))
    key = [k for k in bad["s3_keys"] if k.endswith(".dump.zst")][0]
    body = s3.client().get_object(Bucket=options["s3_bucket"], Key=key)["Body"].read()
    s3.client().put_object(Bucket=options["s3_bucket"], Key=key, Body=body[:100])

    plan = run_restore(restore_options(options, source, target=source + "_x"), check_mode=True)
    assert plan["backup_id"] == good["backup_id"]
    assert [s["backup_id"] for s in plan["skipped"]] == [bad["backup_id"]]


def test_check_mode_reports_the_plan_and_changes_nothing(pg, options, scratch):
    source = scratch("src_plan")
    backup = run_backup(dict(options, database=source))
    pg.execute("DELETE FROM measurements", database=source)
    plan = run_restore(restore_options(options, source, overwrite=True), check_mode=True)
    assert plan["backup_id"] == backup["backup_id"] and plan["target_exists"] is True
    assert "replacing the existing database after backing it up" in plan["msg"]
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 0


def test_list_only_lists_sets_newest_first(options, scratch):
    source = scratch("src_list")
    first = run_backup(dict(options, database=source))
    second = run_backup(dict(options, database=source, backup_dir=options["backup_dir"] + "-2"))
    listing = run_restore(restore_options(options, source, list_only=True))
    assert [row["backup_id"] for row in listing["backups"]] == [second["backup_id"], first["backup_id"]]
    assert listing["changed"] is False and listing["backups"][0]["size_bytes"] > 0


def test_restore_playbook_lists_plans_refuses_then_restores(pg, options, scratch):
    from conftest import ansible_playbook, playbook_vars

    source = scratch("src_playbook")
    backup = run_backup(dict(options, database=source))
    pg.execute("DELETE FROM measurements", database=source)
    extra = playbook_vars(options)
    extra["pg_restore_database"] = source

    listing = ansible_playbook("restore.yml", dict(extra, pg_restore_list=True))
    assert listing.returncode == 0, listing.stdout[-3000:]
    assert backup["backup_id"] + " complete=True" in listing.stdout

    planned = ansible_playbook("restore.yml", dict(extra, pg_restore_overwrite=True), "--check")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert "Would restore " + backup["backup_id"] in planned.stdout
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 0

    refused = ansible_playbook("restore.yml", extra)
    assert refused.returncode != 0 and "refusing to replace it" in refused.stdout
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 0

    restored = ansible_playbook("restore.yml", dict(extra, pg_restore_overwrite=True), "-vvv")
    output = restored.stdout + restored.stderr
    assert restored.returncode == 0, output[-3000:]
    assert pg.execute("SELECT count(*) FROM measurements", database=source)[0][0] == 5000
    assert options["login_password"] not in output and options["aws_secret_key"] not in output
    # Nor in the job events AWX stores and shows (ansible-runner's, task arguments and results included).
    events = json.dumps(restored.events)
    assert restored.events and options["login_password"] not in events and options["aws_secret_key"] not in events
