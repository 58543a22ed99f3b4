"""Async HTTP clients of the sender and receiver, with failures named in words."""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx
from pydantic import SecretStr


class ServiceUnavailable(Exception):
    """A service could not be reached at all."""

    def __init__(self, service: str, url: str, reason: str) -> None:
        super().__init__(f"{service} unreachable at {url}: {reason}")
        self.service = service


class ServiceRefused(Exception):
    """A service answered with an error status; ``detail`` is its reason."""

    def __init__(
        self, service: str, status_code: int, detail: object, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{service} answered {status_code}: {detail}")
        self.service = service
        self.status_code = status_code
        self.detail = detail
        self.extra = extra or {}
        """The answer's other fields (with a 409 for a point in history: how far the run has got)."""


class Service(Protocol):
    """What a reader needs of a downstream service: a :class:`ServiceClient`, or the receivers as one
    (:class:`~orchestrator.receiver_view.ReceiverView`)."""

    name: str

    async def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    async def probe(self) -> dict[str, object]: ...


class ServiceClient:
    """One downstream service, reached over HTTP with a shared connection pool; every request carries the
    shared API token when the orchestrator has one."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeout_seconds: float,
        token: SecretStr | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else None
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_seconds, headers=headers, transport=transport
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer; raises :class:`ServiceUnavailable` or :class:`ServiceRefused`."""
        return (await self._send(method, path, **kwargs)).json()

    async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
        """The answer's JSON text, undecoded (to pass on as it is); raises like :meth:`request`."""
        return (await self._send(method, path, **kwargs)).content

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ServiceUnavailable(self.name, self.base_url, str(error) or type(error).__name__) from None
        if response.is_error:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise ServiceRefused(self.name, response.status_code, response.text)
            detail = answer.pop("detail", response.text)
            raise ServiceRefused(self.name, response.status_code, detail, answer)
        return response

    async def probe(self) -> dict[str, object]:
        """``GET /status`` with its latency: reachable or not, never raises."""
        started = time.perf_counter()
        try:
            status = await self.request("GET", "/status")
            reachable, error = True, None
        except (ServiceUnavailable, ServiceRefused) as failure:
            status, reachable, error = None, False, str(failure)
        return {
            "name": self.name,
            "url": self.base_url,
            "reachable": reachable,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "status": status,
            "error": error,
        }

    async def close(self) -> None:
        await self._client.aclose()
