"""One gateway session: Databento's live handshake, then its plan's records as a DBN stream.

Records go out as fast as the client reads (``drain`` waits while the socket's buffer is full, so memory holds
about one batch), or paced in market time when a speed is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol

from databento_dbn import ErrorCode

from obm_shared.live_protocol import (
    MAX_LINE_BYTES,
    AuthRequest,
    AuthResponse,
    Challenge,
    Greeting,
    ProtocolError,
    SessionStart,
    SubscriptionRequest,
    decode_client_line,
    decode_line,
    encode_line,
    new_challenge,
    read_line,
)
from obm_shared.records import MboArray
from sender.gateway import dbn_out
from sender.gateway.plan import ReplayPlan
from sender.gateway.replay import merged_batches
from sender.gateway.snapshot import with_snapshot
from sender.pacing import Pacer

LSG_VERSION: Final = "obm-replay-1"
HANDSHAKE_TIMEOUT_SECONDS: Final = 10.0
"""A client that has not answered the challenge by then is dropped."""
SUBSCRIBE_TIMEOUT_SECONDS: Final = 300.0
"""Longest wait for the next subscription line or start_session: a silent client does not hold a slot forever."""
DEFAULT_HEARTBEAT_SECONDS: Final = 30
MAX_SUBSCRIPTION_LINES: Final = 1_000
"""Lines one session may send before start_session (500 symbols each): bounds what a client can make us hold."""
STOPPED_MESSAGE: Final = "session stopped by the sender's operator"
log = logging.getLogger(__name__)


class SessionState(enum.StrEnum):
    AUTHENTICATING = "authenticating"
    SUBSCRIBING = "subscribing"
    STREAMING = "streaming"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    REFUSED = "refused"


class Admission(Protocol):
    """What a session asks of its gateway."""

    async def admit(self, challenge: str, request: AuthRequest) -> str | None:
        """None when the request may open a session, else the reason it may not."""

    async def plan(self, dataset: str, requests: list[SubscriptionRequest]) -> ReplayPlan: ...


@dataclass
class GatewaySession:
    """A client's session: what it asked for, how far it got, and its pacing."""

    id: int
    client: str
    speed: float | None
    max_paced_gap_seconds: float
    records_per_batch: int
    dataset: str | None = None
    symbols: list[str] = field(default_factory=list)
    state: SessionState = SessionState.AUTHENTICATING
    records_sent: int = 0
    problem: str | None = None
    opened_at: float = field(default_factory=time.monotonic)
    streaming_since: float | None = None
    ended_at: float | None = None
    task: asyncio.Task[None] | None = None
    _pacer: Pacer | None = None
    _last_write: float = field(default_factory=time.monotonic)
    _market_ns: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "client": self.client,
            "dataset": self.dataset,
            "symbols": self.symbols,
            "state": str(self.state),
            "records_sent": self.records_sent,
            "records_per_second": round(self.rate(), 1),
            "speed": self.speed,
            "problem": self.problem,
        }

    def rate(self) -> float:
        """Records per second since streaming began (to the end, once ended)."""
        if self.streaming_since is None:
            return 0.0
        elapsed = (self.ended_at or time.monotonic()) - self.streaming_since
        return self.records_sent / elapsed if elapsed > 0 else 0.0

    def set_speed(self, speed: float | None) -> None:
        """Pace from now on at ``speed`` times market time (None: as fast as the client reads)."""
        self.speed, self._pacer = speed, None

    async def run(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gateway: Admission
    ) -> None:
        """Serve the client until its replay ends, it leaves, the protocol breaks or the session is stopped."""
        try:
            await self._serve(reader, writer, gateway)
        except asyncio.CancelledError:
            self._end(SessionState.STOPPED, STOPPED_MESSAGE)
            self._tell(writer, ErrorCode.UNSET, STOPPED_MESSAGE)
        except ProtocolError as error:
            self._end(SessionState.FAILED, f"protocol error: {error}")
        except TimeoutError:
            self._end(SessionState.FAILED, "the client went quiet during the handshake")
        except (ConnectionError, OSError) as error:
            self._end(SessionState.FAILED, f"connection lost: {error}")
        except Exception as error:
            # a fault on our side (say, a file that became unreadable) ends this session, not the sender
            log.exception("gateway session %d failed", self.id)
            self._end(SessionState.FAILED, f"internal error: {error}")
            self._tell(writer, ErrorCode.INTERNAL_ERROR, f"internal error: {error}")
        finally:
            log.info("gateway session %d %s after %d records", self.id, self.state, self.records_sent)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _tell(self, writer: asyncio.StreamWriter, code: int, message: str) -> None:
        """An error record for a client that is past its metadata and still connected (``code`` an ErrorCode)."""
        if self.streaming_since is not None and not writer.is_closing():
            writer.write(dbn_out.error_bytes(self._market_ns, code, message))

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gateway: Admission
    ) -> None:
        challenge = new_challenge()
        _write(
            writer, encode_line(Greeting(lsg_version=LSG_VERSION)) + encode_line(Challenge(cram=challenge))
        )
        await writer.drain()
        request = decode_line(
            await asyncio.wait_for(read_line(reader), HANDSHAKE_TIMEOUT_SECONDS), AuthRequest
        )
        refusal = await gateway.admit(challenge, request)
        if refusal is not None:
            _write(writer, encode_line(AuthResponse(success=0, error=refusal)))
            await writer.drain()
            self._end(SessionState.REFUSED, refusal)
            return
        self.dataset, self.state = request.dataset, SessionState.SUBSCRIBING
        _write(writer, encode_line(AuthResponse(success=1, session_id=str(self.id))))
        requests: list[SubscriptionRequest] = []
        while not isinstance(
            line := decode_client_line(await asyncio.wait_for(read_line(reader), SUBSCRIBE_TIMEOUT_SECONDS)),
            SessionStart,
        ):
            if len(requests) == MAX_SUBSCRIPTION_LINES:
                raise ProtocolError(f"more than {MAX_SUBSCRIPTION_LINES} subscription lines")
            requests.append(line)
        plan = await gateway.plan(request.dataset, requests)
        self.symbols = plan.symbols
        stream = asyncio.create_task(
            self._stream(writer, plan, request.heartbeat_interval_s or DEFAULT_HEARTBEAT_SECONDS)
        )
        # a paced session may sleep for long: a client that leaves must end it now, not at its next write
        left = asyncio.create_task(_until_eof(reader))
        try:
            await asyncio.wait({stream, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
            client_left = not stream.done()
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)
        if client_left:
            self._end(SessionState.FAILED, "the client closed the connection")
            return
        stream.result()

    async def _stream(self, writer: asyncio.StreamWriter, plan: ReplayPlan, heartbeat_seconds: int) -> None:
        self.state = SessionState.STREAMING
        self.streaming_since, self._market_ns = time.monotonic(), plan.start_ns
        _write(writer, dbn_out.metadata_bytes(plan) + dbn_out.mapping_bytes(plan))
        for error in plan.errors:
            _write(writer, dbn_out.error_bytes(plan.start_ns, error.code, error.message))
        heartbeat = asyncio.create_task(self._heartbeats(writer, heartbeat_seconds))
        try:
            await writer.drain()
            if plan.files:
                await self._send_records(writer, plan)
            _write(writer, dbn_out.replay_completed_bytes(self._market_ns))
            await writer.drain()
        finally:
            heartbeat.cancel()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
        self._end(SessionState.DONE, "; ".join(error.message for error in plan.errors) or None)

    async def _send_records(self, writer: asyncio.StreamWriter, plan: ReplayPlan) -> None:
        batches = merged_batches(plan.files, self.records_per_batch)
        if plan.snapshot:
            batches = with_snapshot(batches, plan.start_ns, self.records_per_batch)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            for wait_seconds, part in self._paced(batch):
                if wait_seconds > 0:
                    await asyncio.sleep(wait_seconds)
                _write(writer, part.tobytes())
                await writer.drain()
                self.records_sent += len(part)
                self._market_ns = int(part["ts_recv"][-1])
                self._last_write = time.monotonic()

    def _paced(self, batch: MboArray) -> Iterator[tuple[float, MboArray]]:
        if self.speed is None:
            yield 0.0, batch
            return
        if self._pacer is None:
            self._pacer = Pacer(self.speed, self.max_paced_gap_seconds)
        yield from self._pacer.parts(batch)

    async def _heartbeats(self, writer: asyncio.StreamWriter, interval_seconds: int) -> None:
        """A heartbeat record whenever nothing was written for ``interval_seconds`` and nothing is queued."""
        while True:
            quiet = time.monotonic() - self._last_write
            if writer.is_closing():
                return
            if quiet >= interval_seconds and writer.transport.get_write_buffer_size() == 0:
                writer.write(dbn_out.heartbeat_bytes(self._market_ns))
                self._last_write, quiet = time.monotonic(), 0.0
            await asyncio.sleep(interval_seconds - quiet)

    def _end(self, state: SessionState, problem: str | None) -> None:
        self.state, self.problem, self.ended_at = state, problem, time.monotonic()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client closes its side; lines it sends once streaming are not acted on."""
    while await reader.read(MAX_LINE_BYTES):
        pass


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write, or raise ConnectionResetError once the connection is closing (uvloop raises RuntimeError)."""
    if writer.is_closing():
        raise ConnectionResetError("the client closed the connection")
    writer.write(data)
