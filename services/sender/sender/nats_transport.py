"""A run published to the JetStream records stream, split into partitions by instrument.

Every partition gets the run's handshake, its records in file order as batches numbered within the partition
(each read of the file a window of at least one batch per partition, see :mod:`obm_shared.nats_stream`),
heartbeats while a paced replay waits, and its own end (or error) with its counts; the run is then announced with
each partition's first stream sequence (see :mod:`obm_shared.nats_stream`). Publishes are pipelined, at most
:data:`MAX_IN_FLIGHT` awaiting their acknowledgement; one that is not acknowledged is published again under the same
message id (JetStream stores it once) until ``nats_timeout_seconds`` have passed, then the run fails with the
reason. The stream thread runs this transport's own asyncio loop for nats-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import APIError, BadRequestError, ServiceUnavailableError

from obm_shared.framing import FrameEncoder
from obm_shared.messages import (
    PROTOCOL_VERSION,
    EndOfStream,
    Handshake,
    Heartbeat,
    Message,
    RecordBatch,
    StreamError,
    StreamMetadata,
)
from obm_shared.nats_stream import (
    CURRENT_RUN_KEY,
    NATS_ERRORS,
    STREAM_NAME,
    WINDOW_HEADER,
    NatsRefused,
    RunAnnouncement,
    Window,
    connect,
    encode_announcement,
    message_id,
    run_bucket_config,
    stream_config,
    subject,
    window_header,
    window_parts,
)
from obm_shared.records import MboArray
from sender.core.config import Settings
from sender.transport import TransportFailed

MAX_IN_FLIGHT: Final = 64
"""Publishes awaiting their acknowledgement at once (each at most a few hundred KB)."""
ACK_SECONDS: Final = 2.0
"""How long one publish waits for its acknowledgement before it is published again."""
RETRY_PAUSE_SECONDS: Final = 0.25
CLOSE_SECONDS: Final = 5.0
STREAM_STORE_FAILED: Final = 10077
"""JetStream's error code for a message its stream would not store (at a limit, with discard new): it answers
503 like a restarting server, but trying again does not help."""

logger = logging.getLogger("sender.nats")
_T = TypeVar("_T")


@dataclass
class _Publish:
    """A message on its way, and its acknowledgement (None when it could not even be handed to the client)."""

    subject: str
    body: bytes
    message_id: str
    window: Window | None = None
    ack: asyncio.Future[PubAck] | None = None

    def headers(self) -> dict[str, str]:
        if self.window is None:
            return {"Nats-Msg-Id": self.message_id}
        return {"Nats-Msg-Id": self.message_id, WINDOW_HEADER: window_header(self.window)}


class NatsTransport:
    """The NATS JetStream transport of one run (see the module's docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.nats_url
        self.partitions = settings.nats_partitions
        self.destination = f"{self.url} ({self.partitions} partitions)"
        self.encoder = FrameEncoder()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: NatsClient | None = None
        self._jetstream: JetStreamContext | None = None
        self._in_flight: deque[_Publish] = deque()
        self._run_id = ""
        self._batches = [0] * self.partitions
        """Batches published, by partition."""
        self._records = [0] * self.partitions
        """Records published, by partition."""
        self._windows = 0
        """Reads of the file published."""
        self._beats = 0

    def open(self, run_id: str, metadata: StreamMetadata, dbn_header: bytes) -> None:
        self._run_id = run_id
        self._call(self._open(Handshake(PROTOCOL_VERSION, metadata, run_id, b"", dbn_header)))

    def send(self, records: MboArray, first_index: int) -> int:
        return self._call(self._send(records))

    def heartbeat(self) -> None:
        self._call(self._heartbeat())

    def end(self, totals: EndOfStream) -> None:
        self._call(self._end())

    def abandon(self, message: StreamError, cause: Exception) -> None:
        if self._jetstream is None or isinstance(cause, TransportFailed):  # NATS is not there to be told
            return
        try:
            self._call(self._abandon(message))
        except TransportFailed as error:
            logger.warning("the run's end could not be published", extra={"detail": str(error)})

    def interrupt(self) -> None:
        """Nothing to cut short: every wait for NATS ends within ``nats_timeout_seconds``."""

    def close(self) -> None:
        if self._loop is None:
            return
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing: whatever the connection's state, it is let go
                self._call(asyncio.wait_for(self._client.close(), CLOSE_SECONDS))
        self._loop.close()

    def describe(self, error: Exception, records_sent: int) -> str | None:
        if isinstance(error, nats.errors.Error):
            return f"NATS at {self.url}: {error} after {records_sent} records"
        return None

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    async def _open(self, handshake: Handshake) -> None:
        """Connect, make sure the stream and the run bucket exist, empty the stream of earlier runs, publish every
        partition's handshake, then announce the run with where each partition's stream starts."""
        settings = self.settings
        try:
            self._client = await connect(
                self.url,
                "obm-sender",
                settings.nats_token or settings.api_token,
                RETRY_PAUSE_SECONDS,
                settings.connect_timeout_seconds,
            )
        except NatsRefused as refused:
            raise TransportFailed(f"{refused}: check SENDER_NATS_TOKEN or OBM_API_TOKEN") from None
        except NATS_ERRORS as error:
            raise TransportFailed(
                f"NATS at {self.url}: cannot connect ({error or type(error).__name__})"
            ) from None
        jetstream = self._jetstream = self._client.jetstream(timeout=ACK_SECONDS)
        config = stream_config(self.settings.nats_stream_max_bytes, self.settings.nats_stream_max_age_seconds)
        await self._acked(lambda: _ensure_stream(jetstream, config), "the records stream's creation")
        # The stream holds one run, so its limits bound a run, not a history: an earlier run's receivers have its
        # DBN file to book again, and a full stream never blocks the next run.
        await self._acked(lambda: jetstream.purge_stream(STREAM_NAME), "the purge of earlier runs")
        bucket = await self._acked(lambda: jetstream.create_key_value(run_bucket_config()), "the run bucket")
        body = self.encoder.encode(handshake)
        starts = []
        for partition in range(self.partitions):
            publish = _Publish(subject(partition), body, message_id(self._run_id, partition, "Handshake", 0))
            starts.append((await self._republish(publish, "a handshake")).seq)
        announcement = encode_announcement(RunAnnouncement(self._run_id, self.partitions, starts))
        await self._acked(lambda: bucket.put(CURRENT_RUN_KEY, announcement), "the run's announcement")

    async def _send(self, records: MboArray) -> int:
        """``records`` as one window of batches (:func:`window_parts`)."""
        window = self._windows
        self._windows += 1
        sent = 0
        for partition, part, last in window_parts(records, self.partitions):
            seq = self._batches[partition]
            batch = RecordBatch.from_array(seq, self._records[partition], part)
            await self._publish(partition, batch, seq, Window(window, last))
            self._batches[partition] += 1
            self._records[partition] += len(part)
            sent += 1
        return sent

    async def _heartbeat(self) -> None:
        for partition in range(self.partitions):
            await self._publish(partition, Heartbeat(), self._beats)
        self._beats += 1

    async def _end(self) -> None:
        """Every batch acknowledged first, so each partition's end follows all its records in the stream."""
        await self._drain()
        for partition in range(self.partitions):
            totals = EndOfStream(self._records[partition], self._batches[partition])
            await self._publish(partition, totals, 0)
        await self._drain()

    async def _abandon(self, message: StreamError) -> None:
        await self._drain()
        for partition in range(self.partitions):
            error = StreamError(message.reason, self._records[partition], message.stopped_by_user)
            await self._publish(partition, error, 0)
        await self._drain()

    async def _publish(
        self, partition: int, message: Message, number: int, window: Window | None = None
    ) -> None:
        """Publish without waiting for the acknowledgement, unless MAX_IN_FLIGHT publishes already wait for theirs."""
        kind = type(message).__name__
        publish = _Publish(
            subject(partition),
            self.encoder.encode(message),
            message_id(self._run_id, partition, kind, number),
            window,
        )
        with contextlib.suppress(nats.errors.Error, OSError):  # not handed over: settled by publishing again
            publish.ack = await self._js().publish_async(
                publish.subject, publish.body, headers=publish.headers()
            )
        self._in_flight.append(publish)
        while len(self._in_flight) > MAX_IN_FLIGHT:
            await self._settle(self._in_flight.popleft())

    async def _drain(self) -> None:
        while self._in_flight:
            await self._settle(self._in_flight.popleft())

    async def _settle(self, publish: _Publish) -> None:
        """Wait for ``publish``'s acknowledgement; without one in time, publish it again until acknowledged."""
        if publish.ack is not None:
            try:
                async with asyncio.timeout(ACK_SECONDS):
                    await publish.ack
                return
            except APIError as error:
                if not _retryable(error):
                    raise self._refused(error, "a message of the run") from None
            except (TimeoutError, nats.errors.Error):
                pass
        await self._republish(publish, "a message of the run")

    async def _republish(self, publish: _Publish, what: str) -> PubAck:
        jetstream = self._js()
        return await self._acked(
            lambda: jetstream.publish(
                publish.subject, publish.body, timeout=ACK_SECONDS, headers=publish.headers()
            ),
            what,
        )

    async def _acked(self, attempt: Callable[[], Awaitable[_T]], what: str) -> _T:
        """``attempt()``'s answer, trying again while NATS does not answer, for up to ``nats_timeout_seconds``;
        a refusal (an error NATS answers with) fails the run at once."""
        timeout = self.settings.nats_timeout_seconds
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await attempt()
            except APIError as error:
                if not _retryable(error):
                    raise self._refused(error, what) from None
                last: Exception = error
            except (TimeoutError, OSError, nats.errors.Error) as error:
                last = error
            if time.monotonic() >= deadline:
                reason = str(last) or type(last).__name__
                raise TransportFailed(
                    f"NATS at {self.url} did not acknowledge {what} within {timeout:g} s: {reason}"
                )
            await asyncio.sleep(RETRY_PAUSE_SECONDS)

    def _refused(self, error: APIError, what: str) -> TransportFailed:
        """The run's failure when NATS refuses ``what``, naming the stream's limit when that is the reason."""
        if error.err_code == STREAM_STORE_FAILED and "maximum bytes" in (error.description or ""):
            return TransportFailed(
                f"the NATS records stream is full: it refused {what} ({error.description}) at its limit of"
                f" SENDER_NATS_STREAM_MAX_BYTES={self.settings.nats_stream_max_bytes} bytes"
            )
        return TransportFailed(f"NATS refused {what}: {error.description}")

    def _js(self) -> JetStreamContext:
        if self._jetstream is None:
            raise RuntimeError("the NATS transport is not open")
        return self._jetstream


def _retryable(error: APIError) -> bool:
    """JetStream answered but is not ready yet (a restarting server): worth trying again."""
    return isinstance(error, ServiceUnavailableError) and error.err_code != STREAM_STORE_FAILED


async def _ensure_stream(jetstream: JetStreamContext, config: StreamConfig) -> None:
    """Create the records stream, or bring an existing one to this configuration (its limits may change)."""
    try:
        await jetstream.add_stream(config)
    except BadRequestError:
        await jetstream.update_stream(config)
