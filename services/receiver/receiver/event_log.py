"""The per-event JSON lines output: written off the ingest path, read back in pages.

Ingest hands over batches of event lines (structs) through a bounded queue; a writer thread encodes them as
JSON and appends them.
When the writer falls behind, ``put`` waits for room (backpressure reaches the TCP stream): no line is dropped.
A write error (disk full, I/O error) stops the writer: the file is cut back to its last whole line, the error
is logged and kept in :attr:`EventLog.error`, and later batches are taken and dropped so ingest never blocks.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from receiver.handover import Handover

INDEX_EVERY_LINES = 1024
"""A byte offset is remembered for every this many lines, so a page is found without scanning the file."""

_CLOSE = None
logger = logging.getLogger("receiver.event_log")


class EventLog:
    """One JSON line per book event, appended to ``path``."""

    def __init__(self, path: Path, queue_batches: int, encode: Callable[[Sequence[Any]], bytes]) -> None:
        self.path = path
        """Where the lines are: :meth:`move` changes it."""
        self._encode = encode
        """Lines -> their JSON text, one newline-terminated line each."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb", buffering=0)  # unbuffered: a write error surfaces at its batch
        self._queue: Handover[Sequence[Any] | None] = Handover(queue_batches)
        self._lock = threading.Lock()
        self._lines = 0
        self._bytes = 0
        self._line_offsets: list[int] = [0]  # offset of line k * INDEX_EVERY_LINES
        self.error: str | None = None
        """Why the file stopped growing before :meth:`close`, if it did."""
        self._thread = threading.Thread(target=self._write_loop, name="event-log-writer", daemon=True)
        self._thread.start()

    @property
    def lines_written(self) -> int:
        """Lines on disk and readable."""
        with self._lock:
            return self._lines

    @property
    def bytes_written(self) -> int:
        """Bytes of the lines on disk and readable."""
        with self._lock:
            return self._bytes

    async def put(self, lines: Sequence[Any]) -> None:
        """Queue a batch of lines for writing, waiting for room when the writer is behind."""
        await self._queue.put(lines)

    def close(self) -> None:
        """Write everything queued, make it durable, then close the file."""
        self._queue.put_blocking(_CLOSE)
        self._thread.join()
        self._queue.finish()

    def move(self, path: Path) -> None:
        """Rename the closed file to ``path``; a failure is kept in :attr:`error` and the file stays where it is."""
        with self._lock:  # a reader opens the file under the lock, so it never looks for the old name
            try:
                self.path.rename(path)
            except OSError as error:
                self._failed(f"renaming {self.path} to {path.name}", error)
            else:
                self.path = path

    def _write_loop(self) -> None:
        lines = self._queue.get()
        try:
            while lines is not _CLOSE:
                self._append(lines)
                lines = self._queue.get()
            os.fsync(self._file.fileno())  # the rename that says "complete" must not come before the data
            self._file.close()
        except OSError as error:
            self._failed(f"writing {self.path}", error)
            # a half-written line is no line: cut back to the last whole one
            with suppress(OSError, ValueError):
                os.ftruncate(self._file.fileno(), self._bytes)
            with suppress(OSError):
                self._file.close()
            while lines is not _CLOSE:  # keep ingest unblocked; the run reads the error
                lines = self._queue.get()

    def _failed(self, action: str, error: OSError) -> None:
        self.error = f"{action}: {error.strerror or error}"
        logger.error("output write failed", extra={"file": str(self.path), "error": self.error})

    def _append(self, lines: Sequence[Any]) -> None:
        """Encode and write a batch in pieces cut where the page index needs a line's offset, publishing each
        piece once it is written."""
        start = 0
        while start < len(lines):
            piece = lines[start : start + INDEX_EVERY_LINES - self._lines % INDEX_EVERY_LINES]
            data = self._encode(piece)
            self._write_all(data)
            with self._lock:
                self._lines += len(piece)
                self._bytes += len(data)
                if self._lines % INDEX_EVERY_LINES == 0:
                    self._line_offsets.append(self._bytes)
            start += len(piece)

    def _write_all(self, data: bytes) -> None:
        """Write all of ``data`` (an unbuffered write may take only part of it when the disk is nearly full)."""
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(errno.EIO, "the file took none of the bytes written")
            view = view[written:]

    def read_page(self, start: int, limit: int) -> list[bytes]:
        """Lines ``start`` .. ``start + limit - 1`` (0-based) that are already written."""
        with self._lock:
            stop = min(start + limit, self._lines)
            readable_bytes = self._bytes
            block = min(start // INDEX_EVERY_LINES, len(self._line_offsets) - 1)
            offset = self._line_offsets[block]
            if start >= stop:
                return []
            file = self.path.open("rb")
        lines: list[bytes] = []
        with file:
            file.seek(offset)
            line_number = block * INDEX_EVERY_LINES
            while line_number < stop and file.tell() < readable_bytes:
                line = file.readline()
                if line_number >= start:
                    lines.append(line.rstrip(b"\n"))
                line_number += 1
        return lines
