"""The non-MBO bytes of a gateway session, in the current DBN version: metadata, symbol mappings, system and
error records. MBO records go out as the files hold them (their 56-byte layout is the same in every version)."""

from __future__ import annotations

from typing import Final

from databento_dbn import (
    DBN_VERSION,
    ErrorCode,
    ErrorMsg,
    Metadata,
    Schema,
    SType,
    SymbolMappingMsg,
    SystemCode,
    SystemMsg,
)

from sender.gateway.plan import ReplayPlan

UNDEF_TIMESTAMP: Final = 2**64 - 1
MAX_MESSAGE_CHARS: Final = 300
"""A DBN v2+ system or error record holds a message of at most 302 bytes, NUL included."""
REPLAY_COMPLETED_MESSAGE: Final = "Finished mbo replay"


def metadata_bytes(plan: ReplayPlan) -> bytes:
    """The session's DBN metadata: dataset, MBO, symbols in as subscribed, instrument ids out."""
    metadata = Metadata(
        dataset=plan.dataset,
        start=plan.start_ns,
        stype_in=SType(plan.stype_in),
        stype_out=SType("instrument_id"),
        schema=Schema("mbo"),
        symbols=plan.symbols,
        version=DBN_VERSION,
        ts_out=False,
    )
    return bytes(metadata.encode())


def mapping_bytes(plan: ReplayPlan) -> bytes:
    """One SymbolMappingMsg per resolved symbol, as a live session announces them before its data."""
    return b"".join(
        bytes(
            SymbolMappingMsg(
                publisher_id=0,
                instrument_id=mapping.instrument_id,
                ts_event=plan.start_ns,
                stype_in=SType(mapping.stype_in),
                stype_in_symbol=mapping.requested,
                stype_out=SType("raw_symbol"),
                stype_out_symbol=mapping.raw_symbol,
                start_ts=plan.start_ns,
                end_ts=UNDEF_TIMESTAMP,
            )
        )
        for mapping in plan.mappings
    )


def error_bytes(ts_event_ns: int, code: int, message: str) -> bytes:
    """A DBN error record (what Databento's client raises at the end of the session); ``code`` an ErrorCode."""
    return bytes(ErrorMsg(ts_event_ns, message[:MAX_MESSAGE_CHARS], code=ErrorCode(code)))


def heartbeat_bytes(ts_event_ns: int) -> bytes:
    return bytes(SystemMsg(ts_event_ns, "Heartbeat", code=SystemCode(SystemCode.HEARTBEAT)))


def replay_completed_bytes(ts_event_ns: int) -> bytes:
    code = SystemCode(SystemCode.REPLAY_COMPLETED)
    return bytes(SystemMsg(ts_event_ns, REPLAY_COMPLETED_MESSAGE, code=code))
