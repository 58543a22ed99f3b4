"""``make demo-data`` on a fresh clone: no ``data/`` folder yet, and the demo file is written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obm_shared.dbn_file import open_mbo_file

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_data_writes_the_demo_file_where_no_data_folder_exists(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    result = subprocess.run(
        # this environment stands for the installed one (INSTALLED is what `make install` leaves behind)
        ["make", "--no-print-directory", "demo-data", f"VENV={VENV}", f"INSTALLED={sys.executable}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"make demo-data failed: {result.stderr[-1000:]}"
    demo = open_mbo_file(tmp_path / "data" / "demo" / "demo.mbo.dbn")
    assert demo.count_records() > 0
