"""Receiver settings, read once from the environment (prefix ``RECEIVER_``)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from obm_shared.limits import MAX_FRAME_BYTES
from obm_shared.service import ServiceSettings
from obm_shared.targets import Target, parse_targets, target_allowed


class Settings(ServiceSettings):
    """Every setting has a documented default; see the README's configuration table.

    ``host`` is the interface for both the HTTP API and the TCP ingest port."""

    model_config = SettingsConfigDict(env_prefix="RECEIVER_")

    http_port: int = 8082
    ingest_port: int = 9000
    """TCP port the sender streams records to."""
    output_dir: Path = Path("output")
    """Folder for the per-event JSON lines (one file per run)."""
    output_enabled: bool = True
    """Write one JSON line per book event."""
    output_depth: int = 10
    """Levels per side in each JSON line."""
    output_keep_runs: Annotated[int, Field(ge=1)] = 10
    """Output files kept, complete or not: a new run's file removes the oldest beyond this many."""
    output_max_bytes: Annotated[int, Field(ge=1)] = 10_000_000_000
    """Bytes of earlier output files kept (10 GB): a new run's file removes the oldest beyond this many."""
    output_queue_batches: int = 64
    """Batches of event lines waiting for the writer before ingest pauses (backpressure)."""
    max_frame_bytes: int = MAX_FRAME_BYTES
    """Largest wire frame payload accepted, in bytes."""
    handshake_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    """A connection that has not sent an authenticated handshake within this long is closed."""
    stall_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    """An accepted stream that sends nothing for this long fails its run; longer than the protocol's
    heartbeat interval (``obm_shared.messages.HEARTBEAT_SECONDS``)."""
    max_pending_connections: Annotated[int, Field(ge=1)] = 16
    """Connections allowed to wait for their handshake at once; more are closed at once."""
    apply_slice_records: int = 4096
    """Records applied between two chances for API reads (at event boundaries): large enough to amortise
    each slice's fixed cost (NumPy columns, a turn of the event loop), small enough that reads wait little."""
    trade_tape_size: Annotated[int, Field(ge=1)] = 200
    """Newest trades kept for GET /trades."""
    recording_enabled: bool = True
    """Record each run's stream in the output folder (``<run_id>.dbn``, a DBN file) with checkpoints of its books
    (``<run_id>.checkpoints/``), so the books at any point of it can be asked for; counted with the run's other
    files by ``output_keep_runs`` and ``output_max_bytes``."""
    recording_queue_batches: Annotated[int, Field(ge=1)] = 64
    """Record batches and checkpoints waiting for the recording's writer before ingest pauses (backpressure)."""
    checkpoint_records: Annotated[int, Field(ge=1)] = 65_536
    """Records between two checkpoints of the books (taken at the first event boundary after this many): the most
    a seek applies on top of its checkpoint."""
    max_concurrent_seeks: Annotated[int, Field(ge=1)] = 2
    """Books at a point rebuilt at once; further requests wait their turn."""
    history_buckets: Annotated[int, Field(ge=2)] = 2000
    """Most time buckets of the liquidity history over a run: two neighbours merge when it would have more."""
    history_levels: Annotated[int, Field(ge=1, le=1000)] = 10
    """Price levels per side the liquidity history keeps at the end of each bucket."""
    live_gateways: Annotated[frozenset[Target], NoDecode] = frozenset({("127.0.0.1", 13000)})
    """Comma-separated ``host:port`` live gateways a live run may book from (a sender's replay gateway, or
    Databento's, e.g. ``glbx-mdp3.lsg.databento.com:13000``); any other is refused."""
    live_connect_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    """A live gateway that has not authenticated and started the session within this long is given up."""

    transport: Literal["tcp", "nats"] = "tcp"
    """Where runs come from: ``tcp``, a sender streaming to the ingest port; ``nats``, runs announced on NATS
    JetStream, of which this receiver books its ``partitions`` (the ingest port is then not opened)."""
    nats_url: str = "nats://127.0.0.1:4222"
    nats_token: SecretStr | None = None
    """The NATS server's token; unset: ``OBM_API_TOKEN`` (what the scale profile's server requires)."""
    partitions: Annotated[frozenset[Annotated[int, Field(ge=0)]], NoDecode] = frozenset()
    """Comma-separated partitions of each NATS run this receiver books (e.g. ``0,2``); empty (the default): the
    partitions dealt to it among the live receivers, held through JetStream leases (``receiver.partition_leases``)."""
    id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][-_=.A-Za-z0-9]*$")] = Field(
        default_factory=socket.gethostname
    )
    """This receiver's name among the receivers of a NATS server: the host name, so a restarted container keeps
    its partitions. It names the receiver's folder in the output folder, so it starts with a letter or digit."""

    @property
    def runs_dir(self) -> Path:
        """Where the run files go: the output folder; under NATS, where scaled receivers may share one output
        folder and each books its own share of the same run id, the receiver's own folder in it."""
        return self.output_dir / self.id if self.transport == "nats" else self.output_dir

    @field_validator("partitions", mode="before")
    @classmethod
    def _split_partitions(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("live_gateways", mode="before")
    @classmethod
    def _split_gateways(cls, value: object) -> object:
        return parse_targets(value)

    def gateway_allowed(self, host: str, port: int) -> bool:
        """True when a live run may book from ``host:port``."""
        return target_allowed(self.live_gateways, host, port)
