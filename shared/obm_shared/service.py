"""What every service process shares: the settings every service has, and how it is served."""

from __future__ import annotations

from typing import Any

import uvicorn
from pydantic_settings import BaseSettings

from obm_shared.logs import configure_logging


class ServiceSettings(BaseSettings):
    """Settings every service has; each service subclasses it with its own prefix (``SENDER_`` ...) and port.

    Every setting has a documented default; see the README's configuration table."""

    host: str = "0.0.0.0"
    """Interface the service listens on."""
    http_port: int
    log_level: str = "INFO"
    access_log: bool = False
    """Log every HTTP request (off by default: the UI polls several times a second)."""


def serve(service: str, app: Any, settings: ServiceSettings, **uvicorn_options: Any) -> None:
    """Log as JSON lines naming ``service``, then run ``app`` with uvicorn until SIGTERM or Ctrl-C."""
    configure_logging(service, settings.log_level)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=settings.access_log,
        **uvicorn_options,
    )
