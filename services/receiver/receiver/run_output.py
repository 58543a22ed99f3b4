"""Where a run's per-event lines go: one file per run, opened when its stream arrives, old files retired.

A file's name says what it holds: ``<run_id>.jsonl.partial`` while it is written, ``<run_id>.jsonl`` once the
run ended done with every line written, ``<run_id>.incomplete.jsonl`` otherwise (a write error, a failed or
stopped run). A ``.partial`` file left behind by a crash is incomplete too.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from receiver.core.config import Settings
from receiver.event_lines import encode_lines
from receiver.event_log import EventLog

logger = logging.getLogger("receiver.run_output")

RUN_FILES = ("*.jsonl", "*.jsonl.partial")
"""Complete and incomplete (``*.incomplete.jsonl``) run files, and those a crash left partial."""


class OutputFailed(Exception):
    """The run's output could not be written; the run has failed with this reason."""


def remove_old_runs(output_dir: Path, keep: int, max_bytes: int | None = None) -> list[Path]:
    """Remove the oldest run files of ``output_dir`` beyond the newest ``keep``, or beyond ``max_bytes`` of
    them together; returns those removed, oldest first."""
    newest_first = sorted(_run_files(output_dir), key=lambda run: run[1], reverse=True)
    kept = kept_bytes = 0
    for _, _, size in newest_first:
        if kept >= keep or (max_bytes is not None and kept_bytes + size > max_bytes):
            break
        kept, kept_bytes = kept + 1, kept_bytes + size
    removed = [path for path, _, _ in reversed(newest_first[kept:])]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _run_files(output_dir: Path) -> list[tuple[Path, float, int]]:
    """Each run file with its modification time and size; a file removed meanwhile is left out."""
    files = []
    for pattern in RUN_FILES:
        for path in output_dir.glob(pattern):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((path, stat.st_mtime, stat.st_size))
    return files


class RunOutput:
    """The output of one run in ``<output_dir>``, or nothing when output is switched off.

    The file is opened only when the run's stream arrives (:meth:`open`), so a run that gets no stream
    writes no file and removes none; opening it first removes the oldest files beyond ``output_keep_runs``
    files or ``output_max_bytes`` bytes (this run's file is never one of them: it does not exist yet).
    """

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.enabled = settings.output_enabled
        self.path = settings.output_dir / f"{run_id}.jsonl"
        """The file once complete."""
        self.partial_path = settings.output_dir / f"{run_id}.jsonl.partial"
        self.incomplete_path = settings.output_dir / f"{run_id}.incomplete.jsonl"
        self._keep_runs = settings.output_keep_runs
        self._max_bytes = settings.output_max_bytes
        self._queue_batches = settings.output_queue_batches
        self._closed = False
        self.log: EventLog | None = None
        """The open file's writer and reader, from :meth:`open` on."""

    def open(self) -> None:
        """The stream arrived: start the run's file, removing the oldest files beyond the bounds first."""
        if not self.enabled or self.log is not None:
            return
        # one fewer than kept: this run's file is about to be one of them
        for removed in remove_old_runs(self.path.parent, self._keep_runs - 1, self._max_bytes):
            logger.info("old output removed", extra={"file": removed.name})
        self.log = EventLog(self.partial_path, self._queue_batches, encode_lines)

    @property
    def lines_written(self) -> int | None:
        """Lines on disk and readable; None when output is switched off."""
        if not self.enabled:
            return None
        return self.log.lines_written if self.log is not None else 0

    @property
    def error(self) -> str | None:
        """Why the file stopped short of the run's lines (disk full, I/O error), if it did."""
        return self.log.error if self.log is not None else None

    def read_page(self, start: int, limit: int) -> list[bytes]:
        """Lines ``start`` .. ``start + limit - 1`` (0-based) already written; none before the file opens."""
        return self.log.read_page(start, limit) if self.log is not None else []

    async def close(self, complete: bool) -> str | None:
        """Write everything queued, close the file and name it complete when ``complete`` and every line was
        written, incomplete otherwise; returns the write error, if there was one."""
        if self.log is None or self._closed:
            return self.error
        self._closed = True
        await asyncio.to_thread(self.log.close)
        self.log.move(self.path if complete and self.log.error is None else self.incomplete_path)
        return self.log.error
