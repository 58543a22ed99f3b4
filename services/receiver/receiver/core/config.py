"""Receiver settings, read once from the environment (prefix ``RECEIVER_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting has a documented default; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="RECEIVER_")

    host: str = "0.0.0.0"
    """Interface for both the HTTP API and the TCP ingest port."""
    http_port: int = 8082
    ingest_port: int = 9000
    """TCP port the sender streams records to."""
    output_dir: Path = Path("output")
    """Folder for the per-event JSON lines (one file per run)."""
    output_enabled: bool = True
    """Write one JSON line per book event."""
    output_depth: int = 10
    """Levels per side in each JSON line."""
    output_keep_runs: int = 0
    """Output files kept: a new run removes the oldest beyond this many (0 keeps them all)."""
    output_queue_batches: int = 64
    """Batches of event lines waiting for the writer before ingest pauses (backpressure)."""
    max_frame_bytes: int = 16 * 1024 * 1024
    apply_slice_records: int = 4096
    """Records applied between two chances for API reads (at event boundaries): about 4 ms at full speed.
    Each slice has a fixed cost (NumPy columns, a turn of the event loop): 1024 cost 6% of the ingest rate."""
    trade_tape_size: Annotated[int, Field(ge=1)] = 200
    """Newest trades kept for GET /trades."""
    log_level: str = "INFO"
    access_log: bool = False
    """Log every HTTP request (off by default: the UI polls several times a second)."""


@lru_cache
def get_settings() -> Settings:
    """The process's settings."""
    return Settings()
