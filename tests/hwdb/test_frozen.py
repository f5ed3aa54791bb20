"""Latency-table ``attrs`` are read-only and shared between derived frames, never deep-copied."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pandas as pd
import pytest

from hwdb import DeviceSpec, FrozenMap, HardwareDB, MeasurementIn
from tests.hwdb._helpers import nb201_archs


def test_frozen_map_refuses_changes_and_copies_as_itself() -> None:
    f: FrozenMap[str, int | None] = FrozenMap({"x": 1, "y": None})
    assert copy.copy(f) is f and copy.deepcopy({"k": f})["k"] is f
    for change in (
        lambda: f.__setitem__("z", 1),
        lambda: f.__delitem__("x"),
        lambda: f.update(z=1),
        lambda: f.pop("x"),
        lambda: f.setdefault("z", 1),
        lambda: f.clear(),
    ):
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert f == {"x": 1, "y": None} and json.loads(json.dumps(f)) == f
    again = pickle.loads(pickle.dumps(f))
    assert type(again) is FrozenMap and again == f
    changed = f.copy()  # a plain dict, free to change
    changed["z"] = 3
    assert "z" not in f


def test_table_attrs_are_shared_and_survive_parquet(sqlite_url: str, tmp_path: Path) -> None:
    archs = nb201_archs(4)
    with HardwareDB(sqlite_url, create=True) as db:
        db.upsert_device(DeviceSpec("a"))
        rows = [
            MeasurementIn("a", "nasbench201", x, median=1.0 + i, benchmark_index=i)
            for i, x in enumerate(archs)
        ]
        db.add_measurements(rows)
        table = db.latency_table("nasbench201")
    index = table.attrs["benchmark_index"]
    assert isinstance(index, FrozenMap) and isinstance(table.attrs["workload"]["a"], FrozenMap)
    derived = table.loc[archs[:2]].dropna()
    assert derived.attrs["benchmark_index"] is index  # shared, not a 4-entry deep copy
    with pytest.raises(TypeError):
        derived.attrs["benchmark_index"][archs[0]] = 99
    table.to_parquet(tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back.attrs["benchmark_index"] == {a: i for i, a in enumerate(archs)}
