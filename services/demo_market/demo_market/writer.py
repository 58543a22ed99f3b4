"""Writing the demo DBN file (zstd when the name ends in ``.zst``): its defaults, its metadata, its records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import zstandard
from databento_dbn import Metadata, Schema, SType
from databento_dbn.metadata import MappingInterval

from demo_market.instruments import DEMO_INSTRUMENTS
from demo_market.records import SESSION_START_NS, RecordBuilder, session_end_ns
from demo_market.simulator import Session
from obm_shared.dbn_file import ZSTD_SUFFIX
from obm_shared.records import MboArray

DEFAULT_RECORDS = 200_000
"""Records in the demo file unless asked otherwise (the sender's seed and ``orderbook demo-data``)."""
DEFAULT_SEED = 20240508
"""Random seed of the demo session unless asked otherwise."""
CHUNK_RECORDS = 65_536
"""Records built and written at a time."""

DATASET = "DEMO.MBO"
DBN_VERSION = 3


@dataclass
class _Interval:
    """A symbol's mapping over a date range, as ``databento_dbn.Metadata`` takes it."""

    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass
class _Mapping:
    """A raw symbol and its mapping intervals, as ``databento_dbn.Metadata`` takes them."""

    raw_symbol: str
    intervals: Sequence[MappingInterval]


def write_demo_file(path: Path | str, records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED) -> int:
    """Write ``records`` demo MBO records to ``path`` (zstd when it ends in ``.zst``); returns the count.

    Raises ValueError when ``records`` cannot hold the opening snapshot (a few hundred records).
    """
    path = Path(path)
    chunks = demo_records(records, seed)
    header = demo_metadata(records, seed).encode()
    with _open_output(path) as write:
        write(header)
        for chunk in chunks:
            write(chunk.tobytes())
    return records


def demo_records(records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED) -> Iterator[MboArray]:
    """The demo session as arrays of :data:`MBO_DTYPE`, ``CHUNK_RECORDS`` records each (the last shorter).

    Raises ValueError when ``records`` cannot hold the opening snapshot.
    """
    session = Session(seed)
    if session.tape.total > records:
        raise ValueError(f"{records} records cannot hold the opening snapshot of {session.tape.total}")
    builder = RecordBuilder(session.book_keys, seed)
    return map(builder.build, session.chunks(records, CHUNK_RECORDS))


def demo_metadata(records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED) -> Metadata:
    """DBN v3 metadata of the demo file: MBO, raw symbols mapped to instrument ids, ``end`` after the last
    record's ts_recv."""
    end = session_end_ns(records, seed, CHUNK_RECORDS)
    first_day = _utc_date(SESSION_START_NS)
    after_last_day = _utc_date(end) + dt.timedelta(days=1)
    return Metadata(
        dataset=DATASET,
        start=SESSION_START_NS,
        end=end,
        # Calling the enum gives mypy its type: databento_dbn's stubs declare the members as plain str.
        stype_in=SType(SType.RAW_SYMBOL),
        stype_out=SType(SType.INSTRUMENT_ID),
        schema=Schema(Schema.MBO),
        symbols=[instrument.symbol for instrument in DEMO_INSTRUMENTS],
        partial=[],
        not_found=[],
        mappings=[
            _Mapping(i.symbol, [_Interval(first_day, after_last_day, str(i.instrument_id))])
            for i in DEMO_INSTRUMENTS
        ],
        ts_out=False,
        version=DBN_VERSION,
    )


def _utc_date(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, dt.UTC).date()


@contextmanager
def _open_output(path: Path) -> Iterator[Callable[[bytes], object]]:
    """The write function of ``path``, through a zstd stream when its name ends in ``.zst``."""
    with path.open("wb") as raw:
        if not path.name.endswith(ZSTD_SUFFIX):
            yield raw.write
            return
        with zstandard.ZstdCompressor().stream_writer(raw, closefd=False) as compressed:
            yield compressed.write
