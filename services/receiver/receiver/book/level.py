"""One price level of one side of a book."""

from __future__ import annotations


class PriceLevel:
    """The orders resting at one price, in queue priority (a dict keeps insertion order).

    ``size`` and ``count`` are running totals kept on every change. A top-of-book level (from a venue that
    only publishes its best price) carries a size but no individual orders, so its ``count`` is 0.
    """

    __slots__ = ("count", "orders", "price", "size")

    def __init__(self, price: int) -> None:
        self.price = price
        """Fixed-point price, 1e-9 units."""
        self.orders: dict[int, int] = {}
        """order_id -> resting size, front of the queue first."""
        self.size = 0
        self.count = 0

    @classmethod
    def top_of_book(cls, price: int, size: int) -> PriceLevel:
        """A level known only by its aggregate size."""
        level = cls(price)
        level.size = size
        return level

    def append(self, order_id: int, size: int) -> None:
        """Join the back of the queue."""
        self.orders[order_id] = size
        self.size += size
        self.count += 1

    def remove(self, order_id: int) -> int:
        """Leave the queue; returns the size the order had."""
        size = self.orders.pop(order_id)
        self.size -= size
        self.count -= 1
        return size

    def resize(self, order_id: int, size: int) -> None:
        """Change an order's size in place, keeping its queue position."""
        self.size += size - self.orders[order_id]
        self.orders[order_id] = size

    def queue_position(self, order_id: int) -> int:
        """0 for the order at the front of the queue."""
        for position, queued in enumerate(self.orders):
            if queued == order_id:
                return position
        raise KeyError(order_id)