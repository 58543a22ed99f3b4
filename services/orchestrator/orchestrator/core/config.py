"""Orchestrator settings, read once from the environment (prefix ``ORCHESTRATOR_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from obm_shared.service import ServiceSettings


class Settings(ServiceSettings):
    """Every setting has a documented default; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_")

    http_port: int = 8000
    sender_url: str = "http://127.0.0.1:8081"
    receiver_url: str = "http://127.0.0.1:8082"
    receiver_urls: Annotated[tuple[str, ...], NoDecode] = ()
    """Comma-separated URLs of several receivers, each booking its share of the instruments (NATS transport);
    empty: ``receiver_url`` alone. A URL whose host resolves to several addresses (a scaled compose service)
    stands for one receiver per address."""
    receiver_resolve_seconds: Annotated[float, Field(gt=0)] = 5.0
    """How often the receivers' host names are resolved again, so receivers scaled up or down are seen."""
    receiver_ingest_host: str = "127.0.0.1"
    """The receiver's ingest host as the sender reaches it (``receiver`` inside compose)."""
    receiver_ingest_port: int = 9000
    request_timeout_seconds: float = 5.0
    frontend_dir: Path = Path(__file__).resolve().parents[4] / "frontend"
    """Folder of the web UI (index.html and its modules)."""
    book_read_max_age_seconds: float = 0.05
    """Identical book reads (``GET /api/order-book`` and the live feed's) within this window share one
    receiver request."""
    timeline_max_age_seconds: float = 1.0
    """Identical timeline reads (``GET /api/timeline``) within this window share one receiver request."""
    live_updates_per_second: float = 10.0
    """How often the live feed pushes to browsers (coalesced to screen pace)."""

    @field_validator("receiver_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(url.strip() for url in value.split(",") if url.strip())
        return value

    @property
    def receivers(self) -> list[str]:
        """The receivers' URLs as configured (before their host names are resolved)."""
        return list(self.receiver_urls) or [self.receiver_url]
