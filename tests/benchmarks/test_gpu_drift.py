"""benchmarks/gpu_drift.py: group offsets of a drifting series, and the committed H200 rows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_drift.py"


@pytest.fixture(scope="module")
def drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_drift", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_drift"] = module
    spec.loader.exec_module(module)
    return module


def test_group_offsets_recover_a_machine_that_changes_speed(drift: ModuleType) -> None:
    rng = np.random.default_rng(0)
    true_ms = np.exp(rng.normal(1.0, 0.4, size=200))
    speed = np.repeat([1.0, 1.0, 1.7, 1.7, 1.0, 0.9, 1.0, 1.0], 25)
    offsets = drift.group_offsets(true_ms * speed)
    # Recovered up to the sampling noise of 25 random draws per group (sd 0.4 / 5 in log).
    assert np.abs(np.log(offsets / speed)).max() < 0.2
    rows = [
        {"device": "d", "space": "s", "arch": str(i), "protocol": "p@r224",
         "stats": {k: float(v) for k in ("median", "mean", "std", "min", "p90")}}
        for i, v in enumerate(true_ms * speed)
    ]  # fmt: skip
    out = drift.demeaned(rows)
    fixed = np.array([r["stats"]["median"] for r in out])
    assert np.corrcoef(np.log(fixed), np.log(true_ms))[0, 1] > 0.95
    assert np.corrcoef(np.log(true_ms * speed), np.log(true_ms))[0, 1] < 0.9
    assert {r["protocol"] for r in out} == {"p-dm@r224"}


def test_the_committed_h200_retest_disagrees_between_groups(drift: ModuleType) -> None:
    result = drift.retest()
    assert result["n"] == 375
    assert result["spearman_raw"] < 0.7 < result["spearman_within_groups_median"]
    assert result["spearman_demeaned"] > 0.8
