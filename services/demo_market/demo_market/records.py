"""The simulator's events as DBN MBO records: ids, channel and fixed-point price from the book, timestamps
from a clock that advances with every record."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from demo_market.instruments import DemoInstrument
from obm_shared.dbn import CLEAR, F_LAST, MBO_RTYPE, UNDEF_PRICE
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray

SESSION_START_NS = 1_715_175_000_000_000_000
"""2024-05-08 13:30:00 UTC: the metadata's start; the first record comes one gap later."""
GAP_MIN_NS = 1_000
GAP_MAX_NS = 5_000_000
"""Each record slot advances the clock by a log-uniform gap in [GAP_MIN_NS, GAP_MAX_NS)."""
LATENCY_MIN_NS = 20_000
LATENCY_JITTER_NS = 500
"""ts_recv - ts_event is LATENCY_MIN_NS plus up to this jitter; below GAP_MIN_NS, so ts_recv increases too."""
SEND_DELAY_MIN_NS = 2_000
SEND_DELAY_JITTER_NS = 6_000
"""The venue sends an event this long after ts_event; ts_in_delta is the rest of the latency."""


class Clock:
    """Time by record position: each record slot advances the clock by a log-uniform gap; an event takes the
    ts_event, latency and send delay of its first slot, so ts_event and ts_recv increase from event to event."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 1])
        self.now_ns = SESSION_START_NS

    def slots(self, count: int) -> tuple[npt.NDArray[np.int64], ...]:
        """ts_event, ts_recv and ts_in_delta of the next ``count`` slots."""
        uniform = self._rng.random((count, 3)).T  # three draws per slot, whatever the chunking
        log_gap = math.log(GAP_MIN_NS) + math.log(GAP_MAX_NS / GAP_MIN_NS) * uniform[0]
        ts_event = self.now_ns + np.cumsum(np.ceil(np.exp(log_gap)).astype(np.int64))
        self.now_ns = int(ts_event[-1])
        latency = LATENCY_MIN_NS + (uniform[1] * LATENCY_JITTER_NS).astype(np.int64)
        send_delay = SEND_DELAY_MIN_NS + (uniform[2] * SEND_DELAY_JITTER_NS).astype(np.int64)
        return ts_event, ts_event + latency, latency - send_delay


def chunk_sizes(records: int, chunk_records: int) -> Iterator[int]:
    """``records`` cut into chunks of ``chunk_records``, the last one shorter."""
    full, rest = divmod(records, chunk_records)
    yield from [chunk_records] * full
    if rest:
        yield rest


def session_end_ns(records: int, seed: int, chunk_records: int) -> int:
    """One past the latest possible ts_recv: the clock run over every record slot, plus the longest latency."""
    clock = Clock(seed)
    for size in chunk_sizes(records, chunk_records):
        clock.slots(size)
    return clock.now_ns + LATENCY_MIN_NS + LATENCY_JITTER_NS


class RecordBuilder:
    """Turns tape columns into DBN MBO records: ids, channel and fixed-point price from the book, timestamps
    from the clock, and a sequence per book that counts its events.

    ``books`` are (instrument, publisher id) in the order of the tape's book indexes."""

    def __init__(self, books: Sequence[tuple[DemoInstrument, int]], seed: int) -> None:
        specs = [spec for spec, _ in books]
        self.publisher_ids = np.array([publisher_id for _, publisher_id in books], dtype=np.int64)
        self.instrument_ids = np.array([spec.instrument_id for spec in specs], dtype=np.int64)
        self.channel_ids = np.array([spec.channel_id for spec in specs], dtype=np.int64)
        self.ticks = np.array([spec.tick for spec in specs], dtype=np.int64)
        self.sequences = np.zeros(len(books), dtype=np.int64)
        """Last sequence number written per book."""
        self.clock = Clock(seed)
        self.event_stamps = np.zeros(3, dtype=np.int64)
        """ts_event, ts_recv and ts_in_delta of the last event written (it may go on in the next chunk)."""
        self.at_event_start = True

    def build(self, columns: npt.NDArray[np.int64]) -> MboArray:
        """Records from the seven columns of :meth:`demo_market.simulator.Tape.take`."""
        book, action, side, ticks, size, order_id, flags = columns
        out = np.zeros(len(book), dtype=MBO_DTYPE)
        out["length"] = MBO_RECORD_SIZE // 4
        out["rtype"] = MBO_RTYPE
        out["publisher_id"] = self.publisher_ids[book]
        out["instrument_id"] = self.instrument_ids[book]
        out["channel_id"] = self.channel_ids[book]
        out["action"].view(np.uint8)[:] = action
        out["side"].view(np.uint8)[:] = side
        out["price"] = np.where(action == CLEAR, UNDEF_PRICE, ticks * self.ticks[book])
        out["size"] = size
        out["order_id"] = order_id
        out["flags"] = flags
        starts = np.empty(len(book), dtype=bool)
        starts[0] = self.at_event_start
        starts[1:] = (flags[:-1] & F_LAST) != 0
        self.at_event_start = bool(flags[-1] & F_LAST)
        self._stamp(out, starts)
        self._sequence(out, book, starts)
        return out

    def _stamp(self, out: MboArray, starts: npt.NDArray[np.bool_]) -> None:
        """Give every record the stamps of its event's first slot (the previous chunk's, for an event that
        began there)."""
        slots = np.stack(self.clock.slots(len(starts)))
        first = np.maximum.accumulate(np.where(starts, np.arange(1, len(starts) + 1), 0))
        stamps = np.concatenate([self.event_stamps[:, None], slots], axis=1)[:, first]
        out["ts_event"], out["ts_recv"], out["ts_in_delta"] = stamps
        self.event_stamps = stamps[:, -1]

    def _sequence(self, out: MboArray, book: npt.NDArray[np.int64], starts: npt.NDArray[np.bool_]) -> None:
        """Number each book's events 1, 2, ...; the records of one event share its number."""
        sequence = out["sequence"]
        for index in range(len(self.sequences)):
            mine = book == index
            counts = np.cumsum(starts & mine)
            sequence[mine] = self.sequences[index] + counts[mine]
            self.sequences[index] += counts[-1]
