"""Build of the receiver. ``RECEIVER_COMPILE=1`` compiles its hot path with mypyc (the same Python source, as C).

Compiled: the order book and the per-event lines, where the receiver spends its time per record (compiled,
book apply plus event capture take about a third less CPU; see ``make bench``). Every other module, and the
whole package when the variable is unset (an editable install, where an edited source must run as it reads),
stays plain Python.
"""

import os

from setuptools import Extension, setup

HOT_PATH = [
    "receiver/book/accounting.py",
    "receiver/book/adapter.py",
    "receiver/book/book.py",
    "receiver/book/crossing.py",
    "receiver/book/level.py",
    "receiver/book/market.py",
    "receiver/book/views.py",
    "receiver/event_lines.py",
]


def compiled_hot_path() -> list[Extension]:
    """The mypyc extension modules of the hot path, when asked for."""
    if os.environ.get("RECEIVER_COMPILE") != "1":
        return []
    from mypyc.build import mypycify

    # What mypy finds no types for (sortedcontainers, or a dependency not installed where the build runs) is
    # handled as Any: correct, only slower to call.
    return mypycify(["--ignore-missing-imports", *HOT_PATH], opt_level="3", group_name="receiver_hot_path")


setup(ext_modules=compiled_hot_path())
