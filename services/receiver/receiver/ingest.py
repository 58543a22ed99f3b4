"""The TCP ingest port: authenticated record streams, one at a time, decoded frame by frame into the current run
(or, with ``RECEIVER_TRANSPORT=nats``, runs announced on NATS instead: see :mod:`receiver.nats_source`).

A connection is nothing until it proves the token: the receiver sends a challenge, and only a handshake with a
valid proof, within ``handshake_timeout_seconds``, makes it a stream. Until then it holds no slot and never
touches the current run; a connection turned away is counted by cause and logged. An accepted stream that
goes quiet for ``stall_timeout_seconds`` fails its run and frees the slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass

from obm_shared.auth import new_challenge, proof_matches
from obm_shared.framing import (
    ClosedBeforeHandshake,
    FrameDecoder,
    FrameEncoder,
    ProtocolError,
    UnexpectedMessage,
    VersionMismatch,
)
from obm_shared.live_source import LiveSource
from obm_shared.messages import PROTOCOL_VERSION, Accepted, Challenge, Handshake, Message, Refused
from receiver.core.config import Settings
from receiver.history.archive import Archive, RecordedRun
from receiver.history.seek import Seeks
from receiver.live.gateway_client import open_session
from receiver.live.session import receive_live
from receiver.nats_source import NatsRuns
from receiver.processing import Run, RunState
from receiver.run_output import OutputFailed
from receiver.run_totals import RunTotals

READ_CHUNK_BYTES = 1 << 20
logger = logging.getLogger("receiver.ingest")


class Rejected(Exception):
    """A connection turned away before its stream: ``cause`` counts it, the message is told to the peer."""

    def __init__(self, cause: str, reason: str) -> None:
        super().__init__(reason)
        self.cause = cause


@dataclass(frozen=True)
class Admitted:
    """An authenticated handshake and what arrived with it, decoded by the connection's decoder."""

    handshake: Handshake
    decoder: FrameDecoder
    following: list[Message]


class Receiver:
    """Owns the current run and the ingest server. A new run starts on request or on a new stream."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run: Run | None = None
        self.rejected_connections: Counter[str] = Counter()
        """Connections closed before a stream, by cause: busy, handshake_timeout, unauthenticated,
        protocol_error."""
        self.protocol_errors: Counter[str] = Counter()
        """Every protocol error on the ingest port by kind, before a handshake and within runs."""
        self.past_runs = RunTotals()
        """The counts of every run this receiver has replaced, for totals that never go down."""
        self.archive = Archive(settings.runs_dir, settings.history_levels)
        """Earlier runs' recordings."""
        self.seeks = Seeks(settings.max_concurrent_seeks)
        self._server: asyncio.Server | None = None
        self._receiving = False
        """True while an authenticated stream holds the single ingest slot."""
        self._pending = 0
        """Connections waiting for their handshake."""
        self._connections: set[asyncio.StreamWriter] = set()
        self._live: asyncio.Task[None] | None = None
        """The live feed being booked, if the current stream is one."""
        self._nats: NatsRuns | None = None
        """The runs announced on NATS, when they are this receiver's transport."""

    @property
    def receiving(self) -> bool:
        """True while an authenticated stream (or a NATS run) is being received."""
        return self._receiving or (self._nats is not None and self._nats.receiving)

    @property
    def partitions(self) -> list[int]:
        """The NATS partitions of the current run that this receiver books or booked (none over TCP)."""
        return self._nats.partitions if self._nats is not None else []

    @property
    def nats_problem(self) -> str | None:
        """Why NATS cannot be consumed now (unreachable, or the token refused); None when fine or over TCP."""
        return self._nats.problem if self._nats is not None else None

    @property
    def partition_lag(self) -> dict[str, int | None]:
        """Messages each of those partitions is behind the stream, by partition."""
        lag = self._nats.lag if self._nats is not None else None
        return lag.behind() if lag is not None else {}

    def recorded(self, run_id: str | None) -> RecordedRun:
        """The current run's recording (``run_id`` None or its id), or an earlier run's. Raises LookupError when
        there is none."""
        run = self.run
        if run is not None and run_id in (None, run.run_id):
            recorded = run.recorded()
            if recorded is None:
                raise LookupError(f"run {run.run_id} has no recording (no stream yet, or recording is off)")
            return recorded
        if run_id is None:
            raise LookupError("no run yet: POST /start-processing, then stream records to the ingest port")
        return self.archive.earlier(run_id)

    async def start(self) -> None:
        """Listen on the ingest port, or watch the runs announced on NATS."""
        if self.settings.transport == "nats":
            self._nats = NatsRuns(self.settings, self._replace_run, self._protocol_error)
            await self._nats.start()
            return
        self._server = await asyncio.start_server(
            self._serve_connection, self.settings.host, self.settings.ingest_port, limit=READ_CHUNK_BYTES
        )
        logger.info("ingest listening", extra={"port": self.settings.ingest_port})

    async def close(self) -> None:
        """Stop listening and drop every connection; a stream in progress is failed and its output flushed."""
        if self._nats is not None:
            await self._nats.close()
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        if self.run is not None and self.run.state in (RunState.READY, RunState.RECEIVING):
            await self.run.fail("receiver shut down")
        await self.stop_live()

    async def new_run(self) -> Run:
        """Reset the market for the next stream. Refused (RuntimeError) while a stream is being received."""
        if self.receiving:
            raise RuntimeError("a stream is being received; stop the sender first")
        return await self._replace_run()

    async def book_live(self, source: LiveSource) -> Run:
        """Start a session with ``source``'s gateway, then book its feed into a new run. Raises
        :class:`~receiver.live.session.LiveSessionError` when the session cannot start (the current run is left
        as it was), RuntimeError while a stream is being received."""
        if self.receiving:
            raise RuntimeError("a stream is being received; stop it first")
        self._receiving = True
        try:
            reader, writer = await open_session(source, self.settings.live_connect_timeout_seconds)
        except BaseException:
            self._receiving = False
            raise
        run = await self._replace_run()
        logger.info("live session started", extra={"run_id": run.run_id, **source.described()})
        self._live = asyncio.create_task(self._book_live(run, source, reader, writer), name="live-feed")
        return run

    async def stop_live(self) -> bool:
        """Stop booking the live feed (its run ends stopped); False when none is being booked."""
        live = self._live
        if live is None or live.done():
            return False
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live
        return True

    async def _book_live(
        self, run: Run, source: LiveSource, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await receive_live(run, source, reader, self.settings.stall_timeout_seconds)
        finally:
            writer.close()
            self._receiving = False
            logger.info("live session ended", extra={"run_id": run.run_id, "state": run.state.value})

    async def _replace_run(self) -> Run:
        if self.run is not None and self.run.state == RunState.READY:
            await self.run.fail("replaced by a new run before any stream arrived")
        if self.run is not None:
            self.past_runs.add(self.run)
        self.run = Run(self.settings)
        return self.run

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        self._connections.add(writer)
        try:
            admitted = await self._admit(reader, writer, peer)
            if admitted is not None:
                try:
                    await self._receive(admitted, reader, writer, peer)
                finally:
                    self._receiving = False
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _admit(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> Admitted | None:
        """The connection's authenticated handshake, having claimed the ingest slot; None when turned away."""
        encoder = FrameEncoder()
        timeout = self.settings.handshake_timeout_seconds
        try:
            if self._pending >= self.settings.max_pending_connections:
                raise Rejected("busy", "too many connections waiting for their handshake")
            self._pending += 1
            try:
                async with asyncio.timeout(timeout):
                    admitted = await self._handshake(reader, writer, encoder)
            finally:
                self._pending -= 1
            if self._receiving:
                raise Rejected("busy", "another stream is being received")
            self._receiving = True
            return admitted
        except TimeoutError:
            self._reject(peer, "handshake_timeout", f"no authenticated handshake within {timeout:g} s")
        except ProtocolError as error:
            self.protocol_errors[error.code] += 1
            reason = f"protocol error ({error.code}): {error}"
            self._reject(peer, "protocol_error", reason)
            self._tell(writer, encoder, reason)
        except ConnectionError as error:
            self.protocol_errors[ClosedBeforeHandshake.code] += 1
            self._reject(peer, "protocol_error", f"connection lost before a handshake: {error}")
        except Rejected as rejected:
            self._reject(peer, rejected.cause, str(rejected))
            self._tell(writer, encoder, str(rejected))
        return None

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, encoder: FrameEncoder
    ) -> Admitted:
        """Challenge the peer, read its first message; raises unless it is a handshake proving the token."""
        challenge = new_challenge()
        writer.write(encoder.encode(Challenge(nonce=challenge)))
        await writer.drain()
        decoder = FrameDecoder(self.settings.max_frame_bytes)
        messages: list[Message] = []
        while not messages:
            chunk = await reader.read(READ_CHUNK_BYTES)
            if not chunk:
                raise ClosedBeforeHandshake(f"connection closed after {decoder.buffered_bytes} bytes")
            messages = decoder.feed(chunk)
        first, *following = messages
        if not isinstance(first, Handshake):
            raise UnexpectedMessage(f"{type(first).__name__} before the handshake")
        if first.protocol_version != PROTOCOL_VERSION:
            raise VersionMismatch(
                f"sender speaks protocol {first.protocol_version}, receiver speaks {PROTOCOL_VERSION}"
            )
        if not proof_matches(self.settings.api_token, challenge, first.proof):
            raise Rejected("unauthenticated", "authentication failed")
        return Admitted(first, decoder, following)

    def _reject(self, peer: str, cause: str, reason: str) -> None:
        self.rejected_connections[cause] += 1
        logger.warning("ingest connection refused", extra={"peer": peer, "cause": cause, "detail": reason})

    @staticmethod
    def _tell(writer: asyncio.StreamWriter, encoder: FrameEncoder, reason: str) -> None:
        """Say why before closing; a peer that has gone or does not read loses nothing but the reason."""
        if not writer.is_closing():
            writer.write(encoder.encode(Refused(reason=reason)))

    async def _receive(
        self, admitted: Admitted, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """Receive an admitted stream into the ready run (or a new one), which takes the sender's run id."""
        ready = self.run is not None and self.run.state == RunState.READY
        run = self.run if ready and self.run is not None else await self._replace_run()
        await self._consume(run, admitted, reader, writer, peer)
        self._receiving = False
        logger.info("stream ended", extra={"run_id": run.run_id, "state": run.state.value})
        await self._after_end(run, admitted.decoder, reader)

    async def _consume(
        self,
        run: Run,
        admitted: Admitted,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        decoder, stall = admitted.decoder, self.settings.stall_timeout_seconds
        try:
            await run.handle(admitted.handshake)
            writer.write(FrameEncoder().encode(Accepted()))
            logger.info("stream started", extra={"peer": peer, "run_id": run.run_id})
            for message in admitted.following:
                await run.handle(message)
            while not run.validator.finished:
                try:
                    async with asyncio.timeout(stall):
                        chunk = await reader.read(READ_CHUNK_BYTES)
                except TimeoutError:
                    logger.error("stream stalled", extra={"run_id": run.run_id, "seconds": stall})
                    await run.fail(f"stalled: no data for {stall:g} s")
                    return
                if not chunk:
                    await run.fail(
                        f"connection closed after {run.records_received} records, before the end of stream"
                    )
                    return
                for message in decoder.feed(chunk):
                    await run.handle(message)
        except ProtocolError as error:
            await self._protocol_error(run, error)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            await run.fail(f"connection lost after {run.records_received} records: {error}")
        except OutputFailed:
            pass  # the run has failed with the write error; closing the connection ends its stream
        except Exception as error:  # a bug must fail the run visibly, not leave it hanging
            logger.exception("stream processing failed")
            await run.fail(f"internal error after {run.records_received} records: {error!r}")

    async def _after_end(self, run: Run, decoder: FrameDecoder, reader: asyncio.StreamReader) -> None:
        """Read to the sender's close: anything after the end of the stream is a protocol error of the run."""
        if run.state == RunState.FAILED:
            return
        try:
            async with asyncio.timeout(self.settings.stall_timeout_seconds):
                while chunk := await reader.read(READ_CHUNK_BYTES):
                    for message in decoder.feed(chunk):
                        run.validator.check(message)
        except ProtocolError as error:
            await self._protocol_error(run, error)
        except (TimeoutError, ConnectionError):
            pass  # the run is complete; a peer that neither closes nor sends more changes nothing

    async def _protocol_error(self, run: Run, error: ProtocolError) -> None:
        self.protocol_errors[error.code] += 1
        logger.error("protocol error", extra={"run_id": run.run_id, "code": error.code, "detail": str(error)})
        await run.protocol_error(error)
