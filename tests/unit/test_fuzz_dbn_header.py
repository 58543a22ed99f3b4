"""Fuzzing the DBN file reader: whatever a file in the data folder holds (arbitrary bytes, or a real header with
bytes changed, raw or zstd), everything the sender does with it (open, metadata, count, read) either works or
raises :class:`DbnFileError`, which the listing shows as the file's problem. Never another exception, and never
a read of what the file merely claims.

Bounded: a few hundred examples per property, each with a deadline.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obm_shared.dbn_file import DBN_PRELUDE_BYTES, DbnFileError, open_mbo_file
from tests.conftest import real_file

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
HEADER_FIXTURES = [
    "test_data.mbo.dbn",
    "test_data.mbo.v1.dbn.zst",
    "test_data.mbo.v3.dbn.zst",
    "test_data.definition.dbn",
]
RECORDS_AFTER_HEADER = 2 * 56


def decompressed(data: bytes) -> bytes:
    if data.startswith(zstandard.FRAME_HEADER):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


@pytest.fixture(scope="module")
def headers() -> list[bytes]:
    """Real DBN files (v1-v3, MBO and not), decompressed: prelude, metadata and the first records."""
    files = [decompressed(real_file(f"fixtures/{name}").read_bytes()) for name in HEADER_FIXTURES]
    return [
        data[: DBN_PRELUDE_BYTES + int.from_bytes(data[4:8], "little") + RECORDS_AFTER_HEADER]
        for data in files
    ]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def everything_the_sender_does(path: Path) -> None:
    """Open, describe, count and read a file, as the catalog and the streamer do."""
    mbo_file = open_mbo_file(path)
    mbo_file.metadata(record_count=mbo_file.count_records())
    for _ in mbo_file.batches(1):
        pass


def assert_only_dbn_file_errors(folder: Path, data: bytes, compressed: bool) -> None:
    path = folder / ("fuzz.mbo.dbn.zst" if compressed else "fuzz.mbo.dbn")
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compressed else data)
    try:
        everything_the_sender_does(path)
    except DbnFileError as error:
        assert error.path == path


@FUZZ
@given(data=st.binary(max_size=1024), compressed=st.booleans(), magic=st.booleans())
def test_arbitrary_bytes_raise_only_dbn_file_errors(
    scratch: Path, data: bytes, compressed: bool, magic: bool
) -> None:
    assert_only_dbn_file_errors(scratch, (b"DBN" if magic else b"") + data, compressed)


@FUZZ
@given(
    which=st.integers(0, len(HEADER_FIXTURES) - 1),
    edits=st.lists(st.tuples(st.integers(min_value=3), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
    compressed=st.booleans(),
)
def test_real_headers_with_bytes_changed_raise_only_dbn_file_errors(
    scratch: Path,
    headers: list[bytes],
    which: int,
    edits: list[tuple[int, int]],
    cut: int | None,
    compressed: bool,
) -> None:
    """Version byte, length, and metadata fields (counts, lengths, symbols) changed; the magic kept."""
    data = bytearray(headers[which])
    for position, value in edits:
        data[3 + (position - 3) % (len(data) - 3)] = value
    assert_only_dbn_file_errors(scratch, bytes(data[:cut] if cut is not None else data), compressed)


@FUZZ
@given(
    claim=st.integers(0, 2**32 - 1), which=st.integers(0, len(HEADER_FIXTURES) - 1), compressed=st.booleans()
)
def test_any_claimed_metadata_length_raises_only_dbn_file_errors(
    scratch: Path, headers: list[bytes], claim: int, which: int, compressed: bool
) -> None:
    data = headers[which][:4] + claim.to_bytes(4, "little") + headers[which][DBN_PRELUDE_BYTES:]
    assert_only_dbn_file_errors(scratch, data, compressed)


def test_the_unchanged_headers_read(scratch: Path, headers: list[bytes]) -> None:
    # guards the properties above: the MBO headers they mutate are readable to start with
    for data in headers[:3]:
        for compressed in (False, True):
            path = scratch / ("ok.mbo.dbn.zst" if compressed else "ok.mbo.dbn")
            path.write_bytes(zstandard.ZstdCompressor().compress(data) if compressed else data)
            everything_the_sender_does(path)
