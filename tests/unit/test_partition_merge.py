"""Partitions of a NATS run merged into the one stream a run checks, and the instrument -> partition rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from obm_shared.dbn import F_LAST
from obm_shared.dbn_file import open_mbo_file
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
from obm_shared.nats_stream import Window, partition_of, window_parts
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray
from receiver.partition_merge import PartitionMerge, in_market_time

LAST = Window(0, last=True)

METADATA = StreamMetadata("f.dbn", "TEST", "mbo", [], {}, 0, None, None, 3)
HELLO = Handshake(PROTOCOL_VERSION, METADATA, "run1", b"")


def batch(seq: int, first_index: int, records: int) -> RecordBatch:
    return RecordBatch(seq, first_index, bytes(MBO_RECORD_SIZE * records))


def local_stream(
    merge: PartitionMerge, feed: list[tuple[int, Message] | tuple[int, Message, Window]]
) -> list[Message]:
    """Everything the run is handed, checked by the run's own validator (a batch's window is the first, whole,
    unless given)."""
    validator = StreamValidator()
    out: list[Message] = []
    for partition, message, *window in feed:
        for each in merge.feed(partition, message, window[0] if window else LAST):
            validator.check(each)
            out.append(each)
    return out


def test_two_partitions_interleaved_become_one_contiguous_stream_a_window_at_a_time() -> None:
    merge = PartitionMerge("run1", [0, 2])
    out = local_stream(
        merge,
        [
            (0, HELLO),
            (2, HELLO),
            (2, batch(0, 0, 3)),
            (0, batch(0, 0, 2)),
            (2, Heartbeat()),
            (2, batch(1, 3, 1), Window(1, last=False)),
            (2, batch(2, 4, 2), Window(1, last=True)),
            (0, batch(1, 2, 0), Window(1, last=True)),  # none of partition 0's instruments in that read
            (2, EndOfStream(6, 3)),
            (0, EndOfStream(2, 2)),
        ],
    )
    assert out[0] == HELLO and sum(isinstance(each, Handshake) for each in out) == 1
    batches = [each for each in out if isinstance(each, RecordBatch)]
    assert [(each.seq, each.first_index, each.count) for each in batches] == [(0, 0, 5), (1, 5, 3)]
    assert out[-1] == EndOfStream(records_sent=8, batches_sent=2)
    assert merge.ended


def test_a_window_is_held_until_every_partition_has_closed_it() -> None:
    merge = PartitionMerge("run1", [0, 1])
    local_stream(merge, [(0, HELLO), (1, HELLO), (0, batch(0, 0, 3))])
    assert merge.feed(1, batch(0, 0, 1), Window(0, last=False)) == []
    assert merge.feed(0, batch(1, 3, 1), Window(1, last=True)) == [], "window 0 is still open on partition 1"
    handed = merge.feed(1, batch(1, 1, 1), Window(0, last=True))
    assert [(each.seq, each.count) for each in handed if isinstance(each, RecordBatch)] == [(0, 5)]


def test_a_partition_skipping_a_window_breaks_the_protocol() -> None:
    merge = PartitionMerge("run1", [0, 1])
    local_stream(merge, [(0, HELLO), (1, HELLO), (0, batch(0, 0, 3))])
    with pytest.raises(SequenceGap, match="window 1, expected 0"):
        merge.feed(1, batch(0, 0, 1), Window(1, last=True))
    with pytest.raises(UnexpectedMessage, match="without its window"):
        merge.feed(1, batch(0, 0, 1), None)


def test_a_batch_republished_after_its_successor_is_held_until_it_comes() -> None:
    merge = PartitionMerge("run1", [1])
    out = local_stream(
        merge,
        [(1, HELLO), (1, batch(1, 2, 5), Window(1, True)), (1, batch(0, 0, 2)), (1, EndOfStream(7, 2))],
    )
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
        merge.feed(0, batch(0, 0, 1), LAST)
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


def booked_through_partitions(records: MboArray, partitions: int, window_records: int) -> MboArray:
    """What a receiver owning every partition books of ``records``, published a window at a time as a sender
    publishes them."""
    merge = PartitionMerge("run1", range(partitions))
    seqs, firsts = [0] * partitions, [0] * partitions
    booked: list[MboArray] = []
    for partition in range(partitions):
        merge.feed(partition, HELLO)
    for window, start in enumerate(range(0, len(records), window_records)):
        for partition, part, last in window_parts(records[start : start + window_records], partitions):
            batch = RecordBatch.from_array(seqs[partition], firsts[partition], part)
            handed = merge.feed(partition, batch, Window(window, last))
            booked.extend(each.array() for each in handed if isinstance(each, RecordBatch))
            seqs[partition], firsts[partition] = seqs[partition] + 1, firsts[partition] + len(part)
    return np.concatenate(booked)


def event_end_times(records: MboArray) -> npt.NDArray[np.int64]:
    ends: npt.NDArray[np.int64] = records["ts_recv"][(records["flags"] & F_LAST) != 0].astype(np.int64)
    return ends


@pytest.mark.realdata
def test_a_receiver_owning_several_partitions_books_them_in_market_time(dbeq: Path) -> None:
    records = np.concatenate(list(open_mbo_file(dbeq).batches(1 << 20)))
    assert (np.diff(event_end_times(records)) >= 0).all(), "the file's events end in market time"
    assert len(np.unique(partition_of(np.unique(records["instrument_id"]), 4))) == 2, "GOOG, GOOGL split"

    booked = booked_through_partitions(records, 4, 16_384)

    assert len(booked) == len(records)
    for instrument_id in np.unique(records["instrument_id"]):
        mine = booked[booked["instrument_id"] == instrument_id]
        assert (mine == records[records["instrument_id"] == instrument_id]).all(), (
            f"instrument {instrument_id}: its records are not the file's, in the file's order"
        )
    assert (np.diff(event_end_times(booked)) >= 0).all(), "an event booked after a later one"


def test_each_partitions_order_is_kept_even_where_its_clock_runs_back() -> None:
    records = np.zeros(6, dtype=MBO_DTYPE)
    records["instrument_id"] = [1, 1, 1, 2, 2, 2]
    records["ts_recv"] = [30, 10, 20, 15, 25, 5]
    records["flags"] = F_LAST
    merged = in_market_time([records[:3], records[3:]])
    assert merged["ts_recv"].tolist() == [15, 25, 5, 30, 10, 20]
