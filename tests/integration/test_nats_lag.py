"""Each owned partition's lag: the messages the stream holds on its subject that the receiver has not taken."""

from __future__ import annotations

import asyncio

import nats
import pytest

from obm_shared.nats_stream import STREAM_NAME, stream_config, subject
from receiver.partition_lag import PartitionLag
from tests.nats_server import NATS_TOKEN, NatsServer

pytestmark = pytest.mark.integration


def test_lag_is_what_each_partition_holds_beyond_what_was_taken(nats_server: NatsServer) -> None:
    async def scenario() -> tuple[dict[str, int | None], dict[str, int | None], dict[str, int | None]]:
        client = await nats.connect(nats_server.url, token=NATS_TOKEN)
        try:
            jetstream = client.jetstream()
            await jetstream.add_stream(stream_config(10_000_000, 3600))
            for partition, count in ((0, 5), (2, 2), (3, 1)):
                for _ in range(count):
                    await jetstream.publish(subject(partition), b"x", stream=STREAM_NAME)
            lag = PartitionLag([0, 2])
            before = lag.behind()
            for _ in range(3):
                lag.took(0)
            following = asyncio.create_task(lag.follow(jetstream))
            for _ in range(100):  # the first answer comes within a round trip
                await asyncio.sleep(0.02)
                if lag.behind()["0"] is not None:
                    break
            following.cancel()
            asked = lag.behind()
            lag.caught_up()
            return before, asked, lag.behind()
        finally:
            await client.close()

    before, asked, ended = asyncio.run(scenario())
    assert before == {"0": None, "2": None}, "no lag is known before the stream is asked"
    assert asked == {"0": 2, "2": 2}, "partition 3 is not this receiver's; 0 is 2 behind, 2 is 2 behind"
    assert ended == {"0": 0, "2": 0}
