"""Which set pg_restore takes by default, against a real PostgreSQL and real S3 (issue 12, defect 6).

A damaged newest set is skipped and reported, not fatal; the safety backup an overwrite restore takes of
the database it replaces is never the default choice afterwards; the plan names the kind of set chosen.
"""
import json
import os

import pytest
from conftest import ansible_playbook, playbook_vars

from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup
from ansible_collections.ops.runbook.plugins.module_utils.pg_restore import run_restore

BROKEN_MANIFEST = b'{"backup_id": "cut short by a full disk", "files": ['


def manifest_key(result):
    return [k for k in result["s3_keys"] if k.endswith("/manifest.json")][0]


def rewrite_manifest(s3, options, result, body):
    """Replace a set's manifest, where restore reads it: in S3 when a bucket is set, else locally."""
    if options.get("s3_bucket"):
        s3.client().put_object(Bucket=options["s3_bucket"], Key=manifest_key(result), Body=body)
    else:
        with open(os.path.join(result["local_path"], "manifest.json"), "wb") as handle:
            handle.write(body)


def without_kind(result):
    """The set's manifest as a version that did not record kinds wrote it."""
    document = dict(result["manifest"])
    del document["kind"]
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@pytest.mark.parametrize("where", ["s3", "local"])
def test_a_newest_set_with_a_damaged_manifest_is_skipped_for_the_newest_good_one(pg, s3, options, scratch, where):
    if where == "local":
        options["s3_bucket"] = None
    source = scratch("src_choice_" + where)
    good = run_backup(dict(options, database=source))
    # The older good set was written before manifests recorded a kind: it still restores, as manual.
    rewrite_manifest(s3, options, good, without_kind(good))
    bad = run_backup(dict(options, database=source))
    rewrite_manifest(s3, options, bad, BROKEN_MANIFEST)

    listing = run_restore(dict(options, database=source, list_only=True))
    rows = dict((row["backup_id"], row) for row in listing["backups"])
    assert [row["backup_id"] for row in listing["backups"]] == [bad["backup_id"], good["backup_id"]]
    assert rows[bad["backup_id"]]["valid"] is False and "is not valid" in rows[bad["backup_id"]]["reason"]
    assert rows[good["backup_id"]]["valid"] is True and rows[good["backup_id"]]["kind"] == "manual"

    target = source + "_copy"
    plan = run_restore(dict(options, database=source, target=target), check_mode=True)
    assert plan["backup_id"] == good["backup_id"] and plan["kind"] == "manual"
    assert [s["backup_id"] for s in plan["skipped"]] == [bad["backup_id"]]
    assert "is not valid" in plan["skipped"][0]["reason"]
    assert "Skipped: {0} (".format(bad["backup_id"]) in plan["msg"] and "a manual backup" in plan["msg"]
    assert len(plan["warnings"]) == 1 and bad["backup_id"] in plan["warnings"][0]

    restored = run_restore(dict(options, database=source, target=target))
    assert restored["backup_id"] == good["backup_id"]
    assert pg.row_counts(target) == good["tables"]


def test_restore_playbook_skips_a_damaged_newest_set_and_says_why(pg, s3, options, scratch):
    source = scratch("src_choice_playbook")
    good = run_backup(dict(options, database=source))
    bad = run_backup(dict(options, database=source))
    rewrite_manifest(s3, options, bad, BROKEN_MANIFEST)
    extra = dict(playbook_vars(options), pg_restore_database=source, pg_restore_target=source + "_pb")

    listing = ansible_playbook("restore.yml", dict(extra, pg_restore_list=True))
    assert listing.returncode == 0, listing.stdout[-3000:]
    assert bad["backup_id"] + ": The manifest" in listing.stdout

    run = ansible_playbook("restore.yml", extra)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Kind of the chosen set: manual" in run.stdout
    assert "Skipped: {0} - The manifest".format(bad["backup_id"]) in run.stdout
    assert "[WARNING]: Backup set {0} was not restored".format(bad["backup_id"]) in run.stdout + run.stderr
    assert "Restored {0} (a manual backup)".format(good["backup_id"]) in run.stdout
    assert pg.row_counts(source + "_pb") == good["tables"]


def test_a_second_default_restore_never_brings_back_the_pre_restore_backup(pg, s3, options, scratch):
    source = scratch("src_choice_twice")
    good = run_backup(dict(options, database=source, kind="scheduled"))
    assert good["manifest"]["kind"] == "scheduled"
    pg.execute("DELETE FROM measurements WHERE id > 100", database=source)  # the bad data the restore replaces
    damaged = pg.row_counts(source)

    first = run_restore(dict(options, database=source, overwrite=True))
    assert first["backup_id"] == good["backup_id"] and first["kind"] == "scheduled"
    pre_id = first["pre_restore_backup"]["backup_id"]
    key = [k for k in s3.client().list_objects_v2(Bucket=options["s3_bucket"])["Contents"]
           if k["Key"].endswith(pre_id + "/manifest.json")][0]["Key"]
    pre_manifest = json.loads(s3.client().get_object(Bucket=options["s3_bucket"], Key=key)["Body"].read())
    assert pre_manifest["kind"] == "pre-restore" and pre_manifest["tables"] == damaged

    # The pre-restore set is now the newest; the default choice passes over it and says so.
    plan = run_restore(dict(options, database=source, overwrite=True), check_mode=True)
    assert plan["backup_id"] == good["backup_id"] and plan["kind"] == "scheduled"
    assert [(s["backup_id"], s["kind"]) for s in plan["skipped"]] == [(pre_id, "pre-restore")]
    assert "pre-restore backup" in plan["skipped"][0]["reason"] and plan["warnings"] == []
    assert "Would restore {0} (a scheduled backup".format(good["backup_id"]) in plan["msg"]

    second = run_restore(dict(options, database=source, overwrite=True))
    assert second["backup_id"] == good["backup_id"]
    assert pg.row_counts(source) == good["tables"] != damaged

    # Named, a pre-restore set is restored like any other.
    named = run_restore(dict(options, database=source, target=source + "_named", backup_id=pre_id), check_mode=True)
    assert named["backup_id"] == pre_id and named["kind"] == "pre-restore" and named["skipped"] == []


def test_a_damaged_older_set_does_not_fail_the_newest_good_one(s3, options, scratch):
    # Verification compares a set's size with the previous set's; a damaged previous set must not
    # make restore pass over the newest good set for an older one.
    source = scratch("src_choice_between")
    run_backup(dict(options, database=source))
    middle = run_backup(dict(options, database=source))
    newest = run_backup(dict(options, database=source))
    rewrite_manifest(s3, options, middle, BROKEN_MANIFEST)

    plan = run_restore(dict(options, database=source, target=source + "_copy"), check_mode=True)
    assert plan["backup_id"] == newest["backup_id"] and plan["skipped"] == []
    assert {c["name"]: c["status"] for c in plan["verification"]}["size"] == "pass"
