"""Where a stream's protocol messages go: the receiver's TCP ingest port, or a NATS JetStream stream.

The stream thread reads and paces the file once, whatever the transport; a :class:`Transport` opens the run,
carries its records, heartbeats and end, and says in the user's terms why it failed.
"""

from __future__ import annotations

import contextlib
import socket
from functools import partial
from typing import Protocol, TypeVar

from obm_shared.auth import ingest_proof
from obm_shared.framing import FrameEncoder, ProtocolError, read_reply
from obm_shared.messages import (
    PROTOCOL_VERSION,
    Accepted,
    Challenge,
    EndOfStream,
    Handshake,
    Heartbeat,
    RecordBatch,
    Refused,
    Reply,
    StreamError,
    StreamMetadata,
)
from obm_shared.records import MboArray
from sender.core.config import Settings

_R = TypeVar("_R", Challenge, Accepted)


class TransportFailed(Exception):
    """The transport cannot carry the stream on; the message is the whole reason."""


class Transport(Protocol):
    """One run's way out. Methods run in the stream thread, except :meth:`interrupt`."""

    destination: str
    """Where the records go, as /status shows it."""

    def open(self, run_id: str, metadata: StreamMetadata, dbn_header: bytes) -> None:
        """Connect and hand over the run's handshake; return once records may follow."""

    def send(self, records: MboArray, first_index: int) -> int:
        """Send consecutive records (``first_index`` is the first one's index in the file); returns the number
        of batches sent."""

    def heartbeat(self) -> None:
        """Say the stream is alive while a paced replay waits."""

    def end(self, totals: EndOfStream) -> None:
        """Close the stream complete; return once it is delivered."""

    def abandon(self, message: StreamError, cause: Exception) -> None:
        """Tell the far side why the stream ends early, when ``cause`` left a way to tell it (best effort)."""

    def interrupt(self) -> None:
        """Cut a wait short (called from another thread by a stop)."""

    def close(self) -> None:
        """Release the connection."""

    def describe(self, error: Exception, records_sent: int) -> str | None:
        """Why ``error`` ended the stream, when it is this transport's error; None otherwise."""


class ReceiverRefused(Exception):
    """The receiver turned the stream away before any record (it says why, or it just closed)."""


class CannotConnect(Exception):
    """No connection to the receiver."""


class TcpTransport:
    """The receiver's ingest port: challenge, handshake with the proof of the token, then frames."""

    def __init__(self, settings: Settings, receiver: tuple[str, int]) -> None:
        self.settings = settings
        self.receiver = receiver
        self.destination = f"{receiver[0]}:{receiver[1]}"
        self.encoder = FrameEncoder()
        self._socket: socket.socket | None = None
        self._batches = 0

    def open(self, run_id: str, metadata: StreamMetadata, dbn_header: bytes) -> None:
        """Answer the receiver's challenge with the proof of the token and the file's DBN header (the receiver
        records the stream as a DBN file); return once it accepts the stream."""
        sock = self._socket = self._connect(*self.receiver)
        sock.settimeout(self.settings.send_timeout_seconds)
        read = partial(read_reply, partial(_recv_exactly, sock))
        challenge = _expect(read(), Challenge)
        proof = ingest_proof(self.settings.api_token, challenge.nonce)
        sock.sendall(self.encoder.encode(Handshake(PROTOCOL_VERSION, metadata, run_id, proof, dbn_header)))
        _expect(read(), Accepted)

    def _connect(self, host: str, port: int) -> socket.socket:
        try:
            return socket.create_connection((host, port), timeout=self.settings.connect_timeout_seconds)
        except UnicodeError:
            raise CannotConnect("not a valid host name") from None
        except OSError as error:
            raise CannotConnect(error.strerror or type(error).__name__) from None

    def send(self, records: MboArray, first_index: int) -> int:
        self._connected().sendall(
            self.encoder.encode(RecordBatch.from_array(self._batches, first_index, records))
        )
        self._batches += 1
        return 1

    def heartbeat(self) -> None:
        self._connected().sendall(self.encoder.encode(Heartbeat()))

    def end(self, totals: EndOfStream) -> None:
        sock = self._connected()
        sock.sendall(self.encoder.encode(totals))
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # returns when the receiver has read everything and closed: "done" means delivered

    def abandon(self, message: StreamError, cause: Exception) -> None:
        if self._socket is None or isinstance(cause, OSError):  # no connection left to tell it on
            return
        with contextlib.suppress(OSError):
            self._socket.sendall(self.encoder.encode(message))

    def interrupt(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(
                    socket.SHUT_RD
                )  # wakes a wait for the receiver's answer; sending goes on

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()

    def describe(self, error: Exception, records_sent: int) -> str | None:
        host, port = self.receiver
        if isinstance(error, ReceiverRefused):
            return f"receiver refused the stream: {error}"
        if isinstance(error, CannotConnect):
            return f"receiver at {host}:{port}: {error}"
        if isinstance(error, ProtocolError):
            return f"receiver at {host}:{port} broke the protocol: {error}"
        if isinstance(error, OSError):
            reason = error.strerror or type(error).__name__
            return f"receiver at {host}:{port}: {reason} after {records_sent} records"
        return None

    def _connected(self) -> socket.socket:
        if self._socket is None:
            raise RuntimeError("the TCP transport is not open")
        return self._socket


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ReceiverRefused("it closed the connection")
        data += chunk
    return bytes(data)


def _expect(reply: Reply, kind: type[_R]) -> _R:
    """``reply`` when it is a ``kind``; a refusal or anything else ends the stream before it starts."""
    if isinstance(reply, Refused):
        raise ReceiverRefused(reply.reason)
    if not isinstance(reply, kind):
        raise ReceiverRefused(f"it answered {type(reply).__name__}, expected {kind.__name__}")
    return reply
