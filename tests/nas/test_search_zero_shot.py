"""`nas search` on a device known only by the datasheet catalog (zero-shot roofline latency)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner


def test_resolve_device_falls_back_to_catalog(sqlite_url: str) -> None:
    from hwdb import HardwareDB
    from nas.search import resolve_device

    with HardwareDB(sqlite_url) as db:
        match = resolve_device(db, "jetson", space="nasbench201")
    assert match.rule == "zero-shot"
    assert match.device == "jetson-orin-nano"
    assert match.catalog == "jetson-orin-nano"
    assert match.n_measurements == 0
    line = match.describe()
    assert "ZERO-SHOT from catalog entry 'jetson-orin-nano'" in line
    assert "nas device onboard NAME --space nasbench201 --catalog jetson-orin-nano" in line


def test_a_catalog_device_with_one_or_two_measurements_resolves_zero_shot(
    sqlite_url: str,
) -> None:
    """Too few measured archs to adapt to: the search prices the datasheet, scaled to them,
    and says so; the third measured arch makes it a measured device."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from nas.search import load_latency_models, resolve_device
    from search_spaces import get_space

    sp = get_space("nasbench201")
    archs = [sp.to_string(sp.random(i)) for i in range(3)]
    with HardwareDB(sqlite_url) as db:
        db.upsert_device(
            DeviceSpec(name="my-orin", family="jetson", attributes={"catalog": "jetson-orin-nano"})
        )
        db.add_measurements(
            [MeasurementIn("my-orin", "nasbench201", a, median=2.0) for a in archs[:2]]
        )
        match = resolve_device(db, "my-orin", space="nasbench201")
        by_part = resolve_device(db, "my-or", space="nasbench201")
        models, _ = load_latency_models(
            db, space=sp, devices=["my-orin"], zero_shot={"my-orin": "jetson-orin-nano"}
        )
        db.add_measurements([MeasurementIn("my-orin", "nasbench201", archs[2], median=2.0)])
        measured = resolve_device(db, "my-orin", space="nasbench201")
    assert (match.rule, match.catalog, match.n_measurements) == ("zero-shot", "jetson-orin-nano", 2)
    assert (by_part.query, by_part.device, by_part.rule) == ("my-or", "my-orin", "zero-shot")
    assert "2 measured archs in 'nasbench201' (too few to adapt to)" in match.describe()
    assert "scaled to them" in match.describe()
    pred = models["my-orin"].predict(archs[:2])
    assert pred.n_measurements == 2
    assert np.exp(np.mean(np.log(pred.mean_ms))) == pytest.approx(2.0)
    assert (measured.rule, measured.catalog, measured.n_measurements) == ("name", None, 3)


def test_a_few_shot_catalog_device_is_searched_at_its_measured_medians(sqlite_url: str) -> None:
    """A search uses the measured median of every arch measured on a device, a zero-shot
    device's one or two included (the scaled datasheet prices the rest): `nas search` priced
    them by the datasheet while the API used the medians. ``get_model`` (the API's model
    cache) builds every device's model, zero-shot ones included, behind the same medians."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from nas.search import MeasuredFirstModel, load_latency_models
    from predictors import datasheet_model, latency_model
    from search_spaces import get_space

    sp = get_space("nasbench201")
    archs = [sp.to_string(sp.random(i)) for i in range(3)]
    calls: list[tuple[str, str, str | None]] = []

    def get_model(db: HardwareDB, *, space: str, device: str, predictor: str | None) -> object:
        calls.append((space, device, predictor))
        return latency_model(db, space=space, device=device, predictor=predictor)

    with HardwareDB(sqlite_url) as db:
        db.upsert_device(
            DeviceSpec(name="my-orin", family="jetson", attributes={"catalog": "jetson-orin-nano"})
        )
        medians = zip(archs[:2], (3.0, 1.0), strict=True)
        rows = [MeasurementIn("my-orin", "nasbench201", a, median=m) for a, m in medians]
        db.add_measurements(rows)
        zero_shot = {"my-orin": "jetson-orin-nano", "jetson-nano": "jetson-nano"}
        devices = ["my-orin", "jetson-nano"]  # a device of the DB, and a catalog entry's name
        models, note = load_latency_models(db, space=sp, devices=devices, zero_shot=zero_shot)
        cached, _ = load_latency_models(
            db, space=sp, devices=devices, zero_shot=zero_shot, get_model=get_model
        )
        roofline = datasheet_model(db, space="nasbench201", device="my-orin").predict(archs)
    assert calls == [("nasbench201", "my-orin", None), ("nasbench201", "jetson-nano", None)]
    assert isinstance(models["my-orin"], MeasuredFirstModel)
    assert not isinstance(models["jetson-nano"], MeasuredFirstModel)  # nothing measured
    assert "measured medians for the archs measured on a zero-shot device" in note
    for found in (models, cached):
        pred = found["my-orin"].predict(archs)
        np.testing.assert_allclose(pred.mean_ms, [3.0, 1.0, roofline.mean_ms[2]])
        np.testing.assert_allclose(pred.std_ms, [0.0, 0.0, roofline.std_ms[2]])
        assert pred.n_measurements == 2
        np.testing.assert_allclose(
            found["jetson-nano"].predict(archs).mean_ms,
            models["jetson-nano"].predict(archs).mean_ms,
        )


def test_unknown_device_is_a_clear_error(sqlite_url: str) -> None:
    from hwdb import HardwareDB
    from nas.search import DeviceResolutionError, resolve_device

    with HardwareDB(sqlite_url) as db, pytest.raises(DeviceResolutionError) as info:
        resolve_device(db, "no-such-board-xyz", space="nasbench201")
    assert "no-such-board-xyz" in str(info.value)
    assert "catalog" in str(info.value)


def test_zero_shot_latency_models_are_labelled(sqlite_url: str) -> None:
    from hwdb import HardwareDB
    from nas.search import load_latency_models
    from search_spaces import get_space

    sp = get_space("nasbench201")
    rng = np.random.default_rng(0)
    archs = [sp.to_string(sp.random(rng)) for _ in range(3)]
    with HardwareDB(sqlite_url) as db:
        models, note = load_latency_models(
            db,
            space=sp,
            devices=["jetson-orin-nano"],
            zero_shot={"jetson-orin-nano": "jetson-orin-nano"},
        )
        with pytest.raises(ValueError, match="zero_shot"):
            load_latency_models(db, space=sp, devices=["a"], zero_shot={"b": "jetson-orin-nano"})
    pred = models["jetson-orin-nano"].predict(archs)
    assert "zero-shot" in note
    assert pred.source == "zero-shot (datasheet)"
    assert np.all(np.asarray(pred.mean_ms) > 0)


@pytest.mark.parametrize(
    ("runtime", "priced", "hint"),
    [("unknown", "the mean of the eager and pruned estimates (runtime unknown)", True),
     ("tensorrt", "the fused graph", False), ("torch", "every eager op", False),
     ("tensorflow", "the pruned graph, unfused", False)],
)  # fmt: skip
def test_the_latency_note_says_which_operators_the_roofline_prices(
    sqlite_url: str, runtime: str, priced: str, hint: bool
) -> None:
    """The runtime decides the operator list (fused / eager / pruned, or a mean); the search
    says which, and how to name the runtime when it is unknown."""
    from hwdb import DeviceSpec, HardwareDB
    from nas.search import load_latency_models
    from search_spaces import get_space

    with HardwareDB(sqlite_url) as db:
        db.upsert_device(
            DeviceSpec(name="my-orin", family="jetson", runtime=runtime,
                       attributes={"catalog": "jetson-orin-nano"})
        )  # fmt: skip
        _, note = load_latency_models(
            db, space=get_space("nasbench201"), devices=["my-orin"],
            zero_shot={"my-orin": "jetson-orin-nano"},
        )  # fmt: skip
    assert f"my-orin <- catalog jetson-orin-nano, priced as {priced}" in note
    assert ("--runtime R" in note) is hint


def test_auto_accuracy_is_a_reduced_resolution_proxy_without_tables(sqlite_url: str) -> None:
    from hwdb import HardwareDB
    from nas.search import ProxyAccuracy, make_accuracy_objective
    from search_spaces import get_space

    sp = get_space("mnasnet")
    with HardwareDB(sqlite_url) as db:
        obj = make_accuracy_objective("auto", space=sp, db=db)
    assert isinstance(obj, ProxyAccuracy)
    assert obj.name == "proxy:synflow"
    assert obj.resolution is not None and obj.resolution < sp.default_workload().resolution
    with pytest.raises(ValueError, match="resolution"):
        make_accuracy_objective("auto", space=sp, resolution=0)


def test_cli_search_zero_shot_front(sqlite_url: str, tmp_path: Path) -> None:
    from nas._cli.main import app

    out = tmp_path / "out"
    args = ["--db", sqlite_url, "search", "--device", "jetson", "--space", "nasbench201"]
    args += ["--trials", "12", "--population", "4", "--seed", "0", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    stderr = result.stderr
    assert "ZERO-SHOT from catalog entry 'jetson-orin-nano'" in stderr
    assert "--catalog jetson-orin-nano" in stderr
    assert "proxy:synflow" in stderr
    front = json.loads(result.stdout)
    assert len(front) >= 1
    assert (out / "pareto.json").exists()
    assert (out / "pareto.csv").exists()


def test_cli_search_unknown_device_fails(sqlite_url: str, tmp_path: Path) -> None:
    from nas._cli.main import app
    from nas.search import DeviceResolutionError

    args = ["--db", sqlite_url, "search", "--device", "no-such-board-xyz"]
    args += ["--space", "nasbench201", "--trials", "4", "-o", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    # The command lets the error propagate; `nas.__main__` prints it as one line.
    assert isinstance(result.exception, DeviceResolutionError)
    assert "no-such-board-xyz" in str(result.exception)


class RooflineLatencyModel:
    """Stands for a datasheet model (``latency_model_name`` reads its class name)."""

    source = "zero-shot (datasheet)"

    def predict(self, archs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        mean = np.array([1.0 + sum(map(ord, a)) % 13 for a in archs])
        return mean, 0.5 * mean


class _AdaptedModel:
    """Stands for a predictor adapted to the device's measurements."""

    source = "adapted"
    model = type("M", (), {"name": "help+"})()

    def predict(self, archs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        mean = np.array([2.0 + sum(map(ord, a)) % 7 for a in archs])
        return mean, 0.1 * mean


class _Score:
    name = "score"

    def evaluate(self, archs: list[str]) -> np.ndarray:
        return np.array([float(sum(map(ord, a)) % 17) for a in archs])


def test_a_rerun_after_a_zero_shot_device_adapts_reprices_its_trials(tmp_path: Path) -> None:
    """QA: once a zero-shot device had three measurements, rerunning the same search said it
    used the adapted predictor but kept every old trial at its datasheet price and spread (so
    `p_front` and the contenders came from the datasheet's wide spread)."""
    from nas.search import run_search
    from search_spaces import get_space

    sp = get_space("nasbench201")
    kwargs: dict[str, Any] = dict(
        space=sp, devices=["d"], accuracy=_Score(), trials=30, population=10, seed=0,
        study_name="s", out_dir=tmp_path / "out", progress=False,
    )  # fmt: skip
    first = run_search(latency_models={"d": RooflineLatencyModel()}, **kwargs)
    assert all(p["p_front"] is None for p in first.front)  # zero-shot: no probability
    # review: a second rerun, and a run with more trials, showed the datasheet prices again
    for extra in (0, 0, 10):
        again = run_search(
            latency_models={"d": _AdaptedModel()}, **{**kwargs, "trials": 30 + extra}
        )
        assert again.n_new_trials == extra and again.front
        archs = [t["arch"] for t in again.trials]
        mean, std = _AdaptedModel().predict(archs)
        assert [t["latency_ms"]["d"] for t in again.trials] == list(mean)
        assert [t["latency_std_ms"]["d"] for t in again.trials] == list(std)
        assert all(p["p_front"] is not None for p in again.front)
