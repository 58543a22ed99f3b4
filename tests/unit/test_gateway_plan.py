"""How the sender's gateway turns subscription lines into the records it replays, and merges files by time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from databento_dbn import ErrorCode

from obm_shared.dbn_file import open_mbo_file
from obm_shared.live_protocol import SubscriptionRequest
from obm_shared.records import MboArray, MboRecord, records_to_array
from sender.catalog import FileInfo
from sender.gateway.plan import FileSelection, SymbolMapping, plan_replay
from sender.gateway.replay import merged_batches
from tests.conftest import DATA_DIR

ROOT = Path("/data")
GLBX = FileInfo(
    name="glbx.dbn",
    size_bytes=1,
    streamable=True,
    dataset="GLBX.MDP3",
    schema="mbo",
    symbols=["CLX5", "CLZ5"],
    instruments={11: "CLX5", 12: "CLZ5"},
    start_ns=100,
)
OTHER_DAY = FileInfo(
    name="glbx-later.dbn",
    size_bytes=1,
    streamable=True,
    dataset="GLBX.MDP3",
    schema="mbo",
    symbols=["CLX5"],
    instruments={21: "CLX5"},
    start_ns=1_000,
)
DBEQ_FILE = FileInfo(name="dbeq.dbn", size_bytes=1, streamable=True, dataset="DBEQ.BASIC", schema="mbo")
DBEQ = DATA_DIR / "DBEQ" / "dbeq-basic-20240403.mbo.dbn.zst"
NO_IDS = np.array([], dtype=np.uint32)
NO_STARTS = np.array([], dtype=np.uint64)


def subscription(symbols: str, start: int | None = None, **fields: object) -> SubscriptionRequest:
    options: dict[str, object] = {"schema": "mbo", "stype_in": "raw_symbol"} | fields
    return SubscriptionRequest(symbols=symbols, start=None if start is None else str(start), **options)  # type: ignore[arg-type]


def records(*rows: tuple[int, int]) -> MboArray:
    """(instrument_id, ts_recv) rows as MBO records."""
    return records_to_array(
        MboRecord(ts, ts, 0xA0, 1, instrument, "A", "B", 1, 1, 0, index, 0, 0, 0)
        for index, (instrument, ts) in enumerate(rows)
    )


def kept(selected: MboArray) -> list[tuple[int, int]]:
    return list(zip(selected["instrument_id"].tolist(), selected["ts_recv"].tolist(), strict=True))


def test_several_lines_keep_each_instrument_from_its_own_start() -> None:
    plan = plan_replay("GLBX.MDP3", [subscription("CLX5", 300), subscription("CLZ5", 200)], [GLBX], ROOT)
    (selection,) = plan.files
    batch = records((11, 100), (12, 150), (12, 200), (11, 250), (13, 300), (11, 300), (12, 400))
    assert kept(selection.select(batch)) == [(12, 200), (11, 300), (12, 400)]
    assert plan.start_ns == 200 and plan.errors == [] and plan.symbols == ["CLX5", "CLZ5"]


def test_a_symbol_is_replayed_from_every_file_that_holds_it_in_time_order() -> None:
    plan = plan_replay("GLBX.MDP3", [subscription("CLX5")], [OTHER_DAY, GLBX], ROOT)
    assert [selection.path for selection in plan.files] == [ROOT / "glbx.dbn", ROOT / "glbx-later.dbn"]
    assert plan.mappings == [
        SymbolMapping("CLX5", "raw_symbol", 11, "CLX5"),
        SymbolMapping("CLX5", "raw_symbol", 21, "CLX5"),
    ]
    # each file's own instrument id: the later day's 11 is not CLX5
    assert kept(plan.files[1].select(records((11, 1_000), (21, 1_001)))) == [(21, 1_001)]
    assert plan.start_ns == 100, "a start before the data (here none) is the data's start"


def test_all_symbols_keeps_every_record_from_the_start() -> None:
    plan = plan_replay("GLBX.MDP3", [subscription("ALL_SYMBOLS", 200)], [GLBX], ROOT)
    batch = records((11, 100), (99, 200), (12, 300))
    assert kept(plan.files[0].select(batch)) == [(99, 200), (12, 300)]
    assert {mapping.instrument_id for mapping in plan.mappings} == {11, 12}


def test_instrument_ids_resolve_as_symbols() -> None:
    plan = plan_replay("GLBX.MDP3", [subscription("12", stype_in="instrument_id")], [GLBX], ROOT)
    assert plan.mappings == [SymbolMapping("12", "instrument_id", 12, "CLZ5")]


@pytest.mark.parametrize(
    ("request_", "code", "reason"),
    [
        (subscription("CLX5,NOPE,ALSO"), ErrorCode.SYMBOL_RESOLUTION_FAILED, "NOPE, ALSO"),
        (subscription("CLX5", schema="trades"), ErrorCode.INVALID_SUBSCRIPTION, "only schema 'mbo'"),
        (
            subscription("CLX5", stype_in="parent"),
            ErrorCode.INVALID_SUBSCRIPTION,
            "raw_symbol, instrument_id",
        ),
        (
            SubscriptionRequest("mbo", "raw_symbol", "CLX5", start="soon"),
            ErrorCode.INVALID_SUBSCRIPTION,
            "soon",
        ),
    ],
    ids=["unknown-symbols", "schema", "stype", "start"],
)
def test_a_bad_line_is_an_error_record(request_: SubscriptionRequest, code: int, reason: str) -> None:
    plan = plan_replay("GLBX.MDP3", [request_], [GLBX, DBEQ_FILE], ROOT)
    (error,) = plan.errors
    assert error.code == code and reason in error.message


def test_a_snapshot_is_taken_at_its_start_its_instruments_read_from_the_beginning() -> None:
    plan = plan_replay("GLBX.MDP3", [subscription("CLX5", 300, snapshot=1)], [GLBX], ROOT)
    assert plan.errors == [] and plan.snapshot and plan.start_ns == 300
    assert kept(plan.files[0].select(records((11, 100), (12, 150), (11, 300)))) == [(11, 100), (11, 300)]


def test_a_snapshot_without_a_start_is_taken_at_the_sessions_start() -> None:
    """databento.Live refuses a start with snapshot=True: its client subscribes once with each."""
    lines = [subscription("CLX5", 300), subscription("CLX5", snapshot=1)]
    plan = plan_replay("GLBX.MDP3", lines, [GLBX], ROOT)
    assert plan.errors == [] and plan.snapshot and plan.start_ns == 300
    assert kept(plan.files[0].select(records((11, 100), (11, 300)))) == [(11, 100), (11, 300)]
    alone = plan_replay("GLBX.MDP3", [subscription("CLX5", snapshot=1)], [GLBX], ROOT)
    assert alone.snapshot and alone.start_ns == 100, "with no start, the books are the data's first"


def test_a_file_of_another_dataset_is_never_replayed() -> None:
    plan = plan_replay("DBEQ.BASIC", [subscription("CLX5")], [GLBX, DBEQ_FILE], ROOT)
    assert plan.files == [] and plan.errors[0].code == ErrorCode.SYMBOL_RESOLUTION_FAILED


@pytest.mark.skipif(not DBEQ.is_file(), reason=f"{DBEQ} not found")
def test_files_merge_by_ts_recv_each_keeping_its_order(tmp_path: Path) -> None:
    source = open_mbo_file(DBEQ)
    original = np.concatenate(list(source.batches(1 << 20)))
    parts = []
    for publisher in np.unique(original["publisher_id"]):
        path = tmp_path / f"publisher-{publisher}.dbn"
        path.write_bytes(source.header() + original[original["publisher_id"] == publisher].tobytes())
        parts.append(FileSelection(path, NO_IDS, NO_STARTS, every_instrument_from_ns=0))
    merged = np.concatenate(list(merged_batches(parts, 10_000)))
    assert len(merged) == len(original)
    assert (np.diff(merged["ts_recv"].astype(np.int64)) >= 0).all(), "merged records go back in time"
    for publisher in np.unique(original["publisher_id"]):
        mine = original["publisher_id"] == publisher
        assert merged[merged["publisher_id"] == publisher].tobytes() == original[mine].tobytes()
