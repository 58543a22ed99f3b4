"""What a sender and its receivers agree on when records travel through NATS JetStream.

One stream, :data:`STREAM_NAME`, holds every run's messages on the subjects ``obm.records.<partition>``. A run is
split into ``P`` partitions by instrument (:func:`partition_of`): each partition carries its own protocol stream
(:mod:`obm_shared.messages`): a :class:`~obm_shared.messages.Handshake`, record batches numbered within the
partition, heartbeats, then one end or error. Every NATS message body is one frame as
:class:`~obm_shared.framing.FrameEncoder` makes it. A run is announced in the key-value bucket :data:`RUN_BUCKET`
(key :data:`CURRENT_RUN_KEY`) with the stream sequence of each partition's handshake, so a receiver started late
or restarted finds where the current run starts in each partition.

JetStream can lose acknowledged writes under its default fsync interval: the DBN file stays the source of truth,
and the stream is a transport with limits (bytes, age) whose full state refuses publishes (discard new), so a full
stream fails the run instead of dropping records. A sender empties the stream at the start of each run, so it holds
one run: its limits bound the largest run, and a full stream never blocks the next one.

Each read of the file the sender publishes is a *window*: every partition gets at least one batch of it (empty when
none of its instruments is in that read), the last one marked (:data:`WINDOW_HEADER`). A receiver owning several
partitions merges each window's batches in market time once all of them have come, so its stream stays in
``ts_recv`` order, as time travel and the liquidity history need.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Final, NamedTuple

import msgspec
import nats
import nats.errors
import numpy as np
from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from pydantic import SecretStr

from obm_shared.framing import FrameDecoder, MalformedFrame, UnexpectedMessage
from obm_shared.messages import Message, RunId
from obm_shared.records import MBO_RECORD_SIZE, MboArray, taken

STREAM_NAME: Final = "OBM_RECORDS"
SUBJECT_PREFIX: Final = "obm.records"
RUN_BUCKET: Final = "obm_runs"
CURRENT_RUN_KEY: Final = "current"
NATS_ERRORS: Final = (OSError, TimeoutError, nats.errors.Error)
"""What a NATS call raises when the server cannot answer (unreachable, restarting, too slow): worth trying again."""

logger = logging.getLogger("obm.nats")


class NatsRefused(Exception):
    """The NATS server refused this client's token."""


async def connect(
    url: str, name: str, token: SecretStr | None, retry_seconds: float, timeout_seconds: float
) -> NatsClient:
    """A client of ``url`` presenting ``token`` (when set) that reconnects for ever, so a restarted server resumes
    the run. Raises :class:`NatsRefused` when the server refused the token until ``timeout_seconds``, one of
    :data:`NATS_ERRORS` when it could not be reached."""
    refused = False

    async def note(error: Exception) -> None:
        nonlocal refused
        refused = refused or "authorization" in str(error).lower()
        logger.warning(
            "NATS connection", extra={"client": name, "detail": str(error) or type(error).__name__}
        )

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                token=token.get_secret_value() if token is not None else None,
                max_reconnect_attempts=-1,
                reconnect_time_wait=retry_seconds,
                error_cb=note,
            ),
            timeout_seconds,
        )
    except NATS_ERRORS:
        if refused:
            raise NatsRefused(
                f"NATS at {url} refused this client's token (authorization violation)"
            ) from None
        raise


MAX_RECORDS_PER_MESSAGE: Final = 8192
"""Records in one published batch: 8192 MBO records are 458,752 bytes, well under NATS's default 1 MiB payload."""
MAX_MESSAGE_BYTES: Final = (MAX_RECORDS_PER_MESSAGE + 64) * MBO_RECORD_SIZE
"""The stream's largest message: a full batch and its framing, with room to spare."""
WINDOW_HEADER: Final = "Obm-Window"
"""A record batch's window: ``"<window>"``, or ``"<window> last"`` on its partition's last batch of the window."""
DUPLICATE_WINDOW_SECONDS: Final = 120.0
"""A publish retried within this long, under the same message id, is stored once."""

_FIBONACCI_32: Final = 2_654_435_761
"""2^32 divided by the golden ratio: consecutive instrument ids land far apart, so a few instruments still spread."""


class RunAnnouncement(msgspec.Struct, frozen=True):
    """The run a sender is publishing: its id, its partition count, and where each partition's stream starts."""

    run_id: RunId
    partitions: int
    start_sequences: list[int]
    """Stream sequence of each partition's handshake, by partition."""


def subject(partition: int) -> str:
    """The subject of ``partition``'s messages."""
    return f"{SUBJECT_PREFIX}.{partition}"


def partition_of_subject(name: str) -> int:
    """The partition a message's subject names."""
    return int(name.rsplit(".", 1)[1])


def partition_of(instrument_ids: np.ndarray, partitions: int) -> np.ndarray:
    """The partition of each instrument id: Fibonacci hashing, ``(id * 2654435761 mod 2^32) * P >> 32``.

    Stable across processes and versions (no Python ``hash``), and every record of an instrument goes to one
    partition, so each instrument's events and books stay whole and in order."""
    hashed = (instrument_ids.astype(np.uint64) * np.uint64(_FIBONACCI_32)) & np.uint64(0xFFFFFFFF)
    return ((hashed * np.uint64(partitions)) >> np.uint64(32)).astype(np.int64)


class Window(NamedTuple):
    """The sender's window a record batch belongs to, and whether it is its partition's last batch of it."""

    number: int
    last: bool


def window_header(window: Window) -> str:
    return f"{window.number} last" if window.last else str(window.number)


def window_of(headers: dict[str, str] | None) -> Window | None:
    """The window a message's headers name; None without one. Raises :class:`UnexpectedMessage` when malformed."""
    value = (headers or {}).get(WINDOW_HEADER)
    if value is None:
        return None
    number, _, last = value.partition(" ")
    if not number.isdigit() or last not in ("", "last"):
        raise UnexpectedMessage(f"malformed {WINDOW_HEADER} header {value[:40]!r}")
    return Window(int(number), last == "last")


def window_parts(records: MboArray, partitions: int) -> Iterator[tuple[int, MboArray, bool]]:
    """One window's batches: each partition's records in file order, at most :data:`MAX_RECORDS_PER_MESSAGE` a
    batch and at least one (empty when it has none), with whether it is the partition's last of the window."""
    by_partition = partition_of(records["instrument_id"], partitions)
    grouped = taken(
        records, np.argsort(by_partition, kind="stable")
    )  # stable: each partition keeps file order
    start = 0
    for partition, count in enumerate(np.bincount(by_partition, minlength=partitions).tolist()):
        end = start + count
        for offset in range(start, end, MAX_RECORDS_PER_MESSAGE) or [start]:
            yield (
                partition,
                grouped[offset : min(offset + MAX_RECORDS_PER_MESSAGE, end)],
                (offset + MAX_RECORDS_PER_MESSAGE >= end),
            )
        start = end


def message_id(run_id: str, partition: int, kind: str, number: int) -> str:
    """The ``Nats-Msg-Id`` of a run's message: a retried publish carries the same id and is stored once."""
    return f"{run_id}.{partition}.{kind}.{number}"


def stream_config(max_bytes: int, max_age_seconds: float) -> StreamConfig:
    """The records stream: on disk, bounded by bytes and age, refusing publishes when full (never dropping)."""
    return StreamConfig(
        name=STREAM_NAME,
        subjects=[f"{SUBJECT_PREFIX}.*"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_bytes=max_bytes,
        max_age=max_age_seconds,
        max_msg_size=MAX_MESSAGE_BYTES,
        discard=DiscardPolicy.NEW,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )


def run_bucket_config() -> KeyValueConfig:
    """The bucket of run announcements: only the latest value of a key matters."""
    return KeyValueConfig(bucket=RUN_BUCKET, history=1, storage=StorageType.FILE)


_announcement_encoder = msgspec.msgpack.Encoder()
_announcement_decoder = msgspec.msgpack.Decoder(RunAnnouncement)


def encode_announcement(announcement: RunAnnouncement) -> bytes:
    return _announcement_encoder.encode(announcement)


def decode_announcement(value: bytes) -> RunAnnouncement:
    """Raises :class:`MalformedFrame` when ``value`` is not an announcement."""
    try:
        return _announcement_decoder.decode(value)
    except msgspec.DecodeError as error:
        raise MalformedFrame(f"undecodable run announcement: {error}") from None


def decode_body(decoder: FrameDecoder, body: bytes) -> Message:
    """The one protocol message a NATS message body holds; raises :class:`MalformedFrame` otherwise."""
    messages = decoder.feed(body)
    if len(messages) != 1 or decoder.buffered_bytes:
        raise MalformedFrame(f"a message body of {len(body)} bytes is not exactly one frame")
    return messages[0]
