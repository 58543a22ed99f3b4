"""The receiver's counts over its process's life: every run it has replaced, summed, plus the current one.

A run's counts start from zero, so a counter exposed from the current run alone would go down at each new
run; these totals never do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from receiver.book.accounting import Accounting
from receiver.processing import Run


@dataclass
class RunTotals:
    """Record, event and output counts summed over runs."""

    records_received: int = 0
    accounting: Accounting = field(default_factory=Accounting)
    """Where the records of every run went, summed."""
    output_bytes: int = 0
    output_write_errors: int = 0
    """Runs whose output file could not be written."""

    def add(self, run: Run) -> None:
        """Add ``run``'s counts (a run that is over: its counts are final)."""
        self.records_received += run.records_received
        self.accounting.add(run.market.accounting)
        if (log := run.output.log) is not None:
            self.output_bytes += log.bytes_written
            self.output_write_errors += log.error is not None

    def with_run(self, run: Run | None) -> RunTotals:
        """These totals and ``run``'s counts so far, as a new total (these stay as they are)."""
        total = replace(self, accounting=self.accounting.copy())
        if run is not None:
            total.add(run)
        return total
