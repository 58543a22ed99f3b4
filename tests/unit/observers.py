"""A test's event observer: a plain function, told of each event as records are applied."""

from __future__ import annotations

from collections.abc import Callable

from receiver.book.adapter import EventObserver
from receiver.book.book import OrderBook


class CallbackObserver(EventObserver):
    """Calls ``callback(book, ts_event, ts_recv, sequence)`` after each event."""

    def __init__(self, callback: Callable[[OrderBook, int, int, int], None]) -> None:
        self.callback = callback

    def on_event(self, book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        self.callback(book, ts_event, ts_recv, sequence)
