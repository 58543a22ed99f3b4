"""A run's stream on disk as it arrived: a DBN file, checkpoints of its books, and their index.

``<run_id>.dbn`` is the stream's DBN header followed by its records as received, so every DBN tool reads it
(``databento.DBNStore.from_file``). ``<run_id>.checkpoints/`` holds ``<record_index>.ckpt`` (the whole market
after the first ``record_index`` records, at an event boundary, as :mod:`receiver.history.checkpoint` encodes
it), ``index.jsonl`` (one :class:`Checkpoint` per line, in order) and, once the run has ended,
``summary.msgpack``. A writer thread makes every write, fed through a bounded queue: ingest waits for room
rather than drop anything. A write error stops the writer; it is kept in :attr:`Recording.error`, the file is cut
back to its last whole record, and later items are taken and dropped so ingest never blocks.

A :class:`Recording` answers the same questions being written (what is on disk so far) or read back from the
files of an earlier run (:func:`open_recording`).
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import msgspec
import numpy as np
from databento_dbn import Metadata, Schema, SType, VersionUpgradePolicy

from obm_shared.dbn import F_LAST
from obm_shared.dbn_file import DBN_MAGIC, DBN_PRELUDE_BYTES, MAX_METADATA_BYTES
from obm_shared.messages import RUN_ID_PATTERN, StreamMetadata
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray
from receiver.book.market import Market
from receiver.handover import Handover
from receiver.history import checkpoint
from receiver.history.liquidity import HistoryState
from receiver.history.points import AtTime, Point

RECORDING_SUFFIX: Final = ".dbn"
CHECKPOINTS_SUFFIX: Final = ".checkpoints"
CHECKPOINT_SUFFIX: Final = ".ckpt"
INDEX_FILE: Final = "index.jsonl"
SUMMARY_FILE: Final = "summary.msgpack"

logger = logging.getLogger("receiver.recording")


class Checkpoint(msgspec.Struct, frozen=True, array_like=True):
    """The market after the first ``record_index`` records of the stream, which end on an F_LAST record."""

    record_index: int
    events: int
    """Complete events in those records."""
    ts_recv: int | None
    """UNIX ns of the last of those records; None for the start of the stream."""
    ts_event: int | None

    @property
    def event_index(self) -> int | None:
        """The event the checkpoint ends on, as GET /events numbers it; None before the first."""
        return self.events - 1 if self.events else None


class Progress(msgspec.Struct, frozen=True):
    """What a recording holds on disk."""

    records: int
    events: int
    """F_LAST records among them."""
    first_ts_recv: int | None
    last_ts_recv: int | None


class Summary(msgspec.Struct, frozen=True):
    """How a run ended, written once it has: what its files alone cannot tell."""

    state: str
    history: HistoryState | None


class Recording:
    """A run's recording and checkpoints, as far as they are on disk. Thread-safe: seeks read it in threads."""

    def __init__(self, folder: Path, run_id: str, header_length: int) -> None:
        self.run_id = run_id
        self.path = folder / f"{run_id}{RECORDING_SUFFIX}"
        self.checkpoint_dir = folder / f"{run_id}{CHECKPOINTS_SUFFIX}"
        self.header_length = header_length
        """Bytes of the DBN header before the first record."""
        self.error: str | None = None
        """Why the recording stopped short of the stream, if it did."""
        self.finished = False
        """Nothing more will be written."""
        self.summary: Summary | None = None
        self._lock = threading.Lock()
        self._progress = Progress(0, 0, None, None)
        self._checkpoints: list[Checkpoint] = []
        self._checkpoint_ts: list[int] = []
        """Each checkpoint's ts_recv (-1 for the start), for bisection."""
        self._checkpoint_events: list[int] = []

    def progress(self) -> Progress:
        with self._lock:
            return self._progress

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint on disk, in stream order."""
        with self._lock:
            return list(self._checkpoints)

    def nearest_checkpoint(self, point: Point) -> Checkpoint:
        """The last checkpoint at or before ``point``'s prefix (the start of the stream is always one)."""
        with self._lock:
            if isinstance(point, AtTime):
                index = bisect.bisect_right(self._checkpoint_ts, point.ns) - 1
            else:
                index = bisect.bisect_right(self._checkpoint_events, point.index + 1) - 1
            return self._checkpoints[max(index, 0)]

    def read(self, start: int, count: int) -> MboArray:
        """Records ``start`` .. ``start + count - 1`` (0-based) of those on disk."""
        count = max(min(count, self.progress().records - start), 0)
        records = self._read_file(start, count)
        if len(records) != count:
            raise FileNotFoundError(f"{self.path.name} is shorter than its {start + count} records")
        return records

    def _read_file(self, start: int, count: int) -> MboArray:
        """The whole records among ``count`` from ``start``, whatever the progress says."""
        with self.path.open("rb") as file:
            data = os.pread(
                file.fileno(), count * MBO_RECORD_SIZE, self.header_length + start * MBO_RECORD_SIZE
            )
        return np.frombuffer(data[: len(data) - len(data) % MBO_RECORD_SIZE], dtype=MBO_DTYPE)

    def market_at(self, point: Checkpoint) -> Market:
        """A market holding the checkpoint's books."""
        return checkpoint.decode(self._checkpoint_path(point.record_index).read_bytes())

    def _checkpoint_path(self, record_index: int) -> Path:
        return self.checkpoint_dir / f"{record_index}{CHECKPOINT_SUFFIX}"

    def _add_records(self, records: MboArray) -> None:
        if not len(records):
            return
        events = int(np.count_nonzero(records["flags"] & F_LAST))
        with self._lock:
            done = self._progress
            first = done.first_ts_recv if done.first_ts_recv is not None else int(records["ts_recv"][0])
            self._progress = Progress(
                done.records + len(records), done.events + events, first, int(records["ts_recv"][-1])
            )

    def _add_checkpoint(self, point: Checkpoint) -> None:
        with self._lock:
            self._checkpoints.append(point)
            self._checkpoint_ts.append(point.ts_recv if point.ts_recv is not None else -1)
            self._checkpoint_events.append(point.events)


@dataclass(frozen=True)
class _Header:
    data: bytes


@dataclass(frozen=True)
class _Records:
    data: bytes


@dataclass(frozen=True)
class _Checkpoint:
    point: Checkpoint
    data: bytes


_Item = _Header | _Records | _Checkpoint | Summary | None
_CLOSE = None
_index_encoder = msgspec.json.Encoder()
_summary_encoder = msgspec.msgpack.Encoder()


class RecordingWriter:
    """Writes one run's recording in a thread of its own; :attr:`recording` reads what is written."""

    def __init__(self, folder: Path, run_id: str, dbn_header: bytes, queue_items: int) -> None:
        """Create the run's files (raises OSError when they cannot be) and queue the DBN header."""
        self.recording = Recording(folder, run_id, len(dbn_header))
        folder.mkdir(parents=True, exist_ok=True)
        self.recording.checkpoint_dir.mkdir(exist_ok=True)
        self._file = self.recording.path.open("wb")
        self._index = (self.recording.checkpoint_dir / INDEX_FILE).open("wb")
        self._bytes = 0
        """Bytes of the recording that are whole: the header and whole records."""
        self._queue: Handover[_Item] = Handover(queue_items)
        self._queue.put_blocking(_Header(dbn_header))
        self._thread = threading.Thread(target=self._write_loop, name="recording-writer", daemon=True)
        self._thread.start()

    async def append(self, records: bytes) -> None:
        """Queue records as received (whole DBN MBO records), waiting for room when the writer is behind."""
        await self._put(_Records(records))

    async def checkpoint(self, market: Market, records: MboArray) -> None:
        """Queue a checkpoint of ``market``, which has applied the stream up to the last of ``records`` (an
        F_LAST record)."""
        last = records[-1]
        accounting = market.accounting
        point = Checkpoint(accounting.records, accounting.events, int(last["ts_recv"]), int(last["ts_event"]))
        await self._put(_Checkpoint(point, checkpoint.encode(market)))

    async def start(self, market: Market) -> None:
        """Queue the checkpoint of the stream's start: its empty books and its symbols."""
        await self._put(_Checkpoint(Checkpoint(0, 0, None, None), checkpoint.encode(market)))

    def close(self, summary: Summary) -> str | None:
        """Write everything queued and the summary, make it durable and close; returns the write error, if any.
        Blocks: call it in a thread."""
        self._queue.put_blocking(summary)
        self._queue.put_blocking(_CLOSE)
        self._thread.join()
        self._queue.finish()
        self.recording.summary = summary
        self.recording.finished = True
        return self.recording.error

    async def _put(self, item: _Item) -> None:
        await self._queue.put(item)

    def _write_loop(self) -> None:
        item = self._queue.get()
        try:
            while item is not _CLOSE:
                self._write(item)
                item = self._queue.get()
            os.fsync(self._file.fileno())
            self._file.close()
            self._index.close()
        except Exception as error:  # a write error, or a bug: either way ingest must not wait for this thread
            self._failed(error)
            while item is not _CLOSE:  # keep ingest unblocked; the run reads the error
                item = self._queue.get()

    def _write(self, item: _Item) -> None:
        recording = self.recording
        if isinstance(item, _Records | _Header):
            self._file.write(item.data)
            self._file.flush()  # readers read the file by offset
            self._bytes += len(item.data)
            if isinstance(item, _Records):
                recording._add_records(np.frombuffer(item.data, dtype=MBO_DTYPE))
        elif isinstance(item, _Checkpoint):
            _replace(recording._checkpoint_path(item.point.record_index), item.data)
            self._index.write(_index_encoder.encode(item.point) + b"\n")
            self._index.flush()
            recording._add_checkpoint(item.point)
        elif isinstance(item, Summary):
            _replace(recording.checkpoint_dir / SUMMARY_FILE, _summary_encoder.encode(item))

    def _failed(self, error: Exception) -> None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else repr(error)
        self.recording.error = f"writing {self.recording.path}: {reason}"
        logger.error(
            "recording write failed", extra={"file": str(self.recording.path), "error": self.recording.error}
        )
        # a record cut short is no record: DBN readers take the file as it is
        for file in (self._file, self._index):
            with suppress(OSError, ValueError):
                file.close()
        with suppress(OSError):
            os.truncate(self.recording.path, self._bytes)


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a reader never opens half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.rename(path)


def dbn_header(given: bytes, metadata: StreamMetadata) -> bytes:
    """The recording's DBN header: the one the stream's file has, checked; a header made from the stream's
    metadata when the source has no file. Raises ValueError when ``given`` is not an MBO file's header."""
    if not given:
        # the stub types the enums' members as str
        return Metadata(
            dataset=metadata.dataset,
            schema=Schema.MBO,  # type: ignore[arg-type]
            start=metadata.start_ns,
            end=metadata.end_ns,
            stype_in=SType.RAW_SYMBOL,  # type: ignore[arg-type]
            stype_out=SType.INSTRUMENT_ID,  # type: ignore[arg-type]
            symbols=metadata.symbols,
            partial=[],
            not_found=[],
            mappings=[],
        ).encode()
    if len(given) < DBN_PRELUDE_BYTES or not given.startswith(DBN_MAGIC):
        raise ValueError("the DBN header does not start with DBN's prelude")
    if DBN_PRELUDE_BYTES + int.from_bytes(given[4:DBN_PRELUDE_BYTES], "little") != len(given):
        raise ValueError("the DBN header's length is not the one its prelude gives")
    try:
        decoded = Metadata.decode(given, upgrade_policy=VersionUpgradePolicy.AS_IS)  # type: ignore[arg-type]
    except BaseException as error:  # databento-dbn panics on some malformed headers: a BaseException
        if not isinstance(error, Exception) and type(error).__name__ != "PanicException":
            raise
        raise ValueError(f"the DBN header does not decode ({error})") from None
    if decoded.schema != Schema.MBO or decoded.ts_out:
        raise ValueError("the DBN header is not one of MBO records without ts_out")
    return given


def is_run_id(name: str) -> bool:
    """True when ``name`` is a run id: a plain name, never a path."""
    return re.fullmatch(RUN_ID_PATTERN, name) is not None


def open_recording(folder: Path, run_id: str) -> Recording:
    """The recording of an earlier run, from its files. Raises LookupError when there is none."""
    if not is_run_id(run_id):
        raise LookupError(f"{run_id!r} is not a run id")
    recording = Recording(folder, run_id, 0)
    try:
        with recording.path.open("rb") as file:
            recording.header_length = _header_length(file)
            size = os.fstat(file.fileno()).st_size
        records = max(size - recording.header_length, 0) // MBO_RECORD_SIZE
        points = _read_index(recording, records)
        for point in points:
            recording._add_checkpoint(point)
        last = points[-1]
        tail = recording._read_file(last.record_index, records - last.record_index)
        first = recording._read_file(0, min(records, 1))
    except (OSError, ValueError) as error:
        raise LookupError(f"run {run_id} has no readable recording ({error})") from None
    recording._progress = Progress(
        records,
        last.events + int(np.count_nonzero(tail["flags"] & F_LAST)),
        int(first["ts_recv"][0]) if len(first) else None,
        int(tail["ts_recv"][-1]) if len(tail) else last.ts_recv,
    )
    with suppress(OSError, msgspec.DecodeError):
        recording.summary = msgspec.msgpack.decode(
            (recording.checkpoint_dir / SUMMARY_FILE).read_bytes(), type=Summary
        )
    recording.finished = True
    return recording


def _header_length(file: BinaryIO) -> int:
    prelude = file.read(DBN_PRELUDE_BYTES)
    if len(prelude) < DBN_PRELUDE_BYTES or not prelude.startswith(DBN_MAGIC):
        raise ValueError("not a DBN file")
    metadata_length = int.from_bytes(prelude[4:], "little")
    if metadata_length > MAX_METADATA_BYTES:
        raise ValueError(f"metadata length {metadata_length} exceeds the limit")
    return DBN_PRELUDE_BYTES + metadata_length


def _read_index(recording: Recording, records: int) -> list[Checkpoint]:
    """The checkpoints whose files and records are there, the start of the stream first (a crash may have cut
    the last line, a write error the recording)."""
    decoder = msgspec.json.Decoder(Checkpoint)
    points = []
    for line in (recording.checkpoint_dir / INDEX_FILE).read_bytes().splitlines():
        with suppress(msgspec.DecodeError):
            point = decoder.decode(line)
            if point.record_index <= records and recording._checkpoint_path(point.record_index).is_file():
                points.append(point)
    if not points or points[0].record_index:
        raise ValueError("no checkpoint of the stream's start")
    return points
