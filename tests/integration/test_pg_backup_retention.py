"""Retention against a real PostgreSQL and a real S3 store, with sets a hostile world leaves behind (issue 12, 1).

Sets dated in the future (a host with a skewed clock), damaged manifests, foreign manifests, short or
missing dumps: retention must never count them, never delete them, and say so; the good sets it keeps
are the newest by their manifests' end times.
"""
import datetime
import json
import os
import re
import time

import pytest
from conftest import DATABASE, ansible_module, module_result, s3_keys

from ansible_collections.ops.runbook.plugins.module_utils import pg_backup_cli
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup

STAMP = re.compile(r"\d{8}T\d{6}")
YEAR_2099 = datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc)
PRUNE_HARD = dict(keep_days=0, keep_count=1, s3_keep_days=0, s3_keep_count=1)


def renamed(backup_id, moment):
    """`backup_id` with its time replaced by `moment`: the id a set taken then would have."""
    return STAMP.sub(moment.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S"), backup_id, count=1)


def started(result):
    return datetime.datetime.strptime(result["manifest"]["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def manifest_bytes(document):
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def dump_bytes(result):
    with open(result["dump_path"], "rb") as handle:
        return handle.read()


class Planted(object):
    """A set written by hand beside `result`'s, locally and in S3, from the given bytes (None leaves a file out)."""

    def __init__(self, s3, bucket, result, set_id, manifest, dump):
        self.s3, self.bucket, self.set_id = s3, bucket, set_id
        self.local_dir = os.path.join(os.path.dirname(result["local_path"]), set_id)
        manifest_key = result["s3_keys"][-1]
        assert manifest_key.endswith("/" + result["backup_id"] + "/manifest.json")
        self.prefix = manifest_key[:-len(result["backup_id"] + "/manifest.json")] + set_id + "/"
        os.makedirs(self.local_dir)
        for name, body in ((result["manifest"]["dump_file"], dump), ("manifest.json", manifest)):
            if body is None:
                continue
            with open(os.path.join(self.local_dir, name), "wb") as handle:
                handle.write(body)
            s3.client().put_object(Bucket=bucket, Key=self.prefix + name, Body=body)
        self.before = self.contents()
        assert len(self.before["s3"]) == len([b for b in (manifest, dump) if b is not None])

    def contents(self):
        local = {}
        if os.path.isdir(self.local_dir):
            for name in os.listdir(self.local_dir):
                with open(os.path.join(self.local_dir, name), "rb") as handle:
                    local[name] = handle.read()
        client = self.s3.client()
        remote = dict((key, client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
                      for key in s3_keys(self.s3, self.bucket, self.prefix))
        return {"local": local, "s3": remote}

    def untouched(self):
        return self.contents() == self.before


def reported(retention, key):
    """{(where, backup_id): reason} of retention's `key` list ("invalid" or "future")."""
    return dict(((item["where"], item["backup_id"]), item["reason"]) for item in retention[key])


def set_ids_in_s3(s3, bucket):
    return sorted({key.split("/")[2] for key in s3_keys(s3, bucket, "it/") if key.count("/") >= 3})


def local_sets(result):
    base = os.path.dirname(result["local_path"])
    return sorted(name for name in os.listdir(base) if not name.startswith("."))


@pytest.mark.parametrize("manifest_state", ["valid-looking", "broken"])
def test_a_set_dated_in_the_future_never_pushes_the_good_sets_out(s3, options, manifest_state):
    # The reproduction: a set named in 2099 counted as the newest, and keep_count 1 deleted
    # every good set, locally and in S3, leaving only the broken one.
    first = run_backup(options)
    future_id = renamed(first["backup_id"], YEAR_2099)
    if manifest_state == "valid-looking":
        manifest = manifest_bytes(dict(first["manifest"], backup_id=future_id, started_at="2099-01-01T00:00:00Z",
                                       finished_at="2099-01-01T00:05:00Z"))
    else:
        manifest = b'{"backup_id": "' + future_id.encode() + b'", "files": ['
    future = Planted(s3, options["s3_bucket"], first, future_id, manifest, dump_bytes(first))
    options.update(PRUNE_HARD)

    plan = run_backup(options, check_mode=True)
    second = run_backup(options)

    for result, verb in ((plan, "would_delete"), (second, "deleted")):
        retention = result["retention"]
        assert retention["local_" + verb] == [first["backup_id"]]
        assert retention["s3_" + verb] == [first["backup_id"]]
        key = "future" if manifest_state == "valid-looking" else "invalid"
        assert set(reported(retention, key)) == {("local", future_id), ("s3", future_id)}
        assert len(result["warnings"]) == 2 and all(future_id in w for w in result["warnings"])
    if manifest_state == "valid-looking":
        assert "2099-01-01T00:00:00Z" in reported(second["retention"], "future")[("s3", future_id)]
        assert "dated in the future" in second["warnings"][0]
    else:
        assert "not valid" in reported(second["retention"], "invalid")[("local", future_id)]
    # The newest good set survives in both places; the one from 2099 is exactly as it was.
    assert local_sets(second) == sorted([second["backup_id"], future_id])
    assert set_ids_in_s3(s3, options["s3_bucket"]) == sorted([second["backup_id"], future_id])
    assert future.untouched()


def test_a_manifest_with_a_skewed_end_time_is_reported_and_kept(s3, options):
    # Named like an ordinary set of yesterday, but its manifest says it finished in 2099.
    first = run_backup(options)
    skewed_id = renamed(first["backup_id"], started(first) - datetime.timedelta(days=1))
    manifest = manifest_bytes(dict(first["manifest"], backup_id=skewed_id, finished_at="2099-06-01T12:00:00Z"))
    skewed = Planted(s3, options["s3_bucket"], first, skewed_id, manifest, dump_bytes(first))
    options.update(PRUNE_HARD)

    second = run_backup(options)

    assert second["retention"]["local_deleted"] == [first["backup_id"]]
    assert second["retention"]["s3_deleted"] == [first["backup_id"]]
    future = reported(second["retention"], "future")
    assert set(future) == {("local", skewed_id), ("s3", skewed_id)}
    assert "its manifest says it finished at 2099-06-01T12:00:00Z" in future[("local", skewed_id)]
    assert skewed.untouched()
    assert set_ids_in_s3(s3, options["s3_bucket"]) == sorted([second["backup_id"], skewed_id])


def test_damaged_sets_are_reported_never_counted_and_never_deleted(s3, options):
    first = run_backup(options)
    dump = dump_bytes(first)
    ids = [renamed(first["backup_id"], started(first) + datetime.timedelta(seconds=n)) for n in (1, 2, 3, 4)]

    def fitting(set_id):
        return manifest_bytes(dict(first["manifest"], backup_id=set_id))

    planted = {
        "damaged manifest": Planted(s3, options["s3_bucket"], first, ids[0], fitting(ids[0])[:40], dump),
        "short dump": Planted(s3, options["s3_bucket"], first, ids[1], fitting(ids[1]), dump[:len(dump) // 2]),
        "foreign manifest": Planted(s3, options["s3_bucket"], first, ids[2], manifest_bytes(first["manifest"]), dump),
        "missing dump": Planted(s3, options["s3_bucket"], first, ids[3], fitting(ids[3]), None),
    }
    while datetime.datetime.now(datetime.timezone.utc) < started(first) + datetime.timedelta(seconds=5):
        time.sleep(0.2)  # the next real set must be newer than the planted ones
    # Keep two: counted by name, the four damaged sets would be newer than `first` and push it out.
    options.update(keep_days=0, keep_count=2, s3_keep_days=0, s3_keep_count=2)

    plan = run_backup(options, check_mode=True)
    second = run_backup(options)

    for result in (plan, second):
        invalid = reported(result["retention"], "invalid")
        assert set(invalid) == {(where, set_id) for where in ("local", "s3") for set_id in ids}
        assert len(result["warnings"]) == 8
    assert plan["retention"]["local_would_delete"] == plan["retention"]["s3_would_delete"] == []
    assert second["retention"]["local_deleted"] == second["retention"]["s3_deleted"] == []
    reasons = reported(second["retention"], "invalid")
    for where in ("local", "s3"):
        assert "is not valid" in reasons[(where, ids[0])]
        assert "is {0} bytes, not the {1}".format(len(dump) // 2, len(dump)) in reasons[(where, ids[1])]
        assert "belongs to another set ('{0}')".format(first["backup_id"]) in reasons[(where, ids[2])]
        assert "is missing" in reasons[(where, ids[3])]
    assert all(p.untouched() for p in planted.values())
    assert local_sets(second) == sorted(ids + [first["backup_id"], second["backup_id"]])

    # The damaged sets do not protect anything either: with keep 1, the older good set goes.
    options.update(PRUNE_HARD)
    third = run_backup(options)
    assert sorted(third["retention"]["local_deleted"]) == sorted([first["backup_id"], second["backup_id"]])
    assert sorted(third["retention"]["s3_deleted"]) == sorted([first["backup_id"], second["backup_id"]])
    assert all(p.untouched() for p in planted.values())


def test_warnings_reach_ansible_and_the_host_job_log(s3, options, tmp_path, capsys):
    first = run_backup(options)
    future_id = renamed(first["backup_id"], YEAR_2099)
    manifest = manifest_bytes(dict(first["manifest"], backup_id=future_id, finished_at="2099-01-01T00:05:00Z"))
    future = Planted(s3, options["s3_bucket"], first, future_id, manifest, dump_bytes(first))
    options.update(PRUNE_HARD)

    run = ansible_module("ops.runbook.pg_backup", dict((k, v) for k, v in options.items() if k != "login_db"))
    result = module_result(run)
    assert not result.get("failed"), run.stdout[-3000:]
    assert result["kind"] == "manual" and result["manifest"]["kind"] == "manual"
    assert len(result["warnings"]) == 2 and all("dated in the future" in w for w in result["warnings"])

    config = tmp_path / "pg_backup.json"
    config.write_text(json.dumps({"jobs": [options]}))
    assert pg_backup_cli.main(["--config", str(config), "--credentials", str(tmp_path / "none.json")]) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert line["kind"] == "scheduled"
    assert len(line["warnings"]) == 2
    assert "pg_backup of {0}: warning: Backup set".format(DATABASE) in captured.err and future_id in captured.err
    assert future.untouched()
