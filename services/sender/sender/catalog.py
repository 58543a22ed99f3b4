"""The DBN files in the data folder: what each holds, and safe resolution of a requested name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgspec

from obm_shared.dbn_file import DbnFileError, open_mbo_file

DBN_SUFFIXES = (".dbn", ".dbn.zst")


class FileInfo(msgspec.Struct, frozen=True):
    """One file of the data folder. ``problem`` says why a file cannot be streamed (then it is None)."""

    name: str
    """Path relative to the data folder: what ``POST /start-streaming`` takes."""
    size_bytes: int
    streamable: bool
    problem: str | None = None
    dataset: str | None = None
    schema: str | None = None
    symbols: list[str] = []
    instruments: dict[int, str] = {}
    record_count: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    dbn_version: int | None = None


class FileNotAllowed(ValueError):
    """A requested name outside the data folder, or not a DBN file in it."""


@dataclass
class Catalog:
    """Lists and resolves files under ``data_dir``; record counts are cached per file version."""

    data_dir: Path

    def __post_init__(self) -> None:
        self._cache: dict[tuple[Path, int, int], FileInfo] = {}

    def resolve(self, name: str) -> Path:
        """The path of ``name`` inside the data folder; refuses names that climb out of it.

        The check is on the name, not on where symlinks lead: links the operator put in the data folder
        (say, to a folder of real data) are followed.
        """
        root = self.data_dir.absolute()
        path = Path(os.path.normpath(root / name))
        if Path(name).is_absolute() or not path.is_relative_to(root) or path == root:
            raise FileNotAllowed(f"{name!r} is outside the data folder")
        if not path.name.endswith(DBN_SUFFIXES):
            raise FileNotAllowed(f"{name!r} is not a .dbn or .dbn.zst file")
        if not path.is_file():
            raise FileNotFoundError(f"{name!r} is not a file in the data folder")
        return path

    def files(self) -> list[FileInfo]:
        """Every DBN file under the data folder (following symlinks), by name."""
        root = self.data_dir.absolute()
        paths = [
            Path(folder) / name
            for folder, _, names in os.walk(root, followlinks=True)
            for name in names
            if name.endswith(DBN_SUFFIXES) and not name.startswith(".")
        ]
        return [self.describe(path) for path in sorted(paths)]

    def describe(self, path: Path) -> FileInfo:
        """What one file holds (cached until the file changes)."""
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        info = self._cache.get(key)
        if info is None:
            info = self._cache[key] = _inspect(path, path.relative_to(self.data_dir.absolute()).as_posix())
        return info


def _inspect(path: Path, name: str) -> FileInfo:
    size = path.stat().st_size
    try:
        mbo_file = open_mbo_file(path)
        meta = mbo_file.metadata(record_count=mbo_file.count_records())
    except DbnFileError as error:
        return FileInfo(name=name, size_bytes=size, streamable=False, problem=error.problem)
    return FileInfo(
        name=name,
        size_bytes=size,
        streamable=True,
        dataset=meta.dataset,
        schema=meta.schema,
        symbols=meta.symbols,
        instruments=meta.instruments,
        record_count=meta.record_count,
        start_ns=meta.start_ns,
        end_ns=meta.end_ns,
        dbn_version=meta.dbn_version,
    )
