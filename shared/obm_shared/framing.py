"""Length-prefixed msgpack frames: a 4-byte big-endian payload length, then one encoded message.

Every way a byte stream can be wrong is a distinct :class:`ProtocolError` subclass, raised at the edge.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from obm_shared.limits import MAX_FRAME_BYTES
from obm_shared.messages import (
    PROTOCOL_VERSION,
    EndOfStream,
    Handshake,
    Message,
    RecordBatch,
    Reply,
    StreamError,
)
from obm_shared.records import MBO_RECORD_SIZE

HEADER_SIZE = 4
MAX_REPLY_FRAME_BYTES = 4096
"""Largest frame a receiver sends (a challenge, or a refusal and its reason)."""


class ProtocolError(Exception):
    """The byte stream broke the wire protocol. ``code`` names the kind, for counting."""

    code = "protocol_error"


class FrameTooLarge(ProtocolError):
    code = "frame_too_large"


class MalformedFrame(ProtocolError):
    code = "malformed_frame"


class VersionMismatch(ProtocolError):
    code = "version_mismatch"


class SequenceGap(ProtocolError):
    code = "sequence_gap"


class SequenceRepeat(ProtocolError):
    code = "sequence_repeat"


class UnexpectedMessage(ProtocolError):
    code = "unexpected_message"


class NotMbo(ProtocolError):
    code = "not_mbo"


class ClosedBeforeHandshake(ProtocolError):
    code = "closed_before_handshake"


class FrameEncoder:
    """Encodes messages into frames, reusing one msgspec encoder."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()

    def encode(self, message: Message | Reply) -> bytes:
        """One complete frame for ``message``."""
        frame = bytearray(HEADER_SIZE)
        self._encoder.encode_into(message, frame, HEADER_SIZE)
        frame[:HEADER_SIZE] = (len(frame) - HEADER_SIZE).to_bytes(HEADER_SIZE, "big")
        return bytes(frame)


class FrameDecoder:
    """Turns a byte stream arriving in arbitrary chunks into messages."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._decoder = msgspec.msgpack.Decoder(Message)
        self._buffer = bytearray()

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[Message]:
        """Add received bytes; return every message now complete, in order."""
        buffer = self._buffer
        buffer += chunk
        messages: list[Message] = []
        offset = 0
        view = memoryview(buffer)
        try:
            while len(buffer) - offset >= HEADER_SIZE:
                size = int.from_bytes(view[offset : offset + HEADER_SIZE], "big")
                if size > self._max_frame_bytes:
                    raise FrameTooLarge(
                        f"frame of {size} bytes exceeds the {self._max_frame_bytes}-byte limit"
                    )
                end = offset + HEADER_SIZE + size
                if len(buffer) < end:
                    break
                try:
                    messages.append(self._decoder.decode(view[offset + HEADER_SIZE : end]))
                except msgspec.DecodeError as error:
                    raise MalformedFrame(f"undecodable frame of {size} bytes: {error}") from None
                offset = end
        finally:
            view.release()
        del buffer[:offset]
        return messages


_reply_decoder = msgspec.msgpack.Decoder(Reply)


def read_reply(recv_exactly: Callable[[int], bytes]) -> Reply:
    """The receiver's next frame, read through ``recv_exactly(n)`` (which returns exactly ``n`` bytes or raises)."""
    size = int.from_bytes(recv_exactly(HEADER_SIZE), "big")
    if size > MAX_REPLY_FRAME_BYTES:
        raise FrameTooLarge(f"reply frame of {size} bytes exceeds the {MAX_REPLY_FRAME_BYTES}-byte limit")
    try:
        return _reply_decoder.decode(recv_exactly(size))
    except msgspec.DecodeError as error:
        raise MalformedFrame(f"undecodable reply frame of {size} bytes: {error}") from None


class StreamValidator:
    """Checks that messages arrive in protocol order: handshake, consecutive batches, one end."""

    def __init__(self) -> None:
        self.handshake: Handshake | None = None
        self.next_seq = 0
        self.records_received = 0
        self.finished = False

    def check(self, message: Message) -> None:
        """Raise the matching :class:`ProtocolError` if ``message`` may not come next."""
        if self.finished:
            raise UnexpectedMessage(f"{type(message).__name__} after the end of the stream")
        if isinstance(message, Handshake):
            self._check_handshake(message)
        elif self.handshake is None:
            raise UnexpectedMessage(f"{type(message).__name__} before the handshake")
        elif isinstance(message, RecordBatch):
            self._check_batch(message)
        elif isinstance(message, EndOfStream):
            self._check_end(message)
        elif isinstance(message, StreamError):
            self.finished = True

    def _check_handshake(self, message: Handshake) -> None:
        if self.handshake is not None:
            raise UnexpectedMessage("second handshake in one stream")
        if message.protocol_version != PROTOCOL_VERSION:
            raise VersionMismatch(
                f"sender speaks protocol {message.protocol_version}, receiver speaks {PROTOCOL_VERSION}"
            )
        self.handshake = message

    def _check_batch(self, batch: RecordBatch) -> None:
        if batch.seq < self.next_seq:
            raise SequenceRepeat(f"batch {batch.seq} repeated (expected {self.next_seq})")
        if batch.seq > self.next_seq:
            raise SequenceGap(f"batches {self.next_seq}..{batch.seq - 1} missing")
        if batch.first_index != self.records_received:
            raise SequenceGap(
                f"batch {batch.seq} starts at record {batch.first_index}, expected {self.records_received}"
            )
        if len(batch.records) % MBO_RECORD_SIZE:
            raise MalformedFrame(
                f"batch {batch.seq} holds {len(batch.records)} bytes, not a multiple of {MBO_RECORD_SIZE}"
            )
        self.next_seq += 1
        self.records_received += batch.count

    def _check_end(self, message: EndOfStream) -> None:
        if message.records_sent != self.records_received or message.batches_sent != self.next_seq:
            raise SequenceGap(
                f"sender sent {message.records_sent} records in {message.batches_sent} batches, "
                f"received {self.records_received} in {self.next_seq}"
            )
        self.finished = True
