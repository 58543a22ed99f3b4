"""Bounds that two services must agree on: what one accepts, the other must not exceed."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Largest wire frame payload: a batch of about 300,000 records."""

MAX_REQUEST_BODY_BYTES: Final = 64 * 1024
"""Largest HTTP request body any service reads (413 beyond): every request body is a few small fields."""

MAX_FILE_NAME_CHARS: Final = 1024
"""Longest data file name a request may name (a path relative to the sender's data folder)."""

MIN_SPEED: Final = 0.001
"""Slowest replay: a thousandth of market time."""
MAX_SPEED: Final = 1_000_000.0
"""Fastest paced replay, as a multiple of market time (omit the speed for as fast as possible)."""

Speed = Annotated[
    float,
    Field(
        ge=MIN_SPEED,
        le=MAX_SPEED,
        allow_inf_nan=False,
        description=f"multiple of market time (1 = real time, {MIN_SPEED:g} to {MAX_SPEED:g});"
        " omit for as fast as possible",
    ),
]
"""A replay speed as a request carries it."""
