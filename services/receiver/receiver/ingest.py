"""The TCP ingest port: one record stream at a time, decoded frame by frame into the current run."""

from __future__ import annotations

import asyncio
import logging

from obm_shared.framing import FrameDecoder, ProtocolError
from receiver.core.config import Settings
from receiver.processing import Run, RunState

READ_CHUNK_BYTES = 1 << 20
logger = logging.getLogger("receiver.ingest")


class Receiver:
    """Owns the current run and the ingest server. A new run starts on request or on a new stream."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run: Run | None = None
        self.rejected_connections = 0
        self._server: asyncio.Server | None = None
        self._streaming = False

    async def start(self) -> None:
        """Listen on the ingest port."""
        self._server = await asyncio.start_server(
            self._serve_stream, self.settings.host, self.settings.ingest_port, limit=READ_CHUNK_BYTES
        )
        logger.info("ingest listening", extra={"port": self.settings.ingest_port})

    async def close(self) -> None:
        """Stop listening; a stream in progress is failed and its output flushed."""
        if self._server is not None:
            self._server.close()
        if self.run is not None and self.run.state in (RunState.READY, RunState.RECEIVING):
            await self.run.fail("receiver shut down")

    async def new_run(self) -> Run:
        """Reset the market for the next stream. Refused (RuntimeError) while a stream is being received."""
        if self._streaming:
            raise RuntimeError("a stream is being received; stop the sender first")
        return await self._replace_run()

    async def _replace_run(self) -> Run:
        if self.run is not None and self.run.state == RunState.READY:
            await self.run.fail("replaced by a new run before any stream arrived")
        self.run = Run(self.settings)
        return self.run

    async def _serve_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self._streaming:
            self.rejected_connections += 1
            logger.warning("stream refused: another stream is in progress", extra={"peer": str(peer)})
            writer.close()
            return
        self._streaming = True
        try:
            ready = self.run is not None and self.run.state == RunState.READY
            run = self.run if ready and self.run is not None else await self._replace_run()
            logger.info("stream started", extra={"peer": str(peer), "run_id": run.run_id})
            await self._consume(run, reader)
            logger.info("stream ended", extra={"run_id": run.run_id, "state": run.state.value})
        finally:
            self._streaming = False
            writer.close()

    async def _consume(self, run: Run, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder(self.settings.max_frame_bytes)
        try:
            while chunk := await reader.read(READ_CHUNK_BYTES):
                for message in decoder.feed(chunk):
                    await run.handle(message)
                if run.validator.finished:
                    return
            await run.fail(
                f"connection closed after {run.records_received} records, before the end of stream"
            )
        except ProtocolError as error:
            run.protocol_error(error)
            logger.error("protocol error", extra={"code": error.code, "detail": str(error)})
            await run.fail(f"protocol error ({error.code}): {error}")
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            await run.fail(f"connection lost after {run.records_received} records: {error}")
        except Exception as error:  # a bug must fail the run visibly, not leave it hanging
            logger.exception("stream processing failed")
            await run.fail(f"internal error after {run.records_received} records: {error!r}")
