"""Fuzzing the wire decoder: whatever bytes arrive, in whatever chunks, the receiver's decoder and validator
raise only :class:`ProtocolError` (which the ingest port counts by code and answers by closing), never another
exception, and never hang.

Bounded: a few hundred examples per property, each with a deadline.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from random import Random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obm_shared.framing import (
    HEADER_SIZE,
    FrameDecoder,
    FrameEncoder,
    ProtocolError,
    StreamValidator,
    read_reply,
)
from obm_shared.messages import EndOfStream, Heartbeat, Message, RecordBatch, StreamError
from obm_shared.records import MBO_DTYPE
from tests.unit.test_wire import chunked, handshake, replies_from

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL_FRAME_LIMIT = 4096
"""The decoder's frame limit in most properties, so a random length prefix often fits and the payload is fuzzed."""


def decode_all(chunks: list[bytes], max_frame_bytes: int = SMALL_FRAME_LIMIT) -> int:
    """Feed every chunk through a decoder and a validator, as the ingest port does; the messages accepted."""
    decoder, validator = FrameDecoder(max_frame_bytes), StreamValidator()
    accepted = 0
    for chunk in chunks:
        for message in decoder.feed(chunk):
            validator.check(message)
            accepted += 1
    return accepted


def assert_only_protocol_errors(chunks: list[bytes], max_frame_bytes: int = SMALL_FRAME_LIMIT) -> None:
    try:
        decode_all(chunks, max_frame_bytes)
    except ProtocolError as error:
        assert error.code != ProtocolError.code, f"{type(error).__name__} has no code of its own"


def valid_stream(batch_sizes: list[int]) -> list[bytes]:
    """The frames of a complete, valid stream with batches of the given record counts."""
    encoder = FrameEncoder()
    frames = [encoder.encode(handshake())]
    sent = 0
    for seq, size in enumerate(batch_sizes):
        records = np.zeros(size, dtype=MBO_DTYPE)
        records["rtype"] = 0xA0
        frames.append(encoder.encode(RecordBatch.from_array(seq, sent, records)))
        frames.append(encoder.encode(Heartbeat()))
        sent += size
    frames.append(encoder.encode(EndOfStream(records_sent=sent, batches_sent=len(batch_sizes))))
    return frames


chunk_sizes = st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=8)
batch_sizes = st.lists(st.integers(min_value=0, max_value=5), max_size=4)


@FUZZ
@given(data=st.binary(max_size=2048), sizes=chunk_sizes)
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, sizes: list[int]) -> None:
    assert_only_protocol_errors(list(chunked(data, sizes)))


@FUZZ
@given(payload=st.binary(max_size=512), prefix=st.sampled_from([b"", *valid_stream([])[:1]]))
def test_arbitrary_payloads_in_well_framed_frames_raise_only_protocol_errors(
    payload: bytes, prefix: bytes
) -> None:
    """A correct length prefix, so the payload itself reaches msgspec and the validator (after a handshake)."""
    frame = len(payload).to_bytes(HEADER_SIZE, "big") + payload
    assert_only_protocol_errors([prefix + frame])


@FUZZ
@given(
    sizes=batch_sizes,
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6),
    chunking=chunk_sizes,
)
def test_a_valid_stream_with_bytes_changed_raises_only_protocol_errors(
    sizes: list[int], edits: list[tuple[int, int]], chunking: list[int]
) -> None:
    data = bytearray(b"".join(valid_stream(sizes)))
    for position, value in edits:
        data[position % len(data)] = value
    assert_only_protocol_errors(list(chunked(bytes(data), chunking)), max_frame_bytes=1 << 20)


@FUZZ
@given(
    sizes=batch_sizes,
    cuts=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 40)), min_size=1, max_size=4),
    insert=st.binary(max_size=40),
)
def test_a_valid_stream_with_bytes_cut_or_inserted_raises_only_protocol_errors(
    sizes: list[int], cuts: list[tuple[int, int]], insert: bytes
) -> None:
    data = bytearray(b"".join(valid_stream(sizes)))
    for position, length in cuts:
        start = position % (len(data) + 1)
        data[start : start + length] = insert
    assert_only_protocol_errors([bytes(data)], max_frame_bytes=1 << 20)


extra_frames: st.SearchStrategy[Message] = st.sampled_from(
    [
        handshake(),
        handshake(version=1),
        Heartbeat(),
        EndOfStream(0, 0),
        StreamError("stopped", 0, stopped_by_user=True),
        RecordBatch(seq=0, first_index=0, records=b""),
        RecordBatch(seq=1, first_index=0, records=bytes(55)),
    ]
)


@FUZZ
@given(sizes=batch_sizes, order=st.randoms(use_true_random=False), extra=st.lists(extra_frames, max_size=3))
def test_valid_frames_reordered_repeated_or_added_raise_only_protocol_errors(
    sizes: list[int], order: Random, extra: list[Message]
) -> None:
    encoder = FrameEncoder()
    frames = valid_stream(sizes) + [encoder.encode(message) for message in extra]
    order.shuffle(frames)
    assert_only_protocol_errors(frames + frames[:2], max_frame_bytes=1 << 20)


@FUZZ
@given(data=st.binary(max_size=256))
def test_arbitrary_reply_bytes_raise_only_protocol_errors_or_a_closed_connection(data: bytes) -> None:
    """What a sender reads back from whatever listens on the receiver's address."""
    with contextlib.suppress(ProtocolError, ConnectionError):
        read_reply(replies_from(data))


def test_an_untouched_valid_stream_is_accepted_whole() -> None:
    # guards the properties above: the streams they mutate are valid to start with
    frames = valid_stream([3, 0, 2])
    assert decode_all(frames, max_frame_bytes=1 << 20) == len(frames)
