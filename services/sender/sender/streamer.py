"""Streams one DBN file to the receiver over TCP, in a background thread, with status and stop.

The stream runs on a blocking socket in its own thread: reading and decompressing the file and ``sendall``
release the GIL, so the HTTP API stays responsive. The sender answers the receiver's challenge with a proof of
the shared token before any record goes out. A receiver that disappears or stops reading fails the run within
``send_timeout_seconds``; it never hangs, and whatever goes wrong in the thread ends the run ``failed``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TypeVar, cast

from obm_shared.auth import ingest_proof
from obm_shared.dbn_file import DbnFileError, MboFile, open_mbo_file
from obm_shared.framing import FrameEncoder, ProtocolError, read_reply
from obm_shared.ids import new_run_id
from obm_shared.limits import MAX_SPEED, MIN_SPEED
from obm_shared.messages import (
    HEARTBEAT_SECONDS,
    PROTOCOL_VERSION,
    Accepted,
    Challenge,
    EndOfStream,
    Handshake,
    Heartbeat,
    RecordBatch,
    Refused,
    Reply,
    StreamError,
    StreamMetadata,
)
from sender.catalog import FileInfo
from sender.core.config import Settings
from sender.pacing import Pacer

logger = logging.getLogger("sender.streamer")
_R = TypeVar("_R", Challenge, Accepted)


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
            "receiver": f"{self.receiver[0]}:{self.receiver[1]}",
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


class ReceiverRefused(Exception):
    """The receiver turned the stream away before any record (it says why, or it just closed)."""


class CannotConnect(Exception):
    """No connection to the receiver."""


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ReceiverRefused("it closed the connection")
        data += chunk
    return bytes(data)


def _failure(job: StreamJob, error: Exception) -> str:
    """Why ``error`` ended ``job``, as /status and the receiver are told."""
    host, port = job.receiver
    if isinstance(error, DbnFileError):
        return str(error)
    if isinstance(error, ReceiverRefused):
        return f"receiver refused the stream: {error}"
    if isinstance(error, CannotConnect):
        return f"receiver at {host}:{port}: {error}"
    if isinstance(error, ProtocolError):
        return f"receiver at {host}:{port} broke the protocol: {error}"
    if isinstance(error, OSError):
        reason = error.strerror or type(error).__name__
        return f"receiver at {host}:{port}: {reason} after {job.records_sent} records"
    return f"stream failed after {job.records_sent} records: {error!r}"


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
        self._socket: socket.socket | None = None
        """The running stream's connection, so a stop can cut a wait for the receiver short."""

    def start(self, file: FileInfo, path: Path, receiver: tuple[str, int], speed: float | None) -> StreamJob:
        """Begin streaming ``path`` to ``receiver``; returns at once."""
        with self._lock:
            if self.job is not None and self.job.state == StreamState.STREAMING:
                raise StreamerBusy(f"already streaming {self.job.file.name} (run {self.job.run_id})")
            job = StreamJob(file=file, path=path, receiver=receiver, speed=speed)
            stop = threading.Event()  # one per job: a late stop of the last run cannot reach this one
            thread = threading.Thread(
                target=self._run, args=(job, stop), name=f"stream-{job.run_id}", daemon=True
            )
            self.job, self._stop, self._thread = job, stop, thread
            thread.start()
        return job

    def stop(self, wait_seconds: float = 5.0) -> bool:
        """Ask the running stream to stop, and wait (bounded) until it has; True when a running stream stopped."""
        with self._lock:
            job, stop, thread, sock = self.job, self._stop, self._thread, self._socket
        if job is None or job.state != StreamState.STREAMING:
            return False
        stop.set()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)  # wakes a wait for the receiver's answer; sending goes on
        if thread is not None:
            thread.join(wait_seconds)
        # the stream thread moves the state on meanwhile: any StreamState, not the one checked above
        return cast(StreamState, job.state) == StreamState.STOPPED

    def _run(self, job: StreamJob, stop: threading.Event) -> None:
        host, port = job.receiver
        logger.info(
            "stream started", extra={"run_id": job.run_id, "file": job.file.name, "to": f"{host}:{port}"}
        )
        try:
            self._stream(job, stop)
            job.state = StreamState.DONE
        except _Stopped:
            job.state = StreamState.STOPPED
        except (DbnFileError, ReceiverRefused, CannotConnect, ProtocolError, OSError) as error:
            if stop.is_set():  # the stop cut a wait for the receiver short
                job.state = StreamState.STOPPED
            else:
                job.state, job.error = StreamState.FAILED, _failure(job, error)
        except Exception as error:  # a bug must end the run visibly, never leave it streaming
            job.state, job.error = StreamState.FAILED, _failure(job, error)
            logger.exception("stream thread failed", extra={"run_id": job.run_id})
        finally:
            if job.state == StreamState.STREAMING:  # only a BaseException gets here: still not streaming
                job.state, job.error = StreamState.FAILED, "stream thread interrupted"
            job.finished_at = time.monotonic()
            self.streams_failed += job.state == StreamState.FAILED
            log = logger.error if job.state == StreamState.FAILED else logger.info
            log("stream ended", extra=job.as_dict())

    def _stream(self, job: StreamJob, stop: threading.Event) -> None:
        if job.speed is not None and not MIN_SPEED <= job.speed <= MAX_SPEED:  # the pacer's waits stay finite
            raise ValueError(f"replay speed {job.speed:g} is outside {MIN_SPEED:g} to {MAX_SPEED:g}")
        mbo_file = open_mbo_file(job.path)
        metadata = mbo_file.metadata(job.file.record_count)
        with self._connect(*job.receiver) as sock:
            self._socket = sock
            try:
                sock.settimeout(self.settings.send_timeout_seconds)
                encoder = FrameEncoder()
                self._handshake(job, sock, encoder, metadata, mbo_file.header())
                self._send_file(job, stop, sock, encoder, mbo_file)
            finally:
                self._socket = None

    def _connect(self, host: str, port: int) -> socket.socket:
        try:
            return socket.create_connection((host, port), timeout=self.settings.connect_timeout_seconds)
        except UnicodeError:
            raise CannotConnect("not a valid host name") from None
        except OSError as error:
            raise CannotConnect(error.strerror or type(error).__name__) from None

    def _handshake(
        self,
        job: StreamJob,
        sock: socket.socket,
        encoder: FrameEncoder,
        metadata: StreamMetadata,
        dbn_header: bytes,
    ) -> None:
        """Answer the receiver's challenge with the proof of the token and the file's DBN header (the receiver
        records the stream as a DBN file); return once it accepts the stream."""
        read = partial(read_reply, partial(_recv_exactly, sock))
        challenge = _expect(read(), Challenge)
        proof = ingest_proof(self.settings.api_token, challenge.nonce)
        sock.sendall(encoder.encode(Handshake(PROTOCOL_VERSION, metadata, job.run_id, proof, dbn_header)))
        _expect(read(), Accepted)

    def _send_file(
        self,
        job: StreamJob,
        stop: threading.Event,
        sock: socket.socket,
        encoder: FrameEncoder,
        mbo_file: MboFile,
    ) -> None:
        first_ts_event = int(job.file.start_ns or 0)
        try:
            pacer = Pacer(job.speed, self.settings.max_paced_gap_seconds) if job.speed else None
            for records in mbo_file.batches(self.settings.records_per_batch):
                for wait, part in pacer.parts(records) if pacer else [(0.0, records)]:
                    _wait(wait, stop, sock, encoder)
                    batch = RecordBatch.from_array(job.batches_sent, job.records_sent, part)
                    sock.sendall(encoder.encode(batch))
                    job.batches_sent += 1
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
            if not isinstance(error, OSError):  # the connection still works: tell the receiver why
                stopped = isinstance(error, _Stopped)
                reason = "stopped by the user" if stopped else _failure(job, error)
                message = StreamError(reason=reason, records_sent=job.records_sent, stopped_by_user=stopped)
                with contextlib.suppress(OSError):
                    sock.sendall(encoder.encode(message))
            raise
        sock.sendall(
            encoder.encode(EndOfStream(records_sent=job.records_sent, batches_sent=job.batches_sent))
        )
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # returns when the receiver has read everything and closed: "done" means delivered


def _expect(reply: Reply, kind: type[_R]) -> _R:
    """``reply`` when it is a ``kind``; a refusal or anything else ends the stream before it starts."""
    if isinstance(reply, Refused):
        raise ReceiverRefused(reply.reason)
    if not isinstance(reply, kind):
        raise ReceiverRefused(f"it answered {type(reply).__name__}, expected {kind.__name__}")
    return reply


def _wait(seconds: float, stop: threading.Event, sock: socket.socket, encoder: FrameEncoder) -> None:
    """Wait until the next records are due, with a heartbeat every HEARTBEAT_SECONDS; raises when stopped."""
    deadline = time.monotonic() + seconds
    while True:
        if stop.wait(max(0.0, min(deadline - time.monotonic(), HEARTBEAT_SECONDS))):
            raise _Stopped
        if time.monotonic() >= deadline:
            return
        sock.sendall(encoder.encode(Heartbeat()))
