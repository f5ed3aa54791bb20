"""Findings of the predictors review: errors of registered spaces are not swallowed,
hyper-parameters are checked before any expensive work, saved predictors carry their revision."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import search_spaces
from predictors import (
    DeviceTask,
    FlopsPredictor,
    HELPPlusPredictor,
    LatencyPredictor,
    PredictorError,
    get_predictor,
    list_predictors,
    load_predictor,
    make_tasks,
    reference_archs,
)
from search_spaces import UnknownSpaceError, get_space

SPACE = "nasbench201"


class _Boom(RuntimeError):
    """A bug inside a registered search space."""


def _boom(*_args: object, **_kwargs: object) -> Any:
    raise _Boom("bug in the space")


# ---------------------------------------------------------------- errors of registered spaces
def _plain_table(n: int = 30) -> pd.DataFrame:
    """``n`` archs measured on two devices, without HELP's benchmark indices."""
    archs = [f"arch-{i:02d}" for i in range(n)]
    return pd.DataFrame({"a": np.arange(1.0, n + 1), "b": np.arange(2.0, n + 2)}, index=archs)


def test_reference_archs_raises_a_registered_spaces_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registered space whose ``hardware_embedding_archs`` fails used to fall back silently
    to the first 10 archs, changing every device's hardware embedding."""
    monkeypatch.setattr(type(get_space("mnasnet")), "hardware_embedding_archs", _boom)
    with pytest.raises(_Boom, match="bug in the space"):
        reference_archs(_plain_table(), "mnasnet")


def test_reference_archs_of_an_unregistered_space_fall_back() -> None:
    with pytest.raises(UnknownSpaceError):
        get_space("no-such-space")
    refs = reference_archs(_plain_table(), "no-such-space")
    assert len(refs) == 10 and set(refs) <= set(_plain_table().index)


def test_space_lookups_raise_other_errors_than_an_unknown_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``device_workload``, the featurizers' space lookup and the trace cache's registration
    check return their fallback for an unknown space only."""
    from predictors._data import device_workload
    from predictors._features import _space_obj
    from predictors.zeroshot import op_tables

    nb201 = get_space(SPACE)
    arch = nb201.to_string(nb201.hardware_embedding_archs()[0])
    table = _plain_table()
    table.attrs["workload"] = {"a": {"batch_size": 2}}
    assert _space_obj("no-such-space") is None
    assert device_workload(table, "no-such-space", "a") is None
    monkeypatch.setattr(search_spaces, "get_space", _boom)
    with pytest.raises(_Boom):
        _space_obj("mnasnet")
    with pytest.raises(_Boom):
        device_workload(table, "mnasnet", "a")
    with pytest.raises(_Boom):
        op_tables(nb201, arch)  # used to trace it as an unregistered space instead


# ---------------------------------------------------------------- hyper-parameters
@pytest.fixture(scope="module")
def tasks(nb201_table: pd.DataFrame) -> list[DeviceTask]:
    return make_tasks(nb201_table, SPACE, ["1080ti_1", "silver_4114", "pixel3"])


#: The expensive step of each predictor's fit that a bad hyper-parameter must not reach.
EXPENSIVE = {
    "help": "predictors._help.HELPPredictor._meta_train",
    "maml": "predictors._help.HELPPredictor._meta_train",
    "help+": "predictors._helpplus.HELPPlusPredictor._simulated_targets",
    "transfer": "sklearn.ensemble.HistGradientBoostingRegressor.fit",
}

BAD: list[tuple[str, str, object]] = [
    *[
        (name, param, value)
        for name in ("help", "maml")
        for param, value in [
            ("episodes", 2.5),
            ("episodes", 0),
            ("tasks_per_episode", "8"),
            ("n_support", 0),
            ("n_query", 2.5),
            ("inner_steps", 1.5),
            ("inner_steps", -1),
            ("inner_lr", 0.0),
            ("inner_lr", float("nan")),
            ("outer_lr", -1e-4),
            ("outer_lr", "1e-4"),
            ("kl_weight", -0.1),
            ("hidden", 0),
            ("eval_every", 0),
            ("mc_samples", 1.5),
            ("meta_sgd", "yes"),
            ("hw_embedding", None),
            ("second_order", 1),
            ("seed", -1),
            ("validation_devices", "pixel3"),
        ]
    ],
    ("help+", "hidden", 2.5),
    ("help+", "steps", 0),
    ("help+", "lr", 0.0),
    ("help+", "lr", float("inf")),
    ("help+", "weight_decay", -1e-2),
    ("help+", "weight_decay", "1e-2"),
    ("help+", "n_models", 0),
    ("help+", "n_models", 1.5),
    ("help+", "sim_devices", -1),
    ("help+", "sim_archs", 2.5),
    ("help+", "sim_archs", -1),
    ("help+", "sim_ops", 5000.5),
    ("help+", "sim_ops", -1),
    ("help+", "sim_components", 1.5),
    ("help+", "with_encoding", "no"),
    ("help+", "log_target", 1),
    ("help+", "additive", None),
    ("help+", "source_luts", "x"),
    ("help+", "parallel", 0.0),
    ("help+", "seed", 1.5),
    ("transfer", "max_iter", 2.5),
    ("transfer", "max_iter", 0),
    ("transfer", "seed", -1),
    ("transfer", "seed", "a"),
]


@pytest.mark.parametrize(("name", "param", "value"), BAD)
def test_bad_hyper_parameter_is_a_value_error_before_any_work(
    name: str, param: str, value: object, tasks: list[DeviceTask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EXPENSIVE[name], _reached)
    model = get_predictor(name, **{param: value})
    with pytest.raises(ValueError, match=rf"^`{param}` must "):
        model.fit(tasks)
    assert not hasattr(model, "space_")  # refused before even reading the tasks


def _reached(*_args: object, **_kwargs: object) -> Any:
    raise AssertionError("the expensive step ran before the hyper-parameters were checked")


@pytest.mark.parametrize("name", list_predictors())
def test_default_hyper_parameters_pass_their_check(name: str) -> None:
    get_predictor(name)._check_params()


def test_numpy_scalars_are_valid_hyper_parameters() -> None:
    HELPPlusPredictor(
        n_models=np.int64(2), lr=np.float32(1e-3), weight_decay=0, log_target=np.bool_(True)
    )._check_params()
    get_predictor("help", episodes=np.int32(3), outer_lr=np.float64(1e-3))._check_params()
    get_predictor("transfer", max_iter=np.int64(5), seed=np.int64(1))._check_params()


# ---------------------------------------------------------------- revisions of saved predictors
def _saved(model: LatencyPredictor, drop_revision: bool = False, **changes: Any) -> bytes:
    """``model`` saved (unfitted predictors get a space, all ``to_bytes`` checks), then edited
    as an older release would have written it."""
    if not hasattr(model, "space_"):
        model.space_ = SPACE
    data = pickle.loads(model.to_bytes())
    if drop_revision:
        del data["revision"]
    data.update(changes)
    return pickle.dumps(data)


def test_saved_predictors_record_their_revision() -> None:
    model = HELPPlusPredictor(steps=3)
    data = pickle.loads(_saved(model))
    assert data["revision"] == HELPPlusPredictor.revision > 1
    back = load_predictor(_saved(model))
    assert isinstance(back, HELPPlusPredictor) and back.steps == 3


def test_a_predictor_of_another_revision_is_refused() -> None:
    rev = HELPPlusPredictor.revision
    for other in (rev - 1, rev + 1):
        with pytest.raises(
            PredictorError,
            match=rf"'help\+' was saved by revision {other}, but this is revision {rev}, .*"
            "meta-train it again",
        ):
            load_predictor(_saved(HELPPlusPredictor(), revision=other))
    with pytest.raises(PredictorError, match="not a saved predictor payload"):
        load_predictor(_saved(HELPPlusPredictor(), revision="6"))


def test_a_payload_without_revision_loads_only_where_nothing_changed() -> None:
    """Files saved before payloads recorded the revision: a class still at revision 1 loads
    them; a later revision refuses them unless the caller vouches for the revision."""
    assert FlopsPredictor.revision == 1
    assert isinstance(load_predictor(_saved(FlopsPredictor(), True)), FlopsPredictor)
    old = _saved(HELPPlusPredictor(), True)
    with pytest.raises(PredictorError, match="without its revision .* meta-train it again"):
        load_predictor(old)
    rev = HELPPlusPredictor.revision
    assert isinstance(load_predictor(old, revision=rev), HELPPlusPredictor)
    with pytest.raises(PredictorError, match=f"saved by revision {rev - 1}"):
        load_predictor(old, revision=rev - 1)
    # a payload's own revision wins over the caller's
    assert isinstance(load_predictor(_saved(HELPPlusPredictor()), revision=1), HELPPlusPredictor)


def test_service_artifacts_saved_before_revisions_still_load(tmp_path: Path) -> None:
    """The service's artifact versions name the revision, so its stored artifacts (written
    without the payload key) keep loading instead of being refused or retrained."""
    from hwdb import HardwareDB
    from predictors._service import ARTIFACT_KIND, _version, stored_or_trained

    sources = ["a", "b"]
    version = _version("help+", sources)
    with HardwareDB(f"sqlite:///{tmp_path / 'old.sqlite'}") as db:
        db.save_artifact(
            kind=ARTIFACT_KIND, space=SPACE, version=version,
            payload=_saved(HELPPlusPredictor(steps=7), True),
            summary={"predictor": "help+", "sources": sources}, metrics={},
        )  # fmt: skip
        model, got, trained = stored_or_trained(
            db, space=SPACE, predictor="help+", sources=sources, train=False
        )
    assert isinstance(model, HELPPlusPredictor) and model.steps == 7
    assert got == version and trained is False


def test_evaluate_adapted_without_seeds_is_a_value_error() -> None:
    """Review: no seed gave NaN means and a RuntimeWarning (evaluate_zero_shot refuses it)."""
    import pandas as pd

    from predictors import evaluate_adapted, get_predictor

    with pytest.raises(ValueError, match="`seeds` must hold at least one seed"):
        evaluate_adapted(get_predictor("flops"), pd.DataFrame(), "nasbench201", "d", seeds=())


def test_device_splits_of_a_table_without_common_reference_archs_are_errors() -> None:
    """Review: no 10 archs measured on every device made usable_sources raise a device's
    NotEnoughDataError instead of answering no source device (NoSourceDevicesError)."""
    import pandas as pd

    from predictors import NotEnoughDataError
    from predictors._data import device_splits
    from predictors._service import usable_sources
    from search_spaces import get_space

    sp = get_space("mnasnet")
    archs = [sp.to_string(sp.random(i)) for i in range(60)]
    table = pd.DataFrame(
        {"a": [1.0 + i if i < 30 else None for i in range(60)],
         "b": [None if i < 30 else 1.0 + i for i in range(60)]},
        index=archs,
    )  # fmt: skip
    splits = device_splits(table, "mnasnet")
    assert set(splits) == {"a", "b"}
    assert all(isinstance(v, NotEnoughDataError) for v in splits.values())
    assert usable_sources(table, "mnasnet", None) == []
