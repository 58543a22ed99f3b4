"""Messages of the sender -> receiver stream, as a tagged union of msgspec Structs.

A stream is: one :class:`Handshake`, any number of :class:`RecordBatch` (``seq`` 0, 1, 2, ... and
``first_index`` equal to the number of records sent before it), then one :class:`EndOfStream` or one
:class:`StreamError`.
"""

from __future__ import annotations

import msgspec
import numpy as np

from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray

PROTOCOL_VERSION = 1


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


class Handshake(msgspec.Struct, frozen=True, tag="hello", array_like=True):
    """First message of a stream."""

    protocol_version: int
    metadata: StreamMetadata


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


Message = Handshake | RecordBatch | EndOfStream | StreamError
