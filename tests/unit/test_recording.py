"""A run's recording, checkpoints and liquidity history, without the network: bounds, failures, retention."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import databento
import msgspec
import numpy as np
import pytest
from databento_dbn import Side

from obm_shared.dbn import F_LAST
from obm_shared.framing import MalformedFrame
from obm_shared.messages import EndOfStream, RecordBatch
from obm_shared.records import MBO_DTYPE, MboRecord, records_to_array
from receiver.book.market import Market
from receiver.core.config import Settings
from receiver.history.archive import Archive
from receiver.history.liquidity import LiquidityHistory
from receiver.history.points import AtEvent, AtTime
from receiver.history.recording import open_recording
from receiver.history.seek import books_at
from receiver.processing import Run
from receiver.run_output import OutputFailed, remove_old_runs
from tests.unit.test_book_rules import add, cancel
from tests.unit.test_event_log import own_handshake


def trade(price: int, size: int, side: str, ts_recv: int, instrument_id: int = 1) -> MboRecord:
    return MboRecord(ts_recv, ts_recv, 0xA0, 1, instrument_id, "T", side, price, size, 0, 0, F_LAST, 0, 0)


def long_run(events: int, step_ns: int, instruments: int = 3) -> np.ndarray:
    """One Add per event, a new order every time, over ``events * step_ns`` of market time."""
    records = np.zeros(events, dtype=MBO_DTYPE)
    records["length"], records["rtype"], records["publisher_id"] = 14, 0xA0, 1
    records["instrument_id"] = np.arange(events) % instruments + 1
    records["ts_recv"] = records["ts_event"] = (
        1_700_000_000_000_000_000 + np.arange(events, dtype=np.uint64) * step_ns
    )
    records["order_id"] = np.arange(events) + 1
    records["price"] = (100 + np.arange(events) % 50) * 1_000_000_000
    records["size"] = 1
    records["flags"] = F_LAST
    records["action"] = b"A"
    records["side"] = np.where(np.arange(events) % 2, b"B", b"A")
    return records


def test_a_long_run_keeps_at_most_the_bounded_number_of_buckets() -> None:
    history = LiquidityHistory(max_buckets=2000, levels=10)
    market = Market()
    from receiver.book.adapter import apply_records

    records = long_run(200_000, step_ns=37_000_000)  # two hours of market time, far more than 2,000 ms
    for start in range(0, len(records), 4096):
        for part in history.parts(records[start : start + 4096], market):
            apply_records(market, part)
    history.finish(market)
    assert 1000 < history.buckets() <= 2000, f"{history.buckets()} buckets"
    assert all(len(buckets) <= 2000 for buckets in history.state().instruments.values())
    assert history.bucket_ns * 2000 >= 200_000 * 37_000_000, "the buckets do not cover the run"
    view = history.view(1)
    assert len(view.buckets) == history.buckets()
    assert view.buckets[-1].end_ns >= int(records["ts_recv"][-1])
    ends = [bucket.end_ns for bucket in view.buckets]
    assert ends == sorted(ends) and all(
        b.start_ns == a.end_ns + 1 for a, b in zip(view.buckets, view.buckets[1:])
    )


def test_merged_buckets_keep_the_later_end_and_the_trades_of_both() -> None:
    from receiver.book.adapter import apply_records

    history = LiquidityHistory(max_buckets=2, levels=10)  # a third bucket merges the first two
    market = Market()
    ms = 1_000_000
    base = 1_700_000_000_000_000_000
    records = records_to_array(
        [
            add(Side.BID, "10", 5, 1, ts_recv=base),
            trade(10_000_000_000, 2, "A", base + 1),
            add(Side.BID, "11", 5, 2, ts_recv=base + ms),
            trade(10_000_000_000, 3, "A", base + ms + 1),
            add(Side.ASK, "12", 1, 3, ts_recv=base + 2 * ms),
        ]
    )
    for part in history.parts(records, market):
        apply_records(market, part)
    history.finish(market)
    view = history.view(1)
    assert [(b.start_ns, b.end_ns) for b in view.buckets] == [
        (base, base + 2 * ms - 1),
        (base + 2 * ms, base + 4 * ms - 1),
    ]
    first, second = view.buckets
    assert (first.best_bid, first.best_ask, first.trades) == (
        11_000_000_000,
        None,
        [(10_000_000_000, 5, "A")],
    )
    assert (second.best_bid, second.best_ask, second.trades) == (11_000_000_000, 12_000_000_000, [])
    assert first.bids == [(11_000_000_000, 5), (10_000_000_000, 5)]


def stream(run: Run, batches: list[np.ndarray], end: bool = True, dbn_header: bytes = b"") -> None:
    async def send() -> None:
        await run.handle(msgspec.structs.replace(own_handshake(), dbn_header=dbn_header))
        sent = 0
        for seq, records in enumerate(batches):
            await run.handle(RecordBatch.from_array(seq, sent, records))
            sent += len(records)
        if end:
            await run.handle(EndOfStream(records_sent=sent, batches_sent=len(batches)))

    asyncio.run(send())


def test_a_stream_without_a_file_is_recorded_under_a_header_made_from_its_metadata(tmp_path: Path) -> None:
    run = Run(Settings(output_dir=tmp_path, checkpoint_records=1000, apply_slice_records=500))
    records = long_run(5000, step_ns=1_000)
    stream(run, [records[:2500], records[2500:]])
    store = databento.DBNStore.from_file(tmp_path / f"{run.run_id}.dbn")
    assert store.to_ndarray().tobytes() == records.tobytes()
    recording = open_recording(tmp_path, run.run_id)
    assert [point.record_index for point in recording.checkpoints()] == [0, 1000, 2000, 3000, 4000, 5000]
    assert recording.progress().records == 5000 and recording.progress().events == 5000
    at = books_at(recording, AtEvent(2499))
    assert at.records == 2500 and at.market.accounting.records == 2500
    assert books_at(recording, AtTime(0)).records == 0


def test_a_header_that_is_not_dbn_is_a_protocol_error(tmp_path: Path) -> None:
    run = Run(Settings(output_dir=tmp_path))
    with pytest.raises(MalformedFrame, match="DBN"):
        stream(run, [], end=False, dbn_header=b"not a DBN header")


def test_a_recording_write_error_fails_the_run_at_once_with_the_reason(tmp_path: Path) -> None:
    if not Path("/dev/full").is_char_device():
        pytest.skip("/dev/full (a device that is always full) is Linux only")
    run = Run(Settings(output_dir=tmp_path, output_enabled=False))
    hello = own_handshake()
    (tmp_path / f"{hello.run_id}.dbn").symlink_to("/dev/full")
    records = long_run(100, step_ns=1_000)

    async def send() -> None:
        await run.handle(hello)
        for _ in range(1000):  # until the writer has met the full disk (the header is its first write)
            if run.recorder is not None and run.recorder.recording.error is not None:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(OutputFailed):
            await run.handle(RecordBatch.from_array(0, 0, records))

    asyncio.run(send())
    assert run.state == "failed"
    assert run.last_error == f"recording: writing {tmp_path / hello.run_id}.dbn: No space left on device"


def test_retention_counts_a_runs_recording_and_checkpoints_with_its_lines(tmp_path: Path) -> None:
    runs = []
    for age, run_id in enumerate(["older", "newer", "newest"]):
        files = [tmp_path / f"{run_id}.jsonl", tmp_path / f"{run_id}.dbn", tmp_path / f"{run_id}.checkpoints"]
        files[0].write_bytes(b"x" * 100)
        files[1].write_bytes(b"x" * 300)
        files[2].mkdir()
        (files[2] / "0.ckpt").write_bytes(b"x" * 200)
        for path in files:
            os.utime(path, (1_000 + age, 1_000 + age))
        runs.append(sorted(files))
    assert remove_old_runs(tmp_path, keep=10, max_bytes=1300) == runs[0], "600 bytes a run: two fit in 1300"
    assert sorted(tmp_path.iterdir()) == sorted(runs[1] + runs[2])
    assert remove_old_runs(tmp_path, keep=1) == runs[1]


def test_an_earlier_run_is_read_back_from_its_files_and_a_missing_one_is_unknown(tmp_path: Path) -> None:
    run = Run(Settings(output_dir=tmp_path, checkpoint_records=10))
    records = records_to_array(
        [add(Side.BID, "10", 5, order, ts_recv=1000 + order) for order in range(1, 40)]
        + [cancel(Side.BID, "10", 5, order, ts_recv=1100 + order) for order in range(1, 20)]
    )
    stream(run, [records])
    archive = Archive(tmp_path, history_levels=10)
    earlier = archive.earlier(run.run_id)
    assert earlier.state == "done" and earlier.recording.finished
    assert earlier.history is not None and earlier.instruments == [1]
    assert books_at(earlier.recording, AtTime(1110)).market.books[(1, 1)].bids[10_000_000_000].size == 5 * 29
    with pytest.raises(LookupError):
        archive.earlier("missing")
    with pytest.raises(LookupError):
        archive.earlier("../" + run.run_id)
