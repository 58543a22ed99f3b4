"""Reading DBN MBO files: versions 1-3, raw and zstd, metadata, counts, bounded batches, and a clear
:class:`DbnFileError` naming the file for everything that is not a readable MBO file.

Broken files are made in ``tmp_path`` only (never in the repository or the data folder).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zstandard

from obm_shared.dbn_file import MAX_METADATA_BYTES, DbnFileError, MboFile, open_mbo_file
from obm_shared.records import MBO_DTYPE, MboRecord, array_to_records

# (file, DBN version) of the official two-record MBO fixtures
MBO_FIXTURES = [
    ("test_data.mbo.dbn", 2),
    ("test_data.mbo.v1.dbn.zst", 1),
    ("test_data.mbo.v2.dbn.zst", 2),
    ("test_data.mbo.v3.dbn.zst", 3),
]

# (file, schema it holds)
WRONG_SCHEMA_FIXTURES = [
    ("test_data.mbp-1.dbn", "mbp-1"),
    ("test_data.mbp-10.dbn", "mbp-10"),
    ("test_data.trades.dbn", "trades"),
    ("test_data.definition.dbn", "definition"),
    ("esu4-glbx-mdp3.mbp-1.dbn.zst", "mbp-1"),
]

# the two records every MBO fixture holds, whatever its version and compression
FIXTURE_RECORDS = [
    MboRecord(
        ts_recv=1609160400000704060,
        ts_event=1609160400000429831,
        rtype=0xA0,
        publisher_id=1,
        instrument_id=5482,
        action="C",
        side="A",
        price=3_722_750_000_000,
        size=1,
        channel_id=0,
        order_id=647784973705,
        flags=128,
        ts_in_delta=22993,
        sequence=1170352,
    ),
    MboRecord(
        ts_recv=1609160400000711344,
        ts_event=1609160400000431665,
        rtype=0xA0,
        publisher_id=1,
        instrument_id=5482,
        action="C",
        side="A",
        price=3_723_000_000_000,
        size=1,
        channel_id=0,
        order_id=647784973631,
        flags=128,
        ts_in_delta=19621,
        sequence=1170353,
    ),
]


def read_all(mbo_file: MboFile, records_per_batch: int = 10_000) -> np.ndarray:
    batches = list(mbo_file.batches(records_per_batch))
    return np.concatenate(batches) if batches else np.zeros(0, MBO_DTYPE)


def open_and_read(path: Path) -> int:
    """Everything the sender does with a file: open, count, read. Returns the records read."""
    mbo_file = open_mbo_file(path)
    mbo_file.count_records()
    return len(read_all(mbo_file))


def assert_names_the_file(error: DbnFileError, path: Path) -> None:
    assert error.path == path
    assert str(error).startswith(f"{path.name}: "), f"error {str(error)!r} does not start with the file name"
    assert error.problem, "error has no problem description"


# --- the MBO fixtures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "version"), MBO_FIXTURES)
def test_fixture_reads_the_same_two_records_in_every_version(
    fixtures_dir: Path, name: str, version: int
) -> None:
    mbo_file = open_mbo_file(fixtures_dir / name)
    records = read_all(mbo_file)
    assert records.dtype == MBO_DTYPE
    assert len(records) == 2, f"{name}: {len(records)} records, expected 2"
    assert array_to_records(records) == FIXTURE_RECORDS, f"{name}: records differ from the v2 raw fixture"
    assert mbo_file.metadata().dbn_version == version


@pytest.mark.parametrize(("name", "version"), MBO_FIXTURES)
def test_fixture_metadata(fixtures_dir: Path, name: str, version: int) -> None:
    metadata = open_mbo_file(fixtures_dir / name).metadata(record_count=2)
    assert metadata.source == name
    assert metadata.dataset == "GLBX.MDP3"
    assert metadata.schema == "mbo"
    assert metadata.symbols == ["ESH1"]
    assert metadata.instruments == {5482: "ESH1"}
    assert metadata.start_ns == 1609160400000000000
    assert metadata.end_ns == 1609200000000000000
    assert metadata.record_count == 2
    assert metadata.dbn_version == version


def test_metadata_without_a_count_says_unknown(fixtures_dir: Path) -> None:
    assert open_mbo_file(fixtures_dir / "test_data.mbo.dbn").metadata().record_count is None


@pytest.mark.parametrize(("name", "version"), MBO_FIXTURES)
def test_fixture_count_records_equals_records_read(fixtures_dir: Path, name: str, version: int) -> None:
    mbo_file = open_mbo_file(str(fixtures_dir / name))  # a str path works too
    assert mbo_file.count_records() == len(read_all(mbo_file)) == 2


@pytest.mark.parametrize(("name", "version"), MBO_FIXTURES)
def test_fixture_batches_of_one(fixtures_dir: Path, name: str, version: int) -> None:
    batches = list(open_mbo_file(fixtures_dir / name).batches(1))
    assert [len(batch) for batch in batches] == [1, 1]


# --- the real files -----------------------------------------------------------------------------------------

REAL_FILES = [
    # fixture, records, DBN version, dataset, instruments
    ("clx5", 38_212, 3, "GLBX.MDP3", {432669: "CLX5"}),
    ("esm4", 13_796, 1, "GLBX.MDP3", {5602: "ESM4"}),
    ("dbeq", 286_130, 3, "DBEQ.BASIC", {7151: "GOOG", 7152: "GOOGL"}),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "records", "version", "dataset", "instruments"), REAL_FILES)
def test_real_file_metadata_and_counts(
    request: pytest.FixtureRequest,
    name: str,
    records: int,
    version: int,
    dataset: str,
    instruments: dict[int, str],
) -> None:
    path: Path = request.getfixturevalue(name)
    mbo_file = open_mbo_file(path)
    metadata = mbo_file.metadata()
    assert (metadata.dataset, metadata.schema, metadata.dbn_version) == (dataset, "mbo", version)
    assert metadata.instruments == instruments
    assert metadata.symbols == sorted(instruments.values())
    counted = mbo_file.count_records()
    read = len(read_all(mbo_file, 65_536))
    assert counted == records, f"{path.name}: count_records says {counted}, expected {records}"
    assert read == records, f"{path.name}: read {read} records, expected {records}"


@pytest.mark.realdata
@pytest.mark.parametrize("records_per_batch", [7, 1_000, 65_536])
def test_batches_never_exceed_the_requested_size(clx5: Path, records_per_batch: int) -> None:
    mbo_file = open_mbo_file(clx5)
    whole = read_all(mbo_file, 100_000)
    sizes = []
    batches = []
    for batch in mbo_file.batches(records_per_batch):
        assert 0 < len(batch) <= records_per_batch, (
            f"batch of {len(batch)} records, limit {records_per_batch}"
        )
        sizes.append(len(batch))
        batches.append(batch)
    assert sum(sizes) == 38_212
    assert len(sizes) == -(-38_212 // records_per_batch), "batches should be full except the last"
    assert np.concatenate(batches).tobytes() == whole.tobytes(), (
        "batches are not consecutive slices of the file"
    )


@pytest.mark.realdata
def test_zstd_batches_are_bounded_too(dbeq: Path) -> None:
    sizes = [len(batch) for batch in open_mbo_file(dbeq).batches(10_000)]
    assert max(sizes) <= 10_000
    assert sum(sizes) == 286_130


# --- files that are not readable MBO files ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "schema"), WRONG_SCHEMA_FIXTURES)
def test_wrong_schema_is_refused_by_name(fixtures_dir: Path, name: str, schema: str) -> None:
    path = fixtures_dir / name
    with pytest.raises(DbnFileError) as raised:
        open_mbo_file(path)
    assert_names_the_file(raised.value, path)
    assert "not MBO" in str(raised.value), f"{raised.value} does not say the file is not MBO"
    assert schema in str(raised.value), f"{raised.value} does not name the schema {schema}"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.dbn"
    with pytest.raises(DbnFileError, match="no such file") as raised:
        open_mbo_file(path)
    assert_names_the_file(raised.value, path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DbnFileError, match="no such file"):
        open_mbo_file(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dbn"
    path.write_bytes(b"")
    with pytest.raises(DbnFileError) as raised:
        open_and_read(path)
    assert_names_the_file(raised.value, path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.dbn", b"this is a text file, not DBN\n" * 20),
        ("garbage.dbn.zst", bytes(range(256)) * 4),
        ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(500)),
    ],
)
def test_non_dbn_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DbnFileError) as raised:
        open_and_read(path)
    assert_names_the_file(raised.value, path)


@pytest.mark.realdata
def test_truncated_raw_file(clx5: Path, tmp_path: Path) -> None:
    path = tmp_path / "CLX5_truncated.dbn"
    path.write_bytes(clx5.read_bytes()[:-30])
    with pytest.raises(DbnFileError, match="truncated") as raised:
        open_and_read(path)
    assert_names_the_file(raised.value, path)


@pytest.mark.realdata
def test_truncated_zstd_file(esm4: Path, tmp_path: Path) -> None:
    data = esm4.read_bytes()
    path = tmp_path / "esm4_truncated.mbo.dbn.zst"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DbnFileError) as raised:
        open_and_read(path)
    assert_names_the_file(raised.value, path)


def test_copy_of_a_fixture_reads_like_the_original(fixtures_dir: Path, tmp_path: Path) -> None:
    # guards the broken-file tests above: a byte-identical copy in tmp_path must read fine
    path = tmp_path / "copy.mbo.dbn"
    shutil.copyfile(fixtures_dir / "test_data.mbo.dbn", path)
    assert open_and_read(path) == 2


# --- metadata lengths: the file's claim is capped ---------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "zst"])
def test_metadata_longer_than_the_cap_is_refused_before_it_is_read(tmp_path: Path, compressed: bool) -> None:
    claim = MAX_METADATA_BYTES + 1
    data = b"DBN\x02" + claim.to_bytes(4, "little") + bytes(claim)
    path = tmp_path / ("long.mbo.dbn.zst" if compressed else "long.mbo.dbn")
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compressed else data)
    with pytest.raises(DbnFileError) as raised:
        open_mbo_file(path)
    assert raised.value.problem == f"not a DBN file: metadata length {claim} exceeds the limit"


@pytest.mark.parametrize("claim", [100, 103])
def test_metadata_length_inside_the_fixed_fields_is_a_dbn_file_error(
    fixtures_dir: Path, tmp_path: Path, claim: int
) -> None:
    # databento-dbn's decoder panics on these lengths; a panic is not an Exception
    data = (fixtures_dir / "test_data.mbo.dbn").read_bytes()
    path = tmp_path / "short-metadata.mbo.dbn"
    path.write_bytes(data[:4] + claim.to_bytes(4, "little") + data[8:])
    with pytest.raises(DbnFileError) as raised:
        open_mbo_file(path)
    assert_names_the_file(raised.value, path)


def test_metadata_read_across_many_small_zstd_frames_is_whole(fixtures_dir: Path, tmp_path: Path) -> None:
    # the header arrives a few bytes per frame: a short read is not the end of the file
    data = (fixtures_dir / "test_data.mbo.dbn").read_bytes()
    compressor = zstandard.ZstdCompressor()
    path = tmp_path / "frames.mbo.dbn.zst"
    path.write_bytes(b"".join(compressor.compress(data[i : i + 7]) for i in range(0, len(data), 7)))
    assert open_and_read(path) == 2


# --- files cut short ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "keep", "name"),
    [
        ("test_data.mbo.dbn", 100, "header_cut.dbn"),
        ("test_data.mbo.v3.dbn.zst", 100, "header_cut.dbn.zst"),
        (None, 0, "magic_then_garbage.dbn"),
    ],
    ids=["raw-cut-in-metadata", "zst-cut-in-metadata", "dbn-magic-then-garbage"],
)
def test_file_cut_inside_its_metadata_is_a_dbn_file_error(
    fixtures_dir: Path, tmp_path: Path, source: str | None, keep: int, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes((fixtures_dir / source).read_bytes()[:keep] if source else b"DBN\x03" + b"\xff" * 400)
    with pytest.raises(DbnFileError) as raised:
        open_and_read(path)
    assert_names_the_file(raised.value, path)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "keep"), [("esm4", 4_096), ("dbeq", 430_888)], ids=["esm4-first-4KiB", "dbeq-first-430888-bytes"]
)
def test_zstd_file_cut_at_a_block_boundary_is_a_dbn_file_error(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, keep: int
) -> None:
    source: Path = request.getfixturevalue(name)
    path = tmp_path / f"cut_{source.name}"
    path.write_bytes(source.read_bytes()[:keep])
    # decompresses cleanly, but short: ESM4 to 0 records, DBEQ to 30,417 of 286,130
    with pytest.raises(DbnFileError):
        open_and_read(path)
