"""Choosing part sizes before a dump's size is known, and when a part of a growing file may be read."""
import random
import threading
import time

import pytest

from ansible_collections.ops.runbook.plugins.module_utils.pg_backup import DUMP_SIZE_FACTOR, dump_part_size
from ansible_collections.ops.runbook.plugins.module_utils.s3 import (
    DONE, MAX_PARTS, OUTGROWN, SEND, WAIT, MiB, MultipartUpload, part_size_for, part_span)

GiB = 1024 * MiB


@pytest.mark.parametrize("size", [0, 1, 16 * MiB, 10000 * 16 * MiB, 10000 * 16 * MiB + 1, 5 * 1024 * GiB, 7 * GiB + 3])
def test_part_size_keeps_the_minimum_and_never_needs_more_than_10000_parts(size):
    part = part_size_for(16 * MiB, size)
    assert part >= 16 * MiB
    assert part % MiB == 0
    assert -(-size // part) <= MAX_PARTS


def test_part_size_grows_only_past_the_minimum_capacity():
    assert part_size_for(16 * MiB, 10000 * 16 * MiB) == 16 * MiB
    assert part_size_for(16 * MiB, 10000 * 16 * MiB + 1) == 17 * MiB


def test_dump_part_size_allows_for_uncompressed_dumps_larger_than_the_database():
    database = 100 * GiB
    compressed = dump_part_size(16 * MiB, database, "zstd")
    uncompressed = dump_part_size(16 * MiB, database, "none")
    assert MAX_PARTS * compressed >= DUMP_SIZE_FACTOR["zstd"] * database
    assert MAX_PARTS * uncompressed >= 4 * database
    assert uncompressed > compressed
    assert dump_part_size(16 * MiB, GiB, "none") == 16 * MiB  # the bench's 1 GB keeps today's parts


def test_a_part_waits_until_the_file_holds_all_of_it():
    assert part_span(2, 5, available=9) == (WAIT, 5, 0)
    assert part_span(2, 5, available=10) == (SEND, 5, 5)
    assert part_span(2, 5, available=23) == (SEND, 5, 5)


def test_the_last_part_goes_once_the_writer_finished():
    assert part_span(3, 5, available=12) == (WAIT, 10, 0)
    assert part_span(3, 5, available=12, final_size=12) == (SEND, 10, 2)
    assert part_span(4, 5, available=12, final_size=12) == (DONE, 15, 0)
    assert part_span(3, 5, available=10, final_size=10) == (DONE, 10, 0)
    assert part_span(1, 5, available=0, final_size=0) == (DONE, 0, 0)


def test_the_part_limit_is_never_passed():
    # The last allowed part may be the file's end only once the writer says so.
    assert part_span(3, 5, available=15, max_parts=3) == (WAIT, 10, 0)
    assert part_span(3, 5, available=16, max_parts=3) == (OUTGROWN, 10, 0)
    assert part_span(3, 5, available=15, final_size=15, max_parts=3) == (SEND, 10, 5)
    assert part_span(3, 5, available=16, final_size=16, max_parts=3) == (OUTGROWN, 10, 0)


def simulate(growth, part_size, max_parts=MAX_PARTS):
    """Drive part_span as the upload thread does, over a file growing by `growth` steps."""
    sent, size, number = [], 0, 1
    steps = iter(growth)
    final_size = None
    while True:
        state, offset, length = part_span(number, part_size, size, final_size, max_parts)
        if state == SEND:
            assert offset + length <= size, "a part was read before the file held it"
            sent.append((offset, length))
            number += 1
        elif state == WAIT:
            step = next(steps, None)
            if step is None:
                final_size = size
            else:
                size += step
        else:
            return state, sent, size


@pytest.mark.parametrize("seed", range(20))
def test_parts_cover_a_growing_file_exactly_once(seed):
    rng = random.Random(seed)
    growth = [rng.choice([0, 1, 3, 7, 64, 100]) for step in range(rng.randint(0, 60))]
    state, sent, size = simulate(growth, part_size=16)
    assert state == DONE
    assert [span[0] for span in sent] == list(range(0, size, 16))
    assert sum(span[1] for span in sent) == size
    assert all(span[1] == 16 for span in sent[:-1])


def test_a_file_that_outgrows_the_part_limit_is_reported_not_truncated():
    state, sent, size = simulate([10] * 10, part_size=16, max_parts=4)
    assert state == OUTGROWN and size > 4 * 16
    assert len(sent) == 3


class CountingStore(object):
    """Stands in for S3Store's one call path: records how many parts are in flight at once."""

    max_concurrency = 4
    bucket = "bucket"

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def _object_args(self, metadata=None):
        return {}

    def _call(self, operation, key=None, **kwargs):
        if operation == "create_multipart_upload":
            return {"UploadId": "u1"}
        if operation == "upload_part":
            with self.lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            time.sleep(0.02)
            with self.lock:
                self.in_flight -= 1
            return {"ETag": "e{0}".format(kwargs["PartNumber"])}
        return {}


def test_parts_in_flight_stay_under_the_limit_until_it_is_raised(tmp_path):
    path = tmp_path / "dump"
    path.write_bytes(b"x" * 64)
    store = CountingStore()
    with open(str(path), "rb") as handle:
        upload = MultipartUpload(store, "k", handle.fileno(), in_flight=2)
        for number in range(1, 9):
            upload.send(number, number - 1, 1)
        for future in list(upload._futures):
            future.result()
        assert store.peak == 2
        upload.allow(10)  # never past max_concurrency
        for number in range(9, 25):
            upload.send(number, number - 1, 1)
        upload.complete()
    assert 2 < store.peak <= store.max_concurrency
