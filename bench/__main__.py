"""``python -m bench``: measure, print a table, write bench/results/<time>.json and latest.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from tests.conftest import CLX5, DATA_DIR

from bench.measure import Figure
from bench.parts import measure_parts, wire_round_trip_rate
from bench.workload import workload

RESULTS = Path(__file__).resolve().parent / "results"


def _table(rows: list[tuple[str, Figure]]) -> str:
    lines = [f"{'workload':<10} {'measure':<34} {'median':>14} {'min':>14} {'max':>14}  unit"]
    for workload_name, fig in rows:
        lines.append(
            f"{workload_name:<10} {fig.name:<34} {fig.median:>14,.0f} {fig.minimum:>14,.0f} {fig.maximum:>14,.0f}  {fig.unit}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--records", type=int, default=2_000_000, help="records per workload (default 2,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--workloads", default="clx5,demo", help="comma-separated: clx5, demo")
    args = parser.parse_args()

    rows: list[tuple[str, Figure]] = []
    summary: dict[str, dict[str, float]] = {}
    for name in args.workloads.split(","):
        path = workload(name, args.records, DATA_DIR / CLX5)
        parts = measure_parts(path, args.runs)
        rows += [(name, fig) for fig in parts]
        summary[name] = {"wire_encode_plus_decode_records_per_s": wire_round_trip_rate(parts)}
        print(_table([(name, fig) for fig in parts]), flush=True)

    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "records_per_workload": args.records,
        "figures": [{"workload": name, **fig.as_dict()} for name, fig in rows],
        "summary": summary,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for target in (RESULTS / f"{stamp}.json", RESULTS / "latest.json"):
        target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nCPUs: {os.cpu_count()}  ({platform.machine()}, Python {platform.python_version()})")
    print(_table(rows))
    for name, values in summary.items():
        print(f"{name}: wire encode+decode {values['wire_encode_plus_decode_records_per_s']:,.0f} records/s")
    print(f"results: {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
