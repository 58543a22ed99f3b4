"""A run end to end without the network: protocol messages in, its output file and its status out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from databento_dbn import Side

from obm_shared.messages import EndOfStream, RecordBatch, StreamError
from obm_shared.records import records_to_array
from receiver.core.config import Settings
from receiver.processing import Run
from receiver.run_output import OutputFailed
from receiver.run_status import run_status
from tests.unit.test_book_rules import add, cancel
from tests.unit.test_event_log import own_handshake
from tests.unit.test_wire import handshake


def stream(run: Run) -> None:
    records = records_to_array(
        [add(Side.BID, "10", 5, 1), add(Side.ASK, "11", 2, 2), cancel(Side.BID, "10", 5, 1)]
    )

    async def send() -> None:
        await run.handle(handshake())
        await run.handle(RecordBatch.from_array(0, 0, records))
        await run.handle(EndOfStream(records_sent=3, batches_sent=1))

    asyncio.run(send())


def test_a_run_writes_one_line_per_event_and_reports_its_counts(tmp_path: Path) -> None:
    run = Run(Settings(output_dir=tmp_path), clock=iter([1.0, 3.0]).__next__)
    stream(run)
    lines = [json.loads(line) for line in (tmp_path / f"{run.run_id}.jsonl").read_text().splitlines()]
    assert [(line["best_bid"], line["best_ask"]) for line in lines] == [
        ({"price": "10", "size": 5, "count": 1}, None),
        ({"price": "10", "size": 5, "count": 1}, {"price": "11", "size": 2, "count": 1}),
        (None, {"price": "11", "size": 2, "count": 1}),
    ]
    assert run_status(run) == {
        "run_id": run.run_id,
        "state": "done",
        "source": "unit.dbn",
        "records_expected": None,
        "records_received": 3,
        "records_sent_by_sender": 3,
        "accounting": run.market.accounting.as_dict(),
        "pending_records": 0,
        "accounted": True,
        "events": 3,
        "elapsed_seconds": 2.0,
        "records_per_second": 2,
        "output_lines": 3,
        "protocol_errors": {},
        "last_error": None,
    }


def test_a_run_without_output_reports_no_lines(tmp_path: Path) -> None:
    run = Run(Settings(output_dir=tmp_path, output_enabled=False, recording_enabled=False))
    stream(run)
    assert list(tmp_path.iterdir()) == []
    assert run_status(run)["output_lines"] is None


def records(first_order_id: int) -> RecordBatch:
    """A batch adding two orders, one event each."""
    array = records_to_array(
        [add(Side.BID, "10", 5, first_order_id), add(Side.ASK, "11", 2, first_order_id + 1)]
    )
    return RecordBatch.from_array(first_order_id // 2, first_order_id, array)


def test_the_file_is_named_complete_only_when_the_run_is_done(tmp_path: Path) -> None:
    lines_only = Settings(output_dir=tmp_path, recording_enabled=False)
    done, stopped = Run(lines_only), Run(lines_only)

    async def send() -> None:
        for run in (done, stopped):
            await run.handle(own_handshake())
            await run.handle(records(0))
            assert run.output.partial_path.exists(), "a file being written is not marked partial"
        await done.handle(EndOfStream(records_sent=2, batches_sent=1))
        await stopped.handle(StreamError(reason="stopped", records_sent=2, stopped_by_user=True))

    asyncio.run(send())
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"{done.run_id}.jsonl", f"{stopped.run_id}.incomplete.jsonl"]
    )
    assert [json.loads(line)["best_ask"] for line in stopped.output.read_page(1, 1)] == [
        {"price": "11", "size": 2, "count": 1}
    ], "the renamed file no longer reads back"


def test_a_write_error_fails_the_run_at_once_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not Path("/dev/full").is_char_device():
        pytest.skip("/dev/full (a device that is always full) is Linux only")
    run = Run(Settings(output_dir=tmp_path, recording_enabled=False))
    hello = own_handshake()
    partial = tmp_path / f"{hello.run_id}.jsonl.partial"
    partial.symlink_to("/dev/full")  # the run's file lands on a full disk

    async def send() -> int:
        """Sends batches until one is refused; returns the records sent."""
        await run.handle(hello)
        # the writer meets the full disk on its own thread, after one batch or a few
        for batch in range(1000):
            try:
                await run.handle(records(2 * batch))
            except OutputFailed:
                return 2 * (batch + 1)
            await asyncio.sleep(0.01)
        raise AssertionError("the full disk was never reported")

    sent = asyncio.run(send())
    status = run_status(run)
    assert status["state"] == "failed", "a run whose output failed reported as " + str(status["state"])
    assert status["last_error"] == f"output: writing {partial}: No space left on device"
    assert run.records_received == run.market.accounting.records == sent, "the batch in hand was dropped"
    assert [path.name for path in tmp_path.iterdir()] == [f"{hello.run_id}.incomplete.jsonl"]
    assert any(
        record.levelname == "ERROR" and record.name.startswith("receiver") for record in caplog.records
    )
