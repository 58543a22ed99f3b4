"""How far this receiver's booking of each partition it owns is behind what the sender has published there.

The stream holds one run (the sender empties it at each run's start), so the messages it holds on a partition's
subject are the run's messages of that partition; the receiver counts those it has taken. The difference is the
partition's lag, in messages (each at most :data:`~obm_shared.nats_stream.MAX_RECORDS_PER_MESSAGE` records).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Final

from nats.js import JetStreamContext

from obm_shared.nats_stream import NATS_ERRORS, STREAM_NAME, SUBJECT_PREFIX, partition_of_subject

REFRESH_SECONDS: Final = 1.0
"""How often the stream's message counts are asked for: one small request, whatever the rate."""


class PartitionLag:
    """Messages taken and published per owned partition of the run being booked."""

    def __init__(self, partitions: Iterable[int]) -> None:
        self.taken = dict.fromkeys(partitions, 0)
        self._published: dict[int, int] = {}

    def took(self, partition: int) -> None:
        self.taken[partition] += 1

    def caught_up(self) -> None:
        """Every partition's last message has been taken: nothing is left behind."""
        self._published = dict(self.taken)

    def behind(self) -> dict[str, int | None]:
        """Messages published and not yet taken, by partition (JSON keys); None until the stream has been asked."""
        return {
            str(partition): max(self._published[partition] - taken, 0)
            if partition in self._published
            else None
            for partition, taken in self.taken.items()
        }

    async def follow(self, jetstream: JetStreamContext) -> None:
        """Keep the published counts fresh until cancelled; a NATS that cannot answer leaves them as they were."""
        while True:
            with contextlib.suppress(*NATS_ERRORS):
                info = await jetstream.stream_info(STREAM_NAME, subjects_filter=f"{SUBJECT_PREFIX}.*")
                counts = {
                    partition_of_subject(name): count for name, count in (info.state.subjects or {}).items()
                }
                self._published = {partition: counts.get(partition, 0) for partition in self.taken}
            await asyncio.sleep(REFRESH_SECONDS)
