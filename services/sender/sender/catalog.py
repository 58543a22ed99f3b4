"""The DBN files in the data folder: what each holds, and safe resolution of a requested name."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from obm_shared.dbn_file import DbnFileError, open_mbo_file
from obm_shared.limits import MAX_FILE_NAME_CHARS

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
    """A requested name outside the data folder, too long, or not a DBN file in it."""


class NotStreamable(ValueError):
    """A file of the data folder that holds no streamable MBO records; the message says why."""


@dataclass
class Catalog:
    """Lists and resolves files under ``data_dir``; what a file holds is cached until the file changes."""

    data_dir: Path

    def __post_init__(self) -> None:
        self._cache: dict[Path, tuple[int, int, FileInfo]] = {}

    def resolve(self, name: str) -> Path:
        """The path of ``name`` inside the data folder; refuses names that climb out of it.

        The check is on the name, not on where symlinks lead: links the operator put in the data folder
        (say, to a folder of real data) are followed.
        """
        if len(name) > MAX_FILE_NAME_CHARS:
            raise FileNotAllowed("file name too long")
        root = self.data_dir.absolute()
        path = Path(os.path.normpath(root / name))
        if Path(name).is_absolute() or not path.is_relative_to(root) or path == root:
            raise FileNotAllowed(f"{name!r} is outside the data folder")
        if not path.name.endswith(DBN_SUFFIXES):
            raise FileNotAllowed(f"{name!r} is not a .dbn or .dbn.zst file")
        try:
            found = path.is_file()
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                raise FileNotAllowed("file name too long") from None
            raise FileNotFoundError(f"{name!r} cannot be read ({error.strerror})") from None
        if not found:
            raise FileNotFoundError(f"{name!r} is not a file in the data folder")
        return path

    def files(self) -> list[FileInfo]:
        """Every DBN file under the data folder (following symlinks), by name; one that cannot be read is
        listed with its problem."""
        root = self.data_dir.absolute()
        return [self._listed(path, path.relative_to(root).as_posix()) for path in sorted(_dbn_paths(root))]

    def describe(self, path: Path) -> FileInfo:
        """What one file holds (cached until the file changes); raises OSError when it cannot be read."""
        stat = path.stat()
        cached = self._cache.get(path)
        if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
            return cached[2]
        info = _inspect(path, path.relative_to(self.data_dir.absolute()).as_posix())
        self._cache[path] = (stat.st_size, stat.st_mtime_ns, info)
        return info

    def _listed(self, path: Path, name: str) -> FileInfo:
        try:
            return self.describe(path)
        except OSError as error:
            problem = f"unreadable ({error.strerror or error})"
            return FileInfo(name=name, size_bytes=0, streamable=False, problem=problem)


def _dbn_paths(root: Path) -> Iterator[Path]:
    """DBN file names under ``root``, entering each real folder once, so a symlink loop ends where it closes."""
    entered: set[tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        try:
            stat = os.stat(folder)
        except OSError:
            subfolders.clear()
            continue
        if (stat.st_dev, stat.st_ino) in entered:
            subfolders.clear()
            continue
        entered.add((stat.st_dev, stat.st_ino))
        for name in names:
            # undecodable bytes or control characters in a name could not be listed as JSON and asked for back
            if name.endswith(DBN_SUFFIXES) and not name.startswith(".") and name.isprintable():
                yield Path(folder) / name


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
