"""What a live run books from: a gateway speaking Databento's live protocol (Databento's own, or a sender's replay
gateway), the subscription, and the key that authenticates it (held in memory, never logged or returned).

The orchestrator takes it from the UI and passes it on; the receiver opens the session."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from obm_shared.limits import MAX_FILE_NAME_CHARS
from obm_shared.live_protocol import ProtocolError, start_ns

MAX_SYMBOLS = 2000
"""Symbols one live run may name; ALL_SYMBOLS (no list) takes every instrument of the dataset."""


class LiveSource(BaseModel):
    """A live gateway and the MBO subscription to book from it."""

    host: Annotated[
        str, Field(min_length=1, max_length=253, description="the gateway's host name or address")
    ]
    port: Annotated[int, Field(ge=1, le=65535)] = 13000
    dataset: Annotated[str, Field(min_length=1, max_length=64, examples=["GLBX.MDP3"])]
    schema_: Literal["mbo"] = Field("mbo", alias="schema", description="only MBO builds an L3 book")
    stype_in: Literal["raw_symbol", "instrument_id"] = "raw_symbol"
    symbols: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=MAX_FILE_NAME_CHARS)]] | None,
        Field(max_length=MAX_SYMBOLS, description="the symbols to book; omit (or null) for ALL_SYMBOLS"),
    ] = None
    start: Annotated[
        str | int | None,
        Field(description="replay from this time (UNIX ns or ISO-8601); omit to start from now (live)"),
    ] = None
    api_key: SecretStr = Field(
        description="the gateway's API key: used for its challenge, never sent or kept"
    )

    model_config = {"populate_by_name": True}

    @field_validator("start")
    @classmethod
    def _readable_start(cls, value: str | int | None) -> str | int | None:
        """A start the gateway would refuse is refused here, before any connection."""
        if value is None:
            return value
        if isinstance(value, int):
            if value < 0:
                raise ValueError("start is UNIX nanoseconds, from 0")
            return value
        try:
            start_ns(value)
        except ProtocolError as error:
            raise ValueError(str(error)) from None
        return value

    def described(self) -> dict[str, object]:
        """The source as status shows it: everything but the key."""
        return {
            "host": self.host,
            "port": self.port,
            "dataset": self.dataset,
            "schema": self.schema_,
            "stype_in": self.stype_in,
            "symbols": self.symbols if self.symbols is not None else "ALL_SYMBOLS",
            "start": self.start,
        }
