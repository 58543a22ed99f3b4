"""Crossed and locked books, and since when."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Crossing:
    """Whether a book is crossed (best bid above best ask) or locked (equal), and since when.

    Real books can be crossed, e.g. before the open; the sides are never swapped to hide it.
    """

    crossed: bool = False
    locked: bool = False
    since_ns: int | None = None
    """ts_recv of the event that crossed or locked the book (UNIX ns)."""

    def update(self, best_bid: int, best_ask: int, ts_recv: int) -> None:
        """Re-evaluate from the best prices after an event (an empty side is a sentinel that never crosses)."""
        self.crossed = best_bid > best_ask
        self.locked = best_bid == best_ask
        if self.crossed or self.locked:
            if self.since_ns is None:
                self.since_ns = ts_recv
        else:
            self.since_ns = None
