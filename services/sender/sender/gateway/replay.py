"""A plan's records as one stream in ts_recv order: each file read a batch at a time, files merged by time.

Memory holds at most one batch per file, whatever the files' sizes. Records of one file keep the file's order;
only records from different files are interleaved (by ts_recv, the earlier file first on a tie).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from obm_shared.dbn_file import open_mbo_file
from obm_shared.records import MboArray
from sender.gateway.plan import FileSelection


def selected_batches(selection: FileSelection, records_per_batch: int) -> Iterator[MboArray]:
    """The wanted records of one file, in non-empty arrays of at most ``records_per_batch``."""
    for batch in open_mbo_file(selection.path).batches(records_per_batch):
        chosen = selection.select(batch)
        if len(chosen):
            yield chosen


def merged_batches(selections: Sequence[FileSelection], records_per_batch: int) -> Iterator[MboArray]:
    """The wanted records of every file, merged in ts_recv order."""
    if len(selections) == 1:
        yield from selected_batches(selections[0], records_per_batch)
        return
    sources = [selected_batches(selection, records_per_batch) for selection in selections]
    pending: list[MboArray | None] = [next(source, None) for source in sources]
    while any(batch is not None for batch in pending):
        live = [index for index, batch in enumerate(pending) if batch is not None]
        # every record up to the earliest last ts_recv among the pending batches can go: nothing later read is earlier
        horizon_owner = min(live, key=lambda index: int(_last_ts_recv(pending[index])))
        horizon = _last_ts_recv(pending[horizon_owner])
        pieces: list[MboArray] = []
        for index in live:
            batch = pending[index]
            assert batch is not None
            cut = (
                len(batch)
                if index == horizon_owner
                else int(np.searchsorted(batch["ts_recv"], horizon, "right"))
            )
            if cut:
                pieces.append(batch[:cut])
            pending[index] = batch[cut:] if cut < len(batch) else next(sources[index], None)
        yield _interleaved(pieces)


def _last_ts_recv(batch: MboArray | None) -> np.uint64:
    assert batch is not None
    return np.uint64(batch["ts_recv"][-1])


def _interleaved(pieces: list[MboArray]) -> MboArray:
    """The pieces (one per file, in file order) as one array in ts_recv order, each piece's order kept."""
    if len(pieces) == 1:
        return pieces[0]
    joined = np.concatenate(pieces)
    return joined[np.argsort(joined["ts_recv"], kind="stable")]
