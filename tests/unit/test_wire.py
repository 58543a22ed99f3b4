"""The wire: MBO records -> RecordBatch -> length-prefixed msgpack frames -> byte stream in arbitrary chunks -> back.

Round trips must be lossless for every field, whatever the chunking; every way a stream can be wrong must raise
its named :class:`ProtocolError`.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import databento as db
import msgspec
import numpy as np
import pytest
from databento_dbn import Action, DBNRecord, MBOMsg, Side
from hypothesis import given, settings
from hypothesis import strategies as st

from obm_shared.dbn import MBO_RTYPE
from obm_shared.dbn_file import open_mbo_file
from obm_shared.framing import (
    HEADER_SIZE,
    MAX_REPLY_FRAME_BYTES,
    ClosedBeforeHandshake,
    FrameDecoder,
    FrameEncoder,
    FrameTooLarge,
    MalformedFrame,
    NotMbo,
    ProtocolError,
    SequenceGap,
    SequenceRepeat,
    StreamValidator,
    UnexpectedMessage,
    VersionMismatch,
    read_reply,
)
from obm_shared.limits import MAX_FRAME_BYTES
from obm_shared.messages import (
    PROTOCOL_VERSION,
    Accepted,
    Challenge,
    EndOfStream,
    Handshake,
    Heartbeat,
    Message,
    RecordBatch,
    Refused,
    Reply,
    StreamError,
    StreamMetadata,
)
from obm_shared.records import (
    MBO_DTYPE,
    MBO_RECORD_SIZE,
    MboArray,
    MboRecord,
    array_to_records,
    records_to_array,
)

METADATA = StreamMetadata(
    source="unit.dbn",
    dataset="TEST.MBO",
    schema="mbo",
    symbols=["TEST"],
    instruments={1: "TEST"},
    start_ns=0,
    end_ns=None,
    record_count=None,
    dbn_version=3,
)


RUN_ID = "0123456789ab"


def handshake(version: int = PROTOCOL_VERSION, proof: bytes = b"") -> Handshake:
    return Handshake(protocol_version=version, metadata=METADATA, run_id=RUN_ID, proof=proof)


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=2**bits - 1)


def sint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1)


ACTIONS = (Action.ADD, Action.CANCEL, Action.MODIFY, Action.CLEAR, Action.TRADE, Action.FILL, Action.NONE)

mbo_records = st.builds(
    MboRecord,
    ts_recv=uint(64),
    ts_event=uint(64),
    rtype=uint(8),
    publisher_id=uint(16),
    instrument_id=uint(32),
    action=st.sampled_from([str(action) for action in ACTIONS]),
    side=st.sampled_from([str(side) for side in (Side.BID, Side.ASK, Side.NONE)]),
    price=sint(64),
    size=uint(32),
    channel_id=uint(8),
    order_id=uint(64),
    flags=uint(8),
    ts_in_delta=sint(32),
    sequence=uint(32),
)


def stream_frames(batches: Iterable[MboArray], encoder: FrameEncoder | None = None) -> Iterator[bytes]:
    """The frames of a complete stream: handshake, one batch per array, end of stream."""
    encoder = encoder or FrameEncoder()
    yield encoder.encode(handshake())
    sent = count = 0
    for seq, array in enumerate(batches):
        yield encoder.encode(RecordBatch.from_array(seq, sent, array))
        sent += len(array)
        count = seq + 1
    yield encoder.encode(EndOfStream(records_sent=sent, batches_sent=count))


def chunked(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    """``data`` cut into consecutive chunks of the given sizes (cycled)."""
    sizes = list(sizes)
    offset = 0
    index = 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        index += 1


def receive(chunks: Iterable[bytes], decoder: FrameDecoder | None = None) -> list[Message]:
    """Decode and validate a byte stream; every message must be allowed where it arrives."""
    decoder = decoder or FrameDecoder()
    validator = StreamValidator()
    messages: list[Message] = []
    for chunk in chunks:
        for message in decoder.feed(chunk):
            validator.check(message)
            messages.append(message)
    assert decoder.buffered_bytes == 0, f"{decoder.buffered_bytes} bytes left over after the last frame"
    assert validator.finished, "stream did not end with EndOfStream"
    return messages


def batch_arrays(messages: list[Message]) -> list[MboArray]:
    return [message.array() for message in messages if isinstance(message, RecordBatch)]


# --- lossless round trips ------------------------------------------------------------------------------------


def test_dtype_is_dbn_mbo_layout() -> None:
    assert MBO_DTYPE.itemsize == MBO_RECORD_SIZE == 56
    fields = MBO_DTYPE.fields
    assert fields is not None, "MBO_DTYPE is a structured dtype"
    offsets = {name: field[1] for name, field in fields.items()}
    assert offsets == {
        "length": 0,
        "rtype": 1,
        "publisher_id": 2,
        "instrument_id": 4,
        "ts_event": 8,
        "order_id": 16,
        "price": 24,
        "size": 32,
        "flags": 36,
        "channel_id": 37,
        "action": 38,
        "side": 39,
        "ts_recv": 40,
        "ts_in_delta": 48,
        "sequence": 52,
    }


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(mbo_records, max_size=40),
    batch_size=st.integers(min_value=1, max_value=16),
    chunk_sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8),
)
def test_records_survive_frames_in_any_chunking(
    records: list[MboRecord], batch_size: int, chunk_sizes: list[int]
) -> None:
    array = records_to_array(records)
    assert array_to_records(array) == records, "records_to_array/array_to_records lost a field"
    assert (array["length"] == MBO_RECORD_SIZE // 4).all()
    batches = [array[start : start + batch_size] for start in range(0, len(array), batch_size)]
    data = b"".join(stream_frames(batches))
    messages = receive(chunked(data, chunk_sizes))
    assert messages[0] == handshake()
    assert messages[-1] == EndOfStream(records_sent=len(records), batches_sent=len(batches))
    received = batch_arrays(messages)
    assert [len(batch) for batch in received] == [len(batch) for batch in batches]
    decoded = np.concatenate(received) if received else np.zeros(0, MBO_DTYPE)
    assert decoded.tobytes() == array.tobytes()
    assert array_to_records(decoded) == records


def test_one_byte_chunks_and_one_big_chunk_decode_the_same() -> None:
    records = [
        MboRecord(
            ts_recv=2**64 - 1,
            ts_event=0,
            rtype=MBO_RTYPE,
            publisher_id=2**16 - 1,
            instrument_id=2**32 - 1,
            action=str(Action.MODIFY),
            side=str(Side.ASK),
            price=-(2**63),
            size=2**32 - 1,
            channel_id=255,
            order_id=2**64 - 1,
            flags=255,
            ts_in_delta=-(2**31),
            sequence=2**32 - 1,
        ),
        MboRecord(
            ts_recv=1,
            ts_event=2,
            rtype=MBO_RTYPE,
            publisher_id=1,
            instrument_id=3,
            action=str(Action.ADD),
            side=str(Side.BID),
            price=2**63 - 1,
            size=0,
            channel_id=0,
            order_id=0,
            flags=0,
            ts_in_delta=2**31 - 1,
            sequence=0,
        ),
    ]
    array = records_to_array(records * 5)
    data = b"".join(stream_frames([array[:3], array[3:4], array[4:]]))
    one_byte = receive(data[index : index + 1] for index in range(len(data)))
    whole = receive([data])
    assert one_byte == whole
    assert array_to_records(np.concatenate(batch_arrays(one_byte))) == records * 5


def test_decoder_returns_every_complete_frame_in_a_chunk_and_keeps_the_rest() -> None:
    encoder = FrameEncoder()
    first, second = encoder.encode(handshake()), encoder.encode(EndOfStream(records_sent=0, batches_sent=0))
    decoder = FrameDecoder()
    assert decoder.feed(first + second[:3]) == [handshake()]
    assert decoder.buffered_bytes == 3
    assert decoder.feed(second[3:]) == [EndOfStream(records_sent=0, batches_sent=0)]
    assert decoder.buffered_bytes == 0
    assert decoder.feed(b"") == []


def test_frame_header_is_big_endian_payload_length() -> None:
    frame = FrameEncoder().encode(EndOfStream(records_sent=7, batches_sent=1))
    assert int.from_bytes(frame[:HEADER_SIZE], "big") == len(frame) - HEADER_SIZE


def test_record_batch_array_is_a_view_of_its_bytes() -> None:
    array = records_to_array([MboRecord(1, 2, MBO_RTYPE, 3, 4, "A", "B", 5, 6, 7, 8, 9, 10, 11)])
    batch = RecordBatch.from_array(0, 0, array)
    assert batch.count == 1
    assert batch.array().dtype == MBO_DTYPE
    assert batch.array().tobytes() == array.tobytes()


# --- real files ----------------------------------------------------------------------------------------------


def dbn_record(message: DBNRecord) -> MboRecord:
    """databento's own decoding of one record, as an MboRecord."""
    assert isinstance(message, MBOMsg), f"an MBO file holds MBO records, not {type(message).__name__}"
    return MboRecord(
        ts_recv=message.ts_recv,
        ts_event=message.ts_event,
        rtype=int(message.rtype),
        publisher_id=message.publisher_id,
        instrument_id=message.instrument_id,
        action=str(message.action),
        side=str(message.side),
        price=message.price,
        size=message.size,
        channel_id=message.channel_id,
        order_id=message.order_id,
        flags=int(message.flags),
        ts_in_delta=message.ts_in_delta,
        sequence=message.sequence,
    )


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "batch_records", "expected_records"),
    [("clx5", 4_096, 38_212), ("esm4", 1_000, 13_796), ("dbeq", 65_536, 286_130)],
)
def test_real_file_survives_frames_byte_for_byte(
    request: pytest.FixtureRequest, name: str, batch_records: int, expected_records: int
) -> None:
    path: Path = request.getfixturevalue(name)
    mbo_file = open_mbo_file(path)
    sent = list(mbo_file.batches(batch_records))
    data = b"".join(stream_frames(sent))
    rng = random.Random(f"{name}-chunks")
    sizes = (
        [1] * 300 + [rng.randint(1, 200_000) for _ in range(400)] + [rng.randint(1, 60) for _ in range(100)]
    )
    rng.shuffle(sizes)
    messages = receive(chunked(data, sizes))
    assert isinstance(messages[0], Handshake)
    assert messages[-1] == EndOfStream(records_sent=expected_records, batches_sent=len(sent))
    received = batch_arrays(messages)
    assert len(received) == len(sent), f"{path.name}: {len(received)} batches arrived, {len(sent)} were sent"
    for seq, (got_array, want_array) in enumerate(zip(received, sent, strict=True)):
        assert got_array.tobytes() == want_array.tobytes(), f"{path.name}: batch {seq} differs after the wire"
    decoded = np.concatenate(received)
    assert len(decoded) == expected_records, (
        f"{path.name}: {len(decoded)} records, expected {expected_records}"
    )

    # field by field against databento's own reader and record objects, for a sample spread through the file
    sample = sorted({*range(0, expected_records, 97), *range(expected_records - 50, expected_records)})
    ours = array_to_records(decoded[sample])
    wanted = set(sample)
    theirs = [
        dbn_record(message) for index, message in enumerate(db.DBNStore.from_file(path)) if index in wanted
    ]
    assert len(theirs) == len(sample)
    for index, got, want in zip(sample, ours, theirs, strict=True):
        assert got == want, f"{path.name}: record {index} is {got}, databento reads {want}"


# --- protocol errors -----------------------------------------------------------------------------------------


def frames_through(messages: list[Message]) -> list[Message]:
    """Encode, then decode in 7-byte chunks: what a receiver would get."""
    encoder, decoder = FrameEncoder(), FrameDecoder()
    data = b"".join(encoder.encode(message) for message in messages)
    return [message for chunk in chunked(data, [7]) for message in decoder.feed(chunk)]


def check_all(messages: list[Message]) -> StreamValidator:
    validator = StreamValidator()
    for message in frames_through(messages):
        validator.check(message)
    return validator


def batch(seq: int, first_index: int, count: int = 2) -> RecordBatch:
    return RecordBatch(seq=seq, first_index=first_index, records=bytes(MBO_RECORD_SIZE * count))


def test_error_classes_are_protocol_errors_with_codes() -> None:
    codes = {
        FrameTooLarge: "frame_too_large",
        MalformedFrame: "malformed_frame",
        VersionMismatch: "version_mismatch",
        SequenceGap: "sequence_gap",
        SequenceRepeat: "sequence_repeat",
        UnexpectedMessage: "unexpected_message",
    }
    for error, code in codes.items():
        assert issubclass(error, ProtocolError)
        assert error.code == code


def test_a_well_formed_stream_passes() -> None:
    validator = check_all(
        [handshake(), batch(0, 0), batch(1, 2, 3), EndOfStream(records_sent=5, batches_sent=2)]
    )
    assert validator.finished
    assert (validator.next_seq, validator.records_received) == (2, 5)


def test_an_abandoned_stream_ends_with_stream_error() -> None:
    validator = check_all([handshake(), batch(0, 0), StreamError(reason="disk gone", records_sent=2)])
    assert validator.finished


def test_version_mismatch() -> None:
    with pytest.raises(VersionMismatch, match=f"protocol {PROTOCOL_VERSION + 1}"):
        check_all([handshake(PROTOCOL_VERSION + 1)])


@pytest.mark.parametrize("limit", [1_000, MAX_FRAME_BYTES])
def test_frame_too_large_is_raised_from_the_header_alone(limit: int) -> None:
    decoder = FrameDecoder(max_frame_bytes=limit)
    with pytest.raises(FrameTooLarge, match=str(limit + 1)):
        decoder.feed((limit + 1).to_bytes(HEADER_SIZE, "big"))


def test_frame_of_exactly_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(max_frame_bytes=1_000)
    assert decoder.feed((1_000).to_bytes(HEADER_SIZE, "big") + b"\x00" * 10) == []
    assert decoder.buffered_bytes == HEADER_SIZE + 10


def test_encoded_batch_over_the_limit_is_refused() -> None:
    frame = FrameEncoder().encode(batch(0, 0, count=100))
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_frame_bytes=len(frame) - HEADER_SIZE - 1).feed(frame)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1\xc1\xc1\xc1\xc1",  # 0xc1 is never used in msgpack
        msgspec.msgpack.encode(["nope", 1, 2]),  # unknown message tag
        msgspec.msgpack.encode(["batch", "zero", 0, b""]),  # wrong field type
        msgspec.msgpack.encode({"hello": 1}),
        b"",
    ],
    ids=["garbage", "unknown-tag", "wrong-type", "not-an-array", "empty"],
)
def test_malformed_payload(payload: bytes) -> None:
    with pytest.raises(MalformedFrame):
        FrameDecoder().feed(len(payload).to_bytes(HEADER_SIZE, "big") + payload)


def test_malformed_batch_size_not_a_multiple_of_the_record_size() -> None:
    bad = RecordBatch(seq=0, first_index=0, records=bytes(MBO_RECORD_SIZE + 1))
    with pytest.raises(MalformedFrame, match=str(MBO_RECORD_SIZE)):
        check_all([handshake(), bad])


def test_sequence_gap_when_a_batch_is_missing() -> None:
    with pytest.raises(SequenceGap, match="missing"):
        check_all([handshake(), batch(0, 0), batch(2, 4)])


def test_sequence_gap_when_first_index_is_wrong() -> None:
    with pytest.raises(SequenceGap, match="starts at record 3, expected 2"):
        check_all([handshake(), batch(0, 0), batch(1, 3)])


@pytest.mark.parametrize(
    "end",
    [EndOfStream(records_sent=5, batches_sent=2), EndOfStream(records_sent=4, batches_sent=3)],
    ids=["records", "batches"],
)
def test_sequence_gap_when_end_of_stream_totals_disagree(end: EndOfStream) -> None:
    with pytest.raises(SequenceGap, match="received 4 in 2"):
        check_all([handshake(), batch(0, 0), batch(1, 2), end])


def test_sequence_repeat() -> None:
    with pytest.raises(SequenceRepeat, match="batch 0 repeated"):
        check_all([handshake(), batch(0, 0), batch(0, 0)])


@pytest.mark.parametrize(
    "first",
    [batch(0, 0), EndOfStream(records_sent=0, batches_sent=0), StreamError(reason="x", records_sent=0)],
    ids=["batch", "end", "error"],
)
def test_unexpected_message_before_the_handshake(first: Message) -> None:
    with pytest.raises(UnexpectedMessage, match="before the handshake"):
        check_all([first])


@pytest.mark.parametrize(
    "after",
    [
        batch(1, 2),
        handshake(),
        EndOfStream(records_sent=2, batches_sent=1),
        StreamError(reason="x", records_sent=2),
    ],
    ids=["batch", "handshake", "end", "error"],
)
@pytest.mark.parametrize(
    "ending",
    [EndOfStream(records_sent=2, batches_sent=1), StreamError(reason="sender stopped", records_sent=2)],
    ids=["after-end", "after-error"],
)
def test_unexpected_message_after_the_end(ending: Message, after: Message) -> None:
    with pytest.raises(UnexpectedMessage, match="after the end"):
        check_all([handshake(), batch(0, 0), ending, after])


def test_unexpected_second_handshake() -> None:
    with pytest.raises(UnexpectedMessage, match="second handshake"):
        check_all([handshake(), batch(0, 0), handshake()])


# --- protocol 2: challenge, proof, heartbeats ----------------------------------------------------------------


def replies_from(data: bytes) -> Callable[[int], bytes]:
    """``recv_exactly`` over ``data``: what a sender's socket would hand :func:`read_reply`."""
    stream = io.BytesIO(data)

    def recv_exactly(size: int) -> bytes:
        chunk = stream.read(size)
        if len(chunk) != size:
            raise ConnectionError("closed")
        return chunk

    return recv_exactly


def test_new_error_classes_have_codes() -> None:
    assert issubclass(NotMbo, ProtocolError) and NotMbo.code == "not_mbo"
    assert issubclass(ClosedBeforeHandshake, ProtocolError)
    assert ClosedBeforeHandshake.code == "closed_before_handshake"


def test_heartbeats_may_come_between_batches() -> None:
    validator = check_all(
        [handshake(), Heartbeat(), batch(0, 0), Heartbeat(), Heartbeat(), batch(1, 2), EndOfStream(4, 2)]
    )
    assert validator.finished
    assert (validator.next_seq, validator.records_received) == (2, 4)


def test_a_heartbeat_before_the_handshake_or_after_the_end_is_unexpected() -> None:
    with pytest.raises(UnexpectedMessage, match="Heartbeat before the handshake"):
        check_all([Heartbeat()])
    with pytest.raises(UnexpectedMessage, match="after the end"):
        check_all([handshake(), EndOfStream(0, 0), Heartbeat()])


def test_the_handshake_carries_run_id_and_proof_through_frames() -> None:
    sent = handshake(proof=bytes(range(32)))
    assert frames_through([sent]) == [sent]


@pytest.mark.parametrize("run_id", ["../../etc/passwd", "", "a" * 65, "run id", "x/y"])
def test_a_run_id_that_is_not_a_plain_name_is_a_malformed_frame(run_id: str) -> None:
    frame = FrameEncoder().encode(Handshake(PROTOCOL_VERSION, METADATA, run_id=run_id, proof=b""))
    with pytest.raises(MalformedFrame, match=r"\$\[3\]"):
        FrameDecoder().feed(frame)


def test_replies_round_trip_through_read_reply() -> None:
    encoder = FrameEncoder()
    replies: list[Reply] = [Challenge(nonce=bytes(32)), Accepted(), Refused(reason="authentication failed")]
    recv_exactly = replies_from(b"".join(encoder.encode(reply) for reply in replies))
    assert [read_reply(recv_exactly) for _ in replies] == replies


def test_a_reply_frame_over_its_limit_or_undecodable_is_refused() -> None:
    with pytest.raises(FrameTooLarge):
        read_reply(replies_from((MAX_REPLY_FRAME_BYTES + 1).to_bytes(HEADER_SIZE, "big")))
    junk = msgspec.msgpack.encode(["batch", 0, 0, b""])  # a sender's message is no reply
    with pytest.raises(MalformedFrame):
        read_reply(replies_from(len(junk).to_bytes(HEADER_SIZE, "big") + junk))
