"""What a start would do, checked before anything starts: the file, the target, the sender being idle.

``POST /start-streaming`` and ``POST /start-streaming/check`` both go through :func:`plan_start`, so a check
that passes is a start that would pass, and a start that fails has touched nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sender.catalog import Catalog, FileInfo, NotStreamable
from sender.core.config import Settings
from sender.streamer import Streamer, StreamerBusy, StreamState


class ReceiverNotAllowed(PermissionError):
    """A target outside ``SENDER_ALLOWED_RECEIVERS``; one message whatever the target, so the sender tells
    nothing about hosts it may not reach."""

    def __init__(self) -> None:
        super().__init__("receiver not allowed")


@dataclass(frozen=True)
class StartPlan:
    """A start that passed every check."""

    file: FileInfo
    path: Path
    receiver: tuple[str, int]
    speed: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file.name,
            "records_total": self.file.record_count,
            "receiver": f"{self.receiver[0]}:{self.receiver[1]}",
            "speed": self.speed,
        }


def plan_start(
    catalog: Catalog,
    streamer: Streamer,
    settings: Settings,
    *,
    file: str | None,
    receiver_host: str | None,
    receiver_port: int | None,
    speed: float | None,
) -> StartPlan:
    """The start these arguments ask for; raises what refuses it.

    Raises :class:`ReceiverNotAllowed`, :class:`~sender.catalog.FileNotAllowed`, :class:`FileNotFoundError`,
    :class:`~sender.catalog.NotStreamable` or :class:`~sender.streamer.StreamerBusy`, in that order.
    """
    receiver = (receiver_host or settings.receiver_host, receiver_port or settings.receiver_port)
    if not settings.receiver_allowed(*receiver):
        raise ReceiverNotAllowed
    name = file or settings.default_file
    path = catalog.resolve(name)
    try:
        info = catalog.describe(path)
    except OSError as error:
        raise FileNotFoundError(f"{name!r} cannot be read ({error.strerror})") from None
    if not info.streamable:
        raise NotStreamable(f"{info.name}: {info.problem}")
    job = streamer.job
    if job is not None and job.state == StreamState.STREAMING:
        raise StreamerBusy(f"already streaming {job.file.name} (run {job.run_id})")
    return StartPlan(file=info, path=path, receiver=receiver, speed=speed)
