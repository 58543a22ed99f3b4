"""The event log: every line written once, in order, and any page read back exactly, across the page index's
1,024-line marks, whatever the batch sizes."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
from pydantic import ValidationError

from obm_shared.ids import new_run_id
from obm_shared.messages import EndOfStream, Handshake
from receiver.core.config import Settings
from receiver.event_log import INDEX_EVERY_LINES, EventLog
from receiver.processing import Run
from receiver.run_output import remove_old_runs
from tests.unit.test_wire import handshake

BATCH_SIZES = [1, INDEX_EVERY_LINES - 1, 700, 3 * INDEX_EVERY_LINES + 5, 2, INDEX_EVERY_LINES, 333]


def encode(lines: Sequence[int]) -> bytes:
    return b"".join(json.dumps({"event": line, "pad": "x" * (line % 37)}).encode() + b"\n" for line in lines)


def own_handshake() -> Handshake:
    """A handshake naming a run id of its own, so each run writes its own file."""
    return msgspec.structs.replace(handshake(), run_id=new_run_id())


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
    settings = Settings(output_dir=tmp_path, output_keep_runs=2, recording_enabled=False)
    runs = []
    for _ in range(3):
        run = Run(settings)
        asyncio.run(run.handle(own_handshake()))  # the stream arrives
        assert run.output.log is not None
        asyncio.run(run.handle(EndOfStream(records_sent=0, batches_sent=0)))  # and ends
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


def full_disk() -> Path:
    """A file every write to fails with ENOSPC."""
    path = Path("/dev/full")
    if not path.is_char_device():
        pytest.skip("/dev/full (a device that is always full) is Linux only")
    return path


def test_a_write_error_is_kept_and_logged_and_never_blocks_ingest(caplog: pytest.LogCaptureFixture) -> None:
    log = EventLog(full_disk(), queue_batches=1, encode=encode)

    async def feed() -> None:  # many more batches than the queue holds: none may wait for good
        for start in range(0, 100 * INDEX_EVERY_LINES, INDEX_EVERY_LINES):
            await log.put(list(range(start, start + INDEX_EVERY_LINES)))

    asyncio.run(asyncio.wait_for(feed(), timeout=10))
    log.close()
    assert log.error == "writing /dev/full: No space left on device"
    assert log.lines_written == 0 and log.read_page(0, 10) == []
    assert [record.levelname for record in caplog.records if record.name == "receiver.event_log"] == ["ERROR"]


def make_run_files(folder: Path, names_and_sizes: list[tuple[str, int]]) -> list[Path]:
    """Files of the given sizes, each newer than the one before."""
    paths = []
    for age, (name, size) in enumerate(names_and_sizes):
        path = folder / name
        path.write_bytes(b"x" * size)
        os.utime(path, (1_000 + age, 1_000 + age))
        paths.append(path)
    return paths


def test_old_runs_beyond_the_kept_bytes_are_removed_oldest_first_complete_or_not(tmp_path: Path) -> None:
    runs = make_run_files(
        tmp_path,
        [("a.jsonl", 500), ("b.incomplete.jsonl", 300), ("c.jsonl.partial", 200), ("d.jsonl", 400)],
    )
    (tmp_path / "notes.txt").write_text("not a run")
    assert remove_old_runs(tmp_path, keep=10, max_bytes=800) == runs[:2], "600 bytes fit in 800, 900 do not"
    assert sorted(tmp_path.iterdir()) == sorted([*runs[2:], tmp_path / "notes.txt"])
    assert remove_old_runs(tmp_path, keep=1, max_bytes=1000) == [runs[2]]
    assert remove_old_runs(tmp_path, keep=0) == [runs[3]]


def test_retention_is_bounded_by_default() -> None:
    settings = Settings()
    assert (settings.output_keep_runs, settings.output_max_bytes) == (10, 10_000_000_000)
    with pytest.raises(ValidationError):
        Settings(output_keep_runs=0)  # no longer "keep them all"


def test_a_new_runs_file_removes_earlier_files_beyond_the_bytes_but_never_its_own(tmp_path: Path) -> None:
    earlier = make_run_files(tmp_path, [("old.incomplete.jsonl", 600), ("newer.jsonl", 600)])
    run = Run(Settings(output_dir=tmp_path, output_max_bytes=1000, recording_enabled=False))
    asyncio.run(run.handle(own_handshake()))
    assert sorted(tmp_path.iterdir()) == sorted([earlier[1], run.output.partial_path])
    asyncio.run(run.handle(EndOfStream(records_sent=0, batches_sent=0)))
    assert sorted(tmp_path.iterdir()) == sorted([earlier[1], run.output.path])
