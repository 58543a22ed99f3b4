"""The bounded hand-over from ingest to a writer thread: backpressure while it writes, never a hang after."""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Generic, TypeVar

Item = TypeVar("Item")
_WAKE_SECONDS = 0.1


class Handover(Generic[Item]):
    """A bounded queue to one writer thread. :meth:`put` waits for room; once the writer is done
    (:meth:`finish`), puts are dropped and one still waiting for room returns."""

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=maxsize)
        self._finished = threading.Event()

    async def put(self, item: Item) -> None:
        """Queue ``item``, waiting (off the event loop) for room while the writer is behind."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await asyncio.to_thread(self._put_until_finished, item)

    def put_blocking(self, item: Item) -> None:
        """Queue ``item`` from a thread that may block (the writer's own closing items)."""
        self._queue.put(item)

    def get(self) -> Item:
        """The next item, for the writer thread."""
        return self._queue.get()

    def finish(self) -> None:
        """The writer has stopped: release any put waiting for room, drop later ones."""
        self._finished.set()

    def _put_until_finished(self, item: Item) -> None:
        # a writer that stopped on a failure takes nothing more: wake up to see it, rather than wait for ever
        while not self._finished.is_set():
            try:
                self._queue.put(item, timeout=_WAKE_SECONDS)
                return
            except queue.Full:
                continue
