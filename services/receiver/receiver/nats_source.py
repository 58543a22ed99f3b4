"""Runs announced on NATS JetStream, booked a share at a time: this receiver's partitions of each run.

The receiver watches the run announcements (:mod:`obm_shared.nats_stream`). A run it has not booked replaces the
current one, as a new TCP stream does. Its partitions are ``RECEIVER_PARTITIONS`` when set; otherwise those dealt
to it among the live receivers, each booked only while this receiver holds its lease
(:mod:`receiver.partition_leases`). They are consumed from where each owned partition's stream starts: one
ordered consumer over the owned partitions' subjects, from the earliest of their first sequences. A receiver
started late or restarted therefore books the current run from its start. The partitions' streams are merged
into the run's one stream (:class:`~receiver.partition_merge.PartitionMerge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from obm_shared.framing import FrameDecoder, ProtocolError
from obm_shared.nats_stream import (
    CURRENT_RUN_KEY,
    NATS_ERRORS,
    RUN_BUCKET,
    STREAM_NAME,
    NatsRefused,
    RunAnnouncement,
    connect,
    decode_announcement,
    decode_body,
    partition_of_subject,
    run_bucket_config,
    subject,
    window_of,
)
from receiver.core.config import Settings
from receiver.partition_lag import PartitionLag
from receiver.partition_leases import Held, PartitionLeases
from receiver.partition_merge import PartitionMerge
from receiver.processing import Run, RunState
from receiver.run_output import OutputFailed

RETRY_SECONDS: Final = 1.0
"""Pause before trying NATS again while it cannot be reached."""
CONNECT_SECONDS: Final = 5.0
HEARTBEAT_SECONDS: Final = 1.0
"""The records consumer's idle heartbeat: after two missed (a restarted server lost the consumer) nats-py makes
it again from the next sequence, so a short one resumes the run soon after NATS is back."""
logger = logging.getLogger("receiver.nats")

_T = TypeVar("_T")
NewRun = Callable[[], Awaitable[Run]]
OnProtocolError = Callable[[Run, ProtocolError], Awaitable[None]]


class NatsRuns:
    """Watches the run announcements and books this receiver's partitions of each new run."""

    def __init__(self, settings: Settings, new_run: NewRun, on_protocol_error: OnProtocolError) -> None:
        self.settings = settings
        self._new_run = new_run
        self._on_protocol_error = on_protocol_error
        self._client: NatsClient | None = None
        self._watching: asyncio.Task[None] | None = None
        self._booking: asyncio.Task[None] | None = None
        self._booked: tuple[str, Run] | None = None
        """The run id announced last and the run booking it."""
        self._leases: PartitionLeases | None = None
        """The partitions' leases, when they are not fixed by ``RECEIVER_PARTITIONS``."""
        self.partitions: list[int] = sorted(settings.partitions)
        """The partitions of the run announced last that this receiver books or booked."""
        self.lag: PartitionLag | None = None
        """How far behind the stream each of those partitions is."""
        self.problem: str | None = None
        """Why NATS cannot be consumed now (unreachable, or the token refused); None once connected."""

    @property
    def receiving(self) -> bool:
        """True while a run's partitions are being consumed."""
        return self._booking is not None and not self._booking.done()

    async def start(self) -> None:
        self._watching = asyncio.create_task(self._watch(), name="nats-runs")

    async def close(self) -> None:
        """Stop watching and booking (the leases released); the run being booked is left to the receiver."""
        for task in (self._watching, self._booking):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._leases is not None:
            await self._leases.leave()
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing: whatever the connection's state, it is let go
                await asyncio.wait_for(self._client.close(), CONNECT_SECONDS)

    async def _watch(self) -> None:
        """Book each run announced: the current one first, then each one announced after."""
        jetstream = (await self._connect()).jetstream()
        await self._retrying(lambda: jetstream.create_key_value(run_bucket_config()))
        if not self.settings.partitions:
            leases = PartitionLeases(jetstream, self.settings.id)
            await self._retrying(leases.join)
            self._leases = leases
        # The bucket's key read as a stream, not through nats-py's watcher: its consumer, lost with a restarted
        # server, comes back only after two missed 5 s heartbeats; this one has the records consumer's.
        watcher = await self._retrying(
            lambda: jetstream.subscribe(
                f"$KV.{RUN_BUCKET}.{CURRENT_RUN_KEY}",
                stream=f"KV_{RUN_BUCKET}",
                ordered_consumer=True,
                idle_heartbeat=HEARTBEAT_SECONDS,
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            )
        )
        logger.info("watching NATS runs", extra={"url": self.settings.nats_url})
        async for entry in watcher.messages:
            if not entry.data:  # a deleted key
                continue
            try:
                announcement = decode_announcement(entry.data)
            except ProtocolError as error:
                logger.error("run announcement ignored", extra={"detail": str(error)})
                continue
            if self._booked is None or self._booked[0] != announcement.run_id:
                await self._book(jetstream, announcement)

    async def _connect(self) -> NatsClient:
        settings = self.settings
        while True:
            try:
                self._client = await connect(
                    settings.nats_url,
                    "obm-receiver",
                    settings.nats_token or settings.api_token,
                    RETRY_SECONDS,
                    CONNECT_SECONDS,
                )
                self.problem = None
                return self._client
            except NatsRefused as refused:
                self.problem = f"{refused}: check RECEIVER_NATS_TOKEN or OBM_API_TOKEN"
                logger.error("NATS refused the token", extra={"detail": self.problem})
            except NATS_ERRORS as error:
                self.problem = f"NATS at {settings.nats_url} unreachable ({error or type(error).__name__})"
                logger.warning("NATS unreachable", extra={"url": settings.nats_url, "detail": repr(error)})
            await asyncio.sleep(RETRY_SECONDS)

    async def _retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        while True:
            try:
                return await attempt()
            except NATS_ERRORS as error:
                logger.warning("NATS not ready", extra={"detail": repr(error)})
                await asyncio.sleep(RETRY_SECONDS)

    async def _book(self, jetstream: JetStreamContext, announcement: RunAnnouncement) -> None:
        """End the run being booked (a newer one replaces it), then book ``announcement``'s in a new run."""
        if self._booking is not None:
            self._booking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._booking
        if self._booked is not None:
            await self._booked[1].fail(f"replaced by run {announcement.run_id}, announced on NATS")
        run = await self._new_run()
        self._booked = (announcement.run_id, run)
        self._booking = asyncio.create_task(self._consume(jetstream, run, announcement), name="nats-run")

    async def _consume(self, jetstream: JetStreamContext, run: Run, announcement: RunAnnouncement) -> None:
        """Book this receiver's partitions of ``announcement``'s run, holding their leases when they are dealt."""
        count = announcement.partitions
        self.partitions = []
        leases = self._leases
        if leases is None:
            owned = sorted(p for p in self.settings.partitions if p < count)
        else:
            owned = await self._retrying(lambda: leases.deal(announcement.run_id, count))
        if not owned:
            await run.fail(f"this receiver owns none of the run's {count} partitions")
            return
        async with contextlib.nullcontext() if leases is None else leases.held(owned) as held:
            self.partitions = owned
            await self._book_partitions(jetstream, run, announcement, owned, held)

    async def _book_partitions(
        self,
        jetstream: JetStreamContext,
        run: Run,
        announcement: RunAnnouncement,
        owned: list[int],
        held: Held | None,
    ) -> None:
        """Book ``owned`` partitions of ``announcement``'s run into ``run`` until each has ended, one errs, a lease
        is lost, or nothing comes for ``stall_timeout_seconds``: whatever ends it, the run ends with the reason."""
        logger.info("booking a NATS run", extra={"run_id": announcement.run_id, "partitions": owned})
        starts = announcement.start_sequences
        config = ConsumerConfig(
            filter_subjects=[subject(partition) for partition in owned],
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=min(starts[partition] for partition in owned),
        )
        merge = PartitionMerge(announcement.run_id, owned)
        lag = self.lag = PartitionLag(owned)
        decoder = FrameDecoder(self.settings.max_frame_bytes)
        stall = self.settings.stall_timeout_seconds
        subscription = await jetstream.subscribe(
            subject(owned[0]),
            stream=STREAM_NAME,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_SECONDS,
            config=config,
        )
        following = asyncio.create_task(lag.follow(jetstream), name="nats-lag")
        try:
            while not merge.ended:
                try:
                    message = await subscription.next_msg(timeout=stall)
                except nats.errors.TimeoutError:
                    await run.fail(f"stalled: nothing from NATS for {stall:g} s")
                    return
                if held is not None and held.lost is not None:
                    await run.fail(held.lost)
                    return
                partition = partition_of_subject(message.subject)
                lag.took(partition)
                if message.metadata.sequence.stream < starts[partition]:  # the end of an earlier run
                    continue
                body = decode_body(decoder, message.data)
                for each in merge.feed(partition, body, window_of(message.headers)):
                    await run.handle(each)
            lag.caught_up()
        except ProtocolError as error:
            await self._on_protocol_error(run, error)
        except OutputFailed:
            pass  # the run has failed with the write error
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug must fail the run visibly, not leave it receiving
            logger.exception("NATS run failed")
            await run.fail(f"internal error after {run.records_received} records: {error!r}")
        finally:
            following.cancel()
            with contextlib.suppress(Exception):  # the consumer is ephemeral: the server drops it anyway
                await subscription.unsubscribe()
            if run.state != RunState.RECEIVING:
                logger.info("NATS run ended", extra={"run_id": run.run_id, "state": run.state.value})
