"""Receivers sharing one output folder under NATS (scaled compose replicas) each book their share of the same run
id: each writes, names complete and prunes its run files in its own folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from receiver.core.config import Settings
from receiver.event_lines import EventLine, encode_lines
from receiver.run_output import RunOutput, make_room


def replica(output_dir: Path, receiver_id: str) -> Settings:
    return Settings(transport="nats", id=receiver_id, output_dir=output_dir, output_keep_runs=1)


def line(instrument_id: int) -> EventLine:
    return EventLine(1, 2, 3, instrument_id, f"I{instrument_id}", None, None, [], [], False, False, 0)


def test_two_replicas_finish_the_same_run_in_files_of_their_own(tmp_path: Path) -> None:
    """Both replicas have the run's file open at once, as scaled receivers booking their partitions do."""

    async def both() -> list[RunOutput]:
        outputs = [RunOutput(replica(tmp_path, name), "run1") for name in ("receiver-a", "receiver-b")]
        for instrument_id, output in enumerate(outputs, start=1):
            output.open()
            assert output.log is not None
            await output.log.put([line(instrument_id)])
        errors = [await output.close(complete=True) for output in outputs]
        assert errors == [None, None], f"a replica failed its run: {errors}"
        return outputs

    outputs = asyncio.run(both())
    assert [output.path.parent for output in outputs] == [tmp_path / "receiver-a", tmp_path / "receiver-b"]
    assert all(output.path.is_file() for output in outputs), "a replica's complete file is missing"
    assert [output.path.read_bytes() for output in outputs] == [
        encode_lines([line(1)]),
        encode_lines([line(2)]),
    ]


def test_a_replica_prunes_only_its_own_runs(tmp_path: Path) -> None:
    for name in ("receiver-a", "receiver-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "old.jsonl").write_text("{}\n")
    make_room(replica(tmp_path, "receiver-a"))
    assert not (tmp_path / "receiver-a" / "old.jsonl").exists(), "its own oldest run beyond the bound stays"
    assert (tmp_path / "receiver-b" / "old.jsonl").exists(), "another replica's run was removed"


def test_over_tcp_the_run_files_stay_in_the_output_folder(tmp_path: Path) -> None:
    assert Settings(output_dir=tmp_path, id="receiver-a").runs_dir == tmp_path


@pytest.mark.parametrize("receiver_id", ["..", ".", "-x", "a/b"])
def test_an_id_that_is_no_folder_name_of_its_own_is_refused(receiver_id: str) -> None:
    with pytest.raises(ValueError, match="id"):
        Settings(transport="nats", id=receiver_id)
