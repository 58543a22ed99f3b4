"""The receiver's counts over its process's life: every run it has replaced, summed, plus the current one.

A run's counts start from zero, so a counter exposed from the current run alone would go down at each new
run; these totals never do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from receiver.processing import Run


@dataclass
class RunTotals:
    """Record, event and output counts summed over runs."""

    records_received: int = 0
    applied: int = 0
    ignored: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """Records skipped, by :class:`~receiver.book.accounting.SkipReason`."""
    events: int = 0
    output_bytes: int = 0
    output_write_errors: int = 0
    """Runs whose output file could not be written."""

    def add(self, run: Run) -> None:
        """Add ``run``'s counts (a run that is over: its counts are final)."""
        accounting = run.market.accounting
        self.records_received += run.records_received
        self.applied += accounting.applied
        self.ignored += accounting.ignored
        self.skipped.update({str(reason): count for reason, count in accounting.skipped.items()})
        self.events += accounting.events
        if (log := run.output.log) is not None:
            self.output_bytes += log.bytes_written
            self.output_write_errors += log.error is not None

    def with_run(self, run: Run | None) -> RunTotals:
        """These totals and ``run``'s counts so far, as a new total (these stay as they are)."""
        total = replace(self, skipped=Counter(self.skipped))
        if run is not None:
            total.add(run)
        return total
