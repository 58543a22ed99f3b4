"""All books of a stream: one per (instrument, publisher), with crossing state tracked at event boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from receiver.book.accounting import Accounting
from receiver.book.book import OrderBook
from receiver.book.crossing import Crossing


@dataclass
class Market:
    """Books keyed by (instrument_id, publisher_id), the symbol of each instrument, and the accounting."""

    symbols: dict[int, str] = field(default_factory=dict)
    books: dict[tuple[int, int], OrderBook] = field(default_factory=dict)
    accounting: Accounting = field(default_factory=Accounting)
    by_instrument: dict[int, list[OrderBook]] = field(default_factory=dict)
    """instrument_id -> its books, by publisher id."""
    consolidated_crossings: dict[int, Crossing] = field(default_factory=dict)
    """Crossing of the consolidated book, for instruments quoted by several publishers."""

    def book(self, instrument_id: int, publisher_id: int) -> OrderBook:
        """The book of one instrument at one publisher, created empty on first use."""
        key = (instrument_id, publisher_id)
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = OrderBook(instrument_id, publisher_id)
            siblings = self.by_instrument.setdefault(instrument_id, [])
            siblings.append(book)
            siblings.sort(key=lambda sibling: sibling.publisher_id)
            if len(siblings) == 2:
                # the consolidated book is now the first one and an empty one: crossed as it is, since then
                first = next(sibling for sibling in siblings if sibling is not book)
                self.consolidated_crossings[instrument_id] = replace(first.crossing)
        return book

    def instrument_books(self, instrument_id: int) -> list[OrderBook]:
        """Every publisher's book of one instrument, by publisher id."""
        return self.by_instrument.get(instrument_id, [])

    def instruments(self) -> list[int]:
        """Instrument ids that have a book, ascending."""
        return sorted(self.by_instrument)

    def symbol(self, instrument_id: int) -> str:
        """The instrument's symbol, or its id as text when the stream did not name it."""
        return self.symbols.get(instrument_id, str(instrument_id))

    def crossing(self, instrument_id: int, publisher_id: int | None) -> Crossing:
        """Crossing state of one publisher's book, or of the consolidated book for publisher None."""
        books = self.by_instrument[instrument_id]
        if publisher_id is not None:
            return self.books[(instrument_id, publisher_id)].crossing
        if len(books) == 1:
            return books[0].crossing
        return self.consolidated_crossings[instrument_id]

    def share_best_change(self, book: OrderBook) -> None:
        """``book``'s best prices moved in an event that is not over: note the move on every book of its
        instrument, so the one whose record ends the event re-evaluates the consolidated crossing."""
        for sibling in self.by_instrument[book.instrument_id]:
            sibling.best_changed = True

    def end_event(self, book: OrderBook, ts_recv: int) -> None:
        """An event (F_LAST) that moved the best prices of ``book`` completed: re-evaluate its crossing and,
        with several publishers, its instrument's (one pass over them)."""
        bid, ask = book.best_bid_price, book.best_ask_price
        crossing = book.crossing
        if bid >= ask or crossing.since_ns is not None:
            crossing.update(bid, ask, ts_recv)
        books = self.by_instrument[book.instrument_id]
        if len(books) > 1:
            for sibling in books:
                if sibling.best_bid_price > bid:
                    bid = sibling.best_bid_price
                if sibling.best_ask_price < ask:
                    ask = sibling.best_ask_price
            consolidated = self.consolidated_crossings[book.instrument_id]
            if bid >= ask or consolidated.since_ns is not None:
                consolidated.update(bid, ask, ts_recv)
