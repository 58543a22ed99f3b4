"""One run of the receiver: protocol messages in, books updated at event boundaries, every record counted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum

from obm_shared.framing import ProtocolError, StreamValidator
from obm_shared.ids import new_run_id
from obm_shared.messages import EndOfStream, Handshake, Message, RecordBatch, StreamError, StreamMetadata
from obm_shared.records import MboArray
from receiver.book.adapter import EventAligner, apply_records
from receiver.book.market import Market
from receiver.core.config import Settings
from receiver.event_lines import EventCapturer, encode_lines
from receiver.event_log import EventLog, remove_old_runs
from receiver.trade_tape import TradeTape

logger = logging.getLogger("receiver.processing")


class RunState(StrEnum):
    IDLE = "idle"
    READY = "ready"
    RECEIVING = "receiving"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"


class Run:
    """State and counts of one stream. Reads between slices always see books at event boundaries."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.run_id = new_run_id()
        self.state = RunState.READY
        self.market = Market()
        self.metadata: StreamMetadata | None = None
        self.validator = StreamValidator()
        self.aligner = EventAligner()
        self.protocol_errors: Counter[str] = Counter()
        self.last_error: str | None = None
        self.sender_totals: EndOfStream | None = None
        self.trades = TradeTape(settings.trade_tape_size)
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.version = 0
        """Incremented whenever the books change (after each applied slice of complete events)."""
        self.event_log: EventLog | None = None
        self.capturer = EventCapturer(self.market, settings.output_depth)
        if settings.output_enabled:
            if settings.output_keep_runs > 0:  # this run's file is about to be one of them
                for removed in remove_old_runs(settings.output_dir, settings.output_keep_runs - 1):
                    logger.info("old output removed", extra={"file": removed.name})
            self.event_log = EventLog(
                settings.output_dir / f"{self.run_id}.jsonl",
                settings.output_queue_batches,
                encode_lines,
            )

    @property
    def records_received(self) -> int:
        return self.validator.records_received

    def elapsed_seconds(self) -> float:
        """Seconds from the first record received to the last applied (or to now, while receiving)."""
        if self.started_at is None:
            return 0.0
        return (self.finished_at or self.clock()) - self.started_at

    async def handle(self, message: Message) -> None:
        """Apply one protocol message. Raises :class:`ProtocolError` when it breaks the protocol."""
        self.validator.check(message)
        if isinstance(message, RecordBatch):
            await self._apply_batch(message.array())
        elif isinstance(message, Handshake):
            self.metadata = message.metadata
            self.market.symbols.update(message.metadata.instruments)
            self.state = RunState.RECEIVING
            self.version += 1
        elif isinstance(message, EndOfStream):
            self.sender_totals = message
            await self._finish()
        elif isinstance(message, StreamError):
            if message.stopped_by_user:
                self.last_error = f"sender stopped: {message.reason}"
                await self._finish(RunState.STOPPED)
            else:
                await self.fail(f"sender abandoned the stream: {message.reason}")

    def protocol_error(self, error: ProtocolError) -> None:
        """Count a protocol error; the run fails."""
        self.protocol_errors[error.code] += 1

    async def fail(self, reason: str) -> None:
        """End the run as failed, keeping everything applied so far."""
        if self.state in (RunState.DONE, RunState.STOPPED, RunState.FAILED):
            return
        self.last_error = reason
        await self._finish(RunState.FAILED)

    async def _apply_batch(self, records: MboArray) -> None:
        if self.started_at is None:
            self.started_at = self.clock()
        for records_slice in self.aligner.slices(records, self.settings.apply_slice_records):
            await self._apply_slice(records_slice)
            await asyncio.sleep(0)  # let API reads in, at an event boundary
        self.trades.record(records)

    async def _apply_slice(self, records: MboArray) -> None:
        apply_records(self.market, records, self.capturer if self.event_log is not None else None)
        self.version += 1
        if self.event_log is not None and (lines := self.capturer.take()):
            await self.event_log.put(lines)

    async def _finish(self, state: RunState = RunState.DONE) -> None:
        tail = self.aligner.flush()
        if tail is not None:
            await self._apply_slice(tail)
        if self.event_log is not None:
            await asyncio.to_thread(self.event_log.close)
            if self.event_log.error:
                self.last_error = self.event_log.error
        self.finished_at = self.clock()
        self.state = state
        self.version += 1

    def status(self) -> dict[str, object]:
        """Counts and state, JSON-ready."""
        accounting = self.market.accounting
        elapsed = self.elapsed_seconds()
        return {
            "run_id": self.run_id,
            "state": self.state.value,
            "source": self.metadata.source if self.metadata else None,
            "records_expected": self.metadata.record_count if self.metadata else None,
            "records_received": self.records_received,
            "records_sent_by_sender": self.sender_totals.records_sent if self.sender_totals else None,
            "accounting": accounting.as_dict(),
            "pending_records": self.records_received - accounting.records,
            "accounted": accounting.balanced
            and (self.state != RunState.DONE or accounting.records == self.records_received),
            "events": accounting.events,
            "elapsed_seconds": round(elapsed, 6),
            "records_per_second": round(accounting.records / elapsed) if elapsed > 0 else 0,
            "output_lines": self.event_log.lines_written if self.event_log else None,
            "protocol_errors": dict(self.protocol_errors),
            "last_error": self.last_error,
        }
