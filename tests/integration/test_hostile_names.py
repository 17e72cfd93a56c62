"""Database names are data, never syntax (issue 12, defect 3), on a real PostgreSQL and SeaweedFS.

Each database below holds a table of its own; it is backed up (locally and to S3),
verified with a restore test, and restored into a new database through the restore
engine. The restored table must be that database's own: a name read as a libpq
connection string would reach bmidb or postgres instead.
"""
import os
import uuid

import pytest
from conftest import BACKUP_PASSWORD, BACKUP_ROLE, s3_keys

from ansible_collections.ops.runbook.plugins.module_utils import manifest as manifest_lib
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.pg_restore import run_restore
from ansible_collections.ops.runbook.plugins.module_utils.s3_backup_verify import verify_backup

NAMES = [
    "dbname=bmidb",
    "host=127.0.0.1 dbname=postgres",
    "postgresql://localhost/postgres",
    "../../escape",
    "a/b",
    "\u00fcn\u00efc\u00f8d\u00e9-\u6570\u636e",
    "with space and 'quote' \"dq\"",
    "back\\slash",
    "%41",
    ".hidden",
    "..",
    "line\nbreak\x1b[0m",
    "\u00e9" * 31 + "x",  # 63 bytes: the longest name PostgreSQL keeps
]


def ident(name):
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def names_bucket(s3):
    return s3.create_bucket("it-names-" + uuid.uuid4().hex[:8])


@pytest.fixture
def hostile_db(pg):
    made = []

    def make(name, rows):
        pg.execute("CREATE DATABASE {0}".format(ident(name)))
        made.append(name)
        pg.execute("CREATE TABLE marker (name text, n int)", database=name)
        pg.execute("INSERT INTO marker SELECT %s, g FROM generate_series(1, %s) g", database=name,
                   params=(name, rows))
        return name

    yield make
    for name in made:
        for (datname,) in pg.execute("SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                                     params=(name, name.replace("\\", "\\\\").replace("%", "\\%")
                                             .replace("_", "\\_") + "%")):
            pg.execute("DROP DATABASE {0} WITH (FORCE)".format(ident(datname)))


def options_for(pg, s3, bucket, backup_dir, database):
    opts = pg.conn_params(database, user=BACKUP_ROLE, password=BACKUP_PASSWORD)
    opts.update(s3.s3_params(bucket, "it"), database=database, backup_dir=backup_dir)
    return opts


def all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _dirs, files in os.walk(root) for f in files)


@pytest.mark.parametrize("name", NAMES, ids=lambda n: n.encode("unicode_escape").decode("ascii"))
def test_any_database_name_is_backed_up_verified_and_restored_as_itself(
        pg, s3, names_bucket, hostile_db, tmp_path, name):
    rows = 3 + NAMES.index(name)
    hostile_db(name, rows)
    workdir = tmp_path / "work"
    workdir.mkdir()
    backup_dir = str(workdir / "backups")
    options = options_for(pg, s3, names_bucket, backup_dir, name)

    backup = run_backup(options)

    safe = manifest_lib.safe_name(name)
    manifest = backup["manifest"]
    assert manifest["database"] == name and backup["database"] == name
    assert backup["tables"] == {"public.marker": rows}
    assert backup["backup_id"].startswith(safe + "-")
    # Nothing outside backup_dir, and every file in <backup_dir>/<safe name>/<id>/.
    assert os.listdir(str(workdir)) == ["backups"]
    assert not os.path.exists(str(tmp_path.parent / "escape"))
    set_dir = os.path.join(backup_dir, safe, backup["backup_id"])
    assert backup["local_path"] == set_dir
    assert all(path.startswith(os.path.join(safe, backup["backup_id"]) + os.sep)
               for path in all_files(backup_dir) if not path.startswith(".ops-runbook"))
    # S3 keys under the prefix, in the database's own folder; metadata is ASCII.
    keys = s3_keys(s3, names_bucket, "it/{0}/".format(safe))
    assert sorted(backup["s3_keys"]) == keys
    assert all(k.startswith("it/{0}/{1}/".format(safe, backup["backup_id"])) for k in keys)
    head = s3.client().head_object(Bucket=names_bucket, Key=backup["s3_keys"][0])
    assert head["Metadata"]["backup-id"] == backup["backup_id"]

    for where in ({}, {"s3_bucket": None}):
        verified = verify_backup(dict(options, restore_test=True, min_size_bytes=0, **where))
        checks = {c["name"]: c["status"] for c in verified["checks"]}
        assert verified["backup_id"] == backup["backup_id"]
        assert checks["checksum"] == checks["integrity"] == checks["restore"] == "pass", verified["checks"]

    target = name.encode("utf-8")[:40].decode("utf-8", "ignore") + " restored"
    restored = run_restore(dict(options, target=target, min_size_bytes=0))
    assert restored["backup_id"] == backup["backup_id"]
    assert restored["tables"] == {"public.marker": rows}
    assert pg.execute("SELECT DISTINCT name, count(*) OVER () FROM marker", database=target) == [(name, rows)]
    # The restore of a database of a hostile name wrote nothing new anywhere.
    assert os.listdir(str(workdir)) == ["backups"]


@pytest.mark.parametrize("name,why", [("\u00e9" * 32, "64 bytes long"), ("a\x00b", "with a NUL")])
def test_a_name_postgresql_cannot_have_is_refused_before_anything_is_written(
        pg, s3, names_bucket, tmp_path, name, why):
    backup_dir = str(tmp_path / "backups")
    with pytest.raises(RunbookError) as caught:
        run_backup(options_for(pg, s3, names_bucket, backup_dir, name))
    assert caught.value.details["cause"] == "invalid"
    assert why in str(caught.value) and "cannot be a PostgreSQL database name" in str(caught.value)
    assert not os.path.exists(backup_dir)
    assert not s3_keys(s3, names_bucket, "it/" + "%C3%A9" * 32) and not s3_keys(s3, names_bucket, "it/a%00b")


def test_a_restore_target_postgresql_would_cut_short_is_refused(pg, s3, names_bucket, tmp_path):
    # PostgreSQL cuts names to 63 bytes: this target would be the 63-byte database itself.
    source = "\u00e9" * 31 + "x"
    options = options_for(pg, s3, names_bucket, str(tmp_path / "backups"), source)
    with pytest.raises(RunbookError) as caught:
        run_restore(dict(options, target=source + " restored"))
    assert caught.value.details["cause"] == "invalid" and "72 bytes long" in str(caught.value)


@pytest.mark.parametrize("name", ["dbname=bmidb", "host=127.0.0.1 dbname=postgres", "postgresql://localhost/bmidb"])
def test_a_name_like_a_connection_string_is_dumped_as_itself_without_a_shared_snapshot(
        pg, s3, names_bucket, hostile_db, tmp_path, name):
    # Without row counts pg_dump imports no snapshot, so nothing else would notice the wrong database.
    hostile_db(name, 2)
    options = options_for(pg, s3, names_bucket, str(tmp_path / "backups"), name)
    options.update(s3_bucket=None, row_counts="none", format="plain")
    backup = run_backup(options)
    target = "plain " + name[:30]
    run_restore(dict(options, target=target, min_size_bytes=0))
    tables = pg.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
                        database=target)
    assert tables == [("marker",)]
    assert pg.execute("SELECT DISTINCT name FROM marker", database=target) == [(name,)]
    assert backup["manifest"]["database"] == name
