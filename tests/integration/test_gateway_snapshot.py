"""snapshot=1 on the sender's live gateway, driven by Databento's own client: the books at the start as MBO
snapshot records, then the replay, make the books of a replay of the whole file."""

from __future__ import annotations

import itertools

import numpy as np
from databento_dbn import F_LAST, F_SNAPSHOT

from obm_shared.records import MboArray
from receiver.book.adapter import apply_records
from receiver.book.market import Market
from tests.conftest import QueuedBooks, queued_books
from tests.integration import test_gateway as plain
from tests.integration.test_gateway import CLX5, DBEQ, Gateway, Received, assert_same_records, file_records

gateway = plain.gateway
"""A sender of its own for this module, holding the real files (the plain gateway tests' fixture)."""
CHECKS = 8
"""Points after the start where the received books are compared with the whole file's."""

pytestmark = plain.pytestmark


def snapshot_session(gateway: Gateway, dataset: str, symbols: str | list[str], start: int) -> Received:
    """databento.Live refuses a start with snapshot=True: it subscribes with the start, then with the snapshot."""
    client, received = plain.subscribed(gateway, dataset, symbols, start=start)
    client.subscribe(dataset=dataset, schema="mbo", symbols=symbols, snapshot=True)
    return plain.replay(client, received)


def event_start_in_the_middle(records: MboArray) -> int:
    """A ts_recv in the middle of ``records`` that no event straddles: the first of an event, later than the
    record before it, which ends an event."""
    ends = records["flags"] & F_LAST != 0
    later = np.diff(records["ts_recv"].astype(np.int64)) > 0
    candidates = np.flatnonzero(ends[:-1] & later) + 1
    return int(records["ts_recv"][candidates[np.searchsorted(candidates, len(records) // 2)]])


def assert_same_books(got: QueuedBooks, expected: QueuedBooks, where: str) -> None:
    assert got.keys() == expected.keys(), (
        f"{where}: books {sorted(got)} received, {sorted(expected)} replayed"
    )
    for key, (bids, asks) in expected.items():
        for side, mine, theirs in (("bid", got[key][0], bids), ("ask", got[key][1], asks)):
            assert mine == theirs, f"{where}: book {key} {side} levels differ from the whole file's replay"


def snapshot_part(received: MboArray) -> MboArray:
    """The leading F_SNAPSHOT records, checked to be Databento's shape: each book a Clear then its Adds, its
    last record F_LAST, and no snapshot record later in the stream."""
    flagged = received["flags"] & F_SNAPSHOT != 0
    count = int(np.argmin(flagged)) if not flagged.all() else len(received)
    assert count and not flagged[count:].any(), "snapshot records are not all at the start of the session"
    snapshot = received[:count]
    clears = np.flatnonzero(snapshot["action"] == b"R")
    assert clears[0] == 0 and (snapshot["action"][np.setdiff1d(np.arange(count), clears)] == b"A").all()
    ends = np.flatnonzero(snapshot["flags"] & F_LAST)
    assert ends.tolist() == [*(clears[1:] - 1).tolist(), count - 1], (
        "F_LAST does not end each book's snapshot"
    )
    for first, last in zip(clears, ends, strict=True):
        book = snapshot[first : last + 1]
        assert len(np.unique(book[["instrument_id", "publisher_id"]])) == 1, "a book's snapshot mixes books"
    return snapshot


def assert_books_follow_the_file(received: MboArray, expected: MboArray, start: int, what: str) -> None:
    """QueuedBooks from the received records equal the whole file's at CHECKS points after the start and at the end."""
    snapshot = snapshot_part(received)
    rest = received[len(snapshot) :]
    before = int(np.count_nonzero(expected["ts_recv"] < start))
    mine, whole = Market(), Market()
    apply_records(mine, snapshot)
    apply_records(whole, expected[:before])
    assert_same_books(queued_books(mine), queued_books(whole), f"{what} at the start")
    bounds = np.linspace(0, len(rest), CHECKS + 1).astype(int)
    for begin, end in itertools.pairwise(bounds.tolist()):
        apply_records(mine, rest[begin:end])
        apply_records(whole, expected[before + begin : before + end])
        assert_same_books(queued_books(mine), queued_books(whole), f"{what} {end} records after the start")


def test_clx5_from_its_middle_begins_with_the_book_then_the_files_records(gateway: Gateway) -> None:
    expected = file_records(CLX5)
    start = event_start_in_the_middle(expected)
    received = snapshot_session(gateway, "GLBX.MDP3", ["CLX5"], start)
    records = received.records()
    snapshot = snapshot_part(records)
    assert np.count_nonzero(snapshot["flags"] & F_LAST) == 1 and snapshot["flags"][-1] & F_LAST
    assert_same_records(
        records[len(snapshot) :], expected[expected["ts_recv"] >= start], "CLX5 after its snapshot"
    )
    assert_books_follow_the_file(records, expected, start, "CLX5")
    plain.assert_ended_cleanly(received, "CLX5 with a snapshot")


def test_dbeq_all_symbols_gets_one_snapshot_per_instrument_and_publisher(gateway: Gateway) -> None:
    expected = file_records(DBEQ)
    start = event_start_in_the_middle(expected)
    received = snapshot_session(gateway, "DBEQ.BASIC", "ALL_SYMBOLS", start)
    records = received.records()
    snapshot = snapshot_part(records)
    clears = snapshot[snapshot["action"] == b"R"]
    before = expected[expected["ts_recv"] < start]
    seen = set(zip(before["instrument_id"].tolist(), before["publisher_id"].tolist(), strict=True))
    assert set(zip(clears["instrument_id"].tolist(), clears["publisher_id"].tolist(), strict=True)) == seen
    assert len({publisher for _, publisher in seen}) == 3, "DBEQ's three publishers each get their books"
    assert_same_records(
        records[len(snapshot) :], expected[expected["ts_recv"] >= start], "DBEQ after its snapshot"
    )
    assert_books_follow_the_file(records, expected, start, "DBEQ")
    plain.assert_ended_cleanly(received, "DBEQ with a snapshot")


def test_a_snapshot_at_the_beginning_of_the_data_is_the_plain_replay(gateway: Gateway) -> None:
    """No book exists before the first record: nothing is sent for them, the file follows as it is."""
    client, received = plain.subscribed(gateway, "GLBX.MDP3", ["CLX5"], snapshot=True)
    plain.replay(client, received)
    assert_same_records(received.records(), file_records(CLX5), "CLX5 with a snapshot and no start")
