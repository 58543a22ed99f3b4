"""A live session's DBN byte stream split into its metadata, its MBO records and its other records.

Once the session starts, a gateway sends the DBN metadata, then records of several kinds back to back: symbol
mappings, system messages (heartbeats, the end of a replay), errors, and the data. The MBO records, almost all of
the stream, are taken as NumPy arrays in runs (no Python object per record); the few others are decoded by
databento-dbn, which reads every DBN version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from databento_dbn import DBNDecoder, Metadata, VersionUpgradePolicy

from obm_shared.dbn import MBO_RTYPE
from obm_shared.dbn_file import DBN_MAGIC, DBN_PRELUDE_BYTES, MAX_METADATA_BYTES
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE

MBO_LENGTH_WORDS = MBO_RECORD_SIZE // 4
"""An MBO record's header gives its length in 4-byte words."""


class StreamDecodeError(ValueError):
    """Bytes that are not a DBN stream of records; the message says where it went wrong."""


@dataclass(frozen=True)
class Header:
    """The stream's DBN header as it came (prelude and metadata), and the metadata decoded."""

    raw: bytes
    metadata: Metadata


class DbnStream:
    """Feed it the session's bytes as they arrive; it hands back what they complete, in stream order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.header: Header | None = None
        self._others = DBNDecoder(upgrade_policy=VersionUpgradePolicy.AS_IS)  # type: ignore[arg-type]

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that do not complete a record yet."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes | Any]:
        """The MBO record runs (their bytes) and other records (databento-dbn objects) that ``chunk`` completes;
        raises :class:`StreamDecodeError` for bytes that cannot be DBN."""
        self._buffer += chunk
        if self.header is None and not self._read_header():
            return []
        pieces: list[bytes | Any] = []
        buffer, position = self._buffer, 0
        while len(buffer) - position >= 1:
            if run := _mbo_run(buffer, position):
                end = position + run * MBO_RECORD_SIZE
                pieces.append(bytes(buffer[position:end]))
                position = end
                continue
            length = buffer[position] * 4
            if length == 0:
                raise StreamDecodeError(f"a record of length 0 at stream byte {position}")
            if len(buffer) - position < length:
                break
            pieces.extend(self._decode_other(bytes(buffer[position : position + length])))
            position += length
        del buffer[:position]
        return pieces

    def _read_header(self) -> bool:
        """Take the DBN header off the buffer once it is whole; False while it is not."""
        buffer = self._buffer
        if len(buffer) < DBN_PRELUDE_BYTES:
            return False
        if not buffer.startswith(DBN_MAGIC):
            raise StreamDecodeError("the session's data does not start with DBN's prelude")
        length = DBN_PRELUDE_BYTES + int.from_bytes(buffer[4:DBN_PRELUDE_BYTES], "little")
        if length - DBN_PRELUDE_BYTES > MAX_METADATA_BYTES:
            raise StreamDecodeError(f"metadata length {length - DBN_PRELUDE_BYTES} exceeds the limit")
        if len(buffer) < length:
            return False
        raw = bytes(buffer[:length])
        try:
            metadata = Metadata.decode(raw, upgrade_policy=VersionUpgradePolicy.AS_IS)  # type: ignore[arg-type]
        except Exception as error:
            raise StreamDecodeError(f"the session's DBN metadata does not decode ({error})") from None
        self._others.write(raw)
        self._others.decode()
        self.header = Header(raw, metadata)
        del buffer[:length]
        return True

    def _decode_other(self, record: bytes) -> list[Any]:
        self._others.write(record)
        try:
            return list(self._others.decode())
        except Exception as error:
            raise StreamDecodeError(f"a record of rtype {record[1]:#04x} does not decode ({error})") from None


def _mbo_run(buffer: bytearray, position: int) -> int:
    """How many MBO records follow ``position``, up to the first record of another kind or the buffer's end."""
    whole = (len(buffer) - position) // MBO_RECORD_SIZE
    if not whole:
        return 0
    records = np.frombuffer(buffer, dtype=MBO_DTYPE, count=whole, offset=position)
    other = (records["length"] != MBO_LENGTH_WORDS) | (records["rtype"] != MBO_RTYPE)
    del records  # the buffer may be resized only once no view of it is left
    return int(other.argmax()) if other.any() else whole
