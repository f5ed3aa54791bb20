"""Shared setup of the search tests: a small real hwdb over NATS-Bench and LatBench data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DEVICE = "jetson-nano-fp32"
LAT_COL = "embedded-gpu-jetson-nano-fp32_ms"


def build_db(url: str, shared_data: Path, *, n_measured: int = 80, seed: int = 0) -> None:
    """NATS-Bench CIFAR-10 accuracies (all archs) + ``n_measured`` Jetson Nano latencies."""
    from hwdb import AccuracyIn, DeviceSpec, HardwareDB, MeasurementIn
    from search_spaces import get_space

    sp = get_space("nasbench201")
    acc = pd.read_csv(shared_data / "nb201-accuracy" / "nats_bench.csv")
    lat = pd.read_csv(shared_data / "latbench" / "latbench_nb201_ms.csv")
    archs = [sp.canonicalize(a) for a in acc["ArchitectureString"]]
    rng = np.random.default_rng(seed)
    idx = [int(i) for i in rng.permutation(len(lat)) if np.isfinite(lat[LAT_COL][i])][:n_measured]
    with HardwareDB(url) as db:
        db.upsert_device(DeviceSpec(name=DEVICE, family="jetson", provenance="imported"))
        db.upsert_device(DeviceSpec(name="jetson-orin-unmeasured", family="jetson"))
        db.add_accuracies(
            [
                AccuracyIn(
                    space="nasbench201",
                    arch=a,
                    dataset="cifar10",
                    metric="test_accuracy",
                    value=float(v),
                )
                for a, v in zip(archs, acc["CIFAR10TestAccuracy200Epochs"], strict=True)
            ]
        )
        db.add_measurements(
            [
                MeasurementIn(
                    device=DEVICE, space="nasbench201", arch=archs[i], median=float(lat[LAT_COL][i])
                )
                for i in idx
            ]
        )


# --------------------------------------------------------------------------------- fixtures
import json  # noqa: E402
import math  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'hwdb.sqlite'}"
    build_db(url, shared_data)
    return url


class CountingTable:
    """Wraps the table objective and records every architecture it scores."""

    def __init__(self, inner: object) -> None:
        self.inner, self.name, self.seen = inner, "table:cifar10", []  # type: ignore[var-annotated]

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        self.seen.extend(archs)
        return self.inner.evaluate(archs)  # type: ignore[attr-defined,no-any-return]


def _setup(db_url: str) -> tuple[object, dict[str, object]]:
    from hwdb import HardwareDB
    from nas.search import MeasuredLatencyModel, TableAccuracy
    from search_spaces import get_space

    sp = get_space("nasbench201")
    with HardwareDB(db_url) as db:
        acc = TableAccuracy.from_db(db, space="nasbench201", dataset="cifar10")
        models = {DEVICE: MeasuredLatencyModel.from_db(db, space=sp, device=DEVICE)}
    return acc, models


def _counted_search(db_url: str, **kwargs: Any) -> tuple[Any, CountingTable]:
    """120 trials (population 20, seed 0) on the table objective, counting what it scores."""
    from nas.search import run_search

    acc, models = _setup(db_url)
    counting = CountingTable(acc)
    res = run_search(
        space="nasbench201",
        devices=[DEVICE],
        accuracy=counting,
        latency_models=models,
        trials=120,
        population=20,
        seed=0,
        **kwargs,
    )
    return res, counting


# --------------------------------------------------------------------------------- tests
def test_search_front_is_nondominated_and_outputs_parse(db_url: str, tmp_path: Path) -> None:
    from nas.search import pareto_mask

    res, counting = _counted_search(db_url, out_dir=tmp_path / "out")
    assert res.n_trials == 120 and res.n_new_trials == 120
    # duplicate elimination: every trial is a distinct architecture, scored once
    assert len(counting.seen) == len(set(counting.seen)) == res.n_evaluated == 120
    pts = np.array([[-t["accuracy"], t["latency_ms"][DEVICE]] for t in res.trials])
    front = np.array([[-e["accuracy"], e["latency_ms"][DEVICE]] for e in res.front])
    assert len(front) >= 2
    for f in front:  # no trial dominates a front member
        assert not np.any(np.all(pts <= f, axis=1) & np.any(pts < f, axis=1))
    assert pareto_mask(front).all()
    data = json.loads((tmp_path / "out" / "pareto.json").read_text())
    assert [d["arch"] for d in data] == [e["arch"] for e in res.front]
    for d in data:
        assert set(d) >= {"arch", "accuracy", "latency_ms", "latency_std_ms", "params", "macs"}
        assert d["params"] > 0 and d["macs"] > 0 and d["latency_ms"][DEVICE] > 0
    assert (tmp_path / "out" / "pareto.csv").read_text().count("\n") == len(data) + 1
    assert (tmp_path / "out" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    hist = json.loads((tmp_path / "out" / "history.json").read_text())["generations"]
    assert len(hist) == 6
    hv = [h["hypervolume"] for h in hist]
    assert all(b >= a - 1e-12 for a, b in zip(hv, hv[1:], strict=False))  # cumulative front
    import optuna

    study = optuna.load_study(
        study_name=res.study_name,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "out" / "study.journal"))
        ),
    )
    # a standard journal, readable by optuna-dashboard; revisits are kept as pruned trials
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 120 and len({t.user_attrs["arch"] for t in done}) == 120
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert pruned and all(t.user_attrs["revisit"] for t in pruned)
    assert {t.user_attrs["arch"] for t in pruned} <= {t.user_attrs["arch"] for t in done}


def test_dead_operations_are_pruned_before_evaluation(db_url: str) -> None:
    """With ``prune_dead_ops``, a child with dead edges is evaluated as the same network
    without them: no scored arch has one, and the originals stay as tagged pruned trials."""
    from search_spaces import get_space
    from search_spaces._nb201_arch import EDGE_NAMES

    sp = get_space("nasbench201")
    res, counting = _counted_search(db_url, prune_dead_ops=True)
    assert res.n_trials == 120 and len(set(counting.seen)) == res.n_evaluated == 120
    for arch in counting.seen:
        params = dict(zip(EDGE_NAMES, sp.from_string(arch).ops, strict=True))
        assert sp.prune_params(params) == params
    plain, _ = _counted_search(db_url)
    assert any(  # without pruning, NSGA-II does evaluate such variants
        sp.prune_params(dict(zip(EDGE_NAMES, sp.from_string(t["arch"]).ops, strict=True)))
        != dict(zip(EDGE_NAMES, sp.from_string(t["arch"]).ops, strict=True))
        for t in plain.trials
    )


def test_revisits_are_told_cached_values_without_elimination(db_url: str) -> None:
    res, counting = _counted_search(db_url, eliminate_duplicates=False)
    assert res.n_trials == 120
    assert len(counting.seen) == len(set(counting.seen)) == res.n_evaluated
    assert res.n_evaluated < 120  # NSGA-II revisits some archs; they were not re-scored


def test_budget_is_a_constraint(db_url: str, tmp_path: Path) -> None:
    from nas.search import run_search

    acc, models = _setup(db_url)
    budget = 12.0
    res = run_search(
        space="nasbench201",
        devices=[DEVICE],
        accuracy=acc,
        latency_models=models,
        trials=100,
        population=20,
        seed=1,
        budget_ms=budget,
        budget_quantile_z=1.0,
    )
    assert res.storage is None  # no out_dir, no storage: in memory
    assert res.front and all(e["feasible"] for e in res.front)
    for e in res.front:
        assert e["latency_ms"][DEVICE] + e["latency_std_ms"][DEVICE] <= budget + 1e-9
    assert any(not t["feasible"] for t in res.trials)


def test_resume_and_study_mismatch(db_url: str, tmp_path: Path) -> None:
    from nas.search import StudyMismatchError, run_search

    acc, models = _setup(db_url)
    kw = dict(
        space="nasbench201",
        devices=[DEVICE],
        accuracy=acc,
        latency_models=models,
        population=20,
        seed=0,
        out_dir=tmp_path,
    )
    first = run_search(trials=40, **kw)  # type: ignore[arg-type]
    second = run_search(trials=80, **kw)  # type: ignore[arg-type]
    assert first.n_trials == 40 and second.n_trials == 80 and second.n_new_trials == 40
    with pytest.raises(StudyMismatchError, match="budget"):
        run_search(trials=100, budget_ms=5.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"trials": 0}, "`trials`"),
        ({"population": 1}, "`population`"),
        ({"devices": []}, "`devices`"),
        ({"devices": ["other"]}, "`latency_models`"),
        ({"budget_ms": -1.0}, "`budget_ms`"),
        ({"budget_ms": {"nope": 1.0}}, "`budget_ms`"),
        ({"budget_quantile_z": math.nan}, "`budget_quantile_z`"),
        ({"storage": " "}, "`storage`"),
    ],
)
def test_run_search_value_errors(db_url: str, kwargs: dict[str, object], match: str) -> None:
    from nas.search import run_search

    acc, models = _setup(db_url)
    args: dict[str, object] = dict(
        space="nasbench201",
        devices=[DEVICE],
        accuracy=acc,
        latency_models=models,
        trials=10,
        population=4,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        run_search(**args)  # type: ignore[arg-type]


def test_device_resolution(db_url: str) -> None:
    from hwdb import HardwareDB
    from nas.search import DeviceResolutionError, resolve_device

    with HardwareDB(db_url) as db:
        m = resolve_device(db, "jetson", space="nasbench201")
        assert (m.device, m.rule) == (DEVICE, "substring")  # the unmeasured Orin is skipped
        assert resolve_device(db, DEVICE, space="nasbench201").rule == "name"
        with pytest.raises(DeviceResolutionError, match="nas measure"):
            resolve_device(db, "jetson-orin", space="nasbench201")
        with pytest.raises(ValueError, match="`device`"):
            resolve_device(db, " ", space="nasbench201")


def test_measured_archs_get_their_measurements(db_url: str) -> None:
    """`measured_first` (what `nas search` and API searches use): a measured arch gets its
    measured median with no uncertainty, the others the wrapped model's prediction; a device
    with no measurement in the space keeps the model itself."""
    from hwdb import HardwareDB
    from nas.search import MeasuredFirstModel, MeasuredPrediction, measured_first
    from search_spaces import get_space

    class Constant:
        def predict(self, archs: Sequence[str]) -> MeasuredPrediction:
            n = len(archs)
            return MeasuredPrediction(
                list(archs), np.full(n, 99.0), np.full(n, 9.0), "const", "1", 0, "test"
            )

    sp = get_space("nasbench201")
    with HardwareDB(db_url) as db:
        table = db.latency_table("nasbench201", devices=[DEVICE])[DEVICE].dropna()
        model = measured_first(db, space=sp, device=DEVICE, model=Constant())
        bare = Constant()
        assert measured_first(db, space=sp, device="jetson-orin-unmeasured", model=bare) is bare
    assert isinstance(model, MeasuredFirstModel)
    known = list(table.index[:3])
    other = [a for a in (sp.to_string(sp.random(i)) for i in range(10)) if a not in table.index]
    pred = model.predict([known[0], other[0], known[1], other[1], known[2]])
    np.testing.assert_allclose(pred.mean_ms[[0, 2, 4]], table.loc[known].to_numpy())
    np.testing.assert_allclose(pred.mean_ms[[1, 3]], 99.0)
    np.testing.assert_allclose(pred.std_ms, [0.0, 9.0, 0.0, 9.0, 0.0])
    assert pred.predictor == "const" and "measured" in pred.source
    assert model.predict(other[:2]).source == "test"  # nothing measured: the model's answer


def test_front_says_which_latencies_were_measured(db_url: str, tmp_path: Path) -> None:
    """A trial whose arch the device has measured records it (`measured_on`), with std 0; the
    others are predictions. pareto.json/csv carry the field."""
    import csv

    from nas.search import MeasuredFirstModel, run_search
    from search_spaces import get_space

    acc, models = _setup(db_url)
    sp = get_space("nasbench201")
    half = list(dict.fromkeys(sp.to_string(sp.random(i)) for i in range(6000)))  # ~1/3
    inner = models[DEVICE]
    measured = dict(zip(half, inner.predict(half).mean_ms, strict=True))  # type: ignore[attr-defined]
    wrapped = MeasuredFirstModel(inner, measured)  # type: ignore[arg-type]
    res = run_search(
        space=sp, devices=[DEVICE], accuracy=acc, latency_models={DEVICE: wrapped},  # type: ignore[arg-type]
        trials=60, population=20, seed=0, out_dir=tmp_path / "out",
    )  # fmt: skip
    flags = {t["arch"]: t["measured_on"] for t in res.trials}
    assert any(flags.values()) and not all(flags.values())
    for t in res.trials:
        assert t["measured_on"] == ([DEVICE] if t["arch"] in measured else [])
        if t["measured_on"]:
            assert t["latency_std_ms"][DEVICE] == 0.0
    with (tmp_path / "out" / "pareto.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["measured_on"] for r in rows] == [";".join(e["measured_on"]) for e in res.front]
    data = json.loads((tmp_path / "out" / "pareto.json").read_text())
    assert [d["measured_on"] for d in data] == [e["measured_on"] for e in res.front]
    # the objective is named with every point: "accuracy" may be a proxy score
    assert {d["objective"] for d in data} == {r["objective"] for r in rows} == {res.accuracy}


def test_measured_latency_model_lookup_and_knn(db_url: str) -> None:
    from hwdb import HardwareDB
    from nas.search import MeasuredLatencyModel
    from search_spaces import get_space

    sp = get_space("nasbench201")
    with HardwareDB(db_url) as db:
        table = db.latency_table("nasbench201", devices=[DEVICE])[DEVICE].dropna()
        model = MeasuredLatencyModel.from_db(db, space=sp, device=DEVICE)
    known = list(table.index[:3])
    pred = model.predict(known)
    assert np.allclose(pred.mean_ms, table.loc[known].to_numpy()) and np.all(pred.std_ms == 0)
    other = [sp.to_string(sp.random(i)) for i in range(20)]
    other = [a for a in other if a not in table.index]
    p2 = model.predict(other)
    lo, hi = table.min(), table.max()
    assert np.all((p2.mean_ms >= lo - 1e-9) & (p2.mean_ms <= hi + 1e-9)) and np.all(p2.std_ms >= 0)


def test_library_calls_take_either_form_and_refuse_one_string(db_url: str) -> None:
    """What a notebook user types: a space name or object to either loader, and a device
    name where a list belongs (refused with the list it should be, not iterated per letter)."""
    from hwdb import HardwareDB
    from nas.search import MeasuredLatencyModel, TableAccuracy, resolve_devices, run_search
    from search_spaces import get_space

    sp = get_space("nasbench201")
    with HardwareDB(db_url) as db:
        by_name = MeasuredLatencyModel.from_db(db, space="nasbench201", device=DEVICE)
        by_space = TableAccuracy.from_db(db, space=sp, dataset="cifar10")
        with pytest.raises(ValueError, match=r"`queries` must be a list .*\['jetson'\]"):
            resolve_devices(db, "jetson", space="nasbench201")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="`devices` must be a list"):
            db.latency_table("nasbench201", devices=DEVICE)
    assert len(by_space) > 15_000 and by_name.predict([sp.to_string(sp.random(0))]).mean_ms > 0
    with pytest.raises(ValueError, match=r"`devices` must be a list .*one string"):
        run_search(
            space=sp, devices=DEVICE, accuracy=by_space,  # type: ignore[arg-type]
            latency_models={DEVICE: by_name}, trials=4, population=2,
        )  # fmt: skip


def test_an_adapted_predictor_is_a_latency_model(db_url: str, shared_data: Path) -> None:
    """The predictors contract returns ``(mean, std)``; run_search takes it as it is."""
    from nas.search import run_search
    from predictors import get_predictor, make_tasks, reference_archs
    from predictors._testing import help_latency_table

    nb201_table = help_latency_table("nasbench201", ["1080ti_1", "pixel3"])

    acc, _ = _setup(db_url)
    flops = get_predictor("flops").fit(make_tasks(nb201_table, "nasbench201", ["1080ti_1"]))
    refs = reference_archs(nb201_table, "nasbench201")
    lat = nb201_table.loc[refs, "pixel3"].to_numpy(float)
    adapted = flops.adapt(refs, lat, hw_embedding_ms=lat)
    res = run_search(
        space="nasbench201", devices=[DEVICE], accuracy=acc, latency_models={DEVICE: adapted},
        trials=8, population=4, seed=0,
    )  # fmt: skip
    assert res.n_trials == 8 and res.front
    expected = adapted.predict([p["arch"] for p in res.front])[0]
    np.testing.assert_allclose([p["latency_ms"][DEVICE] for p in res.front], expected)

    class Broken:
        def predict(self, archs: Sequence[str]) -> list[float]:
            return [1.0] * len(archs)

    with pytest.raises(Exception, match=r"returned a list; predict\(archs\) must return"):
        run_search(
            space="nasbench201", devices=[DEVICE], accuracy=acc,
            latency_models={DEVICE: Broken()}, trials=4, population=2,
        )  # fmt: skip


def test_an_empty_front_says_why(db_url: str) -> None:
    """No scored trial, or no trial within the budget: a SearchWarning and result.warnings."""
    from nas.search import SearchWarning, run_search

    acc, models = _setup(db_url)

    class NoScore:
        name = "nothing"

        def evaluate(self, archs: Sequence[str]) -> np.ndarray:
            return np.full(len(archs), np.nan)

    base = dict(space="nasbench201", devices=[DEVICE], latency_models=models, trials=6,
                population=3, seed=0)  # fmt: skip
    with pytest.warns(SearchWarning, match="none of the 6 trials got a score from 'nothing'"):
        res = run_search(accuracy=NoScore(), **base)  # type: ignore[arg-type]
    assert res.front == [] and res.warnings and res.to_dict()["warnings"] == res.warnings
    with pytest.warns(SearchWarning, match=r"no architecture met the latency budget \("):
        res = run_search(accuracy=acc, budget_ms=1e-6, **base)  # type: ignore[arg-type]
    assert res.front == [] and len(res.warnings) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchWarning)
        assert run_search(accuracy=acc, **base).warnings == []  # type: ignore[arg-type]
