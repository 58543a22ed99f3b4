"""The event log: every line written once, in order, and any page read back exactly, across the page index's
1,024-line marks, whatever the batch sizes."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from receiver.core.config import Settings
from receiver.event_log import INDEX_EVERY_LINES, EventLog
from receiver.processing import Run
from receiver.run_output import remove_old_runs
from tests.unit.test_wire import handshake

BATCH_SIZES = [1, INDEX_EVERY_LINES - 1, 700, 3 * INDEX_EVERY_LINES + 5, 2, INDEX_EVERY_LINES, 333]


def encode(lines: Sequence[int]) -> bytes:
    return b"".join(json.dumps({"event": line, "pad": "x" * (line % 37)}).encode() + b"\n" for line in lines)


def write_log(path: Path, queue_batches: int) -> tuple[EventLog, int]:
    log = EventLog(path, queue_batches, encode)
    total = 0

    async def feed() -> None:
        nonlocal total
        for size in BATCH_SIZES:
            await log.put(list(range(total, total + size)))
            total += size

    asyncio.run(feed())
    log.close()
    return log, total


@pytest.mark.parametrize("queue_batches", [1, 64])
def test_every_page_reads_back_exactly(tmp_path: Path, queue_batches: int) -> None:
    log, total = write_log(tmp_path / "run.jsonl", queue_batches)
    assert log.lines_written == total
    assert log.error is None
    assert (tmp_path / "run.jsonl").read_bytes() == encode(range(total))
    marks = [
        k * INDEX_EVERY_LINES + delta for k in range(total // INDEX_EVERY_LINES + 1) for delta in (-1, 0, 1)
    ]
    for start in sorted({0, 5, total - 1, *(mark for mark in marks if 0 <= mark < total)}):
        for limit in (1, 3, 2 * INDEX_EVERY_LINES):
            page = [json.loads(line)["event"] for line in log.read_page(start, limit)]
            assert page == list(range(start, min(start + limit, total))), f"page at {start}, limit {limit}"


def test_a_page_past_the_end_is_empty(tmp_path: Path) -> None:
    log, total = write_log(tmp_path / "run.jsonl", 8)
    assert log.read_page(total, 10) == []


def test_old_runs_beyond_the_kept_number_are_removed_oldest_first(tmp_path: Path) -> None:
    runs = [tmp_path / f"run{index}.jsonl" for index in range(4)]
    for age, path in enumerate(runs):
        path.write_text("{}\n")
        os.utime(path, (1_000 + age, 1_000 + age))
    (tmp_path / "notes.txt").write_text("not a run")
    assert remove_old_runs(tmp_path, keep=2) == runs[:2]
    assert sorted(tmp_path.iterdir()) == sorted([*runs[2:], tmp_path / "notes.txt"])
    assert remove_old_runs(tmp_path, keep=5) == []
    assert remove_old_runs(tmp_path / "absent", keep=1) == []


def test_a_new_run_keeps_the_configured_number_of_output_files(tmp_path: Path) -> None:
    settings = Settings(output_dir=tmp_path, output_keep_runs=2)
    runs = []
    for _ in range(3):
        run = Run(settings)
        asyncio.run(run.handle(handshake()))  # the stream arrives
        assert run.output.log is not None
        run.output.log.close()
        runs.append(run)
        time.sleep(0.01)  # distinct modification times
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"{run.run_id}.jsonl" for run in runs[1:]
    )


def test_a_run_that_gets_no_stream_writes_no_file_and_removes_none(tmp_path: Path) -> None:
    (tmp_path / "earlier.jsonl").write_text("{}\n")
    run = Run(Settings(output_dir=tmp_path, output_keep_runs=1))
    asyncio.run(run.fail("replaced by a new run before any stream arrived"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["earlier.jsonl"]
    assert run.output.lines_written == 0 and run.output.read_page(0, 10) == []
