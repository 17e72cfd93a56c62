"""What a long backup shows while it runs, through backup.yml on the real PostgreSQL and S3: progress lines in the
playbook's output while pg_dump of a 1 GiB database runs (bytes dumped and parts uploaded, growing), and, when
pg_dump waits behind an ACCESS EXCLUSIVE lock past pg_backup_dump_lock_timeout, a failure that names the session
holding it."""
import re
import time

import pytest
from conftest import ansible_playbook, local_entries, playbook_vars, s3_keys

PROGRESS = re.compile(r"^\[localhost\] backup of (\S+): (.*)$", re.MULTILINE)
UNITS = {"B": 1, "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}
# The acceptance's "1 GB backup": pgbench tables at scale 85 are about 1.1 GiB on disk (checked below, not assumed).
# Unlogged and without indexes, so the fixture costs a few seconds: pg_dump reads the same rows either way, and
# the dump (about 0.8 GiB of COPY text before compression) is what the progress lines follow.
PROGRESS_DB = "progressdb"
PROGRESS_SCALE = 85
GiB = 2 ** 30


@pytest.fixture(scope="module")
def big_database(pg):
    started = time.monotonic()
    pg.create_database(PROGRESS_DB)
    pg.run_client([pg.bindir + "/pgbench", "-i", "-q", "-s", str(PROGRESS_SCALE), "-I", "dtg", "--unlogged-tables",
                   PROGRESS_DB])
    size = pg.execute("SELECT pg_database_size(%s)", params=(PROGRESS_DB,))[0][0]
    assert size >= GiB, "the progress database is {0} bytes, not the 1 GiB the test is about".format(size)
    print("built {0} ({1:.2f} GiB) in {2:.1f} s".format(PROGRESS_DB, size / GiB, time.monotonic() - started))
    yield PROGRESS_DB
    pg.execute('DROP DATABASE "{0}" WITH (FORCE)'.format(PROGRESS_DB))


def _amounts(lines, pattern):
    found = (re.search(pattern, line) for line in lines)
    return [float(match.group(1)) * UNITS.get(match.group(2), 1) for match in found if match]


def test_backup_of_1_gib_shows_progress_lines_while_the_dump_runs(s3, bucket, big_database, options):
    started = time.monotonic()
    extra = playbook_vars(dict(options, database=big_database))
    # gzip -9: pg_dump and gzip take about 10 s on 1 GiB here (5 s at gzip's usual level, too close to one line on a
    # faster machine); a line every second shows it moving.
    extra.update(pg_backup_progress_interval=1, pg_backup_compression="gzip", pg_backup_compression_level=9)
    run = ansible_playbook("backup.yml", extra)
    assert run.returncode == 0, run.stdout[-3000:]
    lines = [line for database, line in PROGRESS.findall(run.stdout) if database == big_database]
    dumped = [line for line in lines if " dumped in " in line]
    assert len(dumped) >= 2, run.stdout[-3000:]
    sizes = _amounts(dumped, r"([\d.]+) (B|KiB|MiB|GiB) dumped")
    assert len(sizes) == len(dumped) and sizes == sorted(sizes) and sizes[-1] > sizes[0], dumped
    parts = _amounts(dumped, r"(\d+) part(s?) uploaded")
    assert len(parts) == len(dumped) and parts == sorted(parts), dumped
    # "dumped" is pg_dump's own output (what gzip has read), not the compressed file: it outgrows what gzip wrote.
    written = _amounts(dumped, r"([\d.]+) (B|KiB|MiB|GiB) after gzip")
    assert len(written) == len(dumped) and sizes[-1] > 10 * written[-1] and sizes[-1] >= 100 * 2 ** 20, dumped
    # The lines came before the task's result: they were printed while the dump ran.
    assert run.stdout.index(dumped[0]) < run.stdout.index("Backed up database " + big_database)
    # And the backup they followed is in the store.
    keys = s3_keys(s3, bucket)
    assert any("/{0}/".format(big_database) in key for key in keys), keys
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
