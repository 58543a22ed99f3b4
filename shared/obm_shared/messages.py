"""Messages of the ingest connection, as tagged unions of msgspec Structs.

On connect the receiver sends one :class:`Challenge`. The sender answers with one :class:`Handshake` that
carries a proof of the shared token (:func:`obm_shared.auth.ingest_proof`), and the receiver answers
:class:`Accepted` or :class:`Refused` (then closes). An accepted stream is: any number of :class:`RecordBatch`
(``seq`` 0, 1, 2, ... and ``first_index`` equal to the number of records sent before it), with a
:class:`Heartbeat` at least every :data:`HEARTBEAT_SECONDS` while a paced replay waits, then one
:class:`EndOfStream` or one :class:`StreamError`.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
import numpy as np

from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray

PROTOCOL_VERSION: Final = 2

HEARTBEAT_SECONDS: Final = 2.0
"""Longest silence of a sender in an accepted stream; a receiver's stall limit must be longer."""

RUN_ID_PATTERN: Final = r"^[0-9A-Za-z_-]{1,64}$"
RunId = Annotated[str, msgspec.Meta(pattern=RUN_ID_PATTERN)]
"""A run id as the wire carries it: it names the receiver's output file, so nothing but a plain name."""

MAX_DBN_HEADER_BYTES: Final = 8 + (1 << 20)
"""Largest DBN header a handshake carries: the prelude and metadata of at most 1 MiB, as a reader takes."""
DbnHeader = Annotated[bytes, msgspec.Meta(max_length=MAX_DBN_HEADER_BYTES)]


class StreamMetadata(msgspec.Struct, frozen=True):
    """What a receiver needs to know about the file being streamed (from its DBN metadata)."""

    source: str
    """File name the records come from."""
    dataset: str
    schema: str
    symbols: list[str]
    instruments: dict[int, str]
    """instrument_id -> symbol."""
    start_ns: int
    """Start of the requested time range, UNIX nanoseconds."""
    end_ns: int | None
    """End of the requested time range, UNIX nanoseconds (None when open-ended)."""
    record_count: int | None
    """Number of records in the file, when known."""
    dbn_version: int


class Challenge(msgspec.Struct, frozen=True, tag="challenge", array_like=True):
    """The receiver's first frame on a new connection: a fresh random nonce to prove the token against."""

    nonce: bytes


class Handshake(msgspec.Struct, frozen=True, tag="hello", array_like=True):
    """The sender's first message: who it is, what it streams, and its proof of the token."""

    protocol_version: int
    metadata: StreamMetadata
    run_id: RunId
    """The sender's run id; the receiver's run takes it, so one id names a replay across services."""
    proof: bytes
    """``ingest_proof(token, challenge.nonce)``; empty when no token is set."""
    dbn_header: DbnHeader = b""
    """The file's DBN header as it holds it (prelude and metadata, decompressed), so the receiver's recording of
    the stream is a DBN file of its own; empty from a source with no file (the receiver then writes one)."""


class Accepted(msgspec.Struct, frozen=True, tag="accepted", array_like=True):
    """The receiver took the handshake: records may follow."""


class Refused(msgspec.Struct, frozen=True, tag="refused", array_like=True):
    """The receiver will not take this stream, and closes the connection."""

    reason: str


class Heartbeat(msgspec.Struct, frozen=True, tag="beat", array_like=True):
    """Sent while a paced replay waits, so a receiver tells a slow replay from a stalled one."""


class RecordBatch(msgspec.Struct, frozen=True, tag="batch", array_like=True):
    """Consecutive MBO records in DBN layout (see :mod:`obm_shared.records`)."""

    seq: int
    """Batch sequence number, from 0."""
    first_index: int
    """Index in the stream of the first record in this batch."""
    records: bytes
    """``len(records) // MBO_RECORD_SIZE`` packed records."""

    @property
    def count(self) -> int:
        """Number of records in the batch."""
        return len(self.records) // MBO_RECORD_SIZE

    def array(self) -> MboArray:
        """The records as a read-only NumPy view (no copy)."""
        return np.frombuffer(self.records, dtype=MBO_DTYPE)

    @classmethod
    def from_array(cls, seq: int, first_index: int, array: MboArray) -> RecordBatch:
        """Build a batch from an array of records in DBN layout."""
        return cls(seq=seq, first_index=first_index, records=array.tobytes())


class EndOfStream(msgspec.Struct, frozen=True, tag="end", array_like=True):
    """Last message of a complete stream: the sender's totals."""

    records_sent: int
    batches_sent: int


class StreamError(msgspec.Struct, frozen=True, tag="error", array_like=True):
    """Last message of a stream the sender had to abandon."""

    reason: str
    records_sent: int
    stopped_by_user: bool = False
    """True when a person stopped the replay (not a failure)."""


Message = Handshake | RecordBatch | Heartbeat | EndOfStream | StreamError
"""What a sender sends."""

Reply = Challenge | Accepted | Refused
"""What a receiver sends."""
