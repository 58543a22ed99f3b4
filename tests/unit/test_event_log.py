"""The event log: every line written once, in order, and any page read back exactly, across the page index's
1,024-line marks, whatever the batch sizes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from receiver.event_log import INDEX_EVERY_LINES, EventLog

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
