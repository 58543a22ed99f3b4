"""The pipeline's parts alone: DBN read, wire encode, wire decode, book apply."""

from __future__ import annotations

from pathlib import Path

from bench.measure import Figure, rate
from obm_shared.dbn_file import open_mbo_file
from obm_shared.framing import FrameDecoder, FrameEncoder, StreamValidator
from obm_shared.ids import new_run_id
from obm_shared.messages import PROTOCOL_VERSION, Handshake, RecordBatch
from receiver.book.adapter import apply_records
from receiver.book.market import Market

RECORDS_PER_BATCH = 16_384
DECODE_CHUNK_BYTES = 1 << 20


def measure_parts(path: Path, runs: int) -> list[Figure]:
    """Records/s of each part on the workload file ``path``."""
    mbo_file = open_mbo_file(path)
    batches = list(mbo_file.batches(RECORDS_PER_BATCH))
    records = sum(len(batch) for batch in batches)
    encoder = FrameEncoder()
    handshake = encoder.encode(Handshake(PROTOCOL_VERSION, mbo_file.metadata(), new_run_id(), proof=b""))

    def read() -> None:
        for _ in mbo_file.batches(RECORDS_PER_BATCH):
            pass

    def encode() -> list[bytes]:
        first = 0
        frames = [handshake]
        for seq, batch in enumerate(batches):
            frames.append(encoder.encode(RecordBatch.from_array(seq, first, batch)))
            first += len(batch)
        return frames

    stream = b"".join(encode())

    def decode() -> None:
        decoder, validator = FrameDecoder(), StreamValidator()
        for start in range(0, len(stream), DECODE_CHUNK_BYTES):
            for message in decoder.feed(stream[start : start + DECODE_CHUNK_BYTES]):
                validator.check(message)
                if isinstance(message, RecordBatch):
                    message.array()
        assert validator.records_received == records

    def apply() -> None:
        market = Market()
        for batch in batches:
            apply_records(market, batch)
        assert market.accounting.balanced and market.accounting.records == records

    return [
        rate("DBN read", records, runs, read),
        rate("wire encode", records, runs, encode),
        rate("wire decode", records, runs, decode),
        rate("book apply", records, runs, apply),
    ]


def wire_round_trip_rate(parts: list[Figure]) -> float:
    """Records/s of encode followed by decode, from the two medians."""
    encode, decode = (
        next(f.median for f in parts if f.name == name) for name in ("wire encode", "wire decode")
    )
    return float(1 / (1 / encode + 1 / decode))
