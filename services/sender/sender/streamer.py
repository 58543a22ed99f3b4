"""Streams one DBN file to the receiver over TCP, in a background thread, with status and stop.

The stream runs on a blocking socket in its own thread: reading and decompressing the file and ``sendall``
release the GIL, so the HTTP API stays responsive. A receiver that disappears or stops reading fails the run
within ``send_timeout_seconds``; it never hangs.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from obm_shared.dbn_file import DbnFileError, open_mbo_file
from obm_shared.framing import FrameEncoder
from obm_shared.ids import new_run_id
from obm_shared.messages import PROTOCOL_VERSION, EndOfStream, Handshake, RecordBatch, StreamError
from sender.catalog import FileInfo
from sender.core.config import Settings
from sender.pacing import Pacer

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


class Streamer:
    """Runs at most one :class:`StreamJob` at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.job: StreamJob | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, file: FileInfo, path: Path, receiver: tuple[str, int], speed: float | None) -> StreamJob:
        """Begin streaming ``path`` to ``receiver``; returns at once."""
        if self.job is not None and self.job.state == StreamState.STREAMING:
            raise StreamerBusy(f"already streaming {self.job.file.name} (run {self.job.run_id})")
        self._stop.clear()
        job = self.job = StreamJob(file=file, path=path, receiver=receiver, speed=speed)
        self._thread = threading.Thread(
            target=self._run, args=(job,), name=f"stream-{job.run_id}", daemon=True
        )
        self._thread.start()
        return job

    def stop(self, wait_seconds: float = 5.0) -> StreamJob | None:
        """Ask the running stream to stop, and wait (bounded) until it has."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait_seconds)
        return self.job

    def _run(self, job: StreamJob) -> None:
        host, port = job.receiver
        logger.info(
            "stream started", extra={"run_id": job.run_id, "file": job.file.name, "to": f"{host}:{port}"}
        )
        try:
            with socket.create_connection(
                (host, port), timeout=self.settings.connect_timeout_seconds
            ) as sock:
                sock.settimeout(self.settings.send_timeout_seconds)
                self._send_file(job, sock)
            job.state = StreamState.DONE
        except _Stopped:
            job.state = StreamState.STOPPED
        except DbnFileError as error:
            job.state, job.error = StreamState.FAILED, str(error)
        except OSError as error:
            job.state = StreamState.FAILED
            reason = error.strerror or type(error).__name__
            job.error = f"receiver at {host}:{port}: {reason} after {job.records_sent} records"
        finally:
            job.finished_at = time.monotonic()
            log = logger.info if job.state == StreamState.DONE else logger.warning
            log("stream ended", extra=job.as_dict())

    def _send_file(self, job: StreamJob, sock: socket.socket) -> None:
        mbo_file = open_mbo_file(job.path)
        encoder = FrameEncoder()
        sock.sendall(encoder.encode(Handshake(PROTOCOL_VERSION, mbo_file.metadata(job.file.record_count))))
        pacer = Pacer(job.speed, self.settings.max_paced_gap_seconds) if job.speed else None
        first_ts_event = int(job.file.start_ns or 0)
        try:
            for records in mbo_file.batches(self.settings.records_per_batch):
                for wait, part in pacer.parts(records) if pacer else [(0.0, records)]:
                    if self._stop.wait(wait) if wait else self._stop.is_set():
                        raise _Stopped
                    batch = RecordBatch.from_array(job.batches_sent, job.records_sent, part)
                    sock.sendall(encoder.encode(batch))
                    job.batches_sent += 1
                    job.records_sent += len(part)
                    job.market_seconds = (
                        pacer.market_seconds()
                        if pacer
                        else (int(part["ts_event"][-1]) - first_ts_event) / 1e9
                    )
            expected = job.file.record_count
            if expected is not None and job.records_sent != expected:
                raise DbnFileError(job.path, f"ended after {job.records_sent} records, expected {expected}")
        except (_Stopped, DbnFileError) as error:
            stopped = isinstance(error, _Stopped)
            reason = "stopped by the user" if stopped else str(error)
            message = StreamError(reason=reason, records_sent=job.records_sent, stopped_by_user=stopped)
            sock.sendall(encoder.encode(message))
            raise
        sock.sendall(
            encoder.encode(EndOfStream(records_sent=job.records_sent, batches_sent=job.batches_sent))
        )
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # returns when the receiver has read everything and closed: "done" means delivered
