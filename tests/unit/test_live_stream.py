"""A live session's stream booked into a run: the gateway's metadata opens the run, its MBO records are applied
in batches, its symbol mappings name the instruments, its error record fails the run in the gateway's words, and
the replay-completed system record ends the run done, with the books and accounting of a replay of the file."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from databento_dbn import ErrorMsg, SType, SymbolMappingMsg, SystemCode, SystemMsg
from pydantic import SecretStr

from obm_shared.dbn_file import open_mbo_file
from obm_shared.live_source import LiveSource
from receiver.book.views import market_views
from receiver.core.config import Settings
from receiver.live.errors import LiveSessionError
from receiver.live.session import LiveStream
from receiver.processing import Run, RunState
from tests.unit.test_real_books import market_of

pytestmark = pytest.mark.realdata

SOURCE = LiveSource(
    host="127.0.0.1", port=13000, dataset="GLBX.MDP3", schema="mbo", api_key=SecretStr("db-" + "a" * 29)
)


def session_bytes(path: Path) -> tuple[bytes, int, int]:
    """A gateway's session for ``path``: metadata, a symbol mapping per instrument, the records, then the
    replay-completed note; with the file's record count and one instrument id."""
    mbo_file = open_mbo_file(path)
    records = np.concatenate(list(mbo_file.batches(1 << 16)))
    instrument = int(records["instrument_id"][0])
    mapping = SymbolMappingMsg(1, instrument, 0, SType.RAW_SYMBOL, "CLX5", SType.RAW_SYMBOL, "CLX5", 0, 1)  # type: ignore[arg-type]
    heartbeat = SystemMsg(0, "Heartbeat", SystemCode.HEARTBEAT)  # type: ignore[arg-type]
    completed = SystemMsg(0, "Finished replay", SystemCode.REPLAY_COMPLETED)  # type: ignore[arg-type]
    half = len(records) // 2
    data = (
        mbo_file.header()
        + bytes(mapping)
        + records[:half].tobytes()
        + bytes(heartbeat)
        + records[half:].tobytes()
        + bytes(completed)
    )
    return data, len(records), instrument


def new_run(tmp_path: Path) -> Run:
    return Run(Settings(output_dir=tmp_path, output_enabled=False, recording_enabled=False))


async def book(run: Run, data: bytes, chunk: int = 100_003) -> LiveStream:
    stream = LiveStream(SOURCE, run.run_id, run.handle, run.market.symbols)
    for start in range(0, len(data), chunk):
        await stream.feed(data[start : start + chunk])
    return stream


async def test_a_live_session_books_the_same_as_a_replay_of_the_file(clx5: Path, tmp_path: Path) -> None:
    data, records, instrument = session_bytes(clx5)
    run = new_run(tmp_path)
    stream = await book(run, data)
    assert stream.ended, "the replay-completed record should end the stream"
    assert run.state == RunState.DONE, f"run {run.state}: {run.last_error}"
    assert run.records_received == records
    accounting = run.market.accounting
    expected = market_of(clx5)
    assert accounting.as_dict() == expected.accounting.as_dict()
    assert accounting.balanced
    assert msgspec.json.encode(market_views(run.market, 20)) == msgspec.json.encode(
        market_views(expected, 20)
    )
    assert run.market.symbols[instrument] == "CLX5", "the symbol mapping should name the instrument"
    assert run.metadata is not None and run.metadata.source == "live GLBX.MDP3 from 127.0.0.1:13000"


async def test_an_error_record_fails_the_session_in_the_gateways_words(clx5: Path, tmp_path: Path) -> None:
    header = open_mbo_file(clx5).header()
    run = new_run(tmp_path)
    with pytest.raises(LiveSessionError, match="the gateway says: Unknown symbol: XYZ"):
        await book(run, header + bytes(ErrorMsg(0, "Unknown symbol: XYZ")))
