"""What changed on one side of a book since the observer of its top levels last read it."""

from __future__ import annotations

from typing import final

from receiver.book.level import PriceLevel


@final
class SideChanges:
    """Change notes of one side, owned by its book: the book notes, its observer reads, takes and resets.

    Only changes at prices at least as good as the watched limit (the worst price the observer shows) count.
    ``touched`` is the one level that changed (in size or count, or it came, or it went); ``reread`` says
    the observer must read the side again (several levels changed, or the side was replaced). A new side
    watches every price and asks for a read.
    """

    __slots__ = ("_every_price", "is_bid", "limit", "reread", "touched")

    def __init__(self, is_bid: bool, every_price: int) -> None:
        self.is_bid = is_bid
        self._every_price = every_price
        """The limit that watches every price: below every bid, or above every ask."""
        self.limit = every_price
        self.reread = True
        self.touched: PriceLevel | None = None

    def note(self, level: PriceLevel) -> None:
        """``level`` of this side changed size or count, came or went."""
        if self.reread:
            return
        if level.price < self.limit if self.is_bid else level.price > self.limit:
            return
        if self.touched is None:
            self.touched = level
        elif self.touched is not level:
            self.reread = True

    def note_replaced(self) -> None:
        """The whole side changed at once."""
        self.reread = True

    def changed(self) -> bool:
        """Whether anything the observer shows changed since it last read or took."""
        return self.reread or self.touched is not None

    def take(self) -> PriceLevel | None:
        """The one level that changed, if any, forgotten as it is handed over."""
        level, self.touched = self.touched, None
        return level

    def watch(self, limit: int) -> None:
        """Count changes only at ``limit`` or better: the observer shows the side down to this price."""
        self.limit = limit

    def watch_all(self) -> None:
        """Count changes at every price: the observer shows all the side's levels."""
        self.limit = self._every_price

    def reset(self) -> None:
        """The observer read the whole side: nothing is new."""
        self.reread = False
        self.touched = None
