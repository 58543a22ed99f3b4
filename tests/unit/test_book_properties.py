"""Invariants of the L3 book on random record sequences (hypothesis).

Sequences mix adds, cancels, modifies, clears and trades over a handful of order ids, prices and sizes, on both
sides (and now and then side N, size 0 or an undefined price), at two publishers, cut into batches at random
points. After every batch the book must be internally consistent, and at the end it must equal a plain
list-based model of Databento's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from databento_dbn import F_LAST, F_MAYBE_BAD_BOOK, UNDEF_PRICE, Action, Side
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obm_shared.dbn import MBO_RTYPE
from obm_shared.records import MboRecord, records_to_array
from receiver.book.adapter import apply_records
from receiver.book.book import OrderBook
from receiver.book.crossing import Crossing
from receiver.book.market import Market
from tests.unit.observers import CallbackObserver

INSTRUMENT = 7
PRICES = [9_750_000_000, 10_000_000_000, 10_250_000_000]
ORDER_IDS = list(range(1, 6))

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Each record is decoded from RECORD_BYTES drawn bytes (one hypothesis draw per sequence keeps generation fast;
# shrinking bytes towards 0 shrinks towards the first choice of every table).
# str() of an Action or Side member is its one-character code: databento_dbn's stub types the members as str.
ACTIONS = (
    [Action.ADD] * 4
    + [Action.CANCEL] * 3
    + [Action.MODIFY] * 3
    + [
        Action.CLEAR,
        Action.TRADE,
        Action.FILL,
        Action.NONE,
    ]
)
SIDES = [Side.BID] * 5 + [Side.ASK] * 5 + [Side.NONE]
ANY_PRICES = PRICES * 5 + [UNDEF_PRICE]
ORDER_CHOICES = [*ORDER_IDS, 99]  # 99 has no home: usually an unknown order
FLAGS = [F_LAST] * 6 + [0, 0, F_LAST | F_MAYBE_BAD_BOOK]
PUBLISHERS = [1, 1, 1, 1, 2]
MAX_SIZE = 6
RECORD_BYTES = 8


def decode_records(data: bytes, homes: dict[int, tuple[str, int]]) -> list[MboRecord]:
    """Records from bytes; most records of an order id use its home side and price, so cancels and
    modifies hit resting orders, and the rest use any side (N included) and any price (UNDEF included)."""
    records = []
    for index in range(len(data) // RECORD_BYTES):
        action, order, home, side, price, size, flags, publisher = data[
            index * RECORD_BYTES : (index + 1) * RECORD_BYTES
        ]
        order_id = ORDER_CHOICES[order % len(ORDER_CHOICES)]
        if order_id in homes and home % 5:
            record_side, record_price = homes[order_id]
        else:
            record_side, record_price = SIDES[side % len(SIDES)], ANY_PRICES[price % len(ANY_PRICES)]
        records.append(
            MboRecord(
                ts_recv=1_000 + 10 * index,
                ts_event=1_000 + 10 * index - 5,
                rtype=MBO_RTYPE,
                publisher_id=PUBLISHERS[publisher % len(PUBLISHERS)],
                instrument_id=INSTRUMENT,
                action=str(ACTIONS[action % len(ACTIONS)]),
                side=str(record_side),
                price=record_price,
                size=size % (MAX_SIZE + 1),
                channel_id=0,
                order_id=order_id,
                flags=FLAGS[flags % len(FLAGS)],
                ts_in_delta=0,
                sequence=index,
            )
        )
    return records


@st.composite
def batched_sequences(draw: st.DrawFn) -> list[list[MboRecord]]:
    """A record sequence (20 to 60 records) cut into consecutive batches at random points."""
    home_bytes = draw(st.binary(min_size=2 * len(ORDER_IDS), max_size=2 * len(ORDER_IDS)))
    homes = {
        order_id: (
            (Side.BID, Side.ASK)[home_bytes[2 * position] % 2],
            PRICES[home_bytes[2 * position + 1] % len(PRICES)],
        )
        for position, order_id in enumerate(ORDER_IDS)
    }
    data = draw(st.binary(min_size=20 * RECORD_BYTES, max_size=60 * RECORD_BYTES))
    sequence = decode_records(data, homes)
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=len(sequence)), max_size=4)))
    bounds = [0, *cuts, len(sequence)]
    return [sequence[start:end] for start, end in pairwise(bounds) if end > start]


# --- invariants --------------------------------------------------------------------------------------------


def check_book(book: OrderBook) -> None:
    where = f"book (instrument {book.instrument_id}, publisher {book.publisher_id})"
    located: set[int] = set()
    for side_name, levels in (("bid", book.bids), ("ask", book.asks)):
        for price, level in levels.items():
            assert level.price == price, f"{where}: {side_name} level keyed {price} says price {level.price}"
            assert level.is_bid == (levels is book.bids), (
                f"{where}: {side_name} level {price} on the wrong side"
            )
            assert level.orders, f"{where}: empty {side_name} level left at {price}"
            assert level.size >= 0, f"{where}: {side_name} level {price} has negative size {level.size}"
            assert all(size > 0 for size in level.orders.values()), (
                f"{where}: {side_name} level {price} holds an order of size <= 0: {level.orders}"
            )
            assert level.size == sum(level.orders.values()), (
                f"{where}: {side_name} level {price} size {level.size}, its orders sum to "
                f"{sum(level.orders.values())}"
            )
            for order_id in level.orders:
                assert order_id not in located, f"{where}: order {order_id} rests in two levels"
                located.add(order_id)
                assert book.orders.get(order_id) is level, (
                    f"{where}: order {order_id} rests on the {side_name} side at {price}, the index disagrees"
                )
    assert located == set(book.orders), (
        f"{where}: indexed orders missing from levels: {set(book.orders) - located}"
    )
    best_bid = book.bids[book.bids.keys()[-1]] if book.bids else None
    best_ask = book.asks[book.asks.keys()[0]] if book.asks else None
    assert book.best_bid() is best_bid, f"{where}: best bid is not the highest bid level"
    assert book.best_ask() is best_ask, f"{where}: best ask is not the lowest ask level"


def check_market(market: Market) -> None:
    for book in market.books.values():
        check_book(book)
    accounting = market.accounting
    assert accounting.records == accounting.applied + accounting.ignored + sum(accounting.skipped.values()), (
        f"records not accounted for: {accounting.as_dict()}"
    )
    assert all(count >= 0 for count in accounting.skipped.values())


# --- a list-based model of Databento's MBO rules -----------------------------------------------------------


@dataclass
class ModelBook:
    """side -> price -> [[order_id, size], ...] front first; orders: order_id -> (side, price)."""

    queues: dict[str, dict[int, list[list[int]]]] = field(default_factory=lambda: {"B": {}, "A": {}})
    orders: dict[int, tuple[str, int]] = field(default_factory=dict)
    maybe_bad: bool = False

    def _entry(self, order_id: int) -> list[int]:
        side, price = self.orders[order_id]
        return next(entry for entry in self.queues[side][price] if entry[0] == order_id)

    def _remove(self, order_id: int) -> None:
        side, price = self.orders.pop(order_id)
        queue = self.queues[side][price]
        queue.remove(next(entry for entry in queue if entry[0] == order_id))
        if not queue:
            del self.queues[side][price]

    def _append(self, order_id: int, side: str, price: int, size: int) -> None:
        self.queues[side].setdefault(price, []).append([order_id, size])
        self.orders[order_id] = (side, price)

    def add(self, order_id: int, side: str, price: int, size: int) -> bool:
        if side not in "BA" or price == UNDEF_PRICE or size <= 0 or order_id in self.orders:
            return False
        self._append(order_id, side, price, size)
        return True

    def cancel(self, order_id: int, side: str, size: int) -> bool:
        if side not in "BA" or order_id not in self.orders:
            return False
        entry = self._entry(order_id)
        if size > entry[1]:
            return False
        if size == entry[1]:
            self._remove(order_id)
        else:
            entry[1] -= size
        return True

    def modify(self, order_id: int, side: str, price: int, size: int) -> tuple[bool, bool]:
        """(applied, applied as an add)."""
        if side not in "BA":
            return False, False
        if order_id not in self.orders:
            added = self.add(order_id, side, price, size)
            return added, added
        if price == UNDEF_PRICE or size <= 0:
            return False, False
        entry = self._entry(order_id)
        if self.orders[order_id] == (side, price) and size <= entry[1]:
            entry[1] = size  # same place, smaller or equal size: keeps priority
        else:
            self._remove(order_id)  # new price or larger size: back of the queue
            self._append(order_id, side, price, size)
        return True, False

    def snapshot(self) -> dict[str, list[tuple[int, list[tuple[int, int]]]]]:
        return {
            side: [
                (price, [(oid, size) for oid, size in queue])
                for price, queue in sorted(self.queues[side].items())
            ]
            for side in "BA"
        }


@dataclass
class Model:
    books: dict[int, ModelBook] = field(default_factory=dict)
    applied: int = 0
    ignored: int = 0
    skipped: int = 0
    as_add: int = 0

    def apply(self, record: MboRecord) -> None:
        book = self.books.setdefault(record.publisher_id, ModelBook())
        self._apply_action(book, record)
        if record.flags & F_MAYBE_BAD_BOOK:  # whatever the action, and after it: set until the next Clear
            book.maybe_bad = True

    def _apply_action(self, book: ModelBook, record: MboRecord) -> None:
        action = record.action
        if action in (str(Action.TRADE), str(Action.FILL), str(Action.NONE)):
            self.ignored += 1
            return
        as_add = False
        if action == str(Action.ADD):
            applied = book.add(record.order_id, record.side, record.price, record.size)
        elif action == str(Action.CANCEL):
            applied = book.cancel(record.order_id, record.side, record.size)
        elif action == str(Action.MODIFY):
            applied, as_add = book.modify(record.order_id, record.side, record.price, record.size)
        else:  # Clear
            book.queues, book.orders, book.maybe_bad, applied = {"B": {}, "A": {}}, {}, False, True
        self.applied += applied
        self.skipped += not applied
        self.as_add += as_add


def book_snapshot(book: OrderBook) -> dict[str, list[tuple[int, list[tuple[int, int]]]]]:
    return {
        "B": [(price, list(level.orders.items())) for price, level in book.bids.items()],
        "A": [(price, list(level.orders.items())) for price, level in book.asks.items()],
    }


# --- properties --------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(batched_sequences())
def test_book_stays_consistent_after_every_batch(batches: list[list[MboRecord]]) -> None:
    market = Market()
    for batch in batches:
        apply_records(market, records_to_array(batch))
        check_market(market)
    total = sum(len(batch) for batch in batches)
    assert market.accounting.records == total, f"{market.accounting.records} records counted, {total} applied"
    assert market.accounting.events == sum(
        record.flags & F_LAST != 0 for batch in batches for record in batch
    )


@PROPERTY_SETTINGS
@given(batched_sequences())
def test_book_matches_a_list_model_of_databento_rules(batches: list[list[MboRecord]]) -> None:
    market = Market()
    model = Model()
    for batch in batches:
        apply_records(market, records_to_array(batch))
        for record in batch:
            model.apply(record)
    for publisher_id, model_book in model.books.items():
        book = market.books[(INSTRUMENT, publisher_id)]
        assert book_snapshot(book) == model_book.snapshot(), (
            f"publisher {publisher_id}: book differs from model"
        )
        assert book.maybe_bad == model_book.maybe_bad, (
            f"publisher {publisher_id}: maybe_bad differs from model"
        )
    accounting = market.accounting
    got = (
        accounting.applied,
        accounting.ignored,
        sum(accounting.skipped.values()),
        accounting.modify_unknown_as_add,
    )
    want = (model.applied, model.ignored, model.skipped, model.as_add)
    assert got == want, f"(applied, ignored, skipped, modify-as-add) {got}, model says {want}"


@PROPERTY_SETTINGS
@given(batched_sequences())
def test_batch_boundaries_do_not_change_the_result(batches: list[list[MboRecord]]) -> None:
    whole, split = Market(), Market()
    apply_records(whole, records_to_array([record for batch in batches for record in batch]))
    for batch in batches:
        apply_records(split, records_to_array(batch))
    assert {key: book_snapshot(book) for key, book in whole.books.items()} == {
        key: book_snapshot(book) for key, book in split.books.items()
    }
    assert whole.accounting == split.accounting
    keys = [*whole.books, *((instrument, None) for instrument in whole.by_instrument)]
    assert [whole.crossing(*key) for key in keys] == [split.crossing(*key) for key in keys]
    assert {key: book.maybe_bad for key, book in whole.books.items()} == {
        key: book.maybe_bad for key, book in split.books.items()
    }


def expected_crossing(bids: list[int], asks: list[int]) -> tuple[bool, bool]:
    """(crossed, locked) from the best prices of the given bid and ask levels."""
    if not bids or not asks:
        return False, False
    return max(bids) > min(asks), max(bids) == min(asks)


@PROPERTY_SETTINGS
@given(batched_sequences())
def test_crossing_state_matches_best_prices_after_each_event(batches: list[list[MboRecord]]) -> None:
    market = Market()
    checked = 0
    previous: dict[object, tuple[bool, int | None]] = {}

    def check(key: object, crossing: Crossing, expected: tuple[bool, bool], ts_recv: int) -> None:
        got = (crossing.crossed, crossing.locked)
        assert got == expected, f"{key}: (crossed, locked) {got}, best prices say {expected}"
        was_crossed, was_since = previous.get(key, (False, None))
        if not any(expected):
            assert crossing.since_ns is None, f"{key}: not crossed but since_ns {crossing.since_ns}"
        elif was_crossed:
            assert crossing.since_ns == was_since, f"{key}: still crossed, since_ns moved"
        else:
            assert crossing.since_ns == ts_recv, (
                f"{key}: newly crossed at {ts_recv}, since_ns {crossing.since_ns}"
            )
        previous[key] = (any(expected), crossing.since_ns)

    def observer(book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        nonlocal checked
        siblings = market.instrument_books(book.instrument_id)
        # until a second publisher came, the consolidated book was the first publisher's
        if len(siblings) > 1 and "consolidated" not in previous:
            first = [sibling.publisher_id for sibling in siblings if sibling.publisher_id in previous]
            previous["consolidated"] = previous[first[0]] if first else (False, None)
        mine = market.crossing(book.instrument_id, book.publisher_id)
        check(book.publisher_id, mine, expected_crossing(list(book.bids), list(book.asks)), ts_recv)
        if len(siblings) > 1:
            bids = [price for sibling in siblings for price in sibling.bids]
            asks = [price for sibling in siblings for price in sibling.asks]
            consolidated = market.crossing(book.instrument_id, None)
            check("consolidated", consolidated, expected_crossing(bids, asks), ts_recv)
        checked += 1

    for batch in batches:
        apply_records(market, records_to_array(batch), CallbackObserver(observer))
    assert checked == market.accounting.events
