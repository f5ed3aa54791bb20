"""Regression tests from a QA pass of the library API of :mod:`nas`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nas
from hwdb import HardwareDB


def test_the_names_run_search_documents_are_exported_from_nas() -> None:
    """`run_search`'s docstring sends users to `make_accuracy_objective` and names its
    errors; they were only importable from `nas.search`."""
    import nas.search

    names = ("make_accuracy_objective", "SearchError", "StudyMismatchError",
             "DeviceResolutionError", "DeviceMatch", "SearchWarning", "load_exported")  # fmt: skip
    for name in names:
        assert name in nas.__all__ and getattr(nas, name) is getattr(nas.search, name)
    code = "import sys, nas; assert 'optuna' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)  # still lazy


def test_resolve_devices_refuses_an_unknown_space(tmp_path: Path) -> None:
    """A typo in `space` used to resolve `raspi4` to a zero-shot catalog match."""
    with HardwareDB(f"sqlite:///{tmp_path / 'd.sqlite'}") as db:
        with pytest.raises(ValueError, match=r"`space` must be a search space, got 'nope'"):
            nas.resolve_devices(db, ["raspi4"], space="nope")
        assert nas.resolve_devices(db, ["raspi4"], space="mnasnet")[0].rule == "zero-shot"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trials": 2.5}, r"`trials` must be an integer >= 1, got 2.5"),
        ({"population": 1}, r"`population` must be an integer >= 2, got 1"),
        ({"seed": "a"}, r"`seed` must be None or an integer >= 0, got 'a'"),
        ({"seed": -1}, r"`seed` must be None or an integer >= 0, got -1"),
    ],
)
def test_run_search_names_a_bad_count_or_seed(kwargs: dict[str, Any], message: str) -> None:
    import pandas as pd

    from nas.search import MeasuredLatencyModel, TableAccuracy
    from search_spaces import get_space

    sp = get_space("nasbench201")
    archs = [sp.to_string(sp.random(i)) for i in range(4)]
    acc = TableAccuracy(pd.Series([50.0, 60.0, 70.0, 80.0], index=archs), name="t")
    model = MeasuredLatencyModel(sp, "d", dict(zip(archs, [1.0, 2.0, 3.0, 4.0], strict=True)))
    with pytest.raises(ValueError, match=message):
        nas.run_search(space=sp, devices=["d"], accuracy=acc, latency_models=[model],
                       **{"trials": 4, "population": 2, **kwargs})  # fmt: skip
