"""A recorded run's timeline: its market time range, events, checkpoints and one instrument's liquidity history."""

from __future__ import annotations

import msgspec

from receiver.history.archive import RecordedRun
from receiver.history.liquidity import HistoryView


class CheckpointView(msgspec.Struct, frozen=True):
    record_index: int
    event_index: int | None
    ts_recv: int | None


class InstrumentView(msgspec.Struct, frozen=True):
    instrument_id: int
    symbol: str


class Timeline(msgspec.Struct, frozen=True):
    run_id: str
    state: str
    start_ns: int | None
    """ts_recv of the first record recorded, UNIX ns."""
    end_ns: int | None
    """ts_recv of the last record recorded."""
    events: int
    records: int
    checkpoints: list[CheckpointView]
    """Every checkpoint after the stream's start."""
    instruments: list[InstrumentView]
    history: HistoryView | None
    """The liquidity history of the instrument asked for, or of the first; None when the run kept none."""


def timeline(run: RecordedRun, instrument_id: int | None) -> Timeline:
    """The timeline of ``run``. Raises LookupError for an instrument_id without a book."""
    instruments = run.instruments
    if instrument_id is not None and instrument_id not in instruments:
        raise LookupError(f"no book for instrument {instrument_id} in run {run.run_id}")
    shown = instrument_id if instrument_id is not None else (instruments[0] if instruments else None)
    progress = run.recording.progress()
    return Timeline(
        run_id=run.run_id,
        state=run.state,
        start_ns=progress.first_ts_recv,
        end_ns=progress.last_ts_recv,
        events=progress.events,
        records=progress.records,
        checkpoints=[
            CheckpointView(point.record_index, point.event_index, point.ts_recv)
            for point in run.recording.checkpoints()
            if point.record_index
        ],
        instruments=[
            InstrumentView(instrument, run.symbols.get(instrument, str(instrument)))
            for instrument in instruments
        ],
        history=run.history.view(shown) if run.history is not None and shown is not None else None,
    )
