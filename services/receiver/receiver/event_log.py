"""The per-event JSON lines output: written off the ingest path, read back in pages.

Ingest hands over batches of event lines (structs) through a bounded queue; a writer thread encodes them as
JSON and appends them.
When the writer falls behind, ``put`` waits for room (backpressure reaches the TCP stream): no line is dropped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

INDEX_EVERY_LINES = 1024
"""A byte offset is remembered for every this many lines, so a page is found without scanning the file."""

_CLOSE = None


class EventLog:
    """One JSON line per book event, appended to ``path``."""

    def __init__(self, path: Path, queue_batches: int, encode: Callable[[Sequence[Any]], bytes]) -> None:
        self.path = path
        self._encode = encode
        """Lines -> their JSON text, one newline-terminated line each."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")
        self._queue: queue.Queue[Sequence[Any] | None] = queue.Queue(maxsize=queue_batches)
        self._lock = threading.Lock()
        self._lines = 0
        self._bytes = 0
        self._line_offsets: list[int] = [0]  # offset of line k * INDEX_EVERY_LINES
        self.error: str | None = None
        self._thread = threading.Thread(target=self._write_loop, name="event-log-writer", daemon=True)
        self._thread.start()

    @property
    def lines_written(self) -> int:
        """Lines on disk and readable."""
        with self._lock:
            return self._lines

    async def put(self, lines: Sequence[Any]) -> None:
        """Queue a batch of lines for writing, waiting for room when the writer is behind."""
        try:
            self._queue.put_nowait(lines)
        except queue.Full:
            await asyncio.to_thread(self._queue.put, lines)

    def close(self) -> None:
        """Write everything queued, then close the file."""
        self._queue.put(_CLOSE)
        self._thread.join()

    def _write_loop(self) -> None:
        try:
            while (lines := self._queue.get()) is not _CLOSE:
                self._append(lines)
        except OSError as error:
            self.error = f"writing {self.path}: {error}"
            while self._queue.get() is not _CLOSE:  # keep ingest unblocked; the error is reported
                pass
        finally:
            self._file.close()

    def _append(self, lines: Sequence[Any]) -> None:
        """Encode and write a batch, cut where the page index needs a line's offset, then publish it."""
        chunks: list[tuple[int, int]] = []  # (lines, bytes) of each piece written
        written = self._lines  # only this thread changes it
        start = 0
        while start < len(lines):
            piece = lines[start : start + INDEX_EVERY_LINES - written % INDEX_EVERY_LINES]
            data = self._encode(piece)
            self._file.write(data)
            chunks.append((len(piece), len(data)))
            written += len(piece)
            start += len(piece)
        self._file.flush()
        with self._lock:
            for count, size in chunks:
                self._lines += count
                self._bytes += size
                if self._lines % INDEX_EVERY_LINES == 0:
                    self._line_offsets.append(self._bytes)

    def read_page(self, start: int, limit: int) -> list[bytes]:
        """Lines ``start`` .. ``start + limit - 1`` (0-based) that are already written."""
        with self._lock:
            stop = min(start + limit, self._lines)
            readable_bytes = self._bytes
            block = min(start // INDEX_EVERY_LINES, len(self._line_offsets) - 1)
            offset = self._line_offsets[block]
        if start >= stop:
            return []
        lines: list[bytes] = []
        with self.path.open("rb") as file:
            file.seek(offset)
            line_number = block * INDEX_EVERY_LINES
            while line_number < stop and file.tell() < readable_bytes:
                line = file.readline()
                if line_number >= start:
                    lines.append(line.rstrip(b"\n"))
                line_number += 1
        return lines
