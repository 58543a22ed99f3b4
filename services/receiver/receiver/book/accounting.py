"""Where every record went: applied, ignored by rule, or skipped for a named reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class SkipReason(StrEnum):
    """Why a record could not be applied to the book. Skipped records change nothing."""

    CANCEL_UNKNOWN_ORDER = "cancel_unknown_order"
    CANCEL_EXCEEDS_SIZE = "cancel_exceeds_size"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    INVALID_SIDE = "invalid_side"
    INVALID_SIZE = "invalid_size"
    UNDEFINED_PRICE = "undefined_price"
    UNKNOWN_ACTION = "unknown_action"


@dataclass
class Accounting:
    """Running record counts. Invariant: ``records == applied + ignored + sum(skipped)``."""

    records: int = 0
    applied: int = 0
    ignored: int = 0
    """Trade, Fill and None records: they never change a book."""
    skipped: Counter[SkipReason] = field(default_factory=Counter)
    modify_unknown_as_add: int = 0
    """Modifies of unknown orders, applied as adds (included in ``applied``)."""
    events: int = 0
    """Records carrying F_LAST: the number of complete book events."""

    @property
    def balanced(self) -> bool:
        """True when every record is accounted for."""
        return self.records == self.applied + self.ignored + sum(self.skipped.values())

    def add(self, other: Accounting) -> None:
        """Add ``other``'s counts to these (summing runs keeps the invariant)."""
        self.records += other.records
        self.applied += other.applied
        self.ignored += other.ignored
        self.skipped.update(other.skipped)
        self.modify_unknown_as_add += other.modify_unknown_as_add
        self.events += other.events

    def copy(self) -> Accounting:
        """These counts, in an object of their own."""
        return Accounting(
            self.records,
            self.applied,
            self.ignored,
            Counter(self.skipped),
            self.modify_unknown_as_add,
            self.events,
        )

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready counts."""
        return {
            "records": self.records,
            "applied": self.applied,
            "ignored": self.ignored,
            "skipped": {str(reason): count for reason, count in sorted(self.skipped.items())},
            "modify_unknown_as_add": self.modify_unknown_as_add,
            "events": self.events,
        }
