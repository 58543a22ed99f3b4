"""Streams one DBN file to the receiver (over TCP) or to its receivers (through NATS), in a background thread,
with status and stop.

The stream runs in its own thread: reading and decompressing the file and sending release the GIL, so the HTTP
API stays responsive. The file is read and paced here once; a :class:`~sender.transport.Transport` chosen by
``SENDER_TRANSPORT`` carries the run. A far side that disappears or stops taking data fails the run within the
transport's timeout; it never hangs, and whatever goes wrong in the thread ends the run ``failed``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import cast

from obm_shared.dbn_file import DbnFileError, MboFile, open_mbo_file
from obm_shared.framing import ProtocolError
from obm_shared.ids import new_run_id
from obm_shared.limits import MAX_SPEED, MIN_SPEED
from obm_shared.messages import HEARTBEAT_SECONDS, EndOfStream, StreamError
from sender.catalog import FileInfo
from sender.core.config import Settings
from sender.nats_transport import NatsTransport
from sender.pacing import Pacer
from sender.transport import CannotConnect, ReceiverRefused, TcpTransport, Transport, TransportFailed

logger = logging.getLogger("sender.streamer")


class StreamState(StrEnum):
    IDLE = "idle"
    STREAMING = "streaming"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class StreamJob:
    """One streaming run and its progress."""

    file: FileInfo
    path: Path
    receiver: tuple[str, int]
    """The receiver's ingest port (the TCP transport's target)."""
    destination: str
    """Where the records go, as the transport names it."""
    speed: float | None
    """Multiplier of market time; None streams as fast as possible."""
    run_id: str = field(default_factory=new_run_id)
    state: StreamState = StreamState.STREAMING
    records_sent: int = 0
    batches_sent: int = 0
    market_seconds: float = 0.0
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        elapsed = (self.finished_at or time.monotonic()) - self.started_at
        return {
            "run_id": self.run_id,
            "state": self.state.value,
            "file": self.file.name,
            "receiver": self.destination,
            "speed": self.speed,
            "records_sent": self.records_sent,
            "records_total": self.file.record_count,
            "batches_sent": self.batches_sent,
            "elapsed_seconds": round(elapsed, 6),
            "records_per_second": round(self.records_sent / elapsed) if elapsed > 0 else 0,
            "market_seconds": round(self.market_seconds, 3),
            "error": self.error,
        }


class StreamerBusy(RuntimeError):
    """A stream is already running."""


class _Stopped(Exception):
    pass


def _failure(job: StreamJob, transport: Transport | None, error: Exception) -> str:
    """Why ``error`` ended ``job``, as /status and the receiver are told."""
    if isinstance(error, DbnFileError | TransportFailed):
        return str(error)
    described = transport.describe(error, job.records_sent) if transport is not None else None
    return described or f"stream failed after {job.records_sent} records: {error!r}"


class Streamer:
    """Runs at most one :class:`StreamJob` at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.job: StreamJob | None = None
        self.records_sent_total = 0
        """Records sent by every stream of this process, counted as they go: never goes down (/metrics)."""
        self.streams_failed = 0
        self._lock = threading.Lock()
        """Held while a start checks and claims the streamer, so two starts cannot both begin."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._transport: Transport | None = None
        """The running stream's transport, so a stop can cut a wait for the far side short."""

    def start(self, file: FileInfo, path: Path, receiver: tuple[str, int], speed: float | None) -> StreamJob:
        """Begin streaming ``path`` to ``receiver``; returns at once."""
        with self._lock:
            if self.job is not None and self.job.state == StreamState.STREAMING:
                raise StreamerBusy(f"already streaming {self.job.file.name} (run {self.job.run_id})")
            transport = self._transport_for(receiver)
            job = StreamJob(
                file=file, path=path, receiver=receiver, destination=transport.destination, speed=speed
            )
            stop = threading.Event()  # one per job: a late stop of the last run cannot reach this one
            thread = threading.Thread(
                target=self._run, args=(job, stop, transport), name=f"stream-{job.run_id}", daemon=True
            )
            self.job, self._stop, self._thread, self._transport = job, stop, thread, transport
            thread.start()
        return job

    def stop(self, wait_seconds: float = 5.0) -> bool:
        """Ask the running stream to stop, and wait (bounded) until it has; True when a running stream stopped."""
        with self._lock:
            job, stop, thread, transport = self.job, self._stop, self._thread, self._transport
        if job is None or job.state != StreamState.STREAMING:
            return False
        stop.set()
        if transport is not None:
            transport.interrupt()
        if thread is not None:
            thread.join(wait_seconds)
        # the stream thread moves the state on meanwhile: any StreamState, not the one checked above
        return cast(StreamState, job.state) == StreamState.STOPPED

    def _transport_for(self, receiver: tuple[str, int]) -> Transport:
        if self.settings.transport == "nats":
            return NatsTransport(self.settings)
        return TcpTransport(self.settings, receiver)

    def _run(self, job: StreamJob, stop: threading.Event, transport: Transport) -> None:
        logger.info(
            "stream started", extra={"run_id": job.run_id, "file": job.file.name, "to": job.destination}
        )
        try:
            try:
                self._stream(job, stop, transport)
            finally:
                transport.close()
            job.state = StreamState.DONE
        except _Stopped:
            job.state = StreamState.STOPPED
        except (
            DbnFileError,
            TransportFailed,
            ReceiverRefused,
            CannotConnect,
            ProtocolError,
            OSError,
        ) as error:
            if stop.is_set():  # the stop cut a wait for the far side short
                job.state = StreamState.STOPPED
            else:
                job.state, job.error = StreamState.FAILED, _failure(job, transport, error)
        except Exception as error:  # a bug must end the run visibly, never leave it streaming
            job.state, job.error = StreamState.FAILED, _failure(job, transport, error)
            logger.exception("stream thread failed", extra={"run_id": job.run_id})
        finally:
            if job.state == StreamState.STREAMING:  # only a BaseException gets here: still not streaming
                job.state, job.error = StreamState.FAILED, "stream thread interrupted"
            job.finished_at = time.monotonic()
            self.streams_failed += job.state == StreamState.FAILED
            log = logger.error if job.state == StreamState.FAILED else logger.info
            log("stream ended", extra=job.as_dict())

    def _stream(self, job: StreamJob, stop: threading.Event, transport: Transport) -> None:
        if job.speed is not None and not MIN_SPEED <= job.speed <= MAX_SPEED:  # the pacer's waits stay finite
            raise ValueError(f"replay speed {job.speed:g} is outside {MIN_SPEED:g} to {MAX_SPEED:g}")
        mbo_file = open_mbo_file(job.path)
        metadata = mbo_file.metadata(job.file.record_count)
        transport.open(job.run_id, metadata, mbo_file.header())
        self._send_file(job, stop, transport, mbo_file)

    def _send_file(
        self, job: StreamJob, stop: threading.Event, transport: Transport, mbo_file: MboFile
    ) -> None:
        first_ts_event = int(job.file.start_ns or 0)
        try:
            pacer = Pacer(job.speed, self.settings.max_paced_gap_seconds) if job.speed else None
            for records in mbo_file.batches(self.settings.records_per_batch):
                for wait, part in pacer.parts(records) if pacer else [(0.0, records)]:
                    _wait(wait, stop, transport)
                    job.batches_sent += transport.send(part, job.records_sent)
                    job.records_sent += len(part)
                    self.records_sent_total += len(part)
                    job.market_seconds = (
                        pacer.market_seconds()
                        if pacer
                        else (int(part["ts_event"][-1]) - first_ts_event) / 1e9
                    )
            expected = job.file.record_count
            if expected is not None and job.records_sent != expected:
                raise DbnFileError(job.path, f"ended after {job.records_sent} records, expected {expected}")
        except Exception as error:
            stopped = isinstance(error, _Stopped)
            reason = "stopped by the user" if stopped else _failure(job, transport, error)
            message = StreamError(reason=reason, records_sent=job.records_sent, stopped_by_user=stopped)
            transport.abandon(message, error)
            raise
        transport.end(EndOfStream(records_sent=job.records_sent, batches_sent=job.batches_sent))


def _wait(seconds: float, stop: threading.Event, transport: Transport) -> None:
    """Wait until the next records are due, with a heartbeat every HEARTBEAT_SECONDS; raises when stopped."""
    deadline = time.monotonic() + seconds
    while True:
        if stop.wait(max(0.0, min(deadline - time.monotonic(), HEARTBEAT_SECONDS))):
            raise _Stopped
        if time.monotonic() >= deadline:
            return
        transport.heartbeat()
