"""Timing helpers: every figure is the median of several runs, with min and max."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured quantity over several runs."""

    name: str
    unit: str
    median: float
    minimum: float
    maximum: float
    runs: int
    goal: str = ""
    """What the figure should be, as a person reads it ("< 100"), when the project sets a goal for it."""

    def as_dict(self) -> dict[str, object]:
        shown: dict[str, object] = {
            "name": self.name,
            "unit": self.unit,
            "median": self.median,
            "min": self.minimum,
            "max": self.maximum,
            "runs": self.runs,
        }
        return shown | ({"goal": self.goal} if self.goal else {})


def figure(name: str, unit: str, values: list[float], goal: str = "") -> Figure:
    """Summarise the values of several runs."""
    return Figure(name, unit, statistics.median(values), min(values), max(values), len(values), goal)


def rate(name: str, records: int, runs: int, run: Callable[[], object]) -> Figure:
    """Records per second of ``run`` (which processes ``records`` records), over ``runs`` runs."""
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        values.append(records / (time.perf_counter() - started))
    return figure(name, "records/s", values)
