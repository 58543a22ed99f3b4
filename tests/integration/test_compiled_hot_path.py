"""The receiver's hot path compiled with mypyc, as its image runs it, passes the unit tests plain Python passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_unit_tests_pass_against_the_compiled_hot_path(tmp_path: Path) -> None:
    source, compiled = tmp_path / "receiver", tmp_path / "compiled"
    # a copy, so that no build output of an earlier build (setuptools reuses build/) ends up in this one
    shutil.copytree(
        REPO / "services" / "receiver", source, ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(compiled),
            str(source),
        ],
        env={**os.environ, "RECEIVER_COMPILE": "1"},
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"the compiled build failed:\n{build.stderr[-3000:]}"
    assert list(compiled.glob("receiver/book/book.*.so")), "the build made no compiled book"

    search_path = os.pathsep.join(filter(None, (str(compiled), os.environ.get("PYTHONPATH"))))
    unit = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
        env={**os.environ, "PYTHONPATH": search_path, "OBM_EXPECT_HOT_PATH": "compiled"},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert unit.returncode == 0, f"unit tests against the compiled hot path:\n{unit.stdout[-5000:]}"
