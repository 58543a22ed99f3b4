"""The ``orderbook`` command: the CLI on the receiver's compiled book where a fresh build of it exists.

``OBM_CLI_BUILD=python`` runs the interpreted book (the editable sources) instead; ``auto`` (the default)
takes the compiled build and says on stderr, in one line, when it cannot.
"""

from __future__ import annotations

import os
import sys

from orderbook_cli.compiled_receiver import AUTO, BUILD, SOURCES, choose_build

BUILD_VARIABLE = "OBM_CLI_BUILD"


def main() -> None:
    """Entry point of the ``orderbook`` command."""
    try:
        book = choose_build(os.environ.get(BUILD_VARIABLE, AUTO), BUILD, SOURCES)
    except ValueError as error:
        raise SystemExit(f"orderbook: {BUILD_VARIABLE}: {error}") from None
    if book.note is not None:
        print(f"orderbook: {book.note}", file=sys.stderr)
    if book.path is not None:
        sys.path.insert(0, str(book.path))
    # Imported only now: it imports the book, from the build just put first on the path.
    from orderbook_cli.main import main as run

    run()
