"""Several receivers' answers as one receiver's: books by instrument, statuses summed, trades by time.

Each receiver books whole instruments, so a merge never combines two answers for one book: it orders them.
Books and levels pass through as the receivers encoded them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

_answers = msgspec.json.Decoder(dict[str, msgspec.Raw])
_books = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_instruments = msgspec.json.Decoder(list[dict[str, Any]])
_run = msgspec.json.Decoder(str | None)
_accounting = msgspec.json.Decoder(dict[str, Any] | None)
_book_id = msgspec.json.Decoder(int)
_encoder = msgspec.json.Encoder()

SUMMED_RUN_FIELDS = (
    "records_received",
    "records_sent_by_sender",
    "pending_records",
    "events",
    "records_per_second",
    "output_lines",
)
"""Run counts of the receivers that add up to the system's (a receiver's rate is its own share's)."""


def merged_state(states: list[str]) -> str:
    """One state for several receivers' runs: theirs when they agree, failed when one failed, else receiving
    (some are still at it)."""
    if len(set(states)) == 1:
        return states[0]
    return "failed" if "failed" in states else "receiving"


def summed_accounting(accountings: list[dict[str, Any]]) -> dict[str, Any]:
    """The receivers' accountings added up field by field (``skipped`` by reason)."""
    total: dict[str, Any] = {}
    for accounting in accountings:
        for key, value in accounting.items():
            if isinstance(value, dict):
                total[key] = dict(sorted((Counter(total.get(key, {})) + Counter(value)).items()))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            else:
                total[key] = value if key not in total else total[key] and value
    return total


def merge_books(answers: list[bytes]) -> bytes:
    """Several receivers' ``GET /order-book`` answers as one: each instrument's books (consolidated, then per
    publisher, as its receiver lists them) and the instruments list, by instrument id; the run of the first;
    the points' accountings summed. Every other field is the first answer's."""
    fields = [_answers.decode(answer) for answer in answers]
    books: dict[int, list[dict[str, msgspec.Raw]]] = {}
    instruments: list[dict[str, Any]] = []
    for answer in fields:
        for book in _books.decode(answer["books"]):
            books.setdefault(_book_id.decode(book["instrument_id"]), []).append(book)
        instruments.extend(_instruments.decode(answer.get("instruments", b"[]")))
    merged = dict(fields[0])
    states = [_run.decode(answer["state"]) for answer in fields if "state" in answer]
    if states:
        merged["state"] = msgspec.Raw(_encoder.encode(merged_state([state or "idle" for state in states])))
    accountings = [_accounting.decode(answer["accounting"]) for answer in fields if "accounting" in answer]
    if accountings:
        summed = summed_accounting([accounting for accounting in accountings if accounting is not None])
        merged["accounting"] = msgspec.Raw(_encoder.encode(summed))
    merged["instruments"] = msgspec.Raw(
        _encoder.encode(sorted(instruments, key=lambda instrument: int(instrument["instrument_id"])))
    )
    merged["books"] = msgspec.Raw(_encoder.encode([book for iid in sorted(books) for book in books[iid]]))
    return _encoder.encode(merged)


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several receivers' runs of one replay (``run`` of ``GET /status``) as one: counts and accountings summed,
    so ``records_received`` is the sender's ``records_sent`` and equals applied + ignored + skipped."""
    merged = dict(runs[0])
    merged["state"] = merged_state([run["state"] for run in runs])
    for field in SUMMED_RUN_FIELDS:
        values = [run.get(field) for run in runs]
        merged[field] = None if None in values else sum(values)
    merged["accounting"] = summed_accounting([run["accounting"] for run in runs])
    merged["accounted"] = all(run.get("accounted") for run in runs)
    merged["elapsed_seconds"] = max(run.get("elapsed_seconds") or 0 for run in runs)
    merged["protocol_errors"] = dict(
        sum((Counter(run.get("protocol_errors") or {}) for run in runs), Counter())
    )
    merged["last_error"] = next((run["last_error"] for run in runs if run.get("last_error")), None)
    return merged


def receiver_summary(probe: dict[str, Any]) -> dict[str, Any]:
    """What the system view shows of one receiver: where, its state, its share and how fast it books it."""
    status = probe.get("status") or {}
    run = status.get("run") or {}
    return {
        "url": probe["url"],
        "reachable": probe["reachable"],
        "error": probe["error"],
        "state": status.get("state"),
        "partitions": status.get("partitions"),
        "partition_lag": status.get("partition_lag", {}),
        "instruments": status.get("instruments", []),
        "run_id": run.get("run_id"),
        "records": run.get("accounting", {}).get("records"),
        "records_received": run.get("records_received"),
        "records_per_second": run.get("records_per_second"),
    }


def merge_probes(probes: list[dict[str, Any]]) -> dict[str, Any]:
    """Several receivers' probes as the one ``receiver`` entry of the services' status: reachable when all are,
    the slowest latency, a status whose run sums theirs, and ``receivers`` listing each one."""
    statuses = [probe["status"] for probe in probes if probe["status"] is not None]
    status: dict[str, Any] | None = None
    if statuses:
        runs = [status["run"] for status in statuses if status.get("run")]
        status = {
            **statuses[0],
            "state": merged_state([status["state"] for status in statuses]),
            "instruments": sorted(iid for status in statuses for iid in status.get("instruments", [])),
            "partitions": sorted(p for status in statuses for p in status.get("partitions", [])),
            "partition_lag": {
                partition: lag
                for status in statuses
                for partition, lag in (status.get("partition_lag") or {}).items()
            },
            "run": merge_runs(runs) if runs else None,
            "receivers": [receiver_summary(probe) for probe in probes],
        }
    errors = [probe["error"] for probe in probes if probe["error"]]
    return {
        "name": "receiver",
        "url": ", ".join(probe["url"] for probe in probes),
        "reachable": all(probe["reachable"] for probe in probes),
        "latency_ms": max(probe["latency_ms"] for probe in probes),
        "status": status,
        "error": "; ".join(errors) or None,
    }


def merge_trades(tapes: list[list[dict[str, Any]]], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` trades of several receivers' tapes, newest last (by event time; ties keep the
    receivers' order)."""
    trades = sorted((trade for tape in tapes for trade in tape), key=lambda trade: trade["ts_event"])
    return trades[-limit:]
