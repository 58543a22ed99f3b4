"""The receiver's compiled build (``make compiled-receiver``) and whether it still matches its sources.

The build records the digest of the sources it was made from; the CLI runs it only while they still match,
so an edited source never runs as its older compiled self. ``python -m orderbook_cli.compiled_receiver
digest`` prints the digest of the sources now, ``... stamp DIGEST`` records one in the build.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "compiled-receiver"
SOURCES = (REPO / "services" / "receiver" / "receiver", REPO / "shared" / "obm_shared")
"""The receiver, and the shared package whose Final constants mypyc compiles into it."""
STAMP_NAME = "sources.sha256"

PYTHON = "python"
AUTO = "auto"
BUILD_CHOICES = (AUTO, PYTHON)


@dataclass(frozen=True)
class BookBuild:
    """Which build of the book to run: ``path`` goes first on ``sys.path`` (None: the interpreted one)."""

    path: Path | None
    note: str | None = None
    """One line for the user when the compiled build was wanted but cannot be used."""


def sources_digest(roots: Sequence[Path]) -> str:
    """SHA-256 over every ``.py`` file under ``roots`` (name and content) and this interpreter's ABI tag."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            name = path.relative_to(root.parent).as_posix()
            digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def write_stamp(build: Path, digest: str) -> None:
    """Record in ``build`` the digest of the sources it was made from."""
    (build / STAMP_NAME).write_text(digest + "\n")


def choose_build(wanted: str, build: Path, sources: Sequence[Path]) -> BookBuild:
    """The compiled build when ``wanted`` is ``auto`` and ``build`` matches ``sources``, else the interpreted one."""
    if wanted not in BUILD_CHOICES:
        raise ValueError(f"unknown build {wanted!r}: expected one of {', '.join(BUILD_CHOICES)}")
    if wanted == PYTHON:
        return BookBuild(None)
    stamp = build / STAMP_NAME
    if not stamp.is_file():
        return BookBuild(
            None,
            "no compiled order book (`make compiled-receiver` builds it, given a C compiler):"
            " running the slower interpreted one",
        )
    if stamp.read_text().strip() != sources_digest(sources):
        return BookBuild(
            None,
            "the compiled order book is older than its sources (`make compiled-receiver` rebuilds it):"
            " running the slower interpreted one",
        )
    return BookBuild(build)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m orderbook_cli.compiled_receiver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("digest", help="print the digest of the sources now")
    stamp = commands.add_parser("stamp", help=f"record DIGEST in {BUILD}")
    stamp.add_argument("digest")
    args = parser.parse_args(argv)
    if args.command == "digest":
        print(sources_digest(SOURCES))
    else:
        write_stamp(BUILD, args.digest)


if __name__ == "__main__":
    main()
