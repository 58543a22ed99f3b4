"""Reading DBN MBO files (raw or zstd, DBN v1-v3) in bounded chunks, with databento-dbn.

Memory stays flat in file size: records are read ``records_per_batch`` at a time from a stream, never the
whole file. Anything that is not a readable MBO file raises :class:`DbnFileError` naming the file.

This is how databento's own ``DBNStore.to_ndarray`` reads a file (the header decoded by databento-dbn, the
fixed-size records viewed as a NumPy array), without importing ``databento`` itself: that package brings
pandas and pyarrow, about 90 MB of resident memory in a process that only ever needs the records as arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import zstandard
from databento_dbn import DBNError, Metadata, Schema, VersionUpgradePolicy

from obm_shared.dbn import MBO_RTYPE
from obm_shared.messages import StreamMetadata
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray

ZSTD_SUFFIX = ".zst"
DBN_MAGIC = b"DBN"
DBN_PRELUDE_BYTES = 8
"""b"DBN", the version byte, then the metadata's length as a little-endian u32."""
COUNT_CHUNK_BYTES = 1 << 20
MAX_METADATA_BYTES = 1 << 20
"""Largest DBN metadata this reader takes: the length is the file's own claim, so it is capped before anything
is read (real files carry a few KiB of symbols and mappings)."""
HEADER_PIECE_BYTES = 64 * 1024


class DbnFileError(ValueError):
    """A file that cannot be streamed as MBO records; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path.name}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class MboFile:
    """An opened, validated DBN MBO file."""

    path: Path
    dbn_metadata: Metadata
    header_bytes: int
    """Length of the DBN header (prelude and metadata) before the first record, in decompressed bytes."""
    compressed: bool

    def metadata(self, record_count: int | None = None) -> StreamMetadata:
        """The file's DBN metadata as the stream's handshake carries it."""
        meta = self.dbn_metadata
        return StreamMetadata(
            source=self.path.name,
            dataset=str(meta.dataset),
            schema=str(meta.schema),
            symbols=list(meta.symbols),
            instruments=instrument_symbols(meta),
            start_ns=int(meta.start),
            end_ns=int(meta.end) if meta.end is not None else None,
            record_count=record_count,
            dbn_version=int(meta.version),
        )

    def header(self) -> bytes:
        """The DBN header (prelude and metadata) as the file holds it, decompressed: what a DBN file of the
        same records starts with."""
        with self.path.open("rb") as raw, _decompressed(raw, self.compressed) as stream:
            return _read_up_to(stream, self.header_bytes)

    def batches(self, records_per_batch: int) -> Iterator[MboArray]:
        """Consecutive arrays of at most ``records_per_batch`` records, read lazily from disk."""
        read_size = MBO_RECORD_SIZE * max(records_per_batch, 1)
        with self._open_records() as stream:
            try:
                while data := stream.read(read_size):
                    records, loose = divmod(len(data), MBO_RECORD_SIZE)
                    if loose:
                        raise DbnFileError(
                            self.path, f"truncated: the last record is incomplete ({loose} bytes)"
                        )
                    array = np.frombuffer(data, dtype=MBO_DTYPE, count=records)
                    if (array["rtype"] != MBO_RTYPE).any():
                        raise DbnFileError(self.path, "unreadable record data (a record is not MBO)")
                    yield array
            except zstandard.ZstdError as error:
                raise DbnFileError(self.path, f"unreadable record data ({error})") from None

    def count_records(self) -> int:
        """Number of records: arithmetic for raw files, one streaming pass for compressed ones.

        Also the completeness check: a file that ends inside a record, or a zstd stream that ends before its
        frame does (a cut that falls on a block boundary decompresses cleanly but short), is an error.
        """
        data_bytes = self._decompressed_size() if self.compressed else self.path.stat().st_size
        records, loose = divmod(data_bytes - self.header_bytes, MBO_RECORD_SIZE)
        if loose:
            raise DbnFileError(self.path, f"truncated: ends {loose} bytes into record {records + 1}")
        return records

    @contextmanager
    def _open_records(self) -> Iterator[BinaryIO]:
        """The file's decompressed bytes, positioned at the first record."""
        with self.path.open("rb") as raw, _decompressed(raw, self.compressed) as stream:
            stream.read(self.header_bytes)
            yield stream

    def _decompressed_size(self) -> int:
        """Bytes the zstd file decompresses to, frame after frame; raises if the last frame is cut short."""
        zstd = zstandard.ZstdDecompressor()
        frame = zstd.decompressobj()
        total, inside_frame = 0, False
        with self.path.open("rb") as raw:
            try:
                while data := raw.read(COUNT_CHUNK_BYTES):
                    while data:
                        total += len(frame.decompress(data))
                        inside_frame = not frame.eof
                        data = b"" if inside_frame else frame.unused_data
                        if not inside_frame:
                            frame = zstd.decompressobj()
            except zstandard.ZstdError as error:
                raise DbnFileError(self.path, f"corrupt zstd data ({error})") from None
        if inside_frame:
            raise DbnFileError(self.path, "truncated: the zstd stream ends inside a frame")
        return total


@contextmanager
def _decompressed(raw: BinaryIO, compressed: bool) -> Iterator[BinaryIO]:
    if not compressed:
        yield raw
        return
    with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False) as stream:
        yield stream


def instrument_symbols(metadata: Metadata) -> dict[int, str]:
    """instrument_id -> raw symbol, from the file's symbology mappings."""
    symbols: dict[int, str] = {}
    for symbol, intervals in metadata.mappings.items():
        for interval in intervals:
            mapped = str(interval["symbol"])
            if mapped.isdigit():
                symbols[int(mapped)] = symbol
            elif symbol.isdigit():
                symbols[int(symbol)] = mapped
    return symbols


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes, or fewer at the end of the stream, read a piece at a time (a short read is not the end)."""
    data = bytearray()
    while len(data) < size and (piece := stream.read(min(HEADER_PIECE_BYTES, size - len(data)))):
        data += piece
    return bytes(data)


def _read_header(path: Path, raw: BinaryIO) -> tuple[Metadata, int, bool]:
    """The DBN metadata, the header's length and whether the file is zstd-compressed."""
    compressed = raw.read(len(zstandard.FRAME_HEADER)) == zstandard.FRAME_HEADER
    raw.seek(0)
    with _decompressed(raw, compressed) as stream:
        prelude = stream.read(DBN_PRELUDE_BYTES)
        if len(prelude) < DBN_PRELUDE_BYTES or not prelude.startswith(DBN_MAGIC):
            raise DbnFileError(path, "not a DBN file (no DBN header)")
        metadata_length = int.from_bytes(prelude[4:], "little")
        if metadata_length > MAX_METADATA_BYTES:
            raise DbnFileError(path, f"not a DBN file: metadata length {metadata_length} exceeds the limit")
        body = _read_up_to(stream, metadata_length)
    if len(body) < metadata_length:
        raise DbnFileError(path, "truncated: the file ends inside its DBN header")
    return _decode_metadata(path, prelude + body), DBN_PRELUDE_BYTES + metadata_length, compressed


def _decode_metadata(path: Path, header: bytes) -> Metadata:
    try:
        # AS_IS keeps the file's own DBN version; the stub types the enum's members as int
        return Metadata.decode(header, upgrade_policy=VersionUpgradePolicy.AS_IS)  # type: ignore[arg-type]
    except BaseException as error:
        # databento-dbn's decoder panics on some malformed headers, and pyo3 raises a panic as a BaseException
        if type(error).__name__ != "PanicException":
            raise
        raise DbnFileError(path, f"not a readable DBN file (its metadata: {error})") from None


def open_mbo_file(path: Path | str) -> MboFile:
    """Open a DBN file and check that it holds MBO records this reader can stream."""
    path = Path(path)
    if not path.is_file():
        raise DbnFileError(path, "no such file")
    try:
        with path.open("rb") as raw:
            metadata, header_bytes, compressed = _read_header(path, raw)
    except DbnFileError:
        raise
    except (DBNError, ValueError, zstandard.ZstdError, OSError) as error:
        raise DbnFileError(path, f"not a readable DBN file ({error})") from None
    schema = metadata.schema
    if schema != Schema.MBO:
        raise DbnFileError(path, f"holds {schema or 'mixed'} records, not MBO")
    if metadata.ts_out:
        raise DbnFileError(path, "records carry ts_out, which this system does not stream")
    return MboFile(path=path, dbn_metadata=metadata, header_bytes=header_bytes, compressed=compressed)
