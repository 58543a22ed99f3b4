"""What every service does with a request before its handlers see it: bodies bounded, and a validation error
answered with a 422 whatever the input (a JSON ``NaN`` or ``1e309`` parses to a float JSON cannot carry)."""

from __future__ import annotations

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from obm_shared.limits import MAX_REQUEST_BODY_BYTES


async def _invalid_request(request: Request, error: Exception) -> Response:
    """The 422 FastAPI gives, encoded by msgspec, which writes a non-finite number as null instead of failing."""
    if not isinstance(error, RequestValidationError):
        raise error
    body = msgspec.json.encode({"detail": jsonable_encoder(error.errors())})
    return Response(body, status_code=422, media_type="application/json")


def limit_requests(app: FastAPI, max_body_bytes: int = MAX_REQUEST_BODY_BYTES) -> None:
    """Refuse bodies over ``max_body_bytes`` with 413 (before reading them when Content-Length says so), and
    answer every validation error with a 422 that serialises."""
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid_request)
