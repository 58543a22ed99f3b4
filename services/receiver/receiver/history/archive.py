"""Recorded runs by run id: the current one as it is received, earlier ones read back from their files."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from receiver.history.liquidity import LiquidityHistory
from receiver.history.recording import Recording, open_recording

OPEN_RUNS: Final = 4
"""Earlier runs kept open: their checkpoint index and history are read once, not on every request."""
ENDED_UNKNOWN: Final = "failed"
"""The state of a run whose receiver stopped before writing how it ended."""


@dataclass(frozen=True)
class RecordedRun:
    """What the history of one run is answered from."""

    run_id: str
    state: str
    recording: Recording
    history: LiquidityHistory | None
    """None for an earlier run that ended without saving its history."""
    symbols: dict[int, str]
    """instrument_id -> symbol, as the stream named them."""
    instruments: list[int]
    """Instruments with a book, ascending."""


class Archive:
    """Earlier runs' recordings in the output folder, the last few opened kept open."""

    def __init__(self, folder: Path, history_levels: int) -> None:
        self.folder = folder
        self._history_levels = history_levels
        self._open: OrderedDict[str, RecordedRun] = OrderedDict()

    def earlier(self, run_id: str) -> RecordedRun:
        """The run's recording, read back. Raises LookupError when it has none (or ``run_id`` is no name)."""
        run = self._open.pop(run_id, None)
        if run is None or not run.recording.path.exists():  # retention may have removed it since
            run = self._read(run_id)
        self._open[run_id] = run
        while len(self._open) > OPEN_RUNS:
            self._open.popitem(last=False)
        return run

    def forget(self, run_id: str) -> None:
        """Read the run's files anew next time (they changed, or went)."""
        self._open.pop(run_id, None)

    def _read(self, run_id: str) -> RecordedRun:
        recording = open_recording(self.folder, run_id)
        try:
            symbols = recording.market_at(recording.checkpoints()[0]).symbols  # the stream's start names them
        except (OSError, ValueError) as error:
            raise LookupError(f"run {run_id} has no readable start checkpoint ({error})") from None
        summary = recording.summary
        saved = summary.history if summary is not None else None
        history = LiquidityHistory.restore(saved, self._history_levels) if saved is not None else None
        return RecordedRun(
            run_id,
            summary.state if summary is not None else ENDED_UNKNOWN,
            recording,
            history,
            symbols,
            history.instruments() if history is not None else sorted(symbols),
        )
