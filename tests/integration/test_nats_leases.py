"""Receivers without RECEIVER_PARTITIONS (issue 17): each run's partitions dealt among the live receivers and held
through JetStream key-value leases.

The leases themselves against a real nats-server (one holder at a time, taken back by a restart with the same id,
free once a dead holder's lease expires), then 2 and 3 receivers as processes that book disjoint partitions
covering the run and together give the demo's direct TCP replay, and a receiver killed mid-run and restarted
with the same RECEIVER_ID that takes its partitions back and books them exactly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import nats
import pytest

from receiver.partition_leases import TTL_SECONDS, PartitionLeases, assigned
from tests.integration.conftest import DEMO_FILE, Stack
from tests.integration.nats_runs import (
    PACED_SPEED,
    PARTITIONS,
    Booked,
    NatsReceiver,
    assert_books_as_replayed,
    balanced_share,
    nats_receiver,
    nats_sender,
    owned_partitions,
    sender_run_ended,
    sender_state,
    start_on_nats,
    stream_through_nats,
    union,
    wait_for_members,
    wait_until_under_way,
)
from tests.nats_server import NATS_TOKEN, NatsServer

pytestmark = pytest.mark.integration


@asynccontextmanager
async def member(nats_server: NatsServer, name: str) -> AsyncIterator[PartitionLeases]:
    """``name``'s leases on its own connection, as a receiver process has; the connection closed after."""
    client = await nats.connect(nats_server.url, token=NATS_TOKEN)
    leases = PartitionLeases(client.jetstream(), name)
    await leases.join()
    try:
        yield leases
    finally:
        await leases.leave()
        await client.close()


async def test_a_lease_has_one_holder_its_own_restart_takes_it_back_and_it_frees_when_the_holder_dies(
    nats_server: NatsServer,
) -> None:
    async with member(nats_server, "receiver-a") as first, member(nats_server, "receiver-b") as second:
        assert await first.take(0), "a free lease was not taken"
        assert not await second.take(0), "a lease held by receiver-a was taken by receiver-b too"
        assert await second.take(1)
        async with member(nats_server, "receiver-a") as first_restarted:
            assert await first_restarted.take(0), "receiver-a restarted did not take its own lease back"
        # receiver-a is dead (renews nothing): receiver-b gets its lease once it expires, not before
        died = time.monotonic()
        while not await second.take(0):
            assert time.monotonic() - died < 3 * TTL_SECONDS, "a dead holder's lease never expired"
            await asyncio.sleep(0.2)
        assert await second.holder(0) == "receiver-b"


async def test_every_receiver_of_a_run_deals_over_the_members_the_first_one_saw(
    nats_server: NatsServer,
) -> None:
    async with member(nats_server, "receiver-a") as first, member(nats_server, "receiver-b") as second:
        assert await first.members() == ["receiver-a", "receiver-b"]
        assert await first.deal("run-1", PARTITIONS) == [0, 1]
        async with member(nats_server, "receiver-c") as late:
            assert await late.deal("run-1", PARTITIONS) == [], "a receiver joining mid-run was dealt a share"
            assert await second.deal("run-1", PARTITIONS) == [2, 3], (
                "receiver-b dealt otherwise than receiver-a"
            )
            assert await late.deal("run-2", PARTITIONS) == assigned(
                PARTITIONS, ["receiver-a", "receiver-b", "receiver-c"], "receiver-c"
            ), "the next run was not dealt among the three live receivers"
    async with member(nats_server, "receiver-a") as alone:
        assert await alone.members() == ["receiver-a"], "receivers that left are still members"


def leased_receivers(nats_server: NatsServer, root: Path, count: int, stack: ExitStack) -> list[NatsReceiver]:
    """``count`` receivers without RECEIVER_PARTITIONS, once all are live members."""
    ids = [f"receiver-{number}" for number in range(count)]
    receivers = [
        stack.enter_context(nats_receiver(nats_server.url, "", root / name, RECEIVER_ID=name)) for name in ids
    ]
    wait_for_members(nats_server.url, set(ids))
    return receivers


@pytest.mark.parametrize("count", [2, 3])
def test_receivers_deal_the_partitions_among_themselves_and_together_book_the_replay(
    count: int, stack: Stack, demo_replay: Booked, nats_server: NatsServer, tmp_path: Path
) -> None:
    with ExitStack() as running:
        sender = running.enter_context(nats_sender(nats_server.url, stack.data_dir, tmp_path))
        receivers = leased_receivers(nats_server, tmp_path, count, running)
        sent = stream_through_nats(sender, DEMO_FILE)
        shares = [balanced_share(each, sent["run_id"], demo_replay) for each in receivers]
        owned = [owned_partitions(each) for each in receivers]
    dealt = sorted(partition for share in owned for partition in share)
    assert dealt == list(range(PARTITIONS)), f"partitions owned {owned}: not each of the run's once"
    assert_books_as_replayed(union(shares), demo_replay, sent)


def test_a_receiver_killed_mid_run_and_restarted_with_its_id_takes_its_partitions_back(
    stack: Stack, demo_replay: Booked, nats_server: NatsServer, tmp_path: Path
) -> None:
    with ExitStack() as running:
        sender = running.enter_context(nats_sender(nats_server.url, stack.data_dir, tmp_path))
        survivor = running.enter_context(
            nats_receiver(nats_server.url, "", tmp_path / "survivor", RECEIVER_ID="receiver-0")
        )
        doomed_root = tmp_path / "doomed"
        with nats_receiver(nats_server.url, "", doomed_root, RECEIVER_ID="receiver-1") as doomed:
            wait_for_members(nats_server.url, {"receiver-0", "receiver-1"})
            run_id = start_on_nats(sender, DEMO_FILE, PACED_SPEED)
            wait_until_under_way(sender, [survivor, doomed], run_id, demo_replay.records_received)
            before = owned_partitions(doomed)
            os.kill(doomed.pid, signal.SIGKILL)
            at_kill = sender_state(sender)
        assert at_kill["state"] == "streaming", f"the kill landed after the run: {at_kill}"

        restarted = running.enter_context(
            nats_receiver(
                nats_server.url,
                "",
                tmp_path / "restarted",
                output_dir=doomed_root / "output",
                RECEIVER_ID="receiver-1",
            )
        )
        sent = sender_run_ended(sender)
        assert sent["state"] == "done", f"the sender's run ended {sent['state']}: {sent['error']}"
        shares = [balanced_share(each, run_id, demo_replay) for each in (survivor, restarted)]
        assert owned_partitions(restarted) == before, (
            f"receiver-1 restarted owns {owned_partitions(restarted)}, before the kill {before}"
        )
        assert owned_partitions(survivor) | before == set(range(PARTITIONS))
    assert_books_as_replayed(union(shares), demo_replay, sent)
