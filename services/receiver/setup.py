"""Build of the receiver. ``RECEIVER_COMPILE=1`` compiles its hot path with mypyc (the same Python source, as C).

Compiled: the order book and the per-event lines, where the receiver spends its time per record (``make bench``
runs this build). Every other module, and the whole package when the variable is unset (an editable install,
where an edited source must run as it reads), stays plain Python.
"""

import importlib.util
import os
from pathlib import Path

from setuptools import Extension, setup

HOT_PATH = [
    "receiver/book/accounting.py",
    "receiver/book/adapter.py",
    "receiver/book/book.py",
    "receiver/book/crossing.py",
    "receiver/book/level.py",
    "receiver/book/market.py",
    "receiver/book/side_changes.py",
    "receiver/book/views.py",
    "receiver/event_lines.py",
]


def editable_shared_dir() -> str | None:
    """The folder holding obm_shared's source when an editable install's import hook finds it, which mypy
    cannot follow; None when it is installed plainly (mypy finds it among the site packages) or not at all."""
    spec = importlib.util.find_spec("obm_shared")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent.parent
    return None if folder.name in ("site-packages", "dist-packages") else str(folder)


def compiled_hot_path() -> list[Extension]:
    """The mypyc extension modules of the hot path, when asked for."""
    if os.environ.get("RECEIVER_COMPILE") != "1":
        return []
    from mypyc.build import mypycify

    # What mypy finds no types for (sortedcontainers, or a dependency not installed where the build runs) is
    # handled as Any: correct, only slower to call. obm_shared must be found: its DBN codes are inlined.
    shared = editable_shared_dir()
    if shared is not None:
        os.environ["MYPYPATH"] = os.pathsep.join(filter(None, (shared, os.environ.get("MYPYPATH"))))
    return mypycify(["--ignore-missing-imports", *HOT_PATH], opt_level="3", group_name="receiver_hot_path")


setup(ext_modules=compiled_hot_path())
