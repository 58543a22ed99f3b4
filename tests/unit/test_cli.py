"""The offline CLI: `orderbook replay FILE [--events OUT.jsonl]` on a real file, and `orderbook demo-data OUT`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo_market.writer import DEFAULT_SEED, write_demo_file
from orderbook_cli.main import _parser, main
from sender.core.config import Settings


@pytest.mark.realdata
def test_replay_prints_the_final_books_and_writes_a_line_per_event(
    clx5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    main(["replay", str(clx5), "--depth", "5", "--events", str(events), "--no-progress"])
    document = json.loads(capsys.readouterr().out)

    accounting = document["accounting"]
    assert accounting["records"] == 38_212
    [book] = [book for book in document["books"] if book["publisher_id"] is None]
    assert (book["orders"], book["bid_levels"], book["ask_levels"], book["crossed"]) == (147, 61, 52, True)

    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(lines) == accounting["events"]
    assert [line["sequence"] for line in lines] == sorted(line["sequence"] for line in lines)
    last = lines[-1]
    assert (rows(last["bids"]), rows(last["asks"])) == (rows(book["bids"]), rows(book["asks"]))
    assert last["orders"] == book["orders"] and last["crossed"]
    assert rows([last["best_bid"], last["best_ask"]]) == rows([book["bids"][0], book["asks"][0]])


def rows(levels: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(level["price"], level["size"], level["count"]) for level in levels]


def test_demo_data_writes_the_generators_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, expected = tmp_path / "demo.mbo.dbn.zst", tmp_path / "expected.mbo.dbn.zst"
    main(["demo-data", str(out), "--records", "1000", "--seed", "7"])
    write_demo_file(expected, records=1000, seed=7)
    assert out.read_bytes() == expected.read_bytes()
    assert f"wrote 1000 records to {out}" in capsys.readouterr().err


def test_demo_data_by_default_writes_the_file_the_sender_seeds() -> None:
    args = _parser().parse_args(["demo-data", "demo.mbo.dbn"])
    assert (args.records, args.seed) == (Settings.model_fields["demo_records"].default, DEFAULT_SEED)
