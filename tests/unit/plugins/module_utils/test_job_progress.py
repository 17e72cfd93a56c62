"""A long job's progress file: written at once when the job says something, rewritten at every tick with the
newest probe's line, readable at any moment, and gone when the job ends."""
import datetime
import time

from ansible_collections.ops.runbook.plugins.module_utils import job_progress
from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import describe_session


def test_progress_file_follows_the_job_and_is_removed_at_the_end(tmp_path):
    path = str(tmp_path / ".progress.json")
    progress = job_progress.Progress(path, interval=1).start()
    assert job_progress.read_progress(path)["line"] == "starting"
    progress.say("dumping bmidb with pg_dump | zstd")
    first = job_progress.read_progress(path)
    assert first["line"] == "dumping bmidb with pg_dump | zstd"
    sizes = iter(range(1, 100))
    probe = progress.watch(lambda: "{0} MiB dumped".format(next(sizes)))
    time.sleep(2.3)
    ticked = job_progress.read_progress(path)
    assert ticked["line"].endswith("MiB dumped") and ticked["seq"] > first["seq"]
    progress.forget(probe)
    assert progress.line() == "dumping bmidb with pg_dump | zstd"
    progress.stop()
    assert job_progress.read_progress(path) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failing_probe_never_stops_the_job():
    progress = job_progress.Progress(None)
    progress.watch(lambda: 1 / 0)
    assert progress.line().startswith("(progress unknown: division by zero")


def test_the_module_reads_what_the_job_wrote_or_says_nothing_yet(tmp_path):
    assert job_progress.progress_result({"progress_file": str(tmp_path / "none.json")})["msg"] == \
        "no progress reported yet"
    progress = job_progress.Progress(str(tmp_path / "p.json")).start()
    progress.say("12 tables restored")
    assert job_progress.progress_result({"progress_file": str(tmp_path / "p.json")})["msg"] == "12 tables restored"
    progress.stop()


def test_a_blocking_session_is_named_by_pid_user_application_query_start_and_query():
    started = datetime.datetime(2026, 12, 6, 3, 10, tzinfo=datetime.timezone.utc)
    row = (4242, "alice", "psql", started, "idle in transaction", "LOCK TABLE orders\n  IN ACCESS EXCLUSIVE MODE")
    assert describe_session(row) == ("pid 4242 (user alice, application psql, idle in transaction, query started "
                                     "2026-12-06T03:10:00Z: LOCK TABLE orders IN ACCESS EXCLUSIVE MODE)")
    assert "application none" in describe_session((1, "bob", "", None, None, None))
