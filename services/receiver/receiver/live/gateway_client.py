"""The receiver as a live client: connect to a gateway, answer its challenge with the key, subscribe to MBO and
start the session, in Databento's live protocol (the control lines of :mod:`obm_shared.live_protocol`)."""

from __future__ import annotations

import asyncio

from obm_shared import live_protocol
from obm_shared.live_protocol import (
    ALL_SYMBOLS,
    AuthRequest,
    AuthResponse,
    Challenge,
    Greeting,
    SessionStart,
    SubscriptionRequest,
    cram_response,
    decode_line,
    encode_line,
    read_line,
)
from obm_shared.live_source import LiveSource
from receiver.live.errors import LiveSessionError

CLIENT_NAME = "obm-receiver"
HEARTBEAT_SECONDS = 10
"""Asked of the gateway: a quiet feed still shows it is alive well within the receiver's stall limit."""
SYMBOLS_PER_LINE = 500
"""Symbols per subscription line, as Databento's own client sends them."""
READ_LIMIT_BYTES = 1 << 20
"""The stream reader's buffer bound: a control line longer than this is refused before it is read whole."""


async def open_session(
    source: LiveSource, connect_timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, authenticate, subscribe and start the session; raises :class:`LiveSessionError` saying why."""
    where = f"gateway {source.host}:{source.port}"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(connect_timeout):
            reader, writer = await asyncio.open_connection(source.host, source.port, limit=READ_LIMIT_BYTES)
            decode_line(await read_line(reader), Greeting)
            challenge = decode_line(await read_line(reader), Challenge)
            key = source.api_key.get_secret_value()
            auth = AuthRequest(
                auth=cram_response(challenge.cram, key),
                dataset=source.dataset,
                heartbeat_interval_s=HEARTBEAT_SECONDS,
                client=CLIENT_NAME,
            )
            writer.write(encode_line(auth))
            reply = decode_line(await read_line(reader), AuthResponse)
            if reply.success != 1:
                raise LiveSessionError(f"{where} refused the session: {reply.error or 'no reason given'}")
            for line in subscription_lines(source):
                writer.write(encode_line(line))
            writer.write(encode_line(SessionStart()))
            await writer.drain()
            return reader, writer
    except BaseException as error:
        if writer is not None:
            writer.close()
        if isinstance(error, TimeoutError):
            raise LiveSessionError(f"{where}: no session within {connect_timeout:g} s") from None
        if isinstance(error, OSError):
            raise LiveSessionError(f"{where} cannot be reached: {error.strerror or error}") from None
        if isinstance(error, live_protocol.ProtocolError):
            raise LiveSessionError(f"{where}: {error}") from None
        raise


def subscription_lines(source: LiveSource) -> list[SubscriptionRequest]:
    """The subscription as Databento's client sends it: its symbols 500 a line, the last line marked."""
    symbols = source.symbols or []
    batches = [
        ",".join(symbols[at : at + SYMBOLS_PER_LINE]) for at in range(0, len(symbols), SYMBOLS_PER_LINE)
    ]
    lines = batches or [ALL_SYMBOLS]
    start = str(source.start) if source.start is not None else None
    return [
        SubscriptionRequest(
            schema=source.schema_,
            stype_in=source.stype_in,
            symbols=symbols,
            start=start,
            id=1,
            is_last=int(index == len(lines) - 1),
        )
        for index, symbols in enumerate(lines)
    ]
