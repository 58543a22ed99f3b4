"""One run of the receiver: protocol messages in, books updated at event boundaries, every record counted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum

from obm_shared.dbn import MBO_RTYPE
from obm_shared.framing import NotMbo, ProtocolError, StreamValidator
from obm_shared.ids import new_run_id
from obm_shared.messages import EndOfStream, Handshake, Message, RecordBatch, StreamError, StreamMetadata
from obm_shared.records import MBO_RECORD_SIZE, MboArray
from receiver.book.adapter import EventAligner, apply_records
from receiver.book.market import Market
from receiver.core.config import Settings
from receiver.event_lines import EventCapturer
from receiver.run_output import OutputFailed, RunOutput
from receiver.trade_tape import TradeTape


class RunState(StrEnum):
    IDLE = "idle"
    READY = "ready"
    RECEIVING = "receiving"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"


class Run:
    """State and counts of one stream. Reads between slices always see books at event boundaries.

    Its output file is :class:`RunOutput`'s concern; its status as the API reports it, ``run_status``'s."""

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
        self.output = RunOutput(settings, self.run_id)
        self.capturer = EventCapturer(self.market, settings.output_depth)

    @property
    def records_received(self) -> int:
        return self.validator.records_received

    def elapsed_seconds(self) -> float:
        """Seconds from the first record received to the last applied (or to now, while receiving)."""
        if self.started_at is None:
            return 0.0
        return (self.finished_at or self.clock()) - self.started_at

    async def handle(self, message: Message) -> None:
        """Apply one protocol message. Raises :class:`ProtocolError` when it breaks the protocol, and
        :class:`OutputFailed` when the run's output cannot be written (the run has failed: end its stream)."""
        if isinstance(message, RecordBatch):
            _check_mbo(message)
        self.validator.check(message)
        if isinstance(message, RecordBatch):
            await self._apply_batch(message.array())
            await self._check_output()
        elif isinstance(message, Handshake):
            if message.run_id != self.run_id:  # one run id names the replay in every service
                self.run_id = message.run_id
                self.output = RunOutput(self.settings, self.run_id)
            self.metadata = message.metadata
            self.market.symbols.update(message.metadata.instruments)
            self.output.open()
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

    async def protocol_error(self, error: ProtocolError) -> None:
        """Count a protocol error: a run in progress fails; a finished run keeps its state, with the error noted."""
        self.protocol_errors[error.code] += 1
        reason = f"protocol error ({error.code}): {error}"
        if self.state in (RunState.DONE, RunState.STOPPED, RunState.FAILED):
            self.last_error = reason
        else:
            await self.fail(reason)

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
        event_log = self.output.log
        apply_records(self.market, records, self.capturer if event_log is not None else None)
        self.version += 1
        if event_log is not None and (lines := self.capturer.take()):
            await event_log.put(lines)

    async def _check_output(self) -> None:
        """A write error fails the run at once: books that go on without their output would pass for a
        complete run."""
        if (error := self.output.error) is not None:
            await self.fail(f"output: {error}")
            raise OutputFailed(self.last_error)

    async def _finish(self, state: RunState = RunState.DONE) -> None:
        tail = self.aligner.flush()
        if tail is not None:
            await self._apply_slice(tail)
        output_error = await self.output.close(complete=state == RunState.DONE)
        if output_error is not None and state != RunState.FAILED:
            state, self.last_error = RunState.FAILED, f"output: {output_error}"
        self.finished_at = self.clock()
        self.state = state
        self.version += 1


def _check_mbo(batch: RecordBatch) -> None:
    """Raise :class:`NotMbo` when ``batch`` holds a record of another schema (its layout would be misread)."""
    if len(batch.records) % MBO_RECORD_SIZE:
        return  # partial records: the validator refuses the batch as malformed
    rtypes = batch.array()["rtype"]
    wrong = rtypes != MBO_RTYPE
    if wrong.any():
        other = int(rtypes[wrong.argmax()])
        raise NotMbo(f"batch {batch.seq} holds a record of rtype {other:#04x}, not MBO ({MBO_RTYPE:#04x})")
