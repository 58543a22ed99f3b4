"""`orderbook replay FILE --at T | --at-event K`: the books at a point equal a fresh replay of the file's prefix.

For each real file, 30 points (before the first record, the first and last events, exactly on F_LAST
timestamps, inside events, after the last record, random times and event indexes). The expected books come
from the whole file read as one array, the prefix found here by the definition (after the last F_LAST record
whose ts_recv <= T, or the K-th F_LAST record), and applied to a fresh market in one pass over the points in
prefix order. The book at each event a point ends on must also equal that line of ``--events``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from obm_shared.dbn import F_LAST
from obm_shared.dbn_file import open_mbo_file
from obm_shared.records import MboArray
from orderbook_cli.compiled_receiver import PYTHON
from orderbook_cli.main import main
from receiver.book.adapter import apply_records
from receiver.book.market import Market
from receiver.book.views import book_view, market_views
from receiver.history.points import MAX_TIME_NS

pytestmark = pytest.mark.realdata

DEPTH = 100_000
"""Deeper than any book of the files: every level is compared."""
LINE_DEPTH = 10
"""The depth of ``--events`` lines."""
POINTS_PER_FILE = 30
SUBPROCESS_POINTS = 3
"""Points answered by the command itself in a process of its own; the rest by its main() in-process."""
COMMAND = [sys.executable, "-c", "from orderbook_cli.launch import main; main()"]


@dataclass(frozen=True)
class Stream:
    path: Path
    symbols: dict[int, str]
    records: MboArray
    event_ends: np.ndarray
    """Row of each F_LAST record."""
    lines: list[bytes]
    """``orderbook replay FILE --events`` output, one line per event."""


@cache
def stream_of(path: Path, lines_dir: Path) -> Stream:
    mbo_file = open_mbo_file(path)
    records = np.concatenate(list(mbo_file.batches(1 << 20)))
    ts_recv = records["ts_recv"]
    disorder = np.flatnonzero(ts_recv[1:] < ts_recv[:-1])
    assert not len(disorder), (
        f"{path.name} is not in ts_recv order: record {int(disorder[0]) + 1} was received at "
        f"{int(ts_recv[disorder[0] + 1])}, before record {int(disorder[0])} at {int(ts_recv[disorder[0]])}"
    )
    out = lines_dir / f"{path.name}.events.jsonl"
    main(["replay", str(path), "--events", str(out), "--no-progress", "--depth", str(LINE_DEPTH)])
    return Stream(
        path,
        dict(mbo_file.metadata().instruments),
        records,
        np.flatnonzero(records["flags"] & F_LAST),
        out.read_bytes().splitlines(),
    )


@pytest.fixture
def stream(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stream:
    return stream_of(request.getfixturevalue(request.param), tmp_path_factory.getbasetemp())


def iso(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def points(stream: Stream) -> list[list[str]]:
    """The command line options of 30 points, of every kind the issue names."""
    rng = np.random.default_rng(15)
    ts_recv, ends = stream.records["ts_recv"], stream.event_ends
    event_ts = ts_recv[ends]
    first, last = int(ts_recv[0]), int(ts_recv[-1])
    starts = np.concatenate([[0], ends[:-1] + 1])
    # inside an event: after its first record, before its F_LAST one (files whose events never span time:
    # just before a multi-record event)
    spanning = np.flatnonzero(ts_recv[starts] < event_ts)
    inside = (
        [int(ts_recv[starts[event]]) for event in rng.choice(spanning, 4)]
        if len(spanning)
        else [int(event_ts[event]) - 1 for event in rng.choice(np.flatnonzero(ends > starts), 4)]
    )
    shared_ts = np.flatnonzero(event_ts[1:] == event_ts[:-1])  # several events received at one time
    times = [
        0,
        first - 1,
        int(event_ts[0]),
        int(event_ts[-1]),
        last + 1,
        MAX_TIME_NS,
        *(int(ts) for ts in rng.choice(event_ts, 5)),
        *([int(event_ts[shared_ts[len(shared_ts) // 2]])] if len(shared_ts) else []),
        *inside,
        *(int(ts) for ts in rng.integers(first, last, 6)),
    ]
    events = [0, len(ends) - 1, len(ends), *(int(event) for event in rng.integers(0, len(ends), 5))]
    options = [["--at-event", str(event)] for event in events]
    options += [
        ["--at", iso(ns) if index % 4 == 0 and ns < 2**63 else str(ns)] for index, ns in enumerate(times)
    ]
    while len(options) < POINTS_PER_FILE:  # the file had no events sharing a time
        options.append(["--at", str(int(rng.integers(first, last)))])
    return options


def prefix_length(stream: Stream, option: list[str]) -> int:
    """Records in the point's prefix, by the definition over the whole file."""
    kind, value = option
    ends = stream.event_ends
    if kind == "--at-event":
        return int(ends[int(value)]) + 1 if int(value) < len(ends) else len(stream.records)
    ns = int(value) if value.isdigit() else int(np.datetime64(value.rstrip("Z"), "ns").astype(np.int64))
    within = ends[stream.records["ts_recv"][ends] <= ns]
    return int(within[-1]) + 1 if len(within) else 0


def run_in_process(path: Path, option: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    main(["replay", str(path), *option, "--depth", str(DEPTH), "--no-progress"])
    books: dict[str, Any] = json.loads(capsys.readouterr().out)
    return books


def run_command(path: Path, option: list[str], events_out: Path) -> dict[str, Any]:
    """The command with --events, whose lines are as deep as the books it prints: LINE_DEPTH."""
    done = subprocess.run(
        [
            *COMMAND,
            "replay",
            str(path),
            *option,
            "--depth",
            str(LINE_DEPTH),
            "--no-progress",
            "--events",
            str(events_out),
        ],
        env={**os.environ, "OBM_CLI_BUILD": PYTHON},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"orderbook replay {' '.join(option)} failed: {done.stderr}"
    books: dict[str, Any] = json.loads(done.stdout)
    return books


def expected_point(stream: Stream, length: int) -> dict[str, int] | None:
    if not length:
        return None
    record = stream.records[length - 1]
    event = int(np.searchsorted(stream.event_ends, length - 1))
    return {"event_index": event, "ts_recv": int(record["ts_recv"]), "ts_event": int(record["ts_event"])}


def rows(levels: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(level["price"], level["size"], level["count"]) for level in levels]


def assert_line_matches(stream: Stream, market: Market, event: int, where: str) -> None:
    """Line ``event`` of --events shows the consolidated book the market holds now."""
    line = json.loads(stream.lines[event])
    view = msgspec.to_builtins(book_view(market, line["instrument_id"], None, LINE_DEPTH))
    got = {
        "bids": rows(line["bids"]),
        "asks": rows(line["asks"]),
        "best_bid": rows([line["best_bid"]]) if line["best_bid"] else None,
        "best_ask": rows([line["best_ask"]]) if line["best_ask"] else None,
        "crossed": line["crossed"],
        "locked": line["locked"],
        "orders": line["orders"],
    }
    want = {
        "bids": rows(view["bids"]),
        "asks": rows(view["asks"]),
        "best_bid": rows([view["best_bid"]]) if view["best_bid"] else None,
        "best_ask": rows([view["best_ask"]]) if view["best_ask"] else None,
        "crossed": view["crossed"],
        "locked": view["locked"],
        "orders": view["orders"],
    }
    differing = {key: (got[key], want[key]) for key in got if got[key] != want[key]}
    assert not differing, f"{where}: line {event} of --events differs from the book (line, book): {differing}"


@pytest.mark.parametrize("stream", ["clx5", "esm4", "dbeq"], indirect=True)
def test_the_books_at_a_point_are_a_fresh_replay_of_the_prefix(
    stream: Stream, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = stream.path
    options = points(stream)
    assert len(options) == POINTS_PER_FILE
    market = Market(symbols=stream.symbols)
    applied = 0
    for number, (length, option) in enumerate(
        sorted(((prefix_length(stream, option), option) for option in options), key=lambda pair: pair[0])
    ):
        where = f"{path.name} {' '.join(option)} (prefix of {length} records)"
        apply_records(market, stream.records[applied:length])
        applied = length
        depth = DEPTH
        if number % (POINTS_PER_FILE // SUBPROCESS_POINTS) == 0:
            depth = LINE_DEPTH
            events_out = tmp_path / f"{number}.jsonl"
            document = run_command(path, option, events_out)
            written = events_out.read_bytes().splitlines()
            assert written == stream.lines[: market.accounting.events], (
                f"{where}: --events wrote {len(written)} lines, expected the first {market.accounting.events}"
                " of the whole file's"
            )
        else:
            document = run_in_process(path, option, capsys)
        assert document["point"] == expected_point(stream, length), f"{where}: answers for another event"
        assert document["accounting"] == market.accounting.as_dict(), f"{where}: accounting differs"
        want = json.loads(msgspec.json.encode(market_views(market, depth)))
        assert len(document["books"]) == len(want), (
            f"{where}: {len(document['books'])} books, expected {len(want)}"
        )
        for got_book, want_book in zip(document["books"], want, strict=True):
            differing = {
                key: (got_book[key], want_book[key]) for key in want_book if got_book[key] != want_book[key]
            }
            assert not differing, (
                f"{where}: book {want_book['symbol']} publisher {want_book['publisher_id'] or 'consolidated'}"
                f" differs (command, replay): {differing}"
            )
        if document["point"] is not None:
            assert_line_matches(stream, market, document["point"]["event_index"], where)


def test_a_wrong_point_exits_with_status_2_and_the_reason(clx5: Path) -> None:
    for option, reason in [
        (["--at", "soon"], "not a number"),
        (["--at", "2024-05-08T13:30:00"], "not an ISO-8601 UTC time"),
        (["--at", "-3"], "negative"),
        (["--at-event", "-1"], "negative"),
        (["--at-event", "1.5"], "not a number"),
        (["--at", "0", "--at-event", "0"], "not allowed with"),
    ]:
        done = subprocess.run(
            [*COMMAND, "replay", str(clx5), *option],
            env={**os.environ, "OBM_CLI_BUILD": PYTHON},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stdout) == (2, ""), f"{option}: exit {done.returncode}, {done.stdout!r}"
        assert reason in done.stderr, f"{option}: the error does not say {reason!r}: {done.stderr}"


def test_reading_stops_once_the_point_is_passed(
    dbeq: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the file cut short near its end (several batches in): only a reader that gets there can tell
    cut = tmp_path / "cut.dbn.zst"
    cut.write_bytes(dbeq.read_bytes()[:-1000])
    assert run_in_process(cut, ["--at-event", "100"], capsys)["point"]["event_index"] == 100
    with pytest.raises(SystemExit, match=r"truncated|unreadable"):
        main(["replay", str(cut), "--at-event", "1000000", "--no-progress"])
