"""JSON lines of book events: one line per event snapshot, with decimal prices.

Consecutive events mostly share their levels: a side equal to the same instrument's previous one reuses its
rendered text, and each level's JSON fragment is cached by (price, size, count), so rendering a line is a few
comparisons, dict lookups and one join.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from receiver.book.views import EventSnapshot, RawLevel, format_price

LEVEL_CACHE_LIMIT = 1 << 20
"""Fragments kept before the cache starts over (bounds memory on long runs)."""


class EventLineEncoder:
    """Renders :class:`EventSnapshot` objects as JSON lines.

    A line: ``{"ts_event", "ts_recv", "sequence", "instrument_id", "symbol", "best_bid", "best_ask",
    "bids": [{"price": "65.4", "price_raw": 65400000000, "size": 1, "count": 1}, ...], "asks": [...],
    "crossed", "locked", "orders"}``, with ``best_bid``/``best_ask`` null when that side is empty.
    """

    def __init__(self, symbol_of: Callable[[int], str]) -> None:
        self._symbol_of = symbol_of
        self._levels: dict[RawLevel, bytes] = {}
        self._symbols: dict[int, bytes] = {}
        self._last_sides: dict[tuple[int, bool], tuple[list[RawLevel], list[bytes]]] = {}

    def _level(self, level: RawLevel) -> bytes:
        fragment = self._levels.get(level)
        if fragment is None:
            if len(self._levels) >= LEVEL_CACHE_LIMIT:
                self._levels.clear()
            price, size, count = level
            fragment = self._levels[level] = (
                f'{{"price":"{format_price(price)}","price_raw":{price},"size":{size},"count":{count}}}'.encode()
            )
        return fragment

    def _symbol(self, instrument_id: int) -> bytes:
        symbol = self._symbols.get(instrument_id)
        if symbol is None:
            symbol = self._symbols[instrument_id] = msgspec.json.encode(self._symbol_of(instrument_id))
        return symbol

    def _side(self, instrument_id: int, is_bid: bool, levels: list[RawLevel]) -> list[bytes]:
        key = (instrument_id, is_bid)
        last = self._last_sides.get(key)
        if last is not None and last[0] == levels:
            return last[1]
        fragments = [self._level(raw) for raw in levels]
        self._last_sides[key] = (levels, fragments)
        return fragments

    def line(self, snapshot: EventSnapshot) -> bytes:
        """One JSON line (with its newline)."""
        bids = self._side(snapshot.instrument_id, True, snapshot.bids)
        asks = self._side(snapshot.instrument_id, False, snapshot.asks)
        return b"".join(
            (
                b'{"ts_event":%d,"ts_recv":%d,"sequence":%d,"instrument_id":%d,"symbol":'
                % (snapshot.ts_event, snapshot.ts_recv, snapshot.sequence, snapshot.instrument_id),
                self._symbol(snapshot.instrument_id),
                b',"best_bid":',
                bids[0] if bids else b"null",
                b',"best_ask":',
                asks[0] if asks else b"null",
                b',"bids":[',
                b",".join(bids),
                b'],"asks":[',
                b",".join(asks),
                b'],"crossed":%s,"locked":%s,"orders":%d}\n'
                % (
                    b"true" if snapshot.crossed else b"false",
                    b"true" if snapshot.locked else b"false",
                    snapshot.orders,
                ),
            )
        )
