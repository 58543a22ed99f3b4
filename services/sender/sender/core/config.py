"""Sender settings, read once from the environment (prefix ``SENDER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from demo_market.writer import DEFAULT_RECORDS
from obm_shared.limits import Speed
from obm_shared.live_protocol import validate_api_key
from obm_shared.service import ServiceSettings
from obm_shared.targets import Target, parse_targets, target_allowed


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
    allowed_receivers: Annotated[frozenset[Target], NoDecode] = frozenset()
    """Comma-separated ``host:port`` targets a request may name; empty: ``receiver_host:receiver_port`` only."""
    records_per_batch: int = 16_384
    connect_timeout_seconds: float = 5.0
    send_timeout_seconds: float = 10.0
    """A receiver that takes no data for this long fails the run (no hang)."""
    max_paced_gap_seconds: float = 5.0
    """In paced replay, a longer quiet spell in market time is shortened to this."""
    transport: Literal["tcp", "nats"] = "tcp"
    """How a replay reaches its receivers: ``tcp`` to the receiver's ingest port, ``nats`` through a NATS JetStream
    stream split into ``nats_partitions`` by instrument (each receiver consumes its share)."""
    nats_url: str = "nats://127.0.0.1:4222"
    nats_token: SecretStr | None = None
    """The NATS server's token; unset: ``OBM_API_TOKEN`` (what the scale profile's server requires)."""
    nats_partitions: Annotated[int, Field(ge=1, le=1024)] = 4
    """Partitions a run is split into by instrument (``obm_shared.nats_stream.partition_of``)."""
    nats_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    """A publish that NATS has not acknowledged within this long, retries included, fails the run."""
    nats_stream_max_bytes: Annotated[int, Field(ge=1)] = 10_000_000_000
    """Bytes the records stream keeps (10 GB): when full, a publish is refused and the run fails (nothing is
    dropped silently)."""
    nats_stream_max_age_seconds: Annotated[float, Field(gt=0)] = 86_400.0
    """Age after which the records stream drops a message (a day): a receiver can rebuild a run that recent."""
    gateway_port: Annotated[int, Field(ge=0, le=65535)] = 13000
    """TCP port of the Databento-compatible live gateway (Databento's own port); 0 turns the gateway off."""
    gateway_api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Comma-separated API keys (Databento's format) a gateway client may authenticate with."""
    gateway_max_sessions: Annotated[int, Field(ge=1)] = 8
    gateway_speed: Speed | None = None
    """Market-time speed of every gateway session; none: as fast as each client reads."""
    gateway_records_per_batch: Annotated[int, Field(ge=1)] = 65_536
    """Records read, filtered and written at a time by a gateway session."""

    @field_validator("gateway_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(SecretStr(validate_api_key(key.strip())) for key in value.split(",") if key.strip())
        return value

    @field_validator("allowed_receivers", mode="before")
    @classmethod
    def _split_targets(cls, value: object) -> object:
        return parse_targets(value)

    def receiver_allowed(self, host: str, port: int) -> bool:
        """True when the sender may stream to ``host:port`` (host names compared without case)."""
        return target_allowed(
            self.allowed_receivers or {(self.receiver_host, self.receiver_port)}, host, port
        )
