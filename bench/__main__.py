"""``python -m bench``: measure, print a table, write the figures as JSON.

A run with the default arguments is the run of record: bench/results/latest.json. Every run, partial or not,
also writes a dated copy in bench/scratch/results (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bench.e2e import end_to_end, reads_under_load, sender_peak_rss
from bench.gateway import gateway_figures
from bench.measure import Figure, figure
from bench.nats import nats_figures
from bench.parts import measure_parts, wire_round_trip_rate
from bench.seek import seeks_and_recording_cost
from bench.workload import SCRATCH, workload
from receiver.book import hot_path_build

SENDER_MEMORY_FILE_RECORDS = (2_000_000, 19_200_000)
"""About 110 MB and 1 GB of CLX5 records: the sender's peak memory should not grow with file size."""

NATS_WORKLOADS = ("multi", "dbeq")
"""The workloads of the NATS section: several instruments, so partitions split them between receivers."""

SEEK_WORKLOAD = "clx5"
"""The workload whose recorded run is traveled: the goals are set on CLX5."""

LATEST = Path(__file__).resolve().parent / "results" / "latest.json"
"""Only the latest full run is committed: earlier ones are in its history, their figures in commit messages."""
RUNS = SCRATCH / "results"


def _table(rows: list[tuple[str, Figure]]) -> str:
    lines = ["| workload | measure | median | min | max | unit | goal |", "|---|---|--:|--:|--:|---|---|"]
    for workload_name, fig in rows:
        digits = 0 if fig.median >= 100 else 1
        values = (f"{value:,.{digits}f}" for value in (fig.median, fig.minimum, fig.maximum))
        lines.append(f"| {workload_name} | {fig.name} | {' | '.join(values)} | {fig.unit} | {fig.goal} |")
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU's model name (figures vary by CPU: every result names it)."""
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument(
        "--records", type=int, default=5_000_000, help="records per workload (default 5,000,000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument(
        "--json-records",
        type=int,
        default=1_000_000,
        help="records per replay with JSON output (default 1,000,000)",
    )
    parser.add_argument(
        "--json-runs",
        type=int,
        default=5,
        help="runs of the JSON-output replay (default 5: short runs, so more of them steady the median)",
    )
    parser.add_argument(
        "--workloads",
        default="clx5,demo",
        help="comma-separated: clx5, demo, dbeq (DBEQ repeated), multi (the demo with about 100 instruments)",
    )
    parser.add_argument(
        "--sections",
        default="parts,e2e,reads,seek,gateway,memory",
        help="comma-separated: parts, e2e, reads, seek (CLX5 only), gateway (CLX5 only), memory;"
        " not by default: nats (multi and dbeq only)",
    )
    args = parser.parse_args()

    sections = set(args.sections.split(","))
    rows: list[tuple[str, Figure]] = []
    summary: dict[str, dict[str, float]] = {}
    for name in args.workloads.split(","):
        path = workload(name, args.records)
        if "parts" in sections:
            parts = measure_parts(path, args.runs)
            rows += [(name, fig) for fig in parts]
            summary.setdefault(name, {})["wire_encode_plus_decode_records_per_s"] = wire_round_trip_rate(
                parts
            )
        if "e2e" in sections:
            for output_enabled in (False, True):
                # the JSON-on replay is far slower: a shorter workload of the same records measures its rate
                source = workload(name, args.json_records) if output_enabled else path
                fig, rss = end_to_end(source, output_enabled, args.json_runs if output_enabled else args.runs)
                rows.append((name, fig))
                summary.setdefault(name, {})[f"receiver_peak_rss_mb_output_{output_enabled}"] = rss
                rows.append((name, figure(f"receiver peak RSS ({fig.name})", "MB", [rss])))
        if "reads" in sections:
            rows += [(name, fig) for fig in reads_under_load(path, args.runs)]
        if "gateway" in sections and name == SEEK_WORKLOAD:
            client_workload = workload(name, args.json_records)
            rows += [(name, fig) for fig in gateway_figures(path, client_workload, args.runs)]
        if "seek" in sections and name == SEEK_WORKLOAD:
            seek_figures, seek_summary = seeks_and_recording_cost(path, args.runs)
            rows += [(name, fig) for fig in seek_figures]
            summary.setdefault(name, {}).update(seek_summary)
        if "nats" in sections and name in NATS_WORKLOADS:
            nats_rows, nats_summary = nats_figures(path, args.runs)
            rows += [(name, fig) for fig in nats_rows]
            summary.setdefault(name, {}).update(nats_summary)
        print(_table([row for row in rows if row[0] == name]), flush=True)
    if "memory" in sections:
        for records in SENDER_MEMORY_FILE_RECORDS:
            path = workload("clx5", records)
            size_mb = path.stat().st_size / 1e6
            peaks = [sender_peak_rss(path.parent, path.name) for _ in range(args.runs)]
            rows.append(("clx5", figure(f"sender peak RSS, {size_mb:,.0f} MB file", "MB", peaks)))

    now = time.gmtime()
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", now),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "receiver_hot_path": hot_path_build(),
        "records_per_workload": args.records,
        "figures": [{"workload": name, **fig.as_dict()} for name, fig in rows],
        "summary": summary,
    }
    text = json.dumps(report, indent=2) + "\n"
    RUNS.mkdir(parents=True, exist_ok=True)
    written = RUNS / f"{time.strftime('%Y%m%dT%H%M%SZ', now)}.json"
    written.write_text(text)
    if vars(args) == vars(parser.parse_args([])):
        LATEST.write_text(text)
        written = LATEST
    print(
        f"\nCPUs: {os.cpu_count()} x {cpu_model()} ({platform.machine()}, Python {platform.python_version()}),"
        f" receiver hot path: {hot_path_build()}"
    )
    print(_table(rows))
    for name, values in summary.items():
        if "wire_encode_plus_decode_records_per_s" in values:
            print(
                f"{name}: wire encode+decode {values['wire_encode_plus_decode_records_per_s']:,.0f} records/s"
            )
        costs = {key: value for key, value in values.items() if key.endswith("_cpu_us_per_record")}
        if costs:
            print(
                f"{name}: CPU µs per record of the file: "
                + ", ".join(
                    f"{key.removesuffix('_cpu_us_per_record')} {value:.2f}" for key, value in costs.items()
                )
            )
    print(f"results: {written}")


if __name__ == "__main__":
    main()
