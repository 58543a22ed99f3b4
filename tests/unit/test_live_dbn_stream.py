"""A live session's DBN stream, split as it arrives in chunks of any size: the metadata once, every MBO record in
order, and the other records (symbol mappings, system messages, errors) in their places."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from databento_dbn import ErrorMsg, SType, SymbolMappingMsg, SystemCode, SystemMsg

from obm_shared.dbn_file import open_mbo_file
from obm_shared.records import MBO_DTYPE, MboArray
from receiver.live.dbn_stream import DbnStream, StreamDecodeError

pytestmark = pytest.mark.realdata


def file_stream(path: Path) -> tuple[bytes, MboArray]:
    """A DBN file's header and records as one byte stream (as a gateway sends them), and its records."""
    mbo_file = open_mbo_file(path)
    records = np.concatenate(list(mbo_file.batches(1 << 16)))
    return mbo_file.header() + records.tobytes(), records


def split(stream: DbnStream, data: bytes, seed: int) -> list[bytes | Any]:
    """Feed ``data`` in random chunks of 1 byte to 64 KiB; everything the stream handed back, in order."""
    rng = random.Random(seed)
    pieces: list[bytes | Any] = []
    position = 0
    while position < len(data):
        size = rng.choice((1, 7, 56, 57, 1000, 65536))
        pieces += stream.feed(data[position : position + size])
        position += size
    return pieces


@pytest.mark.parametrize("name", ["clx5", "esm4"])
def test_every_mbo_record_of_a_file_comes_out_in_order_whatever_the_chunks(
    name: str, request: pytest.FixtureRequest
) -> None:
    data, records = file_stream(request.getfixturevalue(name))
    stream = DbnStream()
    pieces = split(stream, data, seed=7)
    assert stream.header is not None and str(stream.header.metadata.dataset) == str(
        open_mbo_file(request.getfixturevalue(name)).dbn_metadata.dataset
    )
    runs = [piece for piece in pieces if isinstance(piece, bytes)]
    assert len(runs) == len(pieces), "an MBO file's stream holds only MBO records"
    joined = np.frombuffer(b"".join(runs), dtype=MBO_DTYPE)
    assert len(joined) == len(records), f"{len(joined)} records out of {len(records)}"
    assert joined.tobytes() == records.tobytes(), "the records differ from the file's"
    assert stream.buffered_bytes == 0


def test_other_records_come_in_their_places_between_mbo_runs(clx5: Path) -> None:
    data, records = file_stream(clx5)
    header_length = len(data) - len(records.tobytes())
    mapping = SymbolMappingMsg(1, 42, 5, SType.RAW_SYMBOL, "CLX5", SType.RAW_SYMBOL, "CLX5", 0, 10)  # type: ignore[arg-type]
    heartbeat = SystemMsg(6, "Heartbeat", SystemCode.HEARTBEAT)  # type: ignore[arg-type]
    error = ErrorMsg(7, "symbol XYZ not found")
    first, rest = records[:1000], records[1000:2000]
    data = (
        data[:header_length]
        + bytes(mapping)
        + first.tobytes()
        + bytes(heartbeat)
        + bytes(error)
        + rest.tobytes()
    )
    pieces = split(DbnStream(), data, seed=3)
    kinds = ["mbo" if isinstance(piece, bytes) else type(piece).__name__ for piece in pieces]
    collapsed = [kind for index, kind in enumerate(kinds) if index == 0 or kind != kinds[index - 1]]
    assert collapsed == ["SymbolMappingMsg", "mbo", "SystemMsg", "ErrorMsg", "mbo"], collapsed
    mbo = b"".join(piece for piece in pieces if isinstance(piece, bytes))
    assert mbo == records[:2000].tobytes()
    system = next(piece for piece in pieces if isinstance(piece, SystemMsg))
    assert system.is_heartbeat()
    assert next(piece for piece in pieces if isinstance(piece, ErrorMsg)).err == "symbol XYZ not found"
    assert next(piece for piece in pieces if isinstance(piece, SymbolMappingMsg)).stype_in_symbol == "CLX5"


def test_bytes_that_are_not_dbn_are_a_named_error() -> None:
    with pytest.raises(StreamDecodeError, match="prelude"):
        DbnStream().feed(b"HTTP/1.1 200 OK\r\n")
