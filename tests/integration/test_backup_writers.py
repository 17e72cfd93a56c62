"""Several writers under one S3 prefix (issue 12, defect 2), on a real PostgreSQL and SeaweedFS.

Hosts are mimicked by backup jobs with backup directories of their own (each has its own
host lock) backing up the same database to the same bucket and prefix.
"""
import datetime
import hashlib
import json
import os
import threading

import pytest
from conftest import DATABASE, local_entries, s3_keys

from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import BackupJob, run_backup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

WRITERS = 3


def manifest_in_s3(s3, bucket, backup_id):
    key = "it/{0}/{1}/manifest.json".format(DATABASE, backup_id)
    return json.loads(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def test_writers_starting_in_the_same_second_each_get_a_set_of_their_own(s3, options):
    started = datetime.datetime.now(datetime.timezone.utc)
    barrier = threading.Barrier(WRITERS)
    results, errors = [None] * WRITERS, []

    def host(index):
        host_options = dict(options, backup_dir="{0}-host{1}".format(options["backup_dir"], index))
        try:
            barrier.wait(30)
            results[index] = run_backup(host_options, now=started)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=host, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)

    assert not errors, errors
    ids = [r["backup_id"] for r in results]
    assert len(set(ids)) == WRITERS, ids
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    assert all(i.startswith("{0}-{1}-".format(DATABASE, stamp)) for i in ids), ids
    client = s3.client()
    for result in results:
        stored = manifest_in_s3(s3, options["s3_bucket"], result["backup_id"])
        assert stored == result["manifest"]
        assert stored["writer"] == result["backup_id"].rsplit("-", 1)[1]
        body = client.get_object(Bucket=options["s3_bucket"], Key=result["s3_keys"][0])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == result["sha256"]
        assert len(body) == result["size_bytes"]
    assert len([k for k in s3_keys(s3, options["s3_bucket"]) if k.endswith("/manifest.json")]) == WRITERS


def foreign_manifest(document):
    """What another writer's manifest under the same key could hold."""
    return dict(document, writer="f0f0f0f0", sha256="0" * 64, host="another-host.example")


def test_a_manifest_replaced_by_another_writer_is_never_reported(s3, options, monkeypatch):
    # A store that ignores If-None-Match, or a writer that does not send it: our manifest is
    # overwritten after our upload. The read-back sees it is not ours.
    replaced = {}
    original = BackupJob._read_back

    def replace_then_read_back(job, document):
        key = job.remote.key(job.database, job.backup_id, "manifest.json")
        body = json.dumps(foreign_manifest(document)).encode()
        s3.client().put_object(Bucket=options["s3_bucket"], Key=key, Body=body)
        replaced.update(key=key, body=body)
        return original(job, document)

    monkeypatch.setattr(BackupJob, "_read_back", replace_then_read_back)
    with pytest.raises(RunbookError) as caught:
        run_backup(options)

    error = caught.value
    assert error.details["cause"] == "replaced"
    message = str(error)
    assert "another writer replaced the set" in message and "not reported as a backup" in message
    assert "is complete and was kept" in message and "Nothing in S3 was deleted" in message
    sets = local_entries(options["backup_dir"])
    assert len(sets) == 1 and not sets[0].endswith(".partial")
    assert os.path.isfile(os.path.join(options["backup_dir"], DATABASE, sets[0], "manifest.json"))
    # The other writer's manifest is untouched, and nothing was deleted.
    stored = s3.client().get_object(Bucket=options["s3_bucket"], Key=replaced["key"])["Body"].read()
    assert stored == replaced["body"]
    assert len(s3_keys(s3, options["s3_bucket"], "it/{0}/{1}/".format(DATABASE, sets[0]))) == 2


def test_an_existing_manifest_key_is_never_overwritten(s3, options):
    # Another writer created the manifest key while this run dumped: S3 refuses our write (412).
    job = BackupJob(options)
    planted = {}

    def plant_foreign_manifest(message):
        if message.startswith("dumping"):
            key = job.remote.key(job.database, job.backup_id, "manifest.json")
            body = json.dumps({"backup_id": job.backup_id, "files": [], "writer": "f0f0f0f0"}).encode()
            s3.client().put_object(Bucket=options["s3_bucket"], Key=key, Body=body,
                                   Metadata={"writer": "f0f0f0f0"})
            planted.update(key=key, body=body)

    job.log = plant_foreign_manifest
    with pytest.raises(RunbookError) as caught:
        job.run()

    error = caught.value
    assert error.details["cause"] == "exists"
    message = str(error)
    assert planted["key"] in message and "another writer holds this key" in message
    assert "is complete and was kept" in message
    client = s3.client()
    assert client.get_object(Bucket=options["s3_bucket"], Key=planted["key"])["Body"].read() == planted["body"]
    # Our own dump object was removed; the other writer's manifest is all that is left.
    assert s3_keys(s3, options["s3_bucket"]) == [planted["key"]]
    sets = local_entries(options["backup_dir"])
    assert sets == [job.backup_id]


def test_a_conditional_write_to_an_existing_key_is_refused_by_the_store(s3, bucket, options):
    # The harness's SeaweedFS honours If-None-Match: * (a second put gets 412): the read-back
    # above is the second line of defence, not the only one.
    from ansible_collections.ops.runbook.plugins.module_utils.s3 import S3Store

    store = S3Store(dict(options, s3_bucket=bucket))
    key = store.key("probe", "object")
    store.put_bytes(key, b"first", exclusive=True)
    with pytest.raises(RunbookError) as caught:
        store.put_bytes(key, b"second", exclusive=True)
    assert caught.value.details["cause"] == "exists"
    assert store.conditional_writes is True
    assert s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"


def test_a_failed_manifest_upload_removes_this_runs_own_objects_only(s3, options, monkeypatch):
    original = BackupJob._put_exclusive
    foreign_key = "it/{0}/unrelated/object".format(DATABASE)
    s3.client().put_object(Bucket=options["s3_bucket"], Key=foreign_key, Body=b"x", Metadata={"writer": "f0f0f0f0"})

    def fail_at_the_manifest(job, path, key, metadata):
        if key.endswith("/manifest.json"):
            raise RunbookError("S3 put_object on {0} failed: simulated.".format(key), cause="s3_error")
        return original(job, path, key, metadata)

    monkeypatch.setattr(BackupJob, "_put_exclusive", fail_at_the_manifest)
    with pytest.raises(RunbookError) as caught:
        run_backup(options)
    assert "is complete and was kept" in str(caught.value)
    assert s3_keys(s3, options["s3_bucket"]) == [foreign_key]
    assert len(local_entries(options["backup_dir"])) == 1
