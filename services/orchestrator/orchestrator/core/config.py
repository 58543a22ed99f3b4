"""Orchestrator settings, read once from the environment (prefix ``ORCHESTRATOR_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from obm_shared.service import ServiceSettings


class Settings(ServiceSettings):
    """Every setting has a documented default; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_")

    http_port: int = 8000
    sender_url: str = "http://127.0.0.1:8081"
    receiver_url: str = "http://127.0.0.1:8082"
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
