"""What every service process shares: the settings every service has, and how it is served."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from obm_shared.logs import configure_logging
from obm_shared.metrics import add_metrics
from obm_shared.request_limits import limit_requests

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class ServiceSettings(BaseSettings):
    """Settings every service has; each service subclasses it with its own prefix (``SENDER_`` ...) and port.

    Every setting has a documented default; see the README's configuration table."""

    # a setting refused at start is named, never shown: it may be a secret (the token, a gateway key)
    model_config = SettingsConfigDict(populate_by_name=True, hide_input_in_errors=True)

    host: str = "127.0.0.1"
    """Interface the service listens on; beyond loopback only with ``OBM_API_TOKEN`` set."""
    http_port: int
    log_level: str = "INFO"
    access_log: bool = False
    """Log every HTTP request (off by default: the UI polls several times a second)."""
    api_token: SecretStr | None = Field(default=None, validation_alias="OBM_API_TOKEN", min_length=16)
    """The secret shared by the services: state-changing requests need it as a bearer token when set."""
    read_auth: Literal["open", "token"] = Field(default="open", validation_alias="OBM_READ_AUTH")
    """``token`` protects reads and the live feed too."""


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: ServiceSettings) -> None:
    """Refuse to listen beyond loopback without a token: anyone who reached the port could change state."""
    if settings.api_token is None and not is_loopback(settings.host):
        raise SystemExit(
            f"refusing to listen on {settings.host} without OBM_API_TOKEN: set a token of at least 16"
            " characters (make up writes one to .env), or listen on 127.0.0.1"
        )


def service_app(
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    *,
    title: str,
    description: str,
    lifespan: Lifespan,
) -> FastAPI:
    """A service's FastAPI app: its routers, bounded requests and ``GET /metrics``; ``settings`` where the
    guards read them, set before the first request."""
    app = FastAPI(title=title, description=description, lifespan=lifespan)
    app.state.settings = settings
    for router in routers:
        app.include_router(router)
    limit_requests(app)
    add_metrics(app)
    return app


def serve(service: str, app: Any, settings: ServiceSettings, **uvicorn_options: Any) -> None:
    """Log as JSON lines naming ``service``, then run ``app`` with uvicorn until SIGTERM or Ctrl-C."""
    configure_logging(service, settings.log_level)
    check_exposure(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=settings.access_log,
        **uvicorn_options,
    )
