"""Which partitions of a NATS run this receiver books, when they are not fixed by ``RECEIVER_PARTITIONS``.

Three JetStream key-value buckets, shared by the receivers of one NATS server:

- :data:`MEMBER_BUCKET`: one key per live receiver (its ``RECEIVER_ID``), written every :data:`RENEW_SECONDS`;
  the bucket's age limit (:data:`TTL_SECONDS`) removes a dead receiver's key.
- :data:`ASSIGNMENT_BUCKET`: the members a run's partitions are dealt to, fixed by the first receiver to see the
  run (a compare-and-set on one key), so every receiver of the run, and one restarted mid-run, deals the same way
  even while membership changes.
- :data:`LEASE_BUCKET`: one key per partition holding its owner's id. A receiver books a partition only while it
  holds its lease: taken when absent (``create``), or when the key already names this receiver (a restart with
  the same id); renewed every :data:`RENEW_SECONDS`, released at the run's end, and lost by a dead receiver
  within :data:`TTL_SECONDS`. A partition therefore has one owner at a time.

The deal (:func:`assigned`): members sorted by id, each a contiguous range of partitions, ``p`` to
``members[p * N // P]`` (contiguous, so a machine's receivers can own one block of the stream's subjects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Final

import msgspec
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from obm_shared.nats_stream import NATS_ERRORS

MEMBER_BUCKET: Final = "obm_receivers"
LEASE_BUCKET: Final = "obm_leases"
ASSIGNMENT_BUCKET: Final = "obm_assignments"
CURRENT_KEY: Final = "current"
TTL_SECONDS: Final = 6.0
"""A member's key and a partition's lease last this long unless renewed."""
RENEW_SECONDS: Final = 2.0
"""Renewals come three to a TTL, so one or two lost to a slow server do not lose the key."""
CLAIM_RETRY_SECONDS: Final = 0.5
"""Pause before trying again to take a lease another receiver still holds."""

logger = logging.getLogger("receiver.leases")


class RunAssignment(msgspec.Struct, frozen=True):
    """The members ``run_id``'s partitions are dealt to."""

    run_id: str
    members: list[str]


_assignment_encoder = msgspec.msgpack.Encoder()
_assignment_decoder = msgspec.msgpack.Decoder(RunAssignment)


def assigned(partitions: int, members: Sequence[str], member: str) -> list[int]:
    """The partitions of ``partitions`` dealt to ``member``: members sorted by id, ``p`` to
    ``members[p * N // partitions]``; none when ``member`` is not one of ``members``."""
    ordered = sorted(set(members))
    if member not in ordered:
        return []
    position = ordered.index(member)
    return [
        partition for partition in range(partitions) if partition * len(ordered) // partitions == position
    ]


def lease_key(partition: int) -> str:
    return f"partition-{partition}"


def _bucket(name: str, ttl_seconds: float | None) -> KeyValueConfig:
    return KeyValueConfig(bucket=name, history=1, ttl=ttl_seconds, storage=StorageType.FILE)


class PartitionLeases:
    """This receiver's membership, the deal of each run, and the leases of its partitions."""

    def __init__(self, jetstream: JetStreamContext, member: str) -> None:
        self.member = member
        self._jetstream = jetstream
        self._value = member.encode()
        self._members: KeyValue | None = None
        self._leases: KeyValue | None = None
        self._assignments: KeyValue | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def join(self) -> None:
        """Make the buckets if need be, write this receiver's member key, and keep it written."""
        self._members = await self._jetstream.create_key_value(_bucket(MEMBER_BUCKET, TTL_SECONDS))
        self._leases = await self._jetstream.create_key_value(_bucket(LEASE_BUCKET, TTL_SECONDS))
        self._assignments = await self._jetstream.create_key_value(_bucket(ASSIGNMENT_BUCKET, None))
        await self._members.put(self.member, self._value)
        self._heartbeat = asyncio.create_task(self._keep_membership(), name="nats-membership")

    async def leave(self) -> None:
        """Stop renewing the member key and delete it, so the next run is dealt without this receiver."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(*NATS_ERRORS):  # not deleted: it expires within TTL_SECONDS
            await _kv(self._members).delete(self.member)

    async def members(self) -> list[str]:
        """The live receivers' ids, sorted (this one among them)."""
        try:
            live = await _kv(self._members).keys()
        except NoKeysError:
            live = []
        return sorted({*live, self.member})

    async def deal(self, run_id: str, partitions: int) -> list[int]:
        """This receiver's partitions of run ``run_id``, dealt over the members the run's first receiver saw."""
        return assigned(partitions, await self._agreed_members(run_id), self.member)

    async def _agreed_members(self, run_id: str) -> list[str]:
        """The run's members as stored, or the live ones now, stored for the others unless one stored first."""
        bucket = _kv(self._assignments)
        while True:
            try:
                entry = await bucket.get(CURRENT_KEY)
            except KeyNotFoundError:
                entry = None
            if entry is not None and entry.value:
                stored = _assignment_decoder.decode(entry.value)
                if stored.run_id == run_id:
                    return stored.members
            members = await self.members()
            value = _assignment_encoder.encode(RunAssignment(run_id, members))
            try:
                if entry is None:
                    await bucket.create(CURRENT_KEY, value)
                else:
                    await bucket.update(CURRENT_KEY, value, last=entry.revision)
            except KeyWrongLastSequenceError:
                continue  # another receiver stored the run's members first: read theirs
            logger.info("partitions dealt", extra={"run_id": run_id, "members": members})
            return members

    async def take(self, partition: int) -> bool:
        """Take or renew ``partition``'s lease: True when this receiver holds it now."""
        bucket = _kv(self._leases)
        key = lease_key(partition)
        try:
            await bucket.create(key, self._value)
            return True
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await bucket.get(key)
        except KeyNotFoundError:
            return False  # expired since: the next try creates it
        if entry.value != self._value:
            return False
        try:
            await bucket.update(key, self._value, last=entry.revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def holder(self, partition: int) -> str | None:
        try:
            entry = await _kv(self._leases).get(lease_key(partition))
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    async def release(self, partitions: Sequence[int]) -> None:
        """Give up the leases of ``partitions`` that this receiver holds."""
        bucket = _kv(self._leases)
        for partition in partitions:
            with contextlib.suppress(*NATS_ERRORS):  # not released: it expires within TTL_SECONDS
                entry = await bucket.get(lease_key(partition))
                if entry.value == self._value:
                    await bucket.delete(lease_key(partition), last=entry.revision)

    @contextlib.asynccontextmanager
    async def held(self, partitions: Sequence[int]) -> AsyncIterator[Held]:
        """Hold every lease of ``partitions`` (waiting while another receiver still holds one) until exit."""
        held = Held()
        renewing: asyncio.Task[None] | None = None
        try:
            for partition in partitions:
                await self._claim(partition)
            renewing = asyncio.create_task(self._renew(partitions, held), name="nats-leases")
            yield held
        finally:
            if renewing is not None:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
            await self.release(partitions)

    async def _claim(self, partition: int) -> None:
        waited = False
        while True:
            try:
                if await self.take(partition):
                    return
                if not waited:
                    holder = await self.holder(partition)
                    logger.info("waiting for a lease", extra={"partition": partition, "holder": holder})
                    waited = True
            except NATS_ERRORS as error:
                logger.warning("lease not taken", extra={"partition": partition, "detail": repr(error)})
            await asyncio.sleep(CLAIM_RETRY_SECONDS)

    async def _renew(self, partitions: Sequence[int], held: Held) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            for partition in partitions:
                try:
                    if not await self.take(partition):
                        held.lost = (
                            f"lost the lease of partition {partition} to {await self.holder(partition)}"
                        )
                        logger.error("lease lost", extra={"partition": partition})
                        return
                except NATS_ERRORS as error:  # tried again at the next renewal, within the TTL
                    logger.warning("lease not renewed", extra={"partition": partition, "detail": repr(error)})

    async def _keep_membership(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            with contextlib.suppress(*NATS_ERRORS):  # written again at the next beat, within the TTL
                await _kv(self._members).put(self.member, self._value)


class Held:
    """Leases being held: ``lost`` says why the booking must stop, once one is lost."""

    lost: str | None = None


def _kv(bucket: KeyValue | None) -> KeyValue:
    if bucket is None:
        raise RuntimeError("the receiver has not joined: PartitionLeases.join() first")
    return bucket
