"""Command line: ``orderbook replay FILE`` and ``orderbook demo-data OUT``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from demo_market.writer import DEFAULT_RECORDS, DEFAULT_SEED, write_demo_file
from obm_shared.dbn_file import DbnFileError
from orderbook_cli.replay import replay_document, replay_file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderbook", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="rebuild the books of a DBN MBO file and print them as JSON")
    replay.add_argument("file", type=Path, help=".dbn or .dbn.zst MBO file")
    replay.add_argument("--depth", type=int, default=10, help="levels per side to print (default 10)")
    replay.add_argument("--events", type=Path, metavar="OUT.jsonl", help="also write one JSON line per event")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    demo = commands.add_parser("demo-data", help="write the deterministic demo MBO file")
    demo.add_argument("out", type=Path, help="output path (.dbn, or .dbn.zst for zstd)")
    demo.add_argument(
        "--records", type=int, default=DEFAULT_RECORDS, help="number of records (default %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    return parser


def _replay(args: argparse.Namespace) -> None:
    if args.depth < 1:
        raise SystemExit("orderbook: --depth must be at least 1")
    progress = not args.no_progress and sys.stderr.isatty()
    if args.events is None:
        market = replay_file(args.file, args.depth, progress=progress)
    else:
        with args.events.open("wb") as events_out:
            market = replay_file(args.file, args.depth, events_out, progress=progress)
    sys.stdout.buffer.write(
        msgspec.json.format(msgspec.json.encode(replay_document(market, args.depth))) + b"\n"
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``orderbook`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            _replay(args)
        else:
            written = write_demo_file(args.out, records=args.records, seed=args.seed)
            print(f"wrote {written} records to {args.out}", file=sys.stderr)
    except (DbnFileError, ValueError) as error:
        raise SystemExit(f"orderbook: {error}") from None
