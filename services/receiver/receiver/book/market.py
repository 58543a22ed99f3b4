"""All books of a stream: one per (instrument, publisher), with crossing state tracked at event boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from receiver.book.accounting import Accounting
from receiver.book.book import OrderBook


@dataclass
class Crossing:
    """Whether a book is crossed (best bid above best ask) or locked (equal), and since when.

    Real books can be crossed, e.g. before the open; the sides are never swapped to hide it.
    """

    crossed: bool = False
    locked: bool = False
    since_ns: int | None = None
    """ts_recv of the event that crossed or locked the book (UNIX ns)."""

    def update(self, best_bid: int | None, best_ask: int | None, ts_recv: int) -> None:
        """Re-evaluate from the best prices after an event."""
        crossed = best_bid is not None and best_ask is not None and best_bid > best_ask
        locked = best_bid is not None and best_bid == best_ask
        if crossed or locked:
            if not (self.crossed or self.locked):
                self.since_ns = ts_recv
        else:
            self.since_ns = None
        self.crossed, self.locked = crossed, locked


@dataclass
class Market:
    """Books keyed by (instrument_id, publisher_id), the symbol of each instrument, and the accounting."""

    symbols: dict[int, str] = field(default_factory=dict)
    books: dict[tuple[int, int], OrderBook] = field(default_factory=dict)
    accounting: Accounting = field(default_factory=Accounting)
    crossings: dict[tuple[int, int | None], Crossing] = field(default_factory=dict)
    """Keyed by (instrument_id, publisher_id); publisher None is the consolidated book."""
    by_instrument: dict[int, list[OrderBook]] = field(default_factory=dict)
    """instrument_id -> its books, by publisher id."""

    def book(self, instrument_id: int, publisher_id: int) -> OrderBook:
        """The book of one instrument at one publisher, created empty on first use."""
        key = (instrument_id, publisher_id)
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = OrderBook(instrument_id, publisher_id)
            siblings = self.by_instrument.setdefault(instrument_id, [])
            siblings.append(book)
            siblings.sort(key=lambda sibling: sibling.publisher_id)
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
        """Crossing state of one book (or of the consolidated book for publisher None)."""
        key = (instrument_id, publisher_id)
        crossing = self.crossings.get(key)
        if crossing is None:
            crossing = self.crossings[key] = Crossing()
        return crossing

    def end_event(self, book: OrderBook, ts_recv: int) -> None:
        """An event (F_LAST) completed on ``book``: re-evaluate its crossing and its instrument's."""
        bid, ask = book.best_bid(), book.best_ask()
        self.crossing(book.instrument_id, book.publisher_id).update(
            bid.price if bid else None, ask.price if ask else None, ts_recv
        )
        books = self.by_instrument[book.instrument_id]
        if len(books) > 1:
            bids = [level.price for level in (b.best_bid() for b in books) if level]
            asks = [level.price for level in (b.best_ask() for b in books) if level]
            bid_price, ask_price = max(bids, default=None), min(asks, default=None)
        else:
            bid_price, ask_price = (bid.price if bid else None), (ask.price if ask else None)
        self.crossing(book.instrument_id, None).update(bid_price, ask_price, ts_recv)
