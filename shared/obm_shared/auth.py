"""Who may change state: the shared API token over HTTP, and the proof a sender gives the receiver's ingest port.

One secret, ``OBM_API_TOKEN``, is read by every service. Over HTTP it travels as ``Authorization: Bearer``
(a header, never a cookie: a cross-site page cannot set it). On the ingest port the token itself never crosses
the wire: the receiver sends a random challenge and the sender answers with an HMAC of it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, SecretStr

from obm_shared.limits import MAX_REQUEST_BODY_BYTES

CHALLENGE_BYTES = 32
_PROOF_CONTEXT = b"obm-ingest-v1|"
_JSON = "application/json"

_bearer = HTTPBearer(auto_error=False, description="the OBM_API_TOKEN shared by the services")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def new_challenge() -> bytes:
    """A fresh random challenge for one ingest connection."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def ingest_proof(token: SecretStr | None, challenge: bytes) -> bytes:
    """What a sender answers a challenge with: HMAC-SHA256 of it under the token (empty without a token)."""
    if token is None:
        return b""
    return hmac.new(token.get_secret_value().encode(), _PROOF_CONTEXT + challenge, hashlib.sha256).digest()


def proof_matches(token: SecretStr | None, challenge: bytes, proof: bytes) -> bool:
    """True when ``proof`` answers ``challenge`` under ``token`` (anything goes when no token is set)."""
    return token is None or hmac.compare_digest(ingest_proof(token, challenge), proof)


def token_matches(token: SecretStr | None, presented: str | None) -> bool:
    """True when no token is set, or ``presented`` is it (compared in constant time)."""
    if token is None:
        return True
    return presented is not None and hmac.compare_digest(
        presented.encode(), token.get_secret_value().encode()
    )


def _settings_token(request: Request) -> SecretStr | None:
    token: SecretStr | None = request.app.state.settings.api_token
    return token


def _check_bearer(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    presented = credentials.credentials if credentials is not None else None
    if not token_matches(_settings_token(request), presented):
        raise HTTPException(
            401,
            "a valid API token is required: Authorization: Bearer <OBM_API_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _check_same_origin(request: Request) -> None:
    """A browser names the page that sent a request: only the service's own pages may change state."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, f"cross-origin request from {origin[:100]} refused")


def _check_json(request: Request) -> None:
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != _JSON:
            raise HTTPException(
                415, f"request bodies must be {_JSON} (send {{}} when there is nothing to say)"
            )


async def require_token(request: Request, credentials: Credentials) -> None:
    """Guard of every state-changing route: same origin, a JSON body, and the token when one is set."""
    _check_same_origin(request)
    _check_json(request)
    _check_bearer(request, credentials)


async def require_read_token(request: Request, credentials: Credentials) -> None:
    """Guard of reads: the token, only when ``OBM_READ_AUTH=token``."""
    if request.app.state.settings.read_auth == "token":
        _check_bearer(request, credentials)


RequireToken = Depends(require_token)
"""Put on a router (``dependencies=[RequireToken]``) so no route under it can be left open by accident."""
RequireReadToken = Depends(require_read_token)


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


class Invalid(BaseModel):
    """Why a request is invalid: a sentence, or (a request that does not fit the spec) each invalid field."""

    detail: str | list[dict[str, Any]]


Responses = dict[int | str, dict[str, Any]]
"""A route's or router's ``responses=``: the statuses it can answer besides its success, for the spec."""


def refusal(description: str) -> dict[str, Any]:
    """One documented refusal, its body a :class:`Problem`."""
    return {"model": Problem, "description": description}


def invalid(description: str) -> dict[str, Any]:
    """A documented 422, its body an :class:`Invalid`."""
    return {"model": Invalid, "description": description}


READ_RESPONSES: Responses = {
    401: refusal("the API token is required (OBM_READ_AUTH=token) and was not given")
}
"""What the read guard can answer: put on every router or route under ``RequireReadToken``."""
GUARDED_RESPONSES: Responses = {
    401: refusal("the API token is required (OBM_API_TOKEN is set) and was not given"),
    403: refusal("a cross-origin request"),
    413: refusal(f"the request body is over {MAX_REQUEST_BODY_BYTES} bytes"),
    415: refusal("the request body is not application/json"),
    422: invalid("the request does not fit the spec"),
}
"""What the state-changing guard (and the body checks before it) can answer: put on every router under
``RequireToken``; a route documents its own reasons for a status on top."""
