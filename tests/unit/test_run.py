"""A run end to end without the network: protocol messages in, its output file and its status out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from databento_dbn import Side

from obm_shared.messages import EndOfStream, RecordBatch
from obm_shared.records import records_to_array
from receiver.core.config import Settings
from receiver.processing import Run
from receiver.run_status import run_status
from tests.unit.test_book_rules import add, cancel
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
    run = Run(Settings(output_dir=tmp_path, output_enabled=False))
    stream(run)
    assert list(tmp_path.iterdir()) == []
    assert run_status(run)["output_lines"] is None
