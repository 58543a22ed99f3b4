"""Where a run's per-event lines go: one file per run, opened when its stream arrives, old files retired."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from receiver.core.config import Settings
from receiver.event_lines import encode_lines
from receiver.event_log import EventLog

logger = logging.getLogger("receiver.run_output")


def remove_old_runs(output_dir: Path, keep: int) -> list[Path]:
    """Remove the oldest run files (``*.jsonl``) of ``output_dir`` so ``keep`` remain; returns those removed."""
    runs = sorted(output_dir.glob("*.jsonl"), key=lambda path: path.stat().st_mtime)
    removed = runs[: max(len(runs) - keep, 0)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


class RunOutput:
    """The output of one run: ``<output_dir>/<run_id>.jsonl``, or nothing when output is switched off.

    The file is opened only when the run's stream arrives (:meth:`open`), so a run that gets no stream
    writes no file and removes none; opening it first removes the oldest files beyond ``output_keep_runs``.
    """

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.enabled = settings.output_enabled
        self.path = settings.output_dir / f"{run_id}.jsonl"
        self._keep_runs = settings.output_keep_runs
        self._queue_batches = settings.output_queue_batches
        self.log: EventLog | None = None
        """The open file's writer and reader, from :meth:`open` on."""

    def open(self) -> None:
        """The stream arrived: start the run's file, keeping at most ``output_keep_runs`` files with it."""
        if not self.enabled or self.log is not None:
            return
        if self._keep_runs > 0:  # this run's file is about to be one of them
            for removed in remove_old_runs(self.path.parent, self._keep_runs - 1):
                logger.info("old output removed", extra={"file": removed.name})
        self.log = EventLog(self.path, self._queue_batches, encode_lines)

    @property
    def lines_written(self) -> int | None:
        """Lines on disk and readable; None when output is switched off."""
        if not self.enabled:
            return None
        return self.log.lines_written if self.log is not None else 0

    def read_page(self, start: int, limit: int) -> list[bytes]:
        """Lines ``start`` .. ``start + limit - 1`` (0-based) already written; none before the file opens."""
        return self.log.read_page(start, limit) if self.log is not None else []

    async def close(self) -> str | None:
        """Write everything queued and close the file; returns the writer's error, if it had one."""
        if self.log is None:
            return None
        await asyncio.to_thread(self.log.close)
        return self.log.error
