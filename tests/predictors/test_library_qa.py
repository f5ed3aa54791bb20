"""Findings of the library QA pass (``predictors``): too few measurements, reference-name typos,
unchecked hyper-parameters, bare strings for sequences, unknown spaces and prediction equality."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from predictors import (
    AdaptedLatencyModel,
    DeviceTask,
    FlopsPredictor,
    HELPPlusPredictor,
    HELPPredictor,
    LatencyPrediction,
    NotEnoughDataError,
    device_split,
    get_predictor,
    make_tasks,
    meta_train_for,
    reference_archs,
)
from search_spaces import InvalidArchError, UnknownSpaceError, get_space

SPACE = "nasbench201"
SOURCES = ["1080ti_1", "silver_4114", "pixel3"]
TARGET = "gold_6226"


@pytest.fixture(scope="module")
def tasks(nb201_table: pd.DataFrame) -> list[DeviceTask]:
    return make_tasks(nb201_table, SPACE, SOURCES)


# ---------------------------------------------------------------- M5: too few measurements
@pytest.mark.parametrize(
    ("name", "params", "minimum"),
    [
        ("flops", {}, 2),
        ("scratch", {}, 2),
        ("transfer", {"max_iter": 2}, 2),
        ("help+", {"steps": 2, "hidden": 4, "sim_devices": 0}, 3),
    ],
)
def test_adapting_on_too_few_measurements_says_how_many_are_needed(
    name: str,
    params: dict[str, Any],
    minimum: int,
    tasks: list[DeviceTask],
    nb201_table: pd.DataFrame,
) -> None:
    model = get_predictor(name, **params).fit(tasks)
    assert model.min_support == minimum
    archs = device_split(nb201_table, SPACE, TARGET).train_pool[:minimum]
    lat = nb201_table.loc[archs, TARGET].to_numpy(float)
    for n in range(1, minimum):
        want = rf"{re.escape(name)} needs at least {minimum} measurements .* holds {n}"
        with pytest.raises(NotEnoughDataError, match=want):
            model.adapt(archs[:n], lat[:n])
    assert model.adapt(archs, lat).predict(archs)[0].shape == (minimum,)


# ---------------------------------------------------------------- M7: reference-name typos
def _adapted(space: str) -> AdaptedLatencyModel:
    sp = get_space(space)
    archs = [sp.to_string(sp.random(i)) for i in range(6)]
    lat = np.arange(1.0, 7.0)
    model = FlopsPredictor().fit([DeviceTask(space, "d", tuple(archs), lat)]).adapt(archs, lat)
    return AdaptedLatencyModel(space=space, device="d", model=model, version="v", n_measurements=6)


def test_a_typo_of_a_reference_name_suggests_the_name() -> None:
    am = _adapted("mnasnet")
    assert am.predict(["mnasnet-a1"]).mean_ms.shape == (1,)
    with pytest.raises(InvalidArchError, match="did you mean 'mnasnet-a1'"):
        am.predict(["mnasnet-a2"])


def test_a_bad_arch_string_is_named_by_the_space_parser() -> None:
    am = _adapted(SPACE)
    good = am.predict(["resnet"]).archs
    with pytest.raises(InvalidArchError, match="did you mean 'resnet'"):
        am.predict([*good, "resnex"])
    with pytest.raises(InvalidArchError, match="'garbage'"):
        am.predict(["garbage"])


def test_a_roofline_model_suggests_the_name_too() -> None:
    from hwdb.catalog import get_entry
    from predictors.zeroshot import RooflineLatencyModel, device_model

    rm = RooflineLatencyModel(
        space="mnasnet", device="jetson", model=device_model(get_entry("jetson-nano"))
    )
    with pytest.raises(InvalidArchError, match="did you mean 'mnasnet-a1'"):
        rm.predict(["mnasnet-a2"])


# ---------------------------------------------------------------- M8: hyper-parameters
@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"sim_devices": -1}, "sim_devices"),
        ({"sim_components": -1}, "sim_components"),
        ({"hidden": "x"}, "hidden"),
        ({"hidden": 0}, "hidden"),
        ({"seed": "a"}, "seed"),
        ({"seed": -1}, "seed"),
    ],
)
def test_helpplus_refuses_bad_hyper_parameters(
    params: dict[str, Any], name: str, tasks: list[DeviceTask]
) -> None:
    model = HELPPlusPredictor(**{"steps": 2, "hidden": 4, "sim_devices": 0, **params})
    with pytest.raises(ValueError, match=rf"`{name}` must be .*, got "):
        model.fit(tasks)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"mc_samples": 0}, r"`mc_samples` must be an integer greater than or equal to 1, got 0"),
        ({"seed": "a"}, r"`seed` must be None or an integer"),
        ({"validation_devices": ["nodev"]}, r"`validation_devices` must name devices .*'nodev'"),
        ({"validation_devices": "pixel3"}, r"`validation_devices` must be a sequence of device"),
    ],
)
def test_help_refuses_bad_hyper_parameters(
    params: dict[str, Any], match: str, tasks: list[DeviceTask]
) -> None:
    model = HELPPredictor(episodes=1, tasks_per_episode=2, n_query=8, **params)
    with pytest.raises(ValueError, match=match):
        model.fit(tasks)


def test_help_validation_devices_of_the_tasks_are_held_out(tasks: list[DeviceTask]) -> None:
    model = HELPPredictor(
        episodes=2, tasks_per_episode=2, n_query=8, eval_every=1, validation_devices=["pixel3"]
    )
    model.fit(tasks)
    assert len(model.history_) == 2  # validated on pixel3 after each episode


# ---------------------------------------------------------------- M12: bare strings
def test_a_bare_string_is_refused_where_names_are_expected(nb201_table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="`devices` must be a sequence of device names"):
        make_tasks(nb201_table, SPACE, "1080ti_1")
    with pytest.raises(ValueError, match="`train` must be a sequence of device names"):
        meta_train_for("flops", nb201_table, SPACE, "1080ti_1")
    with pytest.raises(ValueError, match="`valid` must be a sequence of device names"):
        meta_train_for("flops", nb201_table, SPACE, ["1080ti_1"], "pixel3")
    with pytest.raises(ValueError, match="`archs` must be a sequence of architecture strings"):
        DeviceTask(SPACE, "d", "ab", np.array([1.0, 2.0]))  # type: ignore[arg-type]


def test_device_task_keeps_a_list_of_archs_as_a_tuple() -> None:
    task = DeviceTask(SPACE, "d", ["a", "b"], np.array([1.0, 2.0]))  # type: ignore[arg-type]
    assert task.archs == ("a", "b")


# ---------------------------------------------------------------- M13: unknown spaces
def test_datasheet_model_refuses_an_unknown_space(tmp_path: Path) -> None:
    from hwdb import HardwareDB
    from predictors import datasheet_model

    with HardwareDB(f"sqlite:///{tmp_path / 'z.sqlite'}") as db:
        with pytest.raises(UnknownSpaceError, match="unknown search space 'nope'"):
            datasheet_model(db, space="nope", device="jetson")
        assert datasheet_model(db, space=SPACE, device="jetson").space == SPACE


def test_reference_archs_of_an_unregistered_space_still_fall_back(
    nb201_table: pd.DataFrame,
) -> None:
    for space in ("ofa", "my_space"):  # HELP's OFA and a user's space are not registered
        assert len(reference_archs(nb201_table, space)) == 10


# ---------------------------------------------------------------- L4: equality
def test_latency_predictions_compare_by_value() -> None:
    def pred(mean: list[float], source: str = "adapted") -> LatencyPrediction:
        m = np.asarray(mean)
        return LatencyPrediction(["a", "b"], m, 0.1 * m, "help+", "v", 5, source)

    assert pred([1.0, 2.0]) == pred([1.0, 2.0])
    assert pred([1.0, np.nan]) == pred([1.0, np.nan])
    assert pred([1.0, 2.0]) != pred([1.0, 3.0])
    assert pred([1.0, 2.0]) != pred([1.0, 2.0, 3.0])
    assert pred([1.0, 2.0]) != pred([1.0, 2.0], source="zero-shot (datasheet)")
    assert pred([1.0, 2.0]) != "prediction"
