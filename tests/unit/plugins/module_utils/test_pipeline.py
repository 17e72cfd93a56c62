import hashlib
import os
import threading
import time

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.deadline import Deadline
from ansible_collections.ops.runbook.plugins.module_utils.pipeline import (
    DISCARD_REST, PipelineError, bytes_read, copy_to_file, hash_alongside, run_to_file, stream_through)


def sh(script):
    return ["sh", "-c", script]


def test_on_start_names_each_running_stage_and_bytes_read_follows_the_reader(tmp_path):
    """The dump's progress line counts pg_dump's output by what the compressor has read (/proc/PID/io)."""
    seen = []

    def on_start(stages):
        # Called while the stages run: the reader's count is readable now and grows to the producer's output.
        seen.append((stages, bytes_read(stages[1][1])))

    payload = 3 * 1024 * 1024
    size, _digest = run_to_file([("producer", sh("head -c {0} /dev/zero; sleep 0.3".format(payload))),
                                 ("gzip", ["gzip", "-1", "-c"])], str(tmp_path / "out"), on_start=on_start)
    (stages, first), = seen
    assert [name for name, _pid in stages] == ["producer", "gzip"]
    assert all(isinstance(pid, int) and pid > 0 for _name, pid in stages)
    assert first is not None and 0 <= first <= payload + 65536
    assert 0 < size < payload  # the file holds the compressed stream
    assert bytes_read(stages[1][1]) is None  # reaped: nothing to read, not a made-up zero


def test_bytes_read_counts_this_process_reads(tmp_path):
    before = bytes_read(os.getpid())
    (tmp_path / "data").write_bytes(b"x" * 100000)
    (tmp_path / "data").read_bytes()
    assert bytes_read(os.getpid()) >= before + 100000


def test_output_size_and_hash_match_the_bytes(tmp_path):
    dest = tmp_path / "out"
    size, digest = run_to_file([("producer", sh("printf 'hello world'")), ("upper", ["tr", "a-z", "A-Z"])], str(dest))
    assert dest.read_bytes() == b"HELLO WORLD"
    assert (size, digest) == (11, hashlib.sha256(b"HELLO WORLD").hexdigest())


def test_failing_producer_fails_even_though_the_last_stage_succeeds(tmp_path):
    # The runbook's `pg_dump | gzip > file` under `set -e` reports success here.
    dest = tmp_path / "out.gz"
    with pytest.raises(PipelineError) as caught:
        run_to_file([("pg_dump", sh("echo 'connection lost' >&2; exit 1")), ("gzip", ["gzip", "-c"])], str(dest))
    assert caught.value.details["stage"] == "pg_dump"
    assert "connection lost" in str(caught.value)
    assert not dest.exists()


def test_failing_filter_is_blamed_not_the_producer_it_broke(tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(PipelineError) as caught:
        run_to_file([("producer", ["yes"]), ("filter", sh("head -c 10 >/dev/null; echo 'bad level' >&2; exit 3"))],
                    str(dest))
    assert caught.value.details["stage"] == "filter"
    assert caught.value.details["returncode"] == 3
    assert not dest.exists()


def test_missing_program_is_named(tmp_path):
    with pytest.raises(PipelineError) as caught:
        run_to_file([("zstd", ["/nonexistent/zstd"])], str(tmp_path / "out"))
    assert "Cannot start zstd" in str(caught.value)


def test_existing_destination_is_never_overwritten(tmp_path):
    dest = tmp_path / "out"
    dest.write_bytes(b"good backup")
    with pytest.raises(RunbookError):
        run_to_file([("producer", sh("printf new"))], str(dest))
    assert dest.read_bytes() == b"good backup"


def test_copy_to_file_hashes_and_refuses_overwrite(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    size, digest = copy_to_file(str(src), str(tmp_path / "copy"))
    assert (size, digest) == (src.stat().st_size, hashlib.sha256(src.read_bytes()).hexdigest())
    with pytest.raises(RunbookError):
        copy_to_file(str(src), str(tmp_path / "copy"))


def collect(chunks, stages):
    out = []
    size = stream_through(iter(chunks), stages, out.append)
    return size, b"".join(out)


def test_stream_through_feeds_processes_and_returns_input_size():
    size, out = collect([b"abc", b"def"], [("upper", ["tr", "a-z", "A-Z"]), ("rev", ["rev"])])
    assert (size, out) == (6, b"FEDCBA")


def test_stream_through_without_stages_passes_input_on():
    assert collect([b"x" * 10, b"y"], []) == (11, b"x" * 10 + b"y")


def test_stream_through_survives_a_stage_that_stops_reading():
    chunks = [b"z" * 65536] * 64
    with pytest.raises(PipelineError) as caught:
        collect(chunks, [("reader", sh("head -c 1 >/dev/null; echo 'corrupt input' >&2; exit 2"))])
    assert caught.value.details["stage"] == "reader"
    assert "corrupt input" in str(caught.value)


def test_stream_through_names_a_failing_decompressor():
    with pytest.raises(PipelineError) as caught:
        collect([b"this is not zstd"], [("zstd", ["zstd", "-dc"])])
    assert caught.value.details["stage"] == "zstd"


def test_stream_through_discards_the_rest_and_counts_it_exactly():
    chunks = [bytes([n]) * 300000 for n in range(40)]  # 12 MB, more than a pipe and a chunk hold
    seen, discarded = [], []

    def first_chunk_only(data):
        seen.append(data)
        return DISCARD_REST

    size = stream_through(iter(chunks), [("cat", ["cat"])], first_chunk_only, on_discarded=discarded.append)
    assert size == 40 * 300000
    assert len(seen) == 1 and seen[0] == b"".join(chunks)[:len(seen[0])]
    assert len(seen[0]) + discarded[0] == size


def test_stream_through_still_fails_a_stage_that_fails_after_the_discard():
    chunks = [b"q" * 65536] * 100
    with pytest.raises(PipelineError) as caught:
        stream_through(iter(chunks), [("copier", sh("head -c 3000000; echo 'truncated frame' >&2; exit 4"))],
                       lambda data: DISCARD_REST)
    assert caught.value.details["stage"] == "copier"
    assert "truncated frame" in str(caught.value)


def test_hash_alongside_passes_every_chunk_on_and_hashes_them_all():
    chunks = [os.urandom(70000) for _index in range(25)]
    digest = hashlib.sha256()
    assert list(hash_alongside(iter(chunks), digest, depth=2)) == chunks
    assert digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_hash_alongside_stops_its_thread_when_the_input_fails():
    def failing():
        yield b"first"
        raise OSError("connection reset")

    before = threading.active_count()
    with pytest.raises(OSError):
        list(hash_alongside(failing(), hashlib.sha256()))
    assert threading.active_count() == before


def test_a_stream_whose_stage_never_ends_is_stopped_at_the_deadline():
    # A real process that never writes nor exits: only the deadline can end the stream.
    deadline = Deadline(1, "The test job")
    started = time.monotonic()
    with pytest.raises(RunbookError) as caught:
        stream_through(iter([b"x" * 1024] * 4), [("sleeper", ["sleep", "60"])], lambda data: None, deadline=deadline)
    assert time.monotonic() - started < 15
    assert caught.value.details["cause"] == "deadline"
    assert "The test job did not finish within its deadline of 1 s (job_timeout), waiting for sleeper" in str(
        caught.value)
