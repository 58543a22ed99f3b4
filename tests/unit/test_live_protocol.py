"""The live protocol's control lines and CRAM, checked against Databento's own client code where it can be called."""

from __future__ import annotations

import asyncio

import pytest
from databento.common.cram import get_challenge_response
from databento.live import gateway as databento_gateway
from databento_dbn import SType

from obm_shared.live_protocol import (
    MAX_LINE_BYTES,
    AuthRequest,
    AuthResponse,
    Challenge,
    Greeting,
    ProtocolError,
    SessionStart,
    SubscriptionRequest,
    cram_matches,
    cram_response,
    decode_client_line,
    decode_line,
    encode_line,
    new_challenge,
    read_line,
    start_ns,
    validate_api_key,
)

KEY = "db-" + "A1b2C3d4E5" * 2 + "f6G7h8I9j"
OTHER_KEY = "db-" + "Z" * 29


def test_cram_response_is_databentos() -> None:
    challenge = new_challenge()
    assert cram_response(challenge, KEY) == get_challenge_response(challenge, KEY)
    assert cram_response(challenge, KEY).endswith("-" + KEY[-5:])


def test_cram_matches_only_the_right_key_and_challenge() -> None:
    challenge = new_challenge()
    answer = get_challenge_response(challenge, KEY)
    assert cram_matches(challenge, answer, [OTHER_KEY, KEY])
    assert not cram_matches(challenge, answer, [OTHER_KEY])
    assert not cram_matches(new_challenge(), answer, [KEY])
    assert not cram_matches(challenge, answer, [])


def test_challenges_differ() -> None:
    assert len({new_challenge() for _ in range(100)}) == 100


def test_api_key_format() -> None:
    assert validate_api_key(KEY) == KEY
    for bad in ("", "db-short", KEY + "x", "xx-" + KEY[3:], KEY[:-1] + "!"):
        with pytest.raises(ValueError) as error:
            validate_api_key(bad)
        assert bad[3:] not in str(error.value) or not bad[3:]


def test_lines_databentos_client_sends_decode() -> None:
    auth = databento_gateway.AuthenticationRequest(
        auth="abc-12345", dataset="GLBX.MDP3", heartbeat_interval_s=30
    )
    request = decode_line(bytes(auth), AuthRequest)
    assert (request.auth, request.dataset, request.encoding, request.ts_out) == (
        "abc-12345",
        "GLBX.MDP3",
        "dbn",
        0,
    )
    assert request.heartbeat_interval_s == 30
    assert request.client is not None and request.client.startswith("Databento/")

    subscription = databento_gateway.SubscriptionRequest(
        schema="mbo", stype_in=SType("raw_symbol"), symbols="CLX5,CLZ5", start=1_700_000_000_000_000_000, id=3
    )
    decoded = decode_client_line(bytes(subscription))
    assert decoded == SubscriptionRequest(
        schema="mbo", stype_in="raw_symbol", symbols="CLX5,CLZ5", start="1700000000000000000", id=3
    )
    assert isinstance(decoded, SubscriptionRequest) and decoded.symbol_list() == ["CLX5", "CLZ5"]
    assert decode_client_line(bytes(databento_gateway.SessionStart())) == SessionStart()


def test_lines_the_gateway_sends_parse_in_databentos_client() -> None:
    greeting = databento_gateway.parse_gateway_message(encode_line(Greeting(lsg_version="0.1")).decode())
    assert greeting == databento_gateway.Greeting(lsg_version="0.1")
    challenge = databento_gateway.parse_gateway_message(encode_line(Challenge(cram="xyz")).decode())
    assert challenge == databento_gateway.ChallengeRequest(cram="xyz")
    accepted = databento_gateway.AuthenticationResponse.parse(
        encode_line(AuthResponse(success=1, session_id="7"))
    )
    assert (accepted.success, accepted.session_id, accepted.error) == ("1", "7", None)


def test_a_reason_cannot_break_its_line() -> None:
    line = encode_line(AuthResponse(success=0, error="bad key|session_id=1\nsuccess=1"))
    assert line.count(b"\n") == 1
    refused = databento_gateway.AuthenticationResponse.parse(line)
    assert refused.success == "0" and refused.session_id is None
    assert refused.error is not None and refused.error.startswith("bad key")


@pytest.mark.parametrize(
    "line",
    [
        b"auth=x|dataset=D",
        b"dataset=D\n",
        b"auth=x|dataset\n",
        b"\xff\xfe\n",
        b"auth=x|dataset=D|ts_out=yes\n",
    ],
)
def test_malformed_lines_are_protocol_errors(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_line(line, AuthRequest)


NOON_2024_05_01_NS = 1_714_564_800 * 10**9
"""2024-05-01T12:00:00Z in UNIX nanoseconds."""


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("2024-05-01T12:00:00.123456789Z", NOON_2024_05_01_NS + 123_456_789),
        ("2024-05-01T12:00:00", NOON_2024_05_01_NS),
        ("2024-05-01", NOON_2024_05_01_NS - 12 * 3600 * 10**9),
        ("2024-05-01T12:00:00.5+02:00", NOON_2024_05_01_NS - 2 * 3600 * 10**9 + 500_000_000),
        ("2024-05-01 12:00:00.000001", NOON_2024_05_01_NS + 1_000),
    ],
)
def test_iso_start(text: str, expected_ns: int) -> None:
    assert start_ns(text) == expected_ns


def test_start_forms() -> None:
    assert start_ns(None) is None
    assert start_ns("0") == 0
    assert start_ns("1714564800000000001") == 1714564800000000001
    with pytest.raises(ProtocolError):
        start_ns("yesterday")


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_read_line_is_bounded() -> None:
    async def read(data: bytes) -> bytes:
        return await read_line(_reader(data))

    assert asyncio.run(read(b"start_session=0\nrest")) == b"start_session=0\n"
    with pytest.raises(ProtocolError, match="longer than"):
        asyncio.run(read(b"x" * (MAX_LINE_BYTES + 10) + b"\n"))
    with pytest.raises(ProtocolError, match="closed inside"):
        asyncio.run(read(b"auth=abc"))
