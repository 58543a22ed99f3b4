"""Where a run's per-event lines go: one file per run, opened when its stream arrives, old runs' files retired.

A file's name says what it holds: ``<run_id>.jsonl.partial`` while it is written, ``<run_id>.jsonl`` once the
run ended done with every line written, ``<run_id>.incomplete.jsonl`` otherwise (a write error, a failed or
stopped run). A ``.partial`` file left behind by a crash is incomplete too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from contextlib import suppress
from pathlib import Path

from receiver.core.config import Settings
from receiver.event_lines import encode_lines
from receiver.event_log import EventLog

logger = logging.getLogger("receiver.run_output")

RUN_FILES = ("*.jsonl", "*.jsonl.partial", "*.dbn", "*.checkpoints")
"""A run's files: complete and incomplete (``*.incomplete.jsonl``) lines, those a crash left partial, and its
recording and checkpoints (a folder). A run id has no dot, so a file's run is its name up to the first dot."""


class OutputFailed(Exception):
    """The run's output could not be written; the run has failed with this reason."""


def remove_old_runs(output_dir: Path, keep: int, max_bytes: int | None = None) -> list[Path]:
    """Remove the files of the oldest runs of ``output_dir`` beyond the newest ``keep``, or beyond ``max_bytes``
    of them together; returns those removed, oldest run first."""
    newest_first = sorted(_runs(output_dir).values(), key=lambda run: run[1], reverse=True)
    kept = kept_bytes = 0
    for _, _, size in newest_first:
        if kept >= keep or (max_bytes is not None and kept_bytes + size > max_bytes):
            break
        kept, kept_bytes = kept + 1, kept_bytes + size
    removed = [path for paths, _, _ in reversed(newest_first[kept:]) for path in sorted(paths)]
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


def make_room(settings: Settings) -> None:
    """A new run's first file is about to be written: remove the oldest runs beyond the bounds first."""
    # one fewer than kept: this run is about to be one of them
    for removed in remove_old_runs(
        settings.runs_dir, settings.output_keep_runs - 1, settings.output_max_bytes
    ):
        logger.info("old output removed", extra={"file": removed.name})


def _runs(output_dir: Path) -> dict[str, tuple[list[Path], float, int]]:
    """Each run's files, with the newest modification time among them and their size together; a file removed
    meanwhile is left out."""
    runs: dict[str, tuple[list[Path], float, int]] = {}
    for pattern in RUN_FILES:
        for path in output_dir.glob(pattern):
            try:
                modified, size = _stat(path)
            except FileNotFoundError:
                continue
            run_id = path.name.split(".")[0]
            paths, newest, total = runs.get(run_id, ([], 0.0, 0))
            runs[run_id] = ([*paths, path], max(newest, modified), total + size)
    return runs


def _stat(path: Path) -> tuple[float, int]:
    """Modification time and size of a file, or of a folder's files together."""
    stat = path.stat()
    if not path.is_dir():
        return stat.st_mtime, stat.st_size
    size = 0
    with os.scandir(path) as entries:
        for entry in entries:
            with suppress(FileNotFoundError):
                size += entry.stat().st_size
    return stat.st_mtime, size


class RunOutput:
    """The output of one run in the receiver's runs folder (``Settings.runs_dir``), or nothing when output is
    switched off.

    The file is opened only when the run's stream arrives (:meth:`open`), so a run that gets no stream
    writes no file and removes none (the run makes room for its files first: :func:`make_room`).
    """

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.enabled = settings.output_enabled
        self.path = settings.runs_dir / f"{run_id}.jsonl"
        """The file once complete."""
        self.partial_path = settings.runs_dir / f"{run_id}.jsonl.partial"
        self.incomplete_path = settings.runs_dir / f"{run_id}.incomplete.jsonl"
        self._queue_batches = settings.output_queue_batches
        self._closed = False
        self.log: EventLog | None = None
        """The open file's writer and reader, from :meth:`open` on."""

    def open(self) -> None:
        """The stream arrived: start the run's file."""
        if not self.enabled or self.log is not None:
            return
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
