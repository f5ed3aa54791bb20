"""The benchmark scripts end bad input with one line on stderr, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("script", ["help_protocol.py", "search_nb201.py", "zero_shot.py"])
def test_missing_database_is_one_error_line(script: str, tmp_path: Path, shared_data: Path) -> None:
    missing = tmp_path / "typo" / "hwdb.sqlite"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--db", f"sqlite:///{missing}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "NAS_SHARED_DATA": str(shared_data)},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), proc.stderr
    assert "does not exist" in lines[0]
    assert not missing.parent.exists()  # nothing created at a mistyped path
