"""help+'s optional roofline prior: simulated devices in the basis, components in the ridge."""

from __future__ import annotations

import numpy as np
import pandas as pd

from predictors import get_predictor, make_tasks
from predictors._data import device_split, sample_support


def test_roofline_prior_adds_principal_components(nb201_table: pd.DataFrame) -> None:
    devices = list(nb201_table.columns)
    tasks = make_tasks(nb201_table, "nasbench201", devices[:-1])
    model = get_predictor(
        "help+", steps=20, hidden=16, sim_devices=3, sim_archs=40, sim_components=2
    ).fit(tasks)
    centre, axes = model.sim_pca_  # type: ignore[attr-defined]
    assert centre.shape == (3,) and axes.shape == (2, 3)
    assert len(model.y_mean_) == len(tasks) + 3  # type: ignore[attr-defined]
    split = device_split(nb201_table, "nasbench201", devices[-1])
    archs = sample_support(split, 10, 0) + list(split.reference)
    design = model._design(archs)  # type: ignore[attr-defined]
    assert design.shape == (len(archs), len(tasks) + 2)
    adapted = model.adapt(archs, nb201_table.loc[archs, devices[-1]].to_numpy(float))
    mean, std = adapted.predict(split.query[:50])
    assert np.all(mean > 0) and np.all(std > 0)


def test_without_roofline_prior(nb201_table: pd.DataFrame) -> None:
    devices = list(nb201_table.columns)
    model = get_predictor("help+", steps=5, hidden=8, sim_devices=0).fit(
        make_tasks(nb201_table, "nasbench201", devices[:-1])
    )
    assert model.sim_pca_ is None  # type: ignore[attr-defined]
    assert len(model.y_mean_) == len(devices) - 1  # type: ignore[attr-defined]
