"""Reading DBN MBO files (raw or zstd, DBN v1-v3) in bounded chunks, with databento.

Memory stays flat in file size: records are read ``records_per_batch`` at a time from a stream, never the
whole file. Anything that is not a readable MBO file raises :class:`DbnFileError` naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import databento as db
import zstandard
from databento.common.error import BentoError, BentoWarning
from databento_dbn import DBNError, Schema

from obm_shared.messages import StreamMetadata
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray

ZSTD_SUFFIX = ".zst"
COUNT_CHUNK_BYTES = 1 << 20


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
    store: db.DBNStore

    def metadata(self, record_count: int | None = None) -> StreamMetadata:
        """The file's DBN metadata as the stream's handshake carries it."""
        meta = self.store.metadata
        return StreamMetadata(
            source=self.path.name,
            dataset=str(meta.dataset),
            schema=str(meta.schema),
            symbols=list(meta.symbols),
            instruments=instrument_symbols(self.store),
            start_ns=int(meta.start),
            end_ns=int(meta.end) if meta.end is not None else None,
            record_count=record_count,
            dbn_version=int(meta.version),
        )

    def batches(self, records_per_batch: int) -> Iterator[MboArray]:
        """Consecutive arrays of at most ``records_per_batch`` records, read lazily from disk."""
        with warnings.catch_warnings():
            warnings.simplefilter("error", BentoWarning)
            try:
                for array in self.store.to_ndarray(count=records_per_batch):
                    if array.dtype != MBO_DTYPE:
                        raise DbnFileError(self.path, f"unexpected MBO record layout {array.dtype}")
                    if len(array):
                        yield array
            except BentoWarning:
                raise DbnFileError(self.path, "truncated: the last record is incomplete") from None
            except (BentoError, zstandard.ZstdError, ValueError) as error:
                raise DbnFileError(self.path, f"unreadable record data ({error})") from None

    def count_records(self) -> int:
        """Number of records: arithmetic for raw files, one streaming pass for compressed ones.

        Also the completeness check: a file that ends inside a record, or a zstd stream that ends before its
        frame does (a cut that falls on a block boundary decompresses cleanly but short), is an error.
        """
        if self.path.name.endswith(ZSTD_SUFFIX):
            data_bytes = self._decompressed_size()
        else:
            data_bytes = self.path.stat().st_size
        records, loose = divmod(data_bytes - self._metadata_bytes(), MBO_RECORD_SIZE)
        if loose:
            raise DbnFileError(self.path, f"truncated: ends {loose} bytes into record {records + 1}")
        return records

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

    def _metadata_bytes(self) -> int:
        return int(self.store._metadata_length)  # databento keeps the header length private


def instrument_symbols(store: db.DBNStore) -> dict[int, str]:
    """instrument_id -> raw symbol, from the file's symbology mappings."""
    symbols: dict[int, str] = {}
    for symbol, intervals in store.metadata.mappings.items():
        for interval in intervals:
            mapped = str(interval["symbol"])
            if mapped.isdigit():
                symbols[int(mapped)] = symbol
            elif symbol.isdigit():
                symbols[int(symbol)] = mapped
    return symbols


def open_mbo_file(path: Path | str) -> MboFile:
    """Open a DBN file and check that it holds MBO records this reader can stream."""
    path = Path(path)
    if not path.is_file():
        raise DbnFileError(path, "no such file")
    try:
        store = db.DBNStore.from_file(path)
        schema = store.metadata.schema
    except (BentoError, DBNError, ValueError, zstandard.ZstdError, OSError) as error:
        raise DbnFileError(path, f"not a readable DBN file ({error})") from None
    if schema != Schema.MBO:
        raise DbnFileError(path, f"holds {schema or 'mixed'} records, not MBO")
    if store.metadata.ts_out:
        raise DbnFileError(path, "records carry ts_out, which this system does not stream")
    return MboFile(path=path, store=store)
