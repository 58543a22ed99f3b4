"""Benchmark workloads, generated into a scratch folder (never committed).

- ``clx5``: the real CLX5 file repeated to the requested size. Each repeat's order ids and timestamps are
  shifted past the previous repeat's, and a Clear starts each repeat, so every repeat is a fresh session.
- ``demo``: the deterministic demo generator at the same size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from demo_market.writer import write_demo_file
from obm_shared.dbn import CLEAR, F_LAST, NO_SIDE, UNDEF_PRICE
from obm_shared.dbn_file import open_mbo_file
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE

SCRATCH = Path(__file__).resolve().parent / "scratch"


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
    """Write ``source`` repeated (with a Clear before each repeat) until at least ``records`` records."""
    mbo_file = open_mbo_file(source)
    base = np.concatenate(list(mbo_file.batches(1 << 20)))
    header_bytes = source.stat().st_size - len(base) * MBO_RECORD_SIZE
    order_id_step = int(base["order_id"].max()) + 1
    time_step = int(base["ts_recv"].max() - base["ts_recv"].min()) + 1
    repeats = -(-records // (len(base) + 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with source.open("rb") as original, out.open("wb") as target:
        target.write(original.read(header_bytes))
        for repeat in range(repeats):
            chunk = base.copy()
            chunk["order_id"] += np.uint64(repeat * order_id_step)
            for column in ("ts_event", "ts_recv"):
                chunk[column] += np.uint64(repeat * time_step)
            target.write(clear_record(chunk[0]).tobytes())
            target.write(chunk.tobytes())
            written += len(chunk) + 1
    return written


def workload(name: str, records: int, clx5: Path) -> Path:
    """The scratch file of workload ``name`` with at least ``records`` records (made once, then reused)."""
    path = SCRATCH / f"{name}-{records}.mbo.dbn"
    if not path.exists():
        partial = path.with_name(".partial-" + path.name)
        if name == "clx5":
            repeated_file(clx5, records, partial)
        else:
            write_demo_file(partial, records=records)
        partial.rename(path)
    return path
