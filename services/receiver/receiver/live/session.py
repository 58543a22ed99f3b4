"""A live session's feed booked into a run: its DBN stream turned into the run's protocol messages, so a live feed
is booked, written and recorded exactly as a TCP replay is.

From the session's start (see :mod:`receiver.live.gateway_client`) the gateway sends DBN: its metadata becomes the run's handshake, MBO records become record batches, symbol mappings
name the instruments, an error record fails the run with the gateway's words, and a system record saying the
replay is completed ends the stream (a live feed from Databento runs until it is stopped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from databento_dbn import ErrorMsg, Schema, SymbolMappingMsg, SystemCode, SystemMsg

from obm_shared.framing import ProtocolError
from obm_shared.live_source import LiveSource
from obm_shared.messages import (
    PROTOCOL_VERSION,
    EndOfStream,
    Handshake,
    Message,
    RecordBatch,
    StreamError,
    StreamMetadata,
)
from obm_shared.records import MBO_RECORD_SIZE
from receiver.live.dbn_stream import DbnStream, Header, StreamDecodeError
from receiver.live.errors import LiveSessionError
from receiver.processing import Run, RunState
from receiver.run_output import OutputFailed

READ_CHUNK_BYTES = 1 << 20
BATCH_RECORDS = 16_384
"""MBO records handed to the run at once: the sender's batch, so a live run is applied as a replay is."""
logger = logging.getLogger("receiver.live")

Handle = Callable[[Message], Awaitable[None]]


async def receive_live(
    run: Run, source: LiveSource, reader: asyncio.StreamReader, stall_seconds: float
) -> None:
    """Book the started session's feed into ``run`` until the replay is completed, the gateway fails it, or the
    task is cancelled (a stop): whatever ends it, the run ends with the reason."""
    stream = LiveStream(source, run.run_id, run.handle, run.market.symbols)
    try:
        while not stream.ended:
            try:
                async with asyncio.timeout(stall_seconds):
                    chunk = await reader.read(READ_CHUNK_BYTES)
            except TimeoutError:
                await run.fail(f"stalled: no data from the gateway for {stall_seconds:g} s")
                return
            if not chunk:
                await run.fail(f"the gateway closed the session after {stream.records} records")
                return
            await stream.feed(chunk)
            if len(chunk) < READ_CHUNK_BYTES:  # caught up with the gateway: book what has come
                await stream.flush()
    except LiveSessionError as error:
        await run.fail(str(error))
    except ProtocolError as error:
        await run.protocol_error(error)
    except OutputFailed:
        pass  # the run has failed with the write error
    except asyncio.CancelledError:
        if run.state == RunState.RECEIVING:
            await run.handle(StreamError(reason="stopped", records_sent=stream.records, stopped_by_user=True))
        elif run.state == RunState.READY:
            await run.fail("stopped before the gateway sent any data")
        raise
    except Exception as error:  # a bug must fail the run visibly, not leave it receiving
        logger.exception("live feed failed")
        await run.fail(f"internal error after {stream.records} records: {error!r}")


class LiveStream:
    """Turns the session's bytes into protocol messages for the run, and says when the stream has ended."""

    def __init__(self, source: LiveSource, run_id: str, handle: Handle, symbols: dict[int, str]) -> None:
        self.source = source
        self.run_id = run_id
        self.handle = handle
        self.symbols = symbols
        """The run's instrument -> symbol map, named by the session's symbol mappings."""
        self.stream = DbnStream()
        self.records = 0
        self.batches = 0
        self.ended = False
        self._pending: list[bytes] = []
        self._pending_records = 0

    async def feed(self, chunk: bytes) -> None:
        """Hand the run what ``chunk`` completes, MBO records a batch at a time (see :meth:`flush`); raises
        :class:`LiveSessionError` for an error record or bytes that are not DBN."""
        header_before = self.stream.header
        try:
            pieces = self.stream.feed(chunk)
        except StreamDecodeError as error:
            raise LiveSessionError(f"the gateway's data: {error}") from None
        if header_before is None and self.stream.header is not None:
            await self.handle(self._handshake(self.stream.header))
        for piece in pieces:
            if isinstance(piece, bytes):
                self._pending.append(piece)
                self._pending_records += len(piece) // MBO_RECORD_SIZE
                if self._pending_records >= BATCH_RECORDS:
                    await self.flush()
            else:
                await self.flush()  # records keep their order around a mapping, an error or the end
                await self._other(piece)

    async def end(self) -> None:
        """The replay is completed: the last records, then the end of the stream with its counts."""
        await self.flush()
        self.ended = True
        await self.handle(EndOfStream(records_sent=self.records, batches_sent=self.batches))

    async def flush(self) -> None:
        """Hand the run the MBO records not handed yet: at a batch's size, before any other record, and when the
        stream has caught up with the gateway (a live feed's records are booked as they come)."""
        if not self._pending:
            return
        records = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        count, self._pending, self._pending_records = self._pending_records, [], 0
        batch = RecordBatch(seq=self.batches, first_index=self.records, records=records)
        self.batches += 1
        self.records += count
        await self.handle(batch)

    async def _other(self, record: Any) -> None:
        if isinstance(record, SymbolMappingMsg):
            self.symbols[record.instrument_id] = _symbol(record)
        elif isinstance(record, ErrorMsg):
            raise LiveSessionError(f"the gateway says: {record.err}")
        elif isinstance(record, SystemMsg) and record.code == SystemCode.REPLAY_COMPLETED:
            await self.end()
        # heartbeats and other system notes change nothing

    def _handshake(self, header: Header) -> Handshake:
        metadata = header.metadata
        source = self.source
        described = f"live {source.dataset} from {source.host}:{source.port}"
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            metadata=StreamMetadata(
                source=described,
                dataset=str(metadata.dataset),
                schema="mbo",
                symbols=list(source.symbols or ["ALL_SYMBOLS"]),
                instruments={},
                start_ns=int(metadata.start),
                end_ns=int(metadata.end) if metadata.end is not None else None,
                record_count=None,
                dbn_version=int(metadata.version),
            ),
            run_id=self.run_id,
            proof=b"",
            # a gateway's metadata for several schemas names none: the recording then makes an MBO header
            dbn_header=header.raw if metadata.schema == Schema.MBO and not metadata.ts_out else b"",
        )


def _symbol(mapping: SymbolMappingMsg) -> str:
    """The instrument's symbol: the raw symbol on whichever side of the mapping names it."""
    if str(mapping.stype_in) == "raw_symbol" or mapping.stype_out_symbol.isdigit():
        return str(mapping.stype_in_symbol)
    return str(mapping.stype_out_symbol)
