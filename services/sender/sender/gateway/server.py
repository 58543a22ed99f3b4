"""The sender's Databento-compatible live gateway: a TCP listener, its sessions and who may open one."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from typing import Final

from obm_shared.live_protocol import MAX_LINE_BYTES, AuthRequest, SubscriptionRequest, cram_matches
from sender.catalog import Catalog
from sender.core.config import Settings
from sender.gateway.plan import ReplayPlan, plan_replay
from sender.gateway.session import GatewaySession, SessionState

ENDED_KEPT: Final = 32
"""Ended sessions still listed, newest last."""
_OPEN: Final = (SessionState.SUBSCRIBING, SessionState.STREAMING)
"""States that hold one of the gateway's session slots."""
log = logging.getLogger(__name__)


class Gateway:
    """Accepts Databento live clients on ``settings.gateway_port`` and replays the catalog's files to them."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.sessions: dict[int, GatewaySession] = {}
        self.ended: deque[GatewaySession] = deque(maxlen=ENDED_KEPT)
        self.records_sent_total = 0
        self.auth_failures_total = 0
        self.problem: str | None = None
        """Why the gateway is not listening, when it is not."""
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen, unless the port is 0; a port already taken is logged and shown, not fatal to the sender."""
        if not self.settings.gateway_port:
            self.problem = "off (SENDER_GATEWAY_PORT=0)"
            return
        try:
            self._server = await asyncio.start_server(
                self._accept, self.settings.host, self.settings.gateway_port, limit=MAX_LINE_BYTES
            )
        except OSError as error:
            self.problem = (
                f"cannot listen on {self.settings.host}:{self.settings.gateway_port}: {error.strerror}"
            )
            log.error("gateway %s", self.problem)
            return
        log.info("gateway listening on %s:%d", self.settings.host, self.settings.gateway_port)

    async def close(self) -> None:
        """Stop listening and end every session."""
        if self._server is not None:
            self._server.close()
        tasks = [session.task for session in self.sessions.values() if session.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def as_dict(self) -> dict[str, object]:
        """The gateway as its API and the sender's status show it: listening or why not, and its sessions."""
        return {
            "listening": self.problem is None,
            "problem": self.problem,
            "port": self.settings.gateway_port,
            "max_sessions": self.settings.gateway_max_sessions,
            "open_sessions": len(self.sessions),
            "sessions": [session.as_dict() for session in self.listed()],
        }

    def listed(self) -> list[GatewaySession]:
        """Ended sessions (most recent ones), then the open ones."""
        return [*self.ended, *self.sessions.values()]

    def stop(self, session_id: int) -> bool:
        """Stop an open session; False when there is none with that id."""
        session = self.sessions.get(session_id)
        if session is None or session.task is None:
            return False
        session.task.cancel()
        return True

    def records_sent(self) -> int:
        """Records sent by every session, ended or open, over the process's life."""
        return self.records_sent_total + sum(session.records_sent for session in self.sessions.values())

    async def admit(self, challenge: str, request: AuthRequest) -> str | None:
        """None when ``request`` answers ``challenge`` with a configured key and asks for what is offered."""
        keys = [key.get_secret_value() for key in self.settings.gateway_api_keys]
        if not keys:
            self.auth_failures_total += 1
            return "authentication failed: this gateway has no API keys configured (SENDER_GATEWAY_API_KEYS)"
        if not cram_matches(challenge, request.auth, keys):
            self.auth_failures_total += 1
            return "authentication failed: unknown API key"
        if request.encoding != "dbn" or request.compression != "none" or request.ts_out:
            return "only encoding=dbn, compression=none and ts_out=0 are offered"
        files = await asyncio.to_thread(self.catalog.files)
        datasets = sorted({info.dataset for info in files if info.streamable and info.dataset})
        if request.dataset not in datasets:
            return f"unknown dataset {request.dataset!r}: this sender offers {', '.join(datasets) or 'none'}"
        # counted last, with no await before the session leaves AUTHENTICATING, so two clients cannot both pass
        open_sessions = sum(s.state in _OPEN for s in self.sessions.values())
        if open_sessions >= self.settings.gateway_max_sessions:
            return (
                f"too many sessions: this gateway serves at most {self.settings.gateway_max_sessions} at once"
            )
        return None

    async def plan(self, dataset: str, requests: list[SubscriptionRequest]) -> ReplayPlan:
        files = await asyncio.to_thread(self.catalog.files)
        return plan_replay(dataset, requests, files, self.catalog.data_dir.absolute())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port, *_ = writer.get_extra_info("peername") or ("?", 0)
        session = GatewaySession(
            id=next(self._ids),
            client=f"{host}:{port}",
            speed=self.settings.gateway_speed,
            max_paced_gap_seconds=self.settings.max_paced_gap_seconds,
            records_per_batch=self.settings.gateway_records_per_batch,
        )
        session.task = asyncio.current_task()
        self.sessions[session.id] = session
        try:
            await session.run(reader, writer, self)
        finally:
            del self.sessions[session.id]
            self.ended.append(session)
            self.records_sent_total += session.records_sent
