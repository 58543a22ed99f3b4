"""Databento's live protocol (its "Raw API"): the text control lines before the DBN stream, and CRAM.

Both ends use it: the sender's replay gateway and the receiver as a live client. A control line is
``key=value`` fields joined by ``|`` and ended by ``\\n``. The gateway greets and challenges, the client answers
with ``auth=<sha256 hex of "<cram>|<key>">-<last 5 characters of the key>`` (the key itself never crosses the
wire), the gateway accepts or refuses, then the client sends subscription lines and ``start_session``; from
there on the gateway sends binary DBN (metadata, then records) until it closes the connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Final, TypeVar

import msgspec

from obm_shared.iso_time import iso_ns

MAX_LINE_BYTES: Final = 16 * 1024
"""Longest control line either end accepts: Databento's client puts up to 500 symbols on one subscription line."""
ALL_SYMBOLS: Final = "ALL_SYMBOLS"
BUCKET_ID_CHARS: Final = 5
"""The key's last characters, sent in clear after the hash so the gateway knows which key to check against."""
API_KEY_PATTERN: Final = re.compile(r"db-[A-Za-z0-9]{29}")
"""Databento's API key format: ``db-`` and 29 letters or digits."""
FIELD_SEPARATOR: Final = "|"


class ProtocolError(ValueError):
    """A control line that breaks the protocol: too long, cut short, unparseable or not the one expected."""


class Greeting(msgspec.Struct, frozen=True):
    """The gateway's first line."""

    lsg_version: str


class Challenge(msgspec.Struct, frozen=True):
    """The gateway's second line: the CRAM challenge the client hashes its key with."""

    cram: str


class AuthRequest(msgspec.Struct, frozen=True):
    """The client's answer to the challenge, with the session's options."""

    auth: str
    dataset: str
    encoding: str = "dbn"
    ts_out: int = 0
    compression: str = "none"
    heartbeat_interval_s: int | None = None
    slow_reader_behavior: str | None = None
    client: str | None = None
    details: str | None = None


class AuthResponse(msgspec.Struct, frozen=True):
    """The gateway's verdict: ``success=1`` with a session id, or ``success=0`` with the reason."""

    success: int
    error: str | None = None
    session_id: str | None = None


class SubscriptionRequest(msgspec.Struct, frozen=True):
    """One subscription line; a long symbol list comes as several lines with the same ``id``, the last ``is_last=1``.

    ``symbols`` is comma separated (or ``ALL_SYMBOLS``); ``start`` is UNIX nanoseconds or ISO-8601 (see
    :func:`start_ns`), absent for "from now".
    """

    schema: str
    stype_in: str
    symbols: str
    start: str | None = None
    snapshot: int = 0
    id: int | None = None
    is_last: int = 1

    def symbol_list(self) -> list[str]:
        """The symbols named, in order, without blanks."""
        return [symbol.strip() for symbol in self.symbols.split(",") if symbol.strip()]


class SessionStart(msgspec.Struct, frozen=True):
    """The client's last control line: stream from here on."""

    start_session: str = "0"


ControlLine = Greeting | Challenge | AuthRequest | AuthResponse | SubscriptionRequest | SessionStart
Line = TypeVar("Line", Greeting, Challenge, AuthRequest, AuthResponse, SubscriptionRequest, SessionStart)


def encode_line(message: ControlLine) -> bytes:
    """The message as one control line; ``None`` fields are left out, as Databento's client does."""
    fields = (
        f"{name}={_clean(value)}"
        for name in message.__struct_fields__
        if (value := getattr(message, name)) is not None
    )
    return (FIELD_SEPARATOR.join(fields) + "\n").encode()


def decode_line(line: bytes, kind: type[Line]) -> Line:
    """The line as a ``kind`` message; a missing field or a bad value is a :class:`ProtocolError`.

    Fields this side does not know are ignored, so that a newer peer's additions do not break the session.
    """
    try:
        return msgspec.convert(_fields(line), type=kind, strict=False)
    except msgspec.ValidationError as error:
        raise ProtocolError(f"not a valid {kind.__name__} line: {error}") from None


def decode_client_line(line: bytes) -> SubscriptionRequest | SessionStart:
    """What a client sends once authenticated: a subscription line or the session start."""
    if line.startswith(b"start_session="):
        return decode_line(line, SessionStart)
    return decode_line(line, SubscriptionRequest)


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """The next control line, newline included; never buffers more than :data:`MAX_LINE_BYTES`.

    The stream should be opened with ``limit=MAX_LINE_BYTES`` so that a line without end is refused as soon
    as the buffer fills, rather than after the stream's default limit.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"control line longer than {MAX_LINE_BYTES} bytes") from None
    except asyncio.IncompleteReadError as error:
        raise ProtocolError(f"connection closed inside a control line ({len(error.partial)} bytes)") from None
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"control line longer than {MAX_LINE_BYTES} bytes")
    return line


def new_challenge() -> str:
    """A fresh, unpredictable CRAM challenge."""
    return secrets.token_urlsafe(24)


def cram_response(challenge: str, key: str) -> str:
    """The client's answer: sha256 hex of ``"<challenge>|<key>"``, a dash, and the key's bucket id."""
    digest = hashlib.sha256(f"{challenge}|{key}".encode()).hexdigest()
    return f"{digest}-{key[-BUCKET_ID_CHARS:]}"


def cram_matches(challenge: str, response: str, keys: Iterable[str]) -> bool:
    """True when ``response`` answers ``challenge`` for one of ``keys``; compared in constant time."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(cram_response(challenge, key).encode(), response.encode())
    return matched


def validate_api_key(key: str) -> str:
    """``key`` when it has Databento's format; otherwise a :class:`ValueError` that never echoes the key."""
    if API_KEY_PATTERN.fullmatch(key) is None:
        raise ValueError(
            f"an API key must be 'db-' and 29 letters or digits (got {len(key)} characters, not shown)"
        )
    return key


def start_ns(start: str | None) -> int | None:
    """A subscription's ``start`` as UNIX nanoseconds: digits are nanoseconds, anything else ISO-8601 (a time
    without zone is UTC, fractions to the nanosecond); ``None`` stays ``None``."""
    if start is None or start == "":
        return None
    if start.isdigit():
        return int(start)
    try:
        return iso_ns(start)
    except ValueError:
        raise ProtocolError(f"start {start!r} is neither UNIX nanoseconds nor ISO-8601") from None


def _fields(line: bytes) -> dict[str, str]:
    try:
        text = line.decode()
    except UnicodeDecodeError:
        raise ProtocolError("control line is not UTF-8") from None
    if not text.endswith("\n"):
        raise ProtocolError("control line does not end with a newline")
    fields: dict[str, str] = {}
    for token in text.strip().split(FIELD_SEPARATOR):
        name, equals, value = token.partition("=")
        if not equals or not name:
            raise ProtocolError(f"control line field {token[:40]!r} is not key=value")
        fields[name] = value
    return fields


def _clean(value: object) -> str:
    """A value that cannot break the line it is written in (an error reason may quote anything)."""
    return str(value).replace(FIELD_SEPARATOR, "/").replace("\n", " ").replace("\r", " ")
