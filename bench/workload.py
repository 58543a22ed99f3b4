"""Benchmark workloads, generated into a scratch folder (never committed).

- ``clx5``: the real CLX5 file repeated to the requested size. Each repeat's order ids and timestamps are
  shifted past the previous repeat's, and a Clear starts each repeat, so every repeat is a fresh session. Its
  metadata's end is after the last repeat, so a receiver sizes its history buckets to the whole span.
- ``demo``: the deterministic demo generator at the same size.
- ``dbeq``: the real DBEQ file (two instruments, three publishers each) repeated as CLX5 is.
- ``multi``: about 100 instruments: :data:`DEMO_SESSIONS` demo sessions of different seeds, each with its
  instrument ids and order ids shifted clear of the others', merged by ``ts_recv``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import numpy as np

from demo_market.instruments import DEMO_INSTRUMENTS
from demo_market.writer import DEFAULT_SEED, demo_metadata, demo_records, write_demo_file
from obm_shared.dbn import CLEAR, F_LAST, NO_SIDE, UNDEF_PRICE
from obm_shared.dbn_file import DBN_PRELUDE_BYTES, open_mbo_file
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE
from tests.conftest import CLX5, DATA_DIR, DBEQ

SCRATCH = Path(__file__).resolve().parent / "scratch"

REPEATED: Final = {"clx5": CLX5, "dbeq": DBEQ}
"""The workloads that repeat a real file (under ``OBM_DATA_DIR``) to the requested size."""
MULTI_INSTRUMENTS: Final = 100
"""Instruments of the ``multi`` workload, at least."""
DEMO_SESSIONS: Final = -(-MULTI_INSTRUMENTS // len(DEMO_INSTRUMENTS))
"""Demo sessions of the ``multi`` workload, each with the demo's instruments."""
INSTRUMENT_ID_STEP: Final = 100
"""How far each demo session's instrument ids are shifted past the previous session's."""

METADATA_END_OFFSET: Final = DBN_PRELUDE_BYTES + 16 + 2 + 8
"""Where the metadata's ``end`` (UNIX ns, little-endian u64) lies in every DBN version: after the prelude, the
dataset (16 bytes), the schema (u16) and ``start`` (u64)."""


def clear_records(records: np.ndarray) -> np.ndarray:
    """One Clear for each book (instrument and publisher) of ``records``, in the order the books first appear."""
    _, first = np.unique(records[["instrument_id", "publisher_id"]], return_index=True)
    return np.concatenate([clear_record(records[index]) for index in sorted(first)])


def clear_record(template: np.void) -> np.ndarray:
    """A Clear record for the book of ``template``'s instrument and publisher, ending an event."""
    clear = np.zeros(1, dtype=MBO_DTYPE)
    for name in ("length", "rtype", "publisher_id", "instrument_id", "ts_event", "ts_recv", "channel_id"):
        clear[name] = template[name]
    clear["action"].view(np.uint8)[:] = CLEAR
    clear["side"].view(np.uint8)[:] = NO_SIDE
    clear["price"] = UNDEF_PRICE
    clear["flags"] = F_LAST
    return clear


def repeated_file(source: Path, records: int, out: Path) -> int:
    """Write ``source`` repeated (with a Clear of each of its books before each repeat) until at least
    ``records`` records."""
    mbo_file = open_mbo_file(source)
    base = np.concatenate(list(mbo_file.batches(1 << 20)))
    order_id_step = int(base["order_id"].max()) + 1
    time_step = int(base["ts_recv"].max() - base["ts_recv"].min()) + 1
    books = len(clear_records(base))
    repeats = -(-records // (len(base) + books))
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    last_ts = int(max(base["ts_recv"].max(), base["ts_event"].max())) + (repeats - 1) * time_step
    header = bytearray(mbo_file.header())
    header[METADATA_END_OFFSET : METADATA_END_OFFSET + 8] = (last_ts + 1).to_bytes(8, "little")
    with out.open("wb") as target:
        target.write(header)
        for repeat in range(repeats):
            chunk = base.copy()
            chunk["order_id"] += np.uint64(repeat * order_id_step)
            for column in ("ts_event", "ts_recv"):
                chunk[column] += np.uint64(repeat * time_step)
            target.write(clear_records(chunk).tobytes())
            target.write(chunk.tobytes())
            written += len(chunk) + books
    return written


def ends_after_its_records(path: Path) -> bool:
    """Whether the metadata's end of an uncompressed DBN file is after its last record's timestamps."""
    end = open_mbo_file(path).dbn_metadata.end
    with path.open("rb") as stream:
        stream.seek(-MBO_RECORD_SIZE, os.SEEK_END)
        last = np.frombuffer(stream.read(MBO_RECORD_SIZE), dtype=MBO_DTYPE)[0]
    return end is not None and end > max(int(last["ts_recv"]), int(last["ts_event"]))


def multi_instrument_file(records: int, out: Path) -> int:
    """Write the ``multi`` workload: :data:`DEMO_SESSIONS` demo sessions of different seeds, about ``records``
    records in all, merged by ``ts_recv`` (stable, so each session's records keep their order)."""
    per_session = -(-records // DEMO_SESSIONS)
    sessions = []
    for index in range(DEMO_SESSIONS):
        session = np.concatenate(list(demo_records(per_session, DEFAULT_SEED + index)))
        session["instrument_id"] += np.uint32(index * INSTRUMENT_ID_STEP)
        session["order_id"] += np.uint64(index * (int(session["order_id"].max()) + 1))
        sessions.append(session)
    merged = np.concatenate(sessions)
    merged = merged[np.argsort(merged["ts_recv"], kind="stable")]
    last_ts = int(max(merged["ts_recv"].max(), merged["ts_event"].max()))
    header = bytearray(demo_metadata(per_session).encode())
    header[METADATA_END_OFFSET : METADATA_END_OFFSET + 8] = (last_ts + 1).to_bytes(8, "little")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as target:
        target.write(header)
        target.write(merged.tobytes())
    return len(merged)


def workload(name: str, records: int) -> Path:
    """The scratch file of workload ``name`` with at least ``records`` records (made once, then reused while its
    metadata spans its records: files made before it did are made again)."""
    path = SCRATCH / f"{name}-{records}.mbo.dbn"
    if not path.exists() or not ends_after_its_records(path):
        partial = path.with_name(".partial-" + path.name)
        if name in REPEATED:
            repeated_file(DATA_DIR / REPEATED[name], records, partial)
        elif name == "multi":
            multi_instrument_file(records, partial)
        else:
            write_demo_file(partial, records=records)
        partial.rename(path)
    return path
