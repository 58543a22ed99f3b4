"""The ``orderbook`` launcher runs the compiled book only from a build that matches the sources now."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orderbook_cli.compiled_receiver import PYTHON, STAMP_NAME, choose_build, sources_digest, write_stamp


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, ...]:
    receiver, shared = tmp_path / "src" / "receiver", tmp_path / "src" / "obm_shared"
    (receiver / "book").mkdir(parents=True)
    shared.mkdir(parents=True)
    (receiver / "__init__.py").write_text("")
    (receiver / "book" / "book.py").write_text("class OrderBook: ...\n")
    (shared / "dbn.py").write_text("ADD = 'A'\n")
    return receiver, shared


def _built(tmp_path: Path, sources: tuple[Path, ...]) -> Path:
    build = tmp_path / "build"
    build.mkdir()
    write_stamp(build, sources_digest(sources))
    return build


def test_a_build_of_the_sources_now_is_chosen_without_a_note(
    tmp_path: Path, sources: tuple[Path, ...]
) -> None:
    build = _built(tmp_path, sources)
    chosen = choose_build("auto", build, sources)
    assert chosen.path == build, "a fresh compiled build must be put first on the path"
    assert chosen.note is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda receiver, shared: (receiver / "book" / "book.py").write_text("class OrderBook: pass\n"),
        lambda receiver, shared: (receiver / "book" / "level.py").write_text("class Level: ...\n"),
        lambda receiver, shared: (receiver / "book" / "book.py").rename(receiver / "book" / "books.py"),
        lambda receiver, shared: (shared / "dbn.py").write_text("ADD = 'B'\n"),
    ],
    ids=["edited", "added", "renamed", "shared edited"],
)
def test_a_build_older_than_its_sources_falls_back_with_a_note(
    tmp_path: Path, sources: tuple[Path, ...], edit: Callable[[Path, Path], object]
) -> None:
    build = _built(tmp_path, sources)
    edit(*sources)
    chosen = choose_build("auto", build, sources)
    assert chosen.path is None, "a stale compiled build must not run"
    assert chosen.note is not None and "older than its sources" in chosen.note
    assert "\n" not in chosen.note, "the note is one line"


def test_cache_files_beside_the_sources_do_not_make_a_build_stale(
    tmp_path: Path, sources: tuple[Path, ...]
) -> None:
    build = _built(tmp_path, sources)
    cache = sources[0] / "__pycache__"
    cache.mkdir()
    (cache / "book.cpython-311.pyc").write_bytes(b"\0")
    assert choose_build("auto", build, sources).path == build


@pytest.mark.parametrize("build_dir_exists", [False, True], ids=["no build", "build without a stamp"])
def test_no_stamped_build_falls_back_with_a_note(
    tmp_path: Path, sources: tuple[Path, ...], build_dir_exists: bool
) -> None:
    build = tmp_path / "build"
    if build_dir_exists:
        build.mkdir()
    chosen = choose_build("auto", build, sources)
    assert chosen.path is None
    assert chosen.note is not None and "make compiled-receiver" in chosen.note
    assert "\n" not in chosen.note, "the note is one line"


def test_python_forces_the_interpreted_book_silently(tmp_path: Path, sources: tuple[Path, ...]) -> None:
    build = _built(tmp_path, sources)
    assert choose_build(PYTHON, build, sources).path is None
    assert choose_build(PYTHON, build, sources).note is None
    assert choose_build(PYTHON, tmp_path / "missing", sources).note is None


def test_an_unknown_build_is_refused(tmp_path: Path, sources: tuple[Path, ...]) -> None:
    with pytest.raises(ValueError, match="unknown build 'fast'"):
        choose_build("fast", tmp_path / "build", sources)


def test_the_stamp_is_what_the_build_records(tmp_path: Path, sources: tuple[Path, ...]) -> None:
    build = _built(tmp_path, sources)
    assert (build / STAMP_NAME).read_text().strip() == sources_digest(sources)


def test_the_command_runs_interpreted_when_told_and_says_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from orderbook_cli.launch import main; main()", "--help"],
        env={**os.environ, "OBM_CLI_BUILD": PYTHON},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "replay" in done.stdout, "the CLI's own help must be printed"
    assert done.stderr == "", f"no note when the interpreted book is asked for: {done.stderr!r}"


def test_the_command_refuses_an_unknown_build() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from orderbook_cli.launch import main; main()", "--help"],
        env={**os.environ, "OBM_CLI_BUILD": "fast"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "OBM_CLI_BUILD" in done.stderr
