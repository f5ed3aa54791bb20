"""Tests of the notebook helpers in :mod:`nas._notebook`."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from nas import _notebook as nb
from predictors import get_predictor, make_tasks


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NAS_SHARED_DATA", str(tmp_path))
    assert nb.shared_data_dir() == tmp_path.resolve()
    monkeypatch.delenv("NAS_SHARED_DATA")
    assert nb.shared_data_dir().parts[-2:] == ("shared", "data")
    for value, expected in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("NAS_NOTEBOOK_FAST", value)
        assert nb.fast_mode() is expected


def _synthetic_table(n_archs: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.lognormal(size=n_archs)
    return pd.DataFrame(
        {
            "a": base,
            "a_twice": 2.0 * base,
            "reversed": 1.0 / base,
            "b": base + rng.normal(scale=0.5, size=n_archs) ** 2,
        },
        index=[f"arch{i}" for i in range(n_archs)],
    )


def test_rank_correlation_orders_alike_devices_together() -> None:
    corr = nb.rank_correlation(_synthetic_table())
    assert corr.loc["a", "a_twice"] == pytest.approx(1.0)
    assert corr.loc["a", "reversed"] == pytest.approx(-1.0)
    order = list(corr.columns)
    assert abs(order.index("a") - order.index("a_twice")) == 1
    assert list(corr.index) == order


def test_rank_correlation_min_common_gives_nan() -> None:
    table = _synthetic_table()
    table.loc[table.index[5:], "b"] = np.nan
    corr = nb.rank_correlation(table, min_common=10)
    assert np.isnan(corr.loc["a", "b"])


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"method": "pearson"}, "method"), ({"min_common": 1}, "min_common")]
)
def test_rank_correlation_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        nb.rank_correlation(_synthetic_table(), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`table`"):
        nb.rank_correlation(_synthetic_table()[["a"]])


def test_calibration_table_of_a_calibrated_gaussian() -> None:
    rng = np.random.default_rng(0)
    mean = np.full(20_000, 10.0)
    std = np.full(20_000, 2.0)
    true = rng.normal(mean, std)
    tab = nb.calibration_table(mean, std, true, levels=(0.5, 0.9))
    assert tab["observed"].to_numpy() == pytest.approx([0.5, 0.9], abs=0.02)
    overconfident = nb.calibration_table(mean, std / 4, true, levels=(0.9,))
    assert overconfident["observed"].iloc[0] < 0.4


def test_calibration_table_bad_arguments() -> None:
    with pytest.raises(ValueError, match="same length"):
        nb.calibration_table([1.0], [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="`levels`"):
        nb.calibration_table([1.0], [1.0], [1.0], levels=(1.0,))


def _front() -> list[dict[str, object]]:
    points = [(1.0, 50.0), (2.0, 85.0), (3.0, 87.0), (10.0, 90.0)]
    return [
        {"arch": f"x{i}", "accuracy": acc, "latency_ms": {"dev": lat}}
        for i, (lat, acc) in enumerate(points)
    ]


def test_knee_point_and_best_under_budget() -> None:
    assert nb.knee_point(_front(), device="dev")["arch"] == "x1"
    assert nb.best_under_budget(_front(), device="dev", budget_ms=5.0)["arch"] == "x2"
    with pytest.raises(ValueError, match="no front entry"):
        nb.best_under_budget(_front(), device="dev", budget_ms=0.5)
    with pytest.raises(ValueError, match="`budget_ms`"):
        nb.best_under_budget(_front(), device="dev", budget_ms=0.0)
    with pytest.raises(ValueError, match="`front`"):
        nb.knee_point([], device="dev")


def test_true_front_is_the_nondominated_set() -> None:
    acc = pd.Series({"a": 90.0, "b": 80.0, "c": 70.0, "d": 95.0, "e": 60.0})
    lat = pd.Series({"a": 2.0, "b": 1.0, "c": 3.0, "d": 5.0})
    front = nb.true_front(acc, lat)
    assert list(front["arch"]) == ["b", "a", "d"]
    with pytest.raises(ValueError, match="share no"):
        nb.true_front(acc[["e"]], lat)


@pytest.fixture(scope="module")
def nb201_db(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> object:
    root = shared_data
    path = tmp_path_factory.mktemp("nbdb") / "hwdb.sqlite"
    return nb.build_database(
        path,
        data_dir=root,
        help_devices=["1080ti_1", "pixel3", "raspi4"],
        latbench=["embedded-gpu-jetson-nano-fp32"],
        nats=True,
    )


def test_build_database_imports_only_the_chosen_devices(nb201_db: object) -> None:
    db = nb201_db
    names = {d.name for d in db.list_devices()}  # type: ignore[attr-defined]
    assert names == {"1080ti_1", "pixel3", "raspi4", "embedded-gpu-jetson-nano-fp32"}
    acc = db.accuracy_table("nasbench201", dataset="cifar10")  # type: ignore[attr-defined]
    assert len(acc) == 15625


def test_build_database_rejects_an_empty_device_selection(
    tmp_path: Path, shared_data: Path
) -> None:
    with pytest.raises(ValueError, match="`help_devices`"):
        nb.build_database(
            tmp_path / "x.sqlite", data_dir=shared_data, help_devices=["nope"], latbench=False
        )


def test_few_shot_curves_and_predictions_on_real_data(nb201_db: object) -> None:
    table = nb201_db.latency_table("nasbench201", devices=["1080ti_1", "pixel3", "raspi4"])  # type: ignore[attr-defined]
    model = get_predictor("flops").fit(make_tasks(table, "nasbench201", ["1080ti_1", "pixel3"]))
    pred = nb.adapted_predictions(model, table, "nasbench201", "raspi4", shots=0)
    assert list(pred.columns) == ["arch", "measured_ms", "mean_ms", "std_ms"]
    assert (pred["mean_ms"] > 0).all() and (pred["std_ms"] >= 0).all()
    curves = nb.few_shot_curves(
        {"flops": model}, table, "nasbench201", "raspi4", shots=(0, 5), seeds=(0, 1)
    )
    assert list(curves["shots"]) == [0, 5]
    assert curves["spearman"].between(0.3, 1.0).all()
    with pytest.raises(ValueError, match="`shots`"):
        nb.adapted_predictions(model, table, "nasbench201", "raspi4", shots=-1)
    with pytest.raises(ValueError, match="non-empty"):
        nb.few_shot_curves({}, table, "nasbench201", "raspi4")


def test_plots_draw_on_the_given_axes() -> None:
    fig, axes = plt.subplots(1, 3)
    nb.plot_rank_correlation(nb.rank_correlation(_synthetic_table()), ax=axes[0])
    pred = pd.DataFrame({"measured_ms": [1.0, 2.0, 4.0], "mean_ms": [1.1, 1.9, 4.5]})
    nb.plot_predicted_vs_measured(pred, ax=axes[1], title="t")
    nb.plot_calibration(
        {"p": nb.calibration_table([1.0, 2.0], [0.1, 0.1], [1.05, 2.5])}, ax=axes[2]
    )
    assert len(axes[0].images) == 1
    assert len(axes[1].collections) >= 2
    assert len(axes[2].lines) == 2
    plt.close(fig)


def test_build_database_names_the_missing_data(tmp_path: Path, shared_data: Path) -> None:
    """A wrong NAS_SHARED_DATA, or a LatBench stem with a typo, is said as such (before:
    'field path: not a directory', or the typo silently imported nothing)."""
    with pytest.raises(FileNotFoundError, match="set NAS_SHARED_DATA"):
        nb.build_database(tmp_path / "a.sqlite", data_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="`latbench` names no LatBench pickle .*: typo"):
        nb.build_database(
            tmp_path / "b.sqlite", data_dir=shared_data, help_spaces=(), latbench=["typo"]
        )
    assert not (tmp_path / "a.sqlite").exists() and not (tmp_path / "b.sqlite").exists()


def test_work_dir_is_removed_at_exit(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "from nas import _notebook as nb; d = nb.work_dir(); (d / 'x').write_text('1'); print(d)"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    made = Path(out.stdout.decode().strip())
    assert made.parent == tmp_path and not made.exists()


def test_notebook_conveniences_of_the_library(tmp_path: Path) -> None:
    """Small things a notebook user hits: tab completion of lazy exports, a short repr of a
    search result, export formats in any case, proxy arguments checked up front, and a
    database path that is no URL explained."""
    import nas
    import nas.search
    from hwdb import HardwareDB
    from nas.search import ProxyAccuracy, SearchResult, export_model

    assert {"run_search", "export_model", "SearchResult"} <= set(dir(nas))
    assert {"run_search", "SearchWarning", "TableAccuracy"} <= set(dir(nas.search))
    res = SearchResult("s", None, "nasbench201", ["d"], "table", {}, [{"a": 1}] * 999,
                       [{"a": 1}] * 999, [], "hv", 999, 999, 999, 1.0)  # fmt: skip
    assert len(repr(res)) < 500 and "n_trials=999" in repr(res)
    out = export_model("resnet", space="nasbench201", format=" ONNX", path=tmp_path / "m.onnx")
    assert Path(out).stat().st_size > 0
    for kwargs in ({"batch_size": 0}, {"resolution": 0}, {"batch_size": True}):
        with pytest.raises(ValueError, match=f"`{next(iter(kwargs))}` must be an integer"):
            ProxyAccuracy("mnasnet", "synflow", **kwargs)  # type: ignore[arg-type]
    assert ProxyAccuracy("mnasnet", "params").space.name == "mnasnet"
    with pytest.raises(ValueError, match="sqlite:////absolute/path.sqlite"):
        HardwareDB(str(tmp_path / "plain.sqlite"))
