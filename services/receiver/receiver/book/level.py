"""One price level of one side of a book."""

from __future__ import annotations


class PriceLevel:
    """The orders resting at one price, in queue priority (a dict keeps insertion order).

    ``size`` is a running total, kept by :class:`~receiver.book.book.OrderBook` on every change. A top-of-book
    level (from a venue that only publishes its best price) carries a size but no individual orders, so its
    ``count`` is 0.
    """

    __slots__ = ("is_bid", "orders", "price", "size")

    def __init__(self, price: int, is_bid: bool) -> None:
        self.price = price
        """Fixed-point price, 1e-9 units."""
        self.is_bid = is_bid
        self.orders: dict[int, int] = {}
        """order_id -> resting size, front of the queue first."""
        self.size = 0

    @property
    def count(self) -> int:
        """Orders in the queue (read from the queue: one counter less to keep on every add and cancel)."""
        return len(self.orders)

    @classmethod
    def top_of_book(cls, price: int, is_bid: bool, size: int) -> PriceLevel:
        """A level known only by its aggregate size."""
        level = cls(price, is_bid)
        level.size = size
        return level

    def queue_position(self, order_id: int) -> int:
        """0 for the order at the front of the queue."""
        for position, queued in enumerate(self.orders):
            if queued == order_id:
                return position
        raise KeyError(order_id)
