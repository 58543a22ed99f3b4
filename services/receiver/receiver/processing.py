"""One run of the receiver: protocol messages in, books updated at event boundaries, every record counted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum

from obm_shared.dbn import MBO_RTYPE
from obm_shared.framing import MalformedFrame, NotMbo, ProtocolError, StreamValidator
from obm_shared.ids import new_run_id
from obm_shared.messages import EndOfStream, Handshake, Message, RecordBatch, StreamError, StreamMetadata
from obm_shared.records import MBO_RECORD_SIZE, MboArray
from receiver.book.adapter import EventAligner, apply_records
from receiver.book.market import Market
from receiver.core.config import Settings
from receiver.event_lines import EventCapturer
from receiver.history.archive import RecordedRun
from receiver.history.liquidity import LiquidityHistory
from receiver.history.recording import RecordingWriter, Summary, dbn_header
from receiver.run_output import OutputFailed, RunOutput, make_room
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

    Its output file is :class:`RunOutput`'s concern; its recording and checkpoints, :class:`RecordingWriter`'s;
    its status as the API reports it, ``run_status``'s."""

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
        self.recorder: RecordingWriter | None = None
        """The stream's recording, from its handshake on (when recording is enabled)."""
        self.history = LiquidityHistory(settings.history_buckets, settings.history_levels)
        self._checkpointed = 0
        """Records applied when the last checkpoint was taken."""

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
            if self.recorder is not None:  # before the books: the recording holds whatever arrived
                await self.recorder.append(message.records)
            await self._apply_batch(message.array())
            await self._check_output()
        elif isinstance(message, Handshake):
            await self._start(message)
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

    def recorded(self) -> RecordedRun | None:
        """The run's recording and history as the API answers from them; None when it records nothing."""
        if self.recorder is None:
            return None
        market = self.market
        return RecordedRun(
            self.run_id,
            self.state.value,
            self.recorder.recording,
            self.history,
            market.symbols,
            market.instruments(),
        )

    async def _start(self, handshake: Handshake) -> None:
        """The stream's handshake: name the run, make room for its files and open them."""
        try:
            header = dbn_header(handshake.dbn_header, handshake.metadata)
        except ValueError as error:
            raise MalformedFrame(f"handshake: {error}") from None
        if handshake.run_id != self.run_id:  # one run id names the replay in every service
            self.run_id = handshake.run_id
            self.output = RunOutput(self.settings, self.run_id)
        self.metadata = handshake.metadata
        self.market.symbols.update(handshake.metadata.instruments)
        self.history.end_hint_ns = handshake.metadata.end_ns
        settings = self.settings
        if settings.output_enabled or settings.recording_enabled:
            make_room(settings)
        self.output.open()
        if settings.recording_enabled:
            try:
                self.recorder = RecordingWriter(
                    settings.runs_dir, self.run_id, header, settings.recording_queue_batches
                )
            except OSError as error:
                await self.fail(f"recording: {error.strerror or error}")
                raise OutputFailed(self.last_error) from None
            await self.recorder.start(self.market)
        self.state = RunState.RECEIVING
        self.version += 1

    async def _apply_batch(self, records: MboArray) -> None:
        if self.started_at is None:
            self.started_at = self.clock()
        for records_slice in self.aligner.slices(records, self.settings.apply_slice_records):
            for part in self.history.parts(records_slice, self.market):
                await self._apply_slice(part)
            await self._checkpoint(records_slice)
            await asyncio.sleep(0)  # let API reads in, at an event boundary
        self.trades.record(records)

    async def _checkpoint(self, applied: MboArray) -> None:
        """Checkpoint the books once enough records have been applied since the last time (``applied`` ends on
        an event boundary)."""
        records = self.market.accounting.records
        if self.recorder is not None and records - self._checkpointed >= self.settings.checkpoint_records:
            self._checkpointed = records
            await self.recorder.checkpoint(self.market, applied)

    async def _apply_slice(self, records: MboArray) -> None:
        event_log = self.output.log
        apply_records(self.market, records, self.capturer if event_log is not None else None)
        self.version += 1
        if event_log is not None and (lines := self.capturer.take()):
            await event_log.put(lines)

    async def _check_output(self) -> None:
        """A write error fails the run at once: books that go on without their output or recording would pass
        for a complete run."""
        if self.output.error is not None:
            await self.fail(f"output: {self.output.error}")
            raise OutputFailed(self.last_error)
        if self.recorder is not None and self.recorder.recording.error is not None:
            await self.fail(f"recording: {self.recorder.recording.error}")
            raise OutputFailed(self.last_error)

    async def _finish(self, state: RunState = RunState.DONE) -> None:
        tail = self.aligner.flush()
        self.history.finish(self.market)  # like a point in history, it never includes an unfinished event
        if tail is not None:
            await self._apply_slice(tail)
        output_error = await self.output.close(complete=state == RunState.DONE)
        if output_error is not None and state != RunState.FAILED:
            state, self.last_error = RunState.FAILED, f"output: {output_error}"
        if self.recorder is not None:
            summary = Summary(state.value, self.history.state())
            recording_error = await asyncio.to_thread(self.recorder.close, summary)
            if recording_error is not None and state != RunState.FAILED:
                state, self.last_error = RunState.FAILED, f"recording: {recording_error}"
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
