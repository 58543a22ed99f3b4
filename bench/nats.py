"""The NATS transport (issue 17): one receiver over direct TCP, one over NATS JetStream, two over NATS.

Each configuration is its own stack on loopback, all up at once, and each run measures them in turn, so a busy
minute on the machine falls on every configuration alike. The rate is the file's records over the time from the
sender's start to the last receiver's done (its status polled every :data:`POLL_SECONDS`); CPU seconds are
each process's user + system time (``/proc/<pid>/stat``) over the run. A run counts only when it is exact:
every receiver done with its records balanced, and the receivers' records summing to the file's.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from bench.e2e import RUN_TIMEOUT_SECONDS, pipeline, start_clean
from bench.measure import Figure, figure
from obm_shared.dbn_file import open_mbo_file
from scripts.local_stack import free_port, local_services
from tests.nats_server import NATS_TOKEN, running_nats

PARTITIONS: Final = 4
"""Partitions of each NATS run: the sender's default."""
POLL_SECONDS: Final = 0.05
CLOCK_TICKS_PER_SECOND: Final = os.sysconf("SC_CLK_TCK")
RECEIVER_SETTINGS: Final = {"RECEIVER_OUTPUT_ENABLED": False, "RECEIVER_LOG_LEVEL": "WARNING"}
"""Every receiver as the end-to-end section runs it: no event lines, the recording on (the default)."""


@dataclass
class Configuration:
    """One way of moving the records: its sender, its nats-server (if any) and its receivers."""

    name: str
    key: str
    """The configuration in the summary's keys (``tcp_1``, ``nats_1``, ``nats_2``)."""
    sender_url: str
    receiver_urls: list[str]
    output_dirs: list[Path]
    pids: dict[str, int] = field(default_factory=dict)
    """The processes whose CPU is measured, by role (``sender``, ``nats_server``, ``receiver_1``...)."""
    roles: dict[str, str] = field(default_factory=dict)
    """Each role as the table names it."""

    @property
    def over_nats(self) -> bool:
        return "nats_server" in self.pids


@dataclass(frozen=True)
class Measured:
    """One exact run of one configuration."""

    rate: float
    """The file's records per second, from the sender's start to the last receiver's done."""
    cpu_seconds: dict[str, float]
    """Each process's CPU seconds over the run, by role."""
    records: dict[str, int]
    """Each receiver's records, by role."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime and stime are the stat line's 14th and 15th fields, the 12th and 13th after the command's name
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


@contextmanager
def tcp_configuration(data_dir: Path) -> Iterator[Configuration]:
    """A sender streaming to one receiver over direct TCP, as the end-to-end section does."""
    with pipeline(data_dir, output_enabled=False) as (stack, output_dir):
        yield Configuration(
            "1 receiver, TCP",
            "tcp_1",
            stack.urls["sender"],
            [stack.urls["receiver"]],
            [output_dir],
            {"sender": stack.processes["sender"].pid, "receiver_1": stack.processes["receiver"].pid},
            {"sender": "sender", "receiver_1": "receiver"},
        )


@contextmanager
def nats_configuration(data_dir: Path, shares: list[str]) -> Iterator[Configuration]:
    """A nats-server, a sender publishing to it in :data:`PARTITIONS` partitions, and one receiver per share
    (its ``RECEIVER_PARTITIONS``)."""
    count = len(shares)
    name = f"{count} receiver{'s' if count > 1 else ''}, NATS"
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        root = Path(scratch)
        server = stack.enter_context(running_nats(root / "nats"))
        assert server.process is not None
        sender = stack.enter_context(
            local_services(
                {
                    "sender": {
                        "SENDER_TRANSPORT": "nats",
                        "SENDER_NATS_URL": server.url,
                        "SENDER_NATS_TOKEN": NATS_TOKEN,
                        "SENDER_NATS_PARTITIONS": PARTITIONS,
                        "SENDER_DATA_DIR": data_dir,
                        "SENDER_LOG_LEVEL": "WARNING",
                    }
                },
                root,
                {"sender": free_port()},
            )
        )
        configuration = Configuration(
            name,
            f"nats_{count}",
            sender.urls["sender"],
            [],
            [],
            {"sender": sender.processes["sender"].pid, "nats_server": server.process.pid},
            {"sender": "sender", "nats_server": "nats-server"},
        )
        for index, partitions in enumerate(shares, start=1):
            receiver_root = root / f"receiver-{index}"
            output_dir = receiver_root / "output"
            output_dir.mkdir(parents=True)
            receiver = stack.enter_context(
                local_services(
                    {
                        "receiver": RECEIVER_SETTINGS
                        | {
                            "RECEIVER_TRANSPORT": "nats",
                            "RECEIVER_NATS_URL": server.url,
                            "RECEIVER_NATS_TOKEN": NATS_TOKEN,
                            "RECEIVER_PARTITIONS": partitions,
                            "RECEIVER_OUTPUT_DIR": output_dir,
                            "RECEIVER_INGEST_PORT": free_port(),
                        }
                    },
                    receiver_root,
                    {"receiver": free_port()},
                )
            )
            configuration.receiver_urls.append(receiver.urls["receiver"])
            configuration.output_dirs.append(output_dir)
            configuration.pids[f"receiver_{index}"] = receiver.processes["receiver"].pid
            configuration.roles[f"receiver_{index}"] = (
                "receiver" if count == 1 else f"receiver {index} (partitions {partitions})"
            )
        yield configuration


def measure_once(configuration: Configuration, file: Path, records: int) -> Measured:
    """One replay of ``file`` (``records`` records) through ``configuration``, once it is checked exact."""
    for output_dir in configuration.output_dirs:
        start_clean(output_dir)
    with httpx.Client(timeout=10) as client:
        if not configuration.over_nats:
            client.post(f"{configuration.receiver_urls[0]}/start-processing", json={}).raise_for_status()
        before = {role: cpu_seconds(pid) for role, pid in configuration.pids.items()}
        started = time.perf_counter()
        answer = client.post(
            f"{configuration.sender_url}/start-streaming", json={"file": file.name}, timeout=60
        )
        answer.raise_for_status()
        run_id = answer.json()["run_id"] if configuration.over_nats else None
        runs = receivers_done(client, configuration, run_id)
        elapsed = time.perf_counter() - started
        after = {role: cpu_seconds(pid) for role, pid in configuration.pids.items()}
        sent = sender_done(client, configuration.sender_url)
    check_exact(configuration.name, runs, sent, records)
    return Measured(
        records / elapsed,
        {role: after[role] - before[role] for role in before},
        {f"receiver_{index}": run["records_received"] for index, run in enumerate(runs, start=1)},
    )


def receivers_done(
    client: httpx.Client, configuration: Configuration, run_id: str | None
) -> list[dict[str, Any]]:
    """Each receiver's run once all have ended (of ``run_id``, when NATS names the run)."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    ended: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for url in configuration.receiver_urls:
            if url in ended:
                continue
            run: dict[str, Any] | None = client.get(f"{url}/status").json()["run"]
            if (
                run is not None
                and (run_id is None or run["run_id"] == run_id)
                and run["state"] not in ("ready", "receiving")
            ):
                ended[url] = run
        if len(ended) == len(configuration.receiver_urls):
            return [ended[url] for url in configuration.receiver_urls]
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"{configuration.name}: the receivers did not end in {RUN_TIMEOUT_SECONDS} s")


def sender_done(client: httpx.Client, sender_url: str) -> dict[str, Any]:
    """The sender's run once it is no longer streaming (its last acknowledgement may follow the receivers')."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"{sender_url}/status").json()["run"]
        if run["state"] != "streaming":
            return run
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"the sender did not end its run in {RUN_TIMEOUT_SECONDS} s")


def check_exact(name: str, runs: list[dict[str, Any]], sent: dict[str, Any], records: int) -> None:
    """Raises unless the sender sent the file's records, every receiver is done with its records balanced,
    and the receivers' records sum to the file's."""
    if sent["state"] != "done" or sent["records_sent"] != records:
        raise RuntimeError(f"{name}: the sender's run is not the whole file ({records} records): {sent}")
    for run in runs:
        accounting = run["accounting"]
        booked = accounting["applied"] + accounting["ignored"] + sum(accounting["skipped"].values())
        if (
            run["state"] != "done"
            or not run["accounted"]
            or booked != accounting["records"]
            or run["records_received"] != accounting["records"]
        ):
            raise RuntimeError(f"{name}: a receiver's run is not exact: {run}")
    received = sum(run["records_received"] for run in runs)
    if received != records:
        raise RuntimeError(f"{name}: the receivers received {received} records of the file's {records}")


def nats_figures(file: Path, runs: int) -> tuple[list[Figure], dict[str, float]]:
    """The three configurations' rates, CPU seconds per process and the goals' ratios over ``runs`` runs, each
    run measuring every configuration in turn; and the per-record CPU costs (medians, µs) for the summary."""
    records = open_mbo_file(file).count_records()
    measured: dict[str, list[Measured]] = {}
    with ExitStack() as stack:
        configurations = [
            stack.enter_context(tcp_configuration(file.parent)),
            stack.enter_context(nats_configuration(file.parent, ["0,1,2,3"])),
            stack.enter_context(nats_configuration(file.parent, ["0,1", "2,3"])),
        ]
        for _ in range(runs):
            for configuration in configurations:
                measured.setdefault(configuration.key, []).append(measure_once(configuration, file, records))
    tcp, one, two = (measured[configuration.key] for configuration in configurations)
    figures = [
        figure(
            f"end to end, {configuration.name}",
            "records/s",
            [run.rate for run in measured[configuration.key]],
        )
        for configuration in configurations
    ]
    figures += [
        figure(
            "1 receiver over NATS / over TCP",
            "%",
            [100 * nats.rate / direct.rate for nats, direct in zip(one, tcp, strict=True)],
            ">= 90",
        ),
        figure(
            "2 receivers over NATS / 1",
            "x",
            [pair.rate / single.rate for pair, single in zip(two, one, strict=True)],
            ">= 1.4",
        ),
    ]
    summary: dict[str, float] = {"nats_records": records}
    for configuration in configurations:
        each = measured[configuration.key]
        for role, label in configuration.roles.items():
            seconds = [run.cpu_seconds[role] for run in each]
            figures.append(figure(f"CPU, {label} ({configuration.name})", "s", seconds))
            summary[f"{configuration.key}_{role}_cpu_us_per_record"] = (
                1e6 * statistics.median(seconds) / records
            )
        for role, received in each[0].records.items():
            summary[f"{configuration.key}_{role}_records"] = received
    return figures, summary
