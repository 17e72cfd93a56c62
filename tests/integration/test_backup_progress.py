"""What a long backup shows while it runs, through backup.yml on the real PostgreSQL: progress lines in the
playbook's output while pg_dump runs (bytes dumped, growing), and, when pg_dump waits behind an ACCESS
EXCLUSIVE lock past pg_backup_dump_lock_timeout, a failure that names the session holding it."""
import re
import time

import pytest
from conftest import ansible_playbook, local_entries, playbook_vars

PROGRESS = re.compile(r"^\[localhost\] backup of (\S+): (.*)$", re.MULTILINE)
# pgbench at scale 20: about 300 MB, dumped with gzip -9 in about 10 s (it compresses 50 to 1); built once here.
PROGRESS_DB = "progressdb"
PROGRESS_SCALE = 20


@pytest.fixture(scope="module")
def big_database(pg):
    started = time.monotonic()
    pg.create_database(PROGRESS_DB)
    pg.run_client([pg.bindir + "/pgbench", "-i", "-q", "-s", str(PROGRESS_SCALE), PROGRESS_DB])
    print("built {0} in {1:.1f} s".format(PROGRESS_DB, time.monotonic() - started))
    yield PROGRESS_DB
    pg.execute('DROP DATABASE "{0}" WITH (FORCE)'.format(PROGRESS_DB))


def test_backup_shows_progress_lines_while_the_dump_runs(big_database, options):
    started = time.monotonic()
    extra = playbook_vars(dict(options, database=big_database, s3_bucket=None))
    extra.update(pg_backup_progress_interval=1, pg_backup_compression="gzip", pg_backup_compression_level=9)
    run = ansible_playbook("backup.yml", extra)
    assert run.returncode == 0, run.stdout[-3000:]
    lines = [line for database, line in PROGRESS.findall(run.stdout) if database == big_database]
    dumped = [line for line in lines if " dumped in " in line]
    assert len(dumped) >= 2, run.stdout[-3000:]
    units = {"B": 1, "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}
    sizes = [float(found.group(1)) * units[found.group(2)]
             for found in (re.match(r"([\d.]+) (B|KiB|MiB|GiB) dumped", line) for line in dumped)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0], dumped
    # The lines came before the task's result: they were printed while the dump ran.
    assert run.stdout.index(dumped[0]) < run.stdout.index("Backed up database " + big_database)
    print("\n".join(lines))
    print("wall time {0:.1f} s, {1} progress lines".format(time.monotonic() - started, len(lines)))


def test_backup_blocked_by_an_exclusive_lock_fails_naming_the_session(pg, scratch, options):
    started = time.monotonic()
    database = scratch("lockdb")
    blocker = pg.connect(database, autocommit=False)
    try:
        with blocker.cursor() as cur:
            cur.execute("SET application_name = 'it-schema-migration'")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
            cur.execute("LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE")
        extra = playbook_vars(dict(options, database=database, s3_bucket=None))
        extra.update(pg_backup_dump_lock_timeout=4, pg_backup_progress_interval=1)
        run = ansible_playbook("backup.yml", extra)
    finally:
        blocker.rollback()
        blocker.close()
    assert run.returncode != 0
    output = run.stdout
    assert "could not lock table public.measurements within dump_lock_timeout (4 s)" in output, output[-3000:]
    assert "held by pid {0} (user".format(pid) in output
    assert "application it-schema-migration" in output
    assert re.search(r"idle in transaction, query started [0-9T:-]+Z: LOCK TABLE measurements IN ACCESS EXCLUSIVE "
                     r"MODE\)", output)
    # While it waited, the job log said what for.
    assert re.search(r"backup of {0}: .*pg_dump has waited \d+ s for a lock on (public\.)?measurements, held by "
                     r"pid {1}".format(database, pid), output), output[-3000:]
    assert local_entries(options["backup_dir"], database) == []
    print("\n".join(line for line in output.splitlines() if "lock" in line))
    print("wall time {0:.1f} s".format(time.monotonic() - started))


def test_restore_shows_tables_restored_while_it_runs(pg, big_database, options):
    from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import run_backup

    started = time.monotonic()
    local = dict(options, database=big_database, s3_bucket=None)
    run_backup(local)
    target = big_database + "_copy"
    extra = playbook_vars(local)
    extra.update(pg_restore_database=big_database, pg_restore_target=target, pg_restore_progress_interval=1)
    try:
        run = ansible_playbook("restore.yml", extra)
        assert run.returncode == 0, run.stdout[-3000:]
        lines = re.findall(r"^\[localhost\] restore of {0}: (.*)$".format(big_database), run.stdout, re.MULTILINE)
        assert any(re.search(r"restoring into ops_runbook_restore_\w+ for \d+ s: \d+ of 4 tables restored", line)
                   for line in lines), run.stdout[-3000:]
        assert run.stdout.index(lines[0]) < run.stdout.index("Restored ")
        print("\n".join(lines))
    finally:
        pg.execute('DROP DATABASE IF EXISTS "{0}" WITH (FORCE)'.format(target))
    print("wall time {0:.1f} s".format(time.monotonic() - started))
