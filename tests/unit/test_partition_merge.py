"""Partitions of a NATS run merged into the one stream a run checks, and the instrument -> partition rule."""

from __future__ import annotations

import numpy as np
import pytest

from obm_shared.framing import SequenceGap, SequenceRepeat, StreamValidator, UnexpectedMessage
from obm_shared.messages import (
    PROTOCOL_VERSION,
    EndOfStream,
    Handshake,
    Heartbeat,
    Message,
    RecordBatch,
    StreamError,
    StreamMetadata,
)
from obm_shared.nats_stream import partition_of
from obm_shared.records import MBO_RECORD_SIZE
from receiver.partition_merge import PartitionMerge

METADATA = StreamMetadata("f.dbn", "TEST", "mbo", [], {}, 0, None, None, 3)
HELLO = Handshake(PROTOCOL_VERSION, METADATA, "run1", b"")


def batch(seq: int, first_index: int, records: int) -> RecordBatch:
    return RecordBatch(seq, first_index, bytes(MBO_RECORD_SIZE * records))


def local_stream(merge: PartitionMerge, feed: list[tuple[int, Message]]) -> list[Message]:
    """Everything the run is handed, checked by the run's own validator."""
    validator = StreamValidator()
    out: list[Message] = []
    for partition, message in feed:
        for each in merge.feed(partition, message):
            validator.check(each)
            out.append(each)
    return out


def test_two_partitions_interleaved_become_one_contiguous_stream_with_summed_totals() -> None:
    merge = PartitionMerge("run1", [0, 2])
    out = local_stream(
        merge,
        [
            (0, HELLO),
            (2, HELLO),
            (2, batch(0, 0, 3)),
            (0, batch(0, 0, 2)),
            (2, Heartbeat()),
            (2, batch(1, 3, 1)),
            (2, EndOfStream(4, 2)),
            (0, EndOfStream(2, 1)),
        ],
    )
    assert out[0] == HELLO and sum(isinstance(each, Handshake) for each in out) == 1
    batches = [each for each in out if isinstance(each, RecordBatch)]
    assert [(each.seq, each.first_index, each.count) for each in batches] == [(0, 0, 3), (1, 3, 2), (2, 5, 1)]
    assert out[-1] == EndOfStream(records_sent=6, batches_sent=3)
    assert merge.ended


def test_a_batch_republished_after_its_successor_is_held_until_it_comes() -> None:
    merge = PartitionMerge("run1", [1])
    out = local_stream(merge, [(1, HELLO), (1, batch(1, 2, 5)), (1, batch(0, 0, 2)), (1, EndOfStream(7, 2))])
    counts = [each.count for each in out if isinstance(each, RecordBatch)]
    assert counts == [2, 5], "the late batch must come first, as the sender numbered it"
    assert out[-1] == EndOfStream(7, 2)


def test_a_missing_batch_is_a_gap_at_the_partitions_end() -> None:
    merge = PartitionMerge("run1", [0])
    local_stream(merge, [(0, HELLO), (0, batch(1, 2, 5))])
    with pytest.raises(SequenceGap, match="partition 0"):
        merge.feed(0, EndOfStream(7, 2))


def test_a_repeated_batch_and_a_foreign_handshake_are_protocol_errors() -> None:
    merge = PartitionMerge("run1", [0, 1])
    local_stream(merge, [(0, HELLO), (0, batch(0, 0, 1))])
    with pytest.raises(SequenceRepeat):
        merge.feed(0, batch(0, 0, 1))
    with pytest.raises(UnexpectedMessage, match="announced run1"):
        merge.feed(1, Handshake(PROTOCOL_VERSION, METADATA, "other", b""))
    with pytest.raises(UnexpectedMessage, match="does not own"):
        merge.feed(3, HELLO)


def test_an_error_on_one_partition_ends_the_run_with_the_records_handed_over() -> None:
    merge = PartitionMerge("run1", [0, 1])
    out = local_stream(merge, [(0, HELLO), (1, HELLO), (1, batch(0, 0, 4)), (0, StreamError("disk", 0))])
    assert out[-1] == StreamError("disk", 4, False)
    assert merge.ended


def test_partitions_are_a_fixed_function_of_the_instrument_that_spreads_consecutive_ids() -> None:
    ids = np.arange(1, 1001, dtype=np.uint32)
    partitions = partition_of(ids, 4)
    assert partition_of(np.array([1, 2, 3, 4, 5, 6, 7, 8], dtype=np.uint32), 4).tolist() == [
        2,
        0,
        3,
        1,
        0,
        2,
        1,
        3,
    ]
    assert np.bincount(partitions, minlength=4).min() >= 240, "1000 consecutive ids must spread evenly over 4"
    assert (partition_of(ids, 1) == 0).all()
