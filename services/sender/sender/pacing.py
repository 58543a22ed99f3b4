"""Replay pacing: release records when their market time (ts_event), scaled by a speed multiplier, is due."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import pairwise

import numpy as np

from obm_shared.dbn import F_SNAPSHOT
from obm_shared.records import MboArray

NANOS = 1_000_000_000
TICK_SECONDS = 0.02
"""Records due within one tick of wall time are sent together."""


class Pacer:
    """Cuts record arrays into parts due at the same wall-clock tick and tells how long to wait for each.

    Market time is ``ts_event`` made non-decreasing. Snapshot records (F_SNAPSHOT) do not move it: their
    ts_event is when each resting order was first entered, perhaps days earlier, so a snapshot goes out at
    once. A quiet spell longer than ``max_gap_seconds`` of market time is shortened to it, so a replay of a
    file that spans a weekend does not sit idle for days.
    """

    def __init__(
        self, speed: float, max_gap_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.max_gap_ns = int(max_gap_seconds * NANOS)
        self.clock = clock
        self._start_wall: float | None = None
        self._last_market_ns: int | None = None
        self._market_elapsed_ns = 0
        """Market time replayed so far, after shortening long gaps."""

    def parts(self, records: MboArray) -> Iterator[tuple[float, MboArray]]:
        """``(seconds to wait, records)`` for consecutive parts of ``records``."""
        moves_clock = (records["flags"] & F_SNAPSHOT) == 0
        elapsed = self._market_elapsed(np.where(moves_clock, records["ts_event"].astype(np.int64), 0))
        if self._start_wall is None:
            self._start_wall = self.clock()
        due = elapsed / NANOS / self.speed  # seconds after the start
        ticks = np.floor(due / TICK_SECONDS).astype(np.int64)
        cuts = [0, *(np.flatnonzero(np.diff(ticks)) + 1).tolist(), len(records)]
        for start, stop in pairwise(cuts):
            wait = self._start_wall + float(due[start]) - self.clock()
            yield max(0.0, wait), records[start:stop]

    def _market_elapsed(self, ts_event: np.ndarray) -> np.ndarray:
        """Shortened market time since the first clock-moving record, per record, in ns (0 = does not move)."""
        if self._last_market_ns is None:
            moving = ts_event[ts_event > 0]
            if not len(moving):
                return np.zeros(len(ts_event), dtype=np.int64)
            self._last_market_ns = int(moving[0])
        monotonic = np.maximum.accumulate(np.concatenate([[self._last_market_ns], ts_event]))
        steps = np.minimum(np.diff(monotonic), self.max_gap_ns)
        elapsed = self._market_elapsed_ns + np.cumsum(steps)
        self._last_market_ns = int(monotonic[-1])
        self._market_elapsed_ns = int(elapsed[-1])
        return elapsed

    def market_seconds(self) -> float:
        """Market time replayed so far (after shortening long gaps)."""
        return self._market_elapsed_ns / NANOS
