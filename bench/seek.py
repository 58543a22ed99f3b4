"""Time travel: the books at random points of a recorded run, and what recording costs ingest.

A full replay with recording on, with the orchestrator (services as processes on loopback), then
``SEEK_POINTS`` reads of ``GET /api/order-book?at=T`` through it, T uniform over the run's ``ts_recv`` range
(seeded), one at a time, each timed from request to whole answer. Its ingest rate is set against the same
replay's in a stack of its own with ``RECEIVER_RECORDING_ENABLED=false``; the two take turns, so the machine's
other load falls on both alike.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Final

import httpx

from bench.e2e import ingest_rate, peak_rss_mb, pipeline, replay_once, start_clean
from bench.measure import Figure, figure

SEEK_POINTS: Final = 200
SEEK_SEED: Final = 15
"""The points are the same every run and every bench: only the service's speed varies."""
SEEK_TIMEOUT_SECONDS: Final = 60
SEEK_P95_GOAL_MS: Final = 100
RECORDING_RATE_GOAL_PERCENT: Final = 90
"""Ingest with recording and checkpoints, as a share of ingest without."""


def seek_times_ms(orchestrator_url: str) -> list[float]:
    """Milliseconds of each of ``SEEK_POINTS`` reads of the books at a random time of the current run."""
    with httpx.Client(base_url=orchestrator_url, timeout=SEEK_TIMEOUT_SECONDS) as client:
        timeline = client.get("/api/timeline").raise_for_status().json()
        chooser = random.Random(SEEK_SEED)
        points = [chooser.randint(timeline["start_ns"], timeline["end_ns"]) for _ in range(SEEK_POINTS)]
        times_ms = []
        for at in points:
            started = time.perf_counter()
            client.get("/api/order-book", params={"at": at}).raise_for_status()
            times_ms.append((time.perf_counter() - started) * 1000)
    return times_ms


def seeks_and_recording_cost(workload: Path, runs: int) -> tuple[list[Figure], dict[str, float]]:
    """Seek latency after a recorded replay of ``workload``, and its ingest rate with and without recording,
    over ``runs`` runs; returns the figures and their medians for the summary."""
    p50s, p95s, recorded_rates, unrecorded_rates = [], [], [], []
    with (
        pipeline(workload.parent, output_enabled=False, orchestrator=True) as (recorded, recorded_output),
        pipeline(workload.parent, output_enabled=False, recording_enabled=False) as (
            unrecorded,
            unrecorded_output,
        ),
    ):
        for _ in range(runs):
            start_clean(unrecorded_output)
            unrecorded_rates.append(ingest_rate(replay_once(unrecorded, workload.name)))
            start_clean(recorded_output)
            recorded_rates.append(ingest_rate(replay_once(recorded, workload.name)))
            quantiles = statistics.quantiles(seek_times_ms(recorded.urls["orchestrator"]), n=100)
            p50s.append(quantiles[49])
            p95s.append(quantiles[94])
        rss = peak_rss_mb(recorded.processes["receiver"].pid)
    shares = [100 * on / off for on, off in zip(recorded_rates, unrecorded_rates, strict=True)]
    seek_name = f"GET /api/order-book?at=T, {SEEK_POINTS} random T after the replay"
    figures = [
        figure(f"{seek_name}: p50", "ms", p50s),
        figure(f"{seek_name}: p95", "ms", p95s, goal=f"< {SEEK_P95_GOAL_MS}"),
        figure("end to end, recording on", "records/s", recorded_rates),
        figure("end to end, recording off", "records/s", unrecorded_rates),
        figure(
            "end to end with recording, share of without",
            "%",
            shares,
            goal=f">= {RECORDING_RATE_GOAL_PERCENT}",
        ),
        figure("receiver peak RSS (recording on, after the seeks)", "MB", [rss]),
    ]
    summary = {
        "seek_p50_ms": statistics.median(p50s),
        "seek_p95_ms": statistics.median(p95s),
        "end_to_end_recording_on_records_per_s": statistics.median(recorded_rates),
        "end_to_end_recording_off_records_per_s": statistics.median(unrecorded_rates),
        "recording_on_share_of_off_percent": statistics.median(shares),
    }
    return figures, summary
