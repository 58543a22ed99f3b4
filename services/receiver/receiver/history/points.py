"""Points in a stream's history, and how much of a record array the book at a point takes.

The book at time T (UNIX ns) is the state after every record up to and including the last record carrying
F_LAST whose ``ts_recv <= T``; the book at event K (0-based) is the state after the K-th F_LAST record. Either
way the prefix of the stream ends right after an F_LAST record, on the same boundaries as the per-event lines,
and never includes a partial event. Streams are in ``ts_recv`` order, so the prefix of a time ends before the
first F_LAST record past it: a reader stops there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeAlias

import msgspec
import numpy as np

from obm_shared.dbn import F_LAST
from obm_shared.iso_time import MAX_DECIMALS, iso_ns
from obm_shared.records import MboArray

MAX_TIME_NS: Final = 2**64 - 1
"""The latest time a DBN timestamp (u64 UNIX ns) can hold."""

_INTEGER = re.compile(r"[+-]?\d+")
_ISO_UTC = re.compile(
    r"(?P<seconds>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d{2}:\d{2})"
)
_DATE_START = re.compile(r"\d{4}-")


def parse_time(text: str) -> int:
    """UNIX nanoseconds from a non-negative integer, or from ISO-8601 UTC with up to nine decimals
    (``2025-09-24T21:47:19.747164115Z``, or ``+00:00`` for ``Z``). Raises ValueError with the reason.
    A time past the last a DBN timestamp holds (in 2554) is read as that last one."""
    text = text.strip()
    if _INTEGER.fullmatch(text):
        ns = int(text)
    elif _DATE_START.match(text):
        ns = _parse_iso(text)
    else:
        raise ValueError(
            f"{text!r} is not a number (UNIX nanoseconds, an integer) nor an ISO-8601 UTC time "
            "such as 2024-05-08T13:30:00.123456789Z"
        )
    if ns < 0:
        raise ValueError(f"{text!r} is negative: a time is UNIX nanoseconds, from 0")
    # a later time is after every record all the same, and fits the u64 it is compared with this way
    return min(ns, MAX_TIME_NS)


def _parse_iso(text: str) -> int:
    match = _ISO_UTC.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not an ISO-8601 UTC time: expected YYYY-MM-DDTHH:MM:SS[.fraction]Z or ...+00:00"
        )
    zone, fraction = match["zone"], match["fraction"] or ""
    if zone not in ("Z", "+00:00"):
        raise ValueError(f"{text!r} is not in UTC: end it with Z or +00:00, not {zone}")
    if len(fraction) > MAX_DECIMALS:
        raise ValueError(f"{text!r} has {len(fraction)} decimals: a time carries at most {MAX_DECIMALS} (ns)")
    try:
        return iso_ns(text)
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date and time ({error})") from None


@dataclass(frozen=True, slots=True)
class AtTime:
    """The book after every event whose F_LAST record has ``ts_recv <= ns``."""

    ns: int
    """UNIX nanoseconds, compared with ts_recv."""


@dataclass(frozen=True, slots=True)
class AtEvent:
    """The book after events 0..``index``, counted by F_LAST records."""

    index: int


Point: TypeAlias = AtTime | AtEvent


class PrefixCut(NamedTuple):
    """How much of one record array the book at a point takes."""

    length: int
    """Records of the array in the point's prefix: 0, or up to and including one of its F_LAST records."""
    beyond: bool
    """Every event of the array is in the prefix and the point may take later ones: read on."""


def prefix_cut(records: MboArray, point: Point, events_before: int) -> PrefixCut:
    """The part of ``records`` in the prefix of ``point``, given the count of F_LAST records before them.

    The array starts right after an event, and the stream before it is in the prefix. Records after its last
    F_LAST belong to an event the next array ends: give arrays cut at event boundaries (``EventAligner``)."""
    event_rows = np.flatnonzero(records["flags"] & F_LAST)
    if isinstance(point, AtTime):
        # the first event past the point, in ts_recv order
        past = np.flatnonzero(records["ts_recv"][event_rows] > np.uint64(point.ns))
        taken = int(past[0]) if len(past) else len(event_rows)
        beyond = not len(past)
    else:
        taken = min(max(point.index + 1 - events_before, 0), len(event_rows))
        beyond = point.index + 1 - events_before > len(event_rows)
    return PrefixCut(int(event_rows[taken - 1]) + 1 if taken else 0, beyond)


class EventPoint(msgspec.Struct, frozen=True):
    """The event a point's prefix ends on: its index and its F_LAST record's timestamps (UNIX ns)."""

    event_index: int
    ts_recv: int
    ts_event: int


def last_event(records: MboArray, length: int, events_before: int) -> EventPoint | None:
    """The event that ``records[:length]`` ends on (``length`` as a :class:`PrefixCut` gives it), or None
    when it holds no F_LAST record."""
    events = int(np.count_nonzero(records["flags"][:length] & F_LAST))
    if not events:
        return None
    record = records[length - 1]
    return EventPoint(events_before + events - 1, int(record["ts_recv"]), int(record["ts_event"]))
