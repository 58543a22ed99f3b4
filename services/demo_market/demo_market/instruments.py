"""The demo session's instruments."""

from __future__ import annotations

from dataclasses import dataclass

from obm_shared.dbn import PRICE_SCALE


@dataclass(frozen=True)
class DemoInstrument:
    """One instrument of the demo session. ``open_price`` and ``tick`` are fixed-point (1e-9); order sizes
    are ``lot`` times 1 to ``max_lots``; ``activity`` is its share of the session's events."""

    symbol: str
    instrument_id: int
    channel_id: int
    open_price: int
    tick: int
    lot: int
    max_lots: int
    publishers: tuple[int, ...]
    activity: float


DEMO_INSTRUMENTS = (
    DemoInstrument("CLX5", 10001, 1, 65 * PRICE_SCALE, PRICE_SCALE // 100, 1, 12, (1,), 0.30),
    DemoInstrument("ESM4", 10002, 2, 5200 * PRICE_SCALE, PRICE_SCALE // 4, 1, 25, (1,), 0.45),
    DemoInstrument("AAPL", 10003, 3, 150 * PRICE_SCALE, PRICE_SCALE // 100, 100, 8, (1, 2), 0.25),
)
"""The session's instruments; their ids are the demo's own, not any venue's."""
