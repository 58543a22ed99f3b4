"""The hand-over to a writer thread: backpressure while the writer runs, and no put left waiting once it stopped."""

from __future__ import annotations

import asyncio

from receiver.handover import Handover


async def test_a_put_waiting_for_room_returns_once_the_writer_has_finished() -> None:
    handover: Handover[int] = Handover(1)
    await handover.put(1)  # the queue is full now and nobody reads it
    waiting = asyncio.create_task(handover.put(2))
    await asyncio.sleep(0.3)
    assert not waiting.done(), "a put with no room must wait while the writer may still take it"
    handover.finish()
    await asyncio.wait_for(waiting, timeout=2)


async def test_a_put_waits_for_room_then_goes_in_order() -> None:
    handover: Handover[int] = Handover(1)
    await handover.put(1)
    waiting = asyncio.create_task(handover.put(2))
    await asyncio.sleep(0.05)
    assert await asyncio.to_thread(handover.get) == 1
    await asyncio.wait_for(waiting, timeout=2)
    assert await asyncio.to_thread(handover.get) == 2
