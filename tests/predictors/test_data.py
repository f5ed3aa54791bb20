"""HELP protocol splits, tasks and the seeded random split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictors import (
    HELP_REFERENCE_INDICES,
    NotEnoughDataError,
    device_split,
    make_tasks,
    reference_archs,
    sample_support,
)
from predictors._data import trim


def test_nb201_split_sizes_and_trimming(nb201_table: pd.DataFrame) -> None:
    split = device_split(nb201_table, "nasbench201", "pixel3")
    bidx = nb201_table.attrs["benchmark_index"]
    assert len(split.train_pool) == 720 and len(split.query) == 800
    assert all(bidx[a] < 900 for a in split.train_pool)
    assert all(900 <= bidx[a] < 1900 for a in split.query)
    pool_lat = nb201_table["pixel3"].iloc[:900].to_numpy()
    kept = nb201_table.loc[split.train_pool, "pixel3"].to_numpy()
    lo, hi = np.sort(pool_lat)[90], np.sort(pool_lat)[809]
    assert kept.min() >= lo and kept.max() <= hi


def test_reference_archs_are_helps(nb201_table: pd.DataFrame) -> None:
    refs = reference_archs(nb201_table, "nasbench201")
    bidx = nb201_table.attrs["benchmark_index"]
    assert [bidx[a] for a in refs] == list(HELP_REFERENCE_INDICES["nasbench201"])


def test_support_never_touches_query(nb201_table: pd.DataFrame) -> None:
    split = device_split(nb201_table, "nasbench201", "gold_6226")
    for seed in range(5):
        sup = sample_support(split, 10, seed)
        assert len(set(sup)) == 10
        assert not set(sup) & set(split.query)
        assert not set(sup) & set(split.reference)
        assert set(sup) <= set(split.train_pool)
    assert sample_support(split, 10, 3) == sample_support(split, 10, 3)
    assert sample_support(split, 0, 0) == []  # the reference archs alone
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="`k`"):
            sample_support(split, bad, 0)  # type: ignore[arg-type]


def test_tasks_hold_training_pool_only(nb201_table: pd.DataFrame) -> None:
    tasks = make_tasks(nb201_table, "nasbench201", ["1080ti_1", "pixel3"])
    query = set(device_split(nb201_table, "nasbench201", "pixel3").query)
    for task in tasks:
        assert len(task.archs) == 720 and task.reference_ms.shape == (10,)
        assert not set(task.archs) & query


def test_trim_drops_tails() -> None:
    archs = [f"a{i}" for i in range(10)]
    assert trim(archs, np.arange(10.0)) == archs[1:9]


def test_random_split_without_benchmark_index(nb201_table: pd.DataFrame) -> None:
    table = nb201_table.iloc[:400].copy()
    table.attrs = {}
    a = device_split(table, "nasbench201", "pixel3", split_seed=1)
    b = device_split(table, "nasbench201", "pixel3", split_seed=1)
    assert a == b
    assert len(a.train_pool) == 160 and len(a.query) == 160
    assert not set(a.train_pool) & set(a.query)
    assert len(a.reference) == 10


def test_missing_device_and_reference(nb201_table: pd.DataFrame) -> None:
    with pytest.raises(NotEnoughDataError, match="no measurements"):
        device_split(nb201_table, "nasbench201", "nope")
    table = nb201_table.copy()
    ref = reference_archs(table, "nasbench201")[0]
    table.loc[ref, "pixel3"] = np.nan
    with pytest.raises(NotEnoughDataError, match="reference"):
        device_split(table, "nasbench201", "pixel3")
