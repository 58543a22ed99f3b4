"""The partitions a receiver owns of one NATS run, merged into the one protocol stream its run checks and books.

Each partition is a protocol stream of its own (handshake, batches numbered within the partition, end). The
merge hands the run the handshake once, every batch renumbered into one contiguous local ``seq`` and
``first_index`` (instruments do not cross partitions, so interleaving partitions keeps every book's order), and
one end when every partition has ended, whose totals are the sum of the partitions'. A batch published again after
a lost acknowledgement may arrive after its successor: it is held until its predecessors have come, within
:data:`MAX_HELD_BATCHES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from obm_shared.framing import SequenceGap, SequenceRepeat, UnexpectedMessage
from obm_shared.messages import EndOfStream, Handshake, Heartbeat, Message, RecordBatch, StreamError

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
        self.held: dict[int, RecordBatch] = {}

    def batches_due(self, batch: RecordBatch) -> list[RecordBatch]:
        """``batch`` and any held ones that follow it, once it is the next; raises on a repeat or a gap."""
        if batch.seq < self.next_seq or batch.seq in self.held:
            raise SequenceRepeat(f"partition {self.number}: batch {batch.seq} repeated")
        if batch.seq > self.next_seq:
            if len(self.held) >= MAX_HELD_BATCHES:
                raise SequenceGap(f"partition {self.number}: batches from {self.next_seq} missing")
            self.held[batch.seq] = batch
            return []
        due = [batch]
        while (following := self.held.pop(self.next_seq + len(due), None)) is not None:
            due.append(following)
        for each in due:
            if each.first_index != self.records:
                raise SequenceGap(
                    f"partition {self.number}: batch {each.seq} starts at record {each.first_index}, "
                    f"expected {self.records}"
                )
            self.next_seq += 1
            self.records += each.count
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
        self.batches = 0
        self.records = 0
        self.ended = False

    def feed(self, partition: int, message: Message) -> list[Message]:
        """What ``message`` of ``partition`` lets the run have now, in order. Raises a ProtocolError when the
        partition's stream breaks the protocol."""
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
            return [self._local(batch) for batch in state.batches_due(message)]
        if isinstance(message, EndOfStream):
            state.end(message)
            if all(each.ended for each in self._partitions.values()):
                self.ended = True
                return [EndOfStream(records_sent=self.records, batches_sent=self.batches)]
            return []
        if isinstance(message, StreamError):  # the sender gave the whole run up
            self.ended = True
            return [StreamError(message.reason, self.records, message.stopped_by_user)]
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

    def _local(self, batch: RecordBatch) -> RecordBatch:
        local = RecordBatch(seq=self.batches, first_index=self.records, records=batch.records)
        self.batches += 1
        self.records += batch.count
        return local
