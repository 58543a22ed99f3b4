"""What a gateway session replays: its subscription lines resolved against the catalog's files.

Kept free of sockets and asyncio: the session turns a :class:`ReplayPlan` into DBN bytes.

``snapshot=1`` (MBO only) begins the session with the books at its start, as Databento's live MBO snapshot does
(see :mod:`sender.gateway.snapshot`). Databento sends the books of "now" and its client refuses a start with a
snapshot; a replay's "now" is where it starts. So a snapshot line's start, when it has one (Raw API clients may
send both), or else the start of the session's other lines, is where the books are taken: a ``databento.Live``
client subscribes once with ``start=T`` and once with ``snapshot=True``. With no start at all (or 0) the books are
taken at the beginning of the data, where none exists yet, and nothing is sent for them: the stream is then what a
plain replay sends, and Databento's own files begin with their venue's snapshot when they have one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from databento_dbn import ErrorCode

from obm_shared.live_protocol import ALL_SYMBOLS, ProtocolError, SubscriptionRequest, start_ns
from obm_shared.records import MboArray
from sender.catalog import FileInfo

OFFERED_SCHEMA: Final = "mbo"
OFFERED_STYPES: Final = ("raw_symbol", "instrument_id")
MAX_NAMED_IN_ERROR: Final = 8
"""Symbols an error message lists before it only counts the rest."""


@dataclass(frozen=True)
class FileSelection:
    """The records of one file a session wants: per instrument, from its subscription's start on."""

    path: Path
    instrument_ids: npt.NDArray[np.uint32]
    """Sorted instrument ids subscribed by name or id."""
    starts_ns: npt.NDArray[np.uint64]
    """Start (ts_recv, UNIX ns) of each of ``instrument_ids``."""
    every_instrument_from_ns: int | None = None
    """Set by an ``ALL_SYMBOLS`` subscription: every record from this ts_recv on."""

    def select(self, records: MboArray) -> MboArray:
        """The wanted records of ``records``, in file order."""
        ts_recv = records["ts_recv"]
        wanted: npt.NDArray[np.bool_] | None = None
        if self.every_instrument_from_ns is not None:
            wanted = ts_recv >= self.every_instrument_from_ns
        if len(self.instrument_ids):
            ids = records["instrument_id"]
            at = np.minimum(np.searchsorted(self.instrument_ids, ids), len(self.instrument_ids) - 1)
            named = (self.instrument_ids[at] == ids) & (ts_recv >= self.starts_ns[at])
            wanted = named if wanted is None else wanted | named
        if wanted is None:
            return records[:0]
        return records if wanted.all() else records[wanted]


@dataclass(frozen=True)
class SymbolMapping:
    """One resolved symbol: what the client asked for, the instrument and its raw symbol."""

    requested: str
    stype_in: str
    instrument_id: int
    raw_symbol: str


@dataclass(frozen=True)
class ReplayError:
    """A subscription problem, sent as a DBN error record."""

    code: int
    """An ``ErrorCode``."""
    message: str


@dataclass
class ReplayPlan:
    """Files to replay in time order, the mappings to announce first, and the problems to report."""

    dataset: str
    start_ns: int
    stype_in: str
    symbols: list[str] = field(default_factory=list)
    files: list[FileSelection] = field(default_factory=list)
    mappings: list[SymbolMapping] = field(default_factory=list)
    errors: list[ReplayError] = field(default_factory=list)
    snapshot: bool = False
    """A line asked for snapshot=1: the books at ``start_ns`` go first, their instruments are read from the
    beginning of the data."""
    _announced: set[SymbolMapping] = field(default_factory=set, repr=False)

    def announce(self, mapping: SymbolMapping) -> None:
        """Add ``mapping`` unless an earlier line already did."""
        if mapping not in self._announced:
            self._announced.add(mapping)
            self.mappings.append(mapping)


_Instrument = tuple[str, int, str]
"""A file's name, an instrument id in it, and its raw symbol."""


@dataclass
class _Wanted:
    """Per file name: instrument id -> start, and the ALL_SYMBOLS start."""

    starts: dict[int, int] = field(default_factory=dict)
    every_from: int | None = None


def plan_replay(
    dataset: str, requests: Sequence[SubscriptionRequest], files: Sequence[FileInfo], root: Path
) -> ReplayPlan:
    """Resolve ``requests`` against the streamable MBO ``files`` of ``dataset`` (names relative to ``root``)."""
    dataset_files = sorted(
        (
            info
            for info in files
            if info.streamable and info.dataset == dataset and info.schema == OFFERED_SCHEMA
        ),
        key=lambda info: (info.start_ns or 0, info.name),
    )
    plan = ReplayPlan(
        dataset=dataset, start_ns=0, stype_in=requests[0].stype_in if requests else "raw_symbol"
    )
    wanted: dict[str, _Wanted] = {info.name: _Wanted() for info in dataset_files}
    starts: list[int] = []
    indexes: dict[str, dict[str, list[_Instrument]]] = {}
    for request in requests:
        problem = _refusal(request)
        if problem is not None:
            plan.errors.append(ReplayError(ErrorCode.INVALID_SUBSCRIPTION, problem))
            continue
        try:
            given_ns = start_ns(request.start)
        except ProtocolError as error:
            plan.errors.append(ReplayError(ErrorCode.INVALID_SUBSCRIPTION, str(error)))
            continue
        if not request.snapshot or given_ns is not None:
            starts.append(given_ns or 0)
        plan.snapshot = plan.snapshot or bool(request.snapshot)
        # a snapshot's books are made from every record before the start
        from_ns = 0 if request.snapshot else given_ns or 0
        if request.stype_in not in indexes:
            indexes[request.stype_in] = _symbol_index(dataset_files, request.stype_in)
        _resolve(plan, request, from_ns, indexes[request.stype_in], wanted)
    chosen = [
        info for info in dataset_files if wanted[info.name].starts or wanted[info.name].every_from is not None
    ]
    plan.files = [_selection(root / info.name, wanted[info.name]) for info in chosen]
    # a start before the data (0 included) reads as the data's own start, as a replay of it would
    data_start_ns = min((info.start_ns or 0 for info in chosen), default=0)
    plan.start_ns = max(min(starts, default=0), data_start_ns)
    return plan


def _refusal(request: SubscriptionRequest) -> str | None:
    if request.schema != OFFERED_SCHEMA:
        return (
            f"schema {request.schema!r} is not offered: this gateway replays MBO files, only schema"
            f" {OFFERED_SCHEMA!r} is available"
        )
    if request.stype_in not in OFFERED_STYPES:
        return f"stype_in {request.stype_in!r} is not offered: use one of {', '.join(OFFERED_STYPES)}"
    return None


def _resolve(
    plan: ReplayPlan,
    request: SubscriptionRequest,
    from_ns: int,
    index: Mapping[str, list[_Instrument]],
    wanted: dict[str, _Wanted],
) -> None:
    """Add the request's instruments to ``wanted`` and its mappings (or its unknown symbols) to ``plan``."""
    symbols = request.symbol_list()
    if symbols == [ALL_SYMBOLS]:
        for entry in wanted.values():
            entry.every_from = from_ns if entry.every_from is None else min(entry.every_from, from_ns)
        plan.symbols.append(ALL_SYMBOLS)
        for instruments in index.values():
            for _, instrument_id, raw_symbol in instruments:
                plan.announce(SymbolMapping(raw_symbol, "raw_symbol", instrument_id, raw_symbol))
        return
    unknown: list[str] = []
    for symbol in symbols:
        if symbol not in index:
            unknown.append(symbol)
            continue
        plan.symbols.append(symbol)
        for file_name, instrument_id, raw_symbol in index[symbol]:
            starts = wanted[file_name].starts
            starts[instrument_id] = min(starts.get(instrument_id, from_ns), from_ns)
            plan.announce(SymbolMapping(symbol, request.stype_in, instrument_id, raw_symbol))
    if unknown:
        named = ", ".join(unknown[:MAX_NAMED_IN_ERROR])
        more = f" and {len(unknown) - MAX_NAMED_IN_ERROR} more" if len(unknown) > MAX_NAMED_IN_ERROR else ""
        plan.errors.append(
            ReplayError(
                ErrorCode.SYMBOL_RESOLUTION_FAILED,
                f"Failed to resolve {request.stype_in} symbol(s) in {plan.dataset}: {named}{more}"
                " (not in any of this sender's files)",
            )
        )


def _symbol_index(files: Sequence[FileInfo], stype_in: str) -> dict[str, list[_Instrument]]:
    """Symbol as the client names it (raw symbol or instrument id) -> every file's instrument it names."""
    index: dict[str, list[_Instrument]] = {}
    for info in files:
        for instrument_id, raw_symbol in sorted(info.instruments.items()):
            key = str(instrument_id) if stype_in == "instrument_id" else raw_symbol
            index.setdefault(key, []).append((info.name, instrument_id, raw_symbol))
    return index


def _selection(path: Path, wanted: _Wanted) -> FileSelection:
    ids = sorted(wanted.starts)
    return FileSelection(
        path=path,
        instrument_ids=np.array(ids, dtype=np.uint32),
        starts_ns=np.array([wanted.starts[instrument_id] for instrument_id in ids], dtype=np.uint64),
        every_instrument_from_ns=wanted.every_from,
    )
