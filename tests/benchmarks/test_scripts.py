"""The benchmark scripts end bad input with one line on stderr, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(cwd: Path, name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/NAME argv...`` in ``cwd``, capturing its text output."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "script",
    [
        "help_protocol.py",
        "search_nb201.py",
        "zero_shot.py",
        "additive_ceiling.py",
        "runtime_modes.py",
        "roofline_calibration.py",
    ],
)
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


@pytest.mark.parametrize("script", ["search_nb201.py", "proxies_nb201.py", "search_ceiling.py"])
def test_missing_shared_data_is_one_error_line(script: str, tmp_path: Path) -> None:
    proc = _script(tmp_path, script, "--shared-data", str(tmp_path / "nowhere"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: no such file: "), lines
    assert str(tmp_path / "nowhere") in lines[0]


def test_gpu_script_reports_errors_without_the_database_stack(tmp_path: Path) -> None:
    # The GPU machine has torch but not SQLAlchemy: hwdb cannot be imported there, and the
    # error report must not turn into an ImportError traceback.
    script = BENCHMARKS / "gpu_dataset.py"
    argv = ["gpu_dataset.py", "measure", "--out", str(tmp_path), "--spaces", "nope"]
    argv += ["--device-type", "cpu"]
    code = (
        "import runpy, sys\n"
        "sys.modules['sqlalchemy'] = None\n"
        f"sys.argv = {argv!r}\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["gpu_dataset.py: error: unknown search space 'nope' (known: fbnet, mnasnet, "
                     "mobilevig, nasbench201, nemotron_flash)"], proc.stderr  # fmt: skip


def test_additive_ceiling_scores_each_feature_of_the_bundled_data(tmp_path: Path) -> None:
    proc = _script(tmp_path, "additive_ceiling.py", "--spaces", "mnasnet")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["mnasnet"]
    assert "cpu-torch-fp32-t1" in rows
    for row in rows.values():
        assert row["archs"] >= 50
        assert set(row["without"]) >= {"macs", "dispatched_ops", "activation_traffic_bytes"}
    # eager PyTorch on a CPU moves every activation through memory once per operator
    eager = rows["cpu-torch-fp32-t2"]
    assert eager["all"] > eager["without"]["activation_traffic_bytes"] + 0.03


def test_proxy_threads_times_each_thread_count(tmp_path: Path) -> None:
    argv = ["--space", "nasbench201", "--archs", "2", "--repeats", "1", "--threads", "1", "2"]
    proc = _script(tmp_path, "proxy_threads.py", *argv, "--busy", "1")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["busy_processes"] == 1 and set(out["seconds_per_arch"]) == {"1", "2"}
    assert all(v > 0 for v in out["seconds_per_arch"].values())
    bad = _script(tmp_path, "proxy_threads.py", "--threads", "0")
    assert bad.returncode == 2 and "--threads" in bad.stderr
