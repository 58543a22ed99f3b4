"""The partitions a receiver owns of one NATS run, merged into the one protocol stream its run checks and books.

Each partition is a protocol stream of its own (handshake, batches numbered within the partition, end). The
merge hands the run the handshake once, the records of each of the sender's windows (one read of the file, see
:mod:`obm_shared.nats_stream`) once every owned partition has closed it, merged in market time
(:func:`in_market_time`) and numbered into one contiguous local ``seq`` and ``first_index``, and one end when
every partition has ended, whose totals are the sum of the partitions'. The run's stream is thus in ``ts_recv``
order, as a file's is, and each book's records keep their order (instruments do not cross partitions). A batch
published again after a lost acknowledgement may arrive after its successor: it is held until its predecessors
have come, within :data:`MAX_HELD_BATCHES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np

from obm_shared.dbn import F_LAST
from obm_shared.framing import SequenceGap, SequenceRepeat, UnexpectedMessage
from obm_shared.messages import EndOfStream, Handshake, Heartbeat, Message, RecordBatch, StreamError
from obm_shared.nats_stream import Window
from obm_shared.records import MBO_DTYPE, MboArray, joined, taken

MAX_HELD_BATCHES: Final = 256
"""Batches of a partition waiting for an earlier one: more than a sender keeps unacknowledged is a gap."""


class _Partition:
    """Where one partition's stream has got to."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.started = False
        self.ended = False
        self.next_seq = 0
        self.records = 0
        self.closed_window = -1
        """The last window whose last batch has come, in order."""
        self.held: dict[int, tuple[RecordBatch, Window]] = {}

    def batches_due(self, batch: RecordBatch, window: Window) -> list[tuple[RecordBatch, Window]]:
        """``batch`` and any held ones that follow it, once it is the next; raises on a repeat or a gap."""
        if batch.seq < self.next_seq or batch.seq in self.held:
            raise SequenceRepeat(f"partition {self.number}: batch {batch.seq} repeated")
        if batch.seq > self.next_seq:
            if len(self.held) >= MAX_HELD_BATCHES:
                raise SequenceGap(f"partition {self.number}: batches from {self.next_seq} missing")
            self.held[batch.seq] = (batch, window)
            return []
        due = [(batch, window)]
        while (following := self.held.pop(self.next_seq + len(due), None)) is not None:
            due.append(following)
        for each, its_window in due:
            if each.first_index != self.records:
                raise SequenceGap(
                    f"partition {self.number}: batch {each.seq} starts at record {each.first_index}, "
                    f"expected {self.records}"
                )
            if its_window.number != self.closed_window + 1:
                raise SequenceGap(
                    f"partition {self.number}: batch {each.seq} is of window {its_window.number}, "
                    f"expected {self.closed_window + 1}"
                )
            self.next_seq += 1
            self.records += each.count
            if its_window.last:
                self.closed_window = its_window.number
        return due

    def end(self, totals: EndOfStream) -> None:
        if self.held or totals.records_sent != self.records or totals.batches_sent != self.next_seq:
            raise SequenceGap(
                f"partition {self.number}: the sender published {totals.records_sent} records in "
                f"{totals.batches_sent} batches, received {self.records} in {self.next_seq}"
            )
        self.ended = True


class PartitionMerge:
    """Messages of the owned partitions in, in any interleaving; the run's one local stream out."""

    def __init__(self, run_id: str, partitions: Iterable[int]) -> None:
        self.run_id = run_id
        self._partitions = {number: _Partition(number) for number in partitions}
        self._handshake_given = False
        self._windows: dict[int, dict[int, list[RecordBatch]]] = {}
        """Window -> partition -> its batches, for the windows not yet handed over."""
        self._next_window = 0
        self.batches = 0
        self.records = 0
        self.ended = False

    def feed(self, partition: int, message: Message, window: Window | None = None) -> list[Message]:
        """What ``message`` of ``partition`` (a batch with its ``window``) lets the run have now, in order. Raises
        a ProtocolError when the partition's stream breaks the protocol."""
        if self.ended:
            raise UnexpectedMessage(
                f"partition {partition}: {type(message).__name__} after the end of the run"
            )
        state = self._partitions.get(partition)
        if state is None:
            raise UnexpectedMessage(f"a message of partition {partition}, which this receiver does not own")
        if isinstance(message, Handshake):
            return self._handshake(state, message)
        if not state.started:
            raise UnexpectedMessage(f"partition {partition}: {type(message).__name__} before its handshake")
        if state.ended:
            raise UnexpectedMessage(f"partition {partition}: {type(message).__name__} after its end")
        if isinstance(message, RecordBatch):
            if window is None:
                raise UnexpectedMessage(f"partition {partition}: batch {message.seq} without its window")
            for batch, its_window in state.batches_due(message, window):
                self._windows.setdefault(its_window.number, {}).setdefault(partition, []).append(batch)
            return self._closed_windows()
        if isinstance(message, EndOfStream):
            state.end(message)
            if all(each.ended for each in self._partitions.values()):
                if self._windows:
                    raise SequenceGap(f"window {min(self._windows)} never closed by every partition")
                self.ended = True
                return [EndOfStream(records_sent=self.records, batches_sent=self.batches)]
            return []
        if isinstance(message, StreamError):  # the sender gave the whole run up: what came is booked first
            self.ended = True
            received = [
                batch for number in sorted(self._windows) for batch in self._local(self._windows[number])
            ]
            return [*received, StreamError(message.reason, self.records, message.stopped_by_user)]
        if isinstance(message, Heartbeat):
            return []
        raise UnexpectedMessage(f"partition {partition}: {type(message).__name__}")

    def _handshake(self, state: _Partition, handshake: Handshake) -> list[Message]:
        if state.started:
            raise UnexpectedMessage(f"partition {state.number}: second handshake")
        if handshake.run_id != self.run_id:
            raise UnexpectedMessage(
                f"partition {state.number}: handshake of run {handshake.run_id}, announced {self.run_id}"
            )
        state.started = True
        if self._handshake_given:
            return []
        self._handshake_given = True
        return [handshake]

    def _closed_windows(self) -> list[Message]:
        """The windows every owned partition has closed, in order, each as one local batch."""
        closed: list[Message] = []
        while all(each.closed_window >= self._next_window for each in self._partitions.values()):
            closed.extend(self._local(self._windows.pop(self._next_window, {})))
            self._next_window += 1
        return closed

    def _local(self, window: dict[int, list[RecordBatch]]) -> list[RecordBatch]:
        """A window's batches (by partition) as the run's next batch, in market time; none when it is empty."""
        pieces = [b"".join(each.records for each in batches) for _, batches in sorted(window.items())]
        pieces = [piece for piece in pieces if piece]
        if not pieces:
            return []
        records = (
            pieces[0]  # nothing to merge: the bytes as they came
            if len(pieces) == 1
            else in_market_time([np.frombuffer(piece, dtype=MBO_DTYPE) for piece in pieces]).tobytes()
        )
        local = RecordBatch(seq=self.batches, first_index=self.records, records=records)
        self.batches += 1
        self.records += local.count
        return [local]


def in_market_time(pieces: list[MboArray]) -> MboArray:
    """The records of several partitions' pieces of one window (a piece per partition) as one array in market time.

    Each record is keyed by the ``ts_recv`` of the first event end at or after it in its piece, so an event's
    records stay together; the keys run through a running maximum so each piece keeps its own order exactly."""
    keys = np.concatenate([_event_end_times(piece) for piece in pieces])
    return taken(joined(pieces), np.argsort(keys, kind="stable"))


def _event_end_times(records: MboArray) -> np.ndarray:
    ts_recv = records["ts_recv"]
    ends = np.flatnonzero(records["flags"] & F_LAST)
    following = np.searchsorted(ends, np.arange(len(records)))  # the first event end at or after each record
    keys = ts_recv.copy()
    ended = following < len(ends)
    keys[ended] = ts_recv[ends[following[ended]]]
    return np.maximum.accumulate(keys)
