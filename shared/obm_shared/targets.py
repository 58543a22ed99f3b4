"""``host:port`` targets a service may connect to, given in its settings as a comma-separated list.

A service that connects where a request says (the sender to a receiver, the receiver to a live gateway) only
goes where its operator allowed: otherwise a request could make it a scanner of the network it sits in.
"""

from __future__ import annotations

from collections.abc import Iterable

Target = tuple[str, int]


def parse_target(text: str) -> Target:
    """``host:port`` (an IPv6 host in brackets) as a pair; raises ValueError for anything else."""
    host, _, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text.strip()!r} is not host:port")
    return host, int(port)


def parse_targets(value: object) -> object:
    """A comma-separated setting as a set of targets (for a ``mode="before"`` validator); other values as given."""
    if isinstance(value, str):
        return frozenset(parse_target(item) for item in value.split(",") if item.strip())
    return value


def target_allowed(allowed: Iterable[Target], host: str, port: int) -> bool:
    """True when ``host:port`` is one of ``allowed`` (host names compared without case)."""
    return (host.lower(), port) in {
        (allowed_host.lower(), allowed_port) for allowed_host, allowed_port in allowed
    }
