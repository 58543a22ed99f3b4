"""The receivers the orchestrator reads: the configured URLs, a host name that resolves to several addresses (a
scaled compose service) standing for one receiver per address, resolved again at a bounded interval."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from orchestrator.clients import ServiceClient

logger = logging.getLogger("orchestrator.receivers")

Resolver = Callable[[str], Awaitable[list[str]]]
"""A host name's IPv4 addresses."""


async def resolve_ipv4(host: str) -> list[str]:
    """``host``'s IPv4 addresses, as the system's resolver answers (Docker's DNS answers every replica's);
    IPv4 only, so ``localhost`` is one receiver, not two."""
    answers = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket.AF_INET)
    return [str(address[0]) for *_, address in answers]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def expand(urls: list[str], resolve: Resolver) -> list[str]:
    """One URL per receiver: a URL whose host resolves to several addresses becomes one per address (in
    address order); any other stays as written (a host that does not resolve too: reading it names it)."""
    expanded: list[str] = []
    for url in urls:
        host = urlsplit(url).hostname or ""
        addresses: list[str] = []
        if host and not _is_address(host):
            with contextlib.suppress(OSError):
                addresses = sorted(set(await resolve(host)), key=ipaddress.ip_address)
        if len(addresses) > 1:
            expanded.extend(_with_host(url, address) for address in addresses)
        else:
            expanded.append(url)
    return list(dict.fromkeys(expanded))


class ReceiverSet:
    """The current receivers' clients, in a stable order; refreshed every ``interval_seconds`` while some
    configured host is a name (a URL with an address never changes)."""

    def __init__(
        self,
        urls: list[str],
        timeout_seconds: float,
        token: SecretStr | None = None,
        interval_seconds: float = 5.0,
        resolve: Resolver = resolve_ipv4,
    ) -> None:
        self.urls = urls
        self.interval_seconds = interval_seconds
        self._resolve = resolve
        self._timeout_seconds = timeout_seconds
        self._token = token
        self.clients: list[ServiceClient] = [self._client_of(url) for url in urls]
        """One per receiver; before the first refresh, one per configured URL."""
        self._task: asyncio.Task[None] | None = None

    def _client_of(self, url: str) -> ServiceClient:
        return ServiceClient("receiver", url, self._timeout_seconds, self._token)

    @property
    def resolves_names(self) -> bool:
        return any(not _is_address(urlsplit(url).hostname or "") for url in self.urls)

    async def start(self) -> None:
        """Resolve once now, then keep resolving in the background (only when a host is a name)."""
        if self.resolves_names:
            await self.refresh()
            self._task = asyncio.create_task(self._keep_resolving(), name="receivers")

    async def refresh(self) -> None:
        """Resolve the URLs again: a receiver still there keeps its client, a new one gets one, a gone one's
        is closed."""
        wanted = await expand(self.urls, self._resolve)
        current = {client.base_url: client for client in self.clients}
        if list(current) == wanted:
            return
        self.clients = [current.pop(url) if url in current else self._client_of(url) for url in wanted]
        logger.info("receivers changed", extra={"receivers": wanted})
        for gone in current.values():
            await gone.close()

    async def _keep_resolving(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.refresh()
            except Exception:  # a failed resolution keeps the receivers known, and is tried again
                logger.exception("resolving the receivers failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in self.clients:
            await client.close()
