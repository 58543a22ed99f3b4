"""DBN's codes for MBO records, as ``Final`` literals: one definition for every service, tool and test.

Actions and sides are the ASCII codes of DBN's one-character fields (``ord("A")``), the form the record
arrays give them in; ``*_CODE`` are the same as the one-byte strings a NumPy ``S1`` column compares with.
Number literals rather than ``databento_dbn`` lookups or ``ord("A")`` so that the receiver's compiled hot path
inlines them (mypyc inlines another module's ``Final`` only when mypy can fold its value, and a call it cannot);
``tests/unit/test_dbn_codes.py`` checks each one against ``databento_dbn``.
"""

from __future__ import annotations

from typing import Final

ADD: Final = 65  # "A"
CANCEL: Final = 67  # "C"
MODIFY: Final = 77  # "M"
CLEAR: Final = 82  # "R"
TRADE: Final = 84  # "T"
FILL: Final = 70  # "F"
NO_ACTION: Final = 78  # "N"

CLEAR_CODE: Final = b"R"
TRADE_CODE: Final = b"T"

BID: Final = 66  # "B"
ASK: Final = 65  # "A"
NO_SIDE: Final = 78  # "N"

F_LAST: Final = 1 << 7
"""Last record of an event for one instrument: the book is consistent after it."""
F_TOB: Final = 1 << 6
"""Top-of-book record: an Add replaces the whole side."""
F_SNAPSHOT: Final = 1 << 5
"""Part of a book snapshot (its ts_event is when the order was first entered)."""
F_MBP: Final = 1 << 4
F_BAD_TS_RECV: Final = 1 << 3
F_MAYBE_BAD_BOOK: Final = 1 << 2
"""The venue's book may be incomplete until the next Clear."""

UNDEF_PRICE: Final = 2**63 - 1
"""DBN's undefined price."""
PRICE_SCALE: Final = 1_000_000_000
"""Fixed-point prices are integers in units of 1e-9."""

MBO_RTYPE: Final = 0xA0
"""DBN rtype of an MBO record."""
