"""Command line: ``orderbook replay FILE [--at T | --at-event K]`` and ``orderbook demo-data OUT``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO

import msgspec

from demo_market.writer import DEFAULT_RECORDS, DEFAULT_SEED, write_demo_file
from obm_shared.dbn_file import DbnFileError
from orderbook_cli.replay import point_document, replay_document, replay_file, replay_until
from receiver.history.points import AtEvent, AtTime, Point, parse_time


def _time(text: str) -> AtTime:
    """--at's value, or the reason it is not a time (argparse shows it and exits with status 2)."""
    try:
        return AtTime(parse_time(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _event(text: str) -> AtEvent:
    """--at-event's value, or the reason it is not an event index."""
    try:
        index = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give an event index, from 0") from None
    if index < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative: events are counted from 0")
    return AtEvent(index)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderbook", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="rebuild the books of a DBN MBO file and print them as JSON")
    replay.add_argument("file", type=Path, help=".dbn or .dbn.zst MBO file")
    replay.add_argument("--depth", type=int, default=10, help="levels per side to print (default 10)")
    replay.add_argument("--events", type=Path, metavar="OUT.jsonl", help="also write one JSON line per event")
    point = replay.add_mutually_exclusive_group()
    point.add_argument(
        "--at",
        type=_time,
        dest="point",
        metavar="T",
        help="the books at time T: after every event whose last record has ts_recv <= T (UNIX ns, or"
        " ISO-8601 UTC such as 2024-05-08T13:30:00.123456789Z); --events then writes the lines up to T",
    )
    point.add_argument(
        "--at-event",
        type=_event,
        dest="point",
        metavar="K",
        help="the books after event K (0-based, counted by F_LAST records: line K of --events)",
    )
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
        document = _document(args.file, args.point, args.depth, None, progress)
    else:
        with args.events.open("wb") as events_out:
            document = _document(args.file, args.point, args.depth, events_out, progress)
    sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(document)) + b"\n")


def _document(
    path: Path, point: Point | None, depth: int, events_out: IO[bytes] | None, progress: bool
) -> dict[str, object]:
    """The final books, or the books at ``point`` and the event they answer for."""
    if point is None:
        return replay_document(replay_file(path, depth, events_out, progress=progress), depth)
    market, reached = replay_until(path, point, depth, events_out, progress=progress)
    return point_document(market, reached, depth)


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
