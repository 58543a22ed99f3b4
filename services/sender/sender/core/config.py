"""Sender settings, read once from the environment (prefix ``SENDER_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from demo_market.writer import DEFAULT_RECORDS
from obm_shared.service import ServiceSettings


class Settings(ServiceSettings):
    """Every setting has a documented default; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="SENDER_")

    http_port: int = 8081
    data_dir: Path = Path("data")
    """Folder of DBN files that may be streamed (searched recursively); nothing outside it is served."""
    default_file: str = "demo/demo.mbo.dbn"
    """File streamed when a request names none (relative to ``data_dir``)."""
    demo_records: int = DEFAULT_RECORDS
    """Size of the demo file that ``python -m sender.seed`` writes into an empty data folder."""
    receiver_host: str = "127.0.0.1"
    receiver_port: int = 9000
    records_per_batch: int = 16_384
    connect_timeout_seconds: float = 5.0
    send_timeout_seconds: float = 10.0
    """A receiver that takes no data for this long fails the run (no hang)."""
    max_paced_gap_seconds: float = 5.0
    """In paced replay, a longer quiet spell in market time is shortened to this."""
