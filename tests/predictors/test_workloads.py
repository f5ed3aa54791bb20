"""Predictor features follow the workload (input shape) each device was measured under."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from predictors import (
    NotEnoughDataError,
    PredictorError,
    device_workload,
    get_adapted_predictor,
    get_predictor,
    make_tasks,
)
from predictors._features import additive_features, analytic_cost, encode
from search_spaces import Workload, get_space

SHORT_PROMPT = Workload(prompt_len=32, decode_len=8)
SMALL_IMAGE = Workload(resolution=160)


def _archs(space: str, n: int) -> list[str]:
    sp = get_space(space)
    return [sp.to_string(sp.random(seed)) for seed in range(n)]


def test_own_space_features_follow_the_workload() -> None:
    lms = _archs("nemotron_flash", 3)
    measured = additive_features("nemotron_flash", lms, workload=SHORT_PROMPT)
    assert not np.allclose(measured, additive_features("nemotron_flash", lms))
    sp = get_space("nemotron_flash")
    assert measured[0, 0] == sp.profile(sp.from_string(lms[0]), SHORT_PROMPT).macs
    cnns = _archs("mnasnet", 3)
    assert not np.allclose(encode("mnasnet", cnns, SMALL_IMAGE), encode("mnasnet", cnns))
    small, default = analytic_cost("mnasnet", cnns, SMALL_IMAGE), analytic_cost("mnasnet", cnns)
    assert np.all(small[:, 0] < default[:, 0])  # MACs shrink with the image
    np.testing.assert_array_equal(small[:, 1], default[:, 1])  # parameters do not


def test_benchmark_space_features_ignore_the_workload(nb201_table: pd.DataFrame) -> None:
    archs = list(nb201_table.index[:5])
    np.testing.assert_array_equal(
        encode("nasbench201", archs), encode("nasbench201", archs, Workload(batch_size=8))
    )


def test_device_workload_merges_stored_fields_over_the_space_default() -> None:
    table = pd.DataFrame({d: [1.0] for d in "abcd"}, index=["x"])
    table.attrs["workload"] = {
        "a": {"resolution": 160},
        "b": {},
        "c": {"batch_size": 1, "resolution": 224},
        "d": {"colour": 3},
    }
    assert device_workload(table, "mnasnet", "a") == SMALL_IMAGE
    assert device_workload(table, "mnasnet", "b") is None
    assert device_workload(table, "mnasnet", "c") is None  # the space's default itself
    assert device_workload(table, "no-such-space", "a") is None
    with pytest.raises(PredictorError, match="'d'.*colour"):
        device_workload(table, "mnasnet", "d")


@pytest.fixture(scope="module")
def mnasnet_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bundled mnasnet measurements (4 CPU configurations at 160 px, one at batch 8)."""
    from hwdb import HardwareDB
    from hwdb.importers.parquet import bundled_datasets, import_parquet

    url = f"sqlite:///{tmp_path_factory.mktemp('wl') / 'hwdb.sqlite'}"
    with HardwareDB(url) as db:
        import_parquet(db, next(p for p in bundled_datasets() if p.name == "mnasnet.parquet"))
    return url


def test_service_adapts_under_the_measured_workload(mnasnet_db: str) -> None:
    from hwdb import HardwareDB

    target = "cpu-torch-fp32-t2"
    with HardwareDB(mnasnet_db) as db:
        table = db.latency_table("mnasnet")
        tasks = make_tasks(table, "mnasnet", ["cpu-torch-fp32-t1", "cpu-torch-fp32-t1-b8"])
        assert [t.workload for t in tasks] == [SMALL_IMAGE, Workload(batch_size=8, resolution=160)]
        model = get_adapted_predictor(db, space="mnasnet", device=target, predictor="flops")
        assert model.workload == SMALL_IMAGE
        col = table[target].dropna()
        by_hand = get_predictor("flops").fit(tasks)
        by_hand = by_hand.adapt(list(col.index), col.to_numpy(float), workload=SMALL_IMAGE)
        archs = list(col.index[:20])
        np.testing.assert_allclose(model.predict(archs).mean_ms, by_hand.predict(archs)[0])
        with pytest.raises(PredictorError, match="measured in 'mnasnet' under"):
            get_adapted_predictor(
                db, space="mnasnet", device=target, predictor="flops", workload=Workload()
            )


def test_the_fix_named_for_a_missing_device_is_a_valid_command(mnasnet_db: str) -> None:
    import typer

    from hwdb import HardwareDB
    from nas._cli.main import app

    measure = typer.main.get_command(app).commands["measure"]  # type: ignore[attr-defined]
    options = {o for p in measure.params for o in p.opts}
    with HardwareDB(mnasnet_db) as db, pytest.raises(NotEnoughDataError) as err:
        get_adapted_predictor(db, space="mnasnet", device="jetson-nano", predictor="flops")
    command = re.search(r"`(nas measure [^`]*)`", str(err.value))
    assert command is not None
    flags = set(re.findall(r"--[a-z-]+", command.group(1)))
    assert flags and flags <= options


def test_meta_training_workload_is_the_most_common_one() -> None:
    from predictors import DeviceTask

    rng = np.random.default_rng(0)
    archs = tuple(_archs("mnasnet", 12))
    tasks = [
        DeviceTask("mnasnet", name, archs, rng.uniform(1, 2, len(archs)), workload=wl)
        for name, wl in (("a", SMALL_IMAGE), ("b", None), ("c", SMALL_IMAGE))
    ]
    assert get_predictor("scratch").fit(tasks).fit_workload_ == SMALL_IMAGE
    with pytest.raises(ValueError, match="workload"):
        DeviceTask("mnasnet", "d", archs, np.ones(len(archs)), workload={"resolution": 160})  # type: ignore[arg-type]


def test_cli_adapt_says_which_workload_it_predicts(
    mnasnet_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from nas._cli.main import main

    args = ["--db", mnasnet_db, "predictor", "adapt", "--space", "mnasnet"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--device", "cpu-torch-fp32-t1-b8", "--predictor", "flops", "--json"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["workload"] == {"batch_size": 8, "resolution": 160}


def test_language_models_use_their_end_to_end_latency(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """nemotron_flash rows are stored as prefill / decode / end-to-end times, not latency_ms."""
    from hwdb import HardwareDB
    from hwdb.importers.parquet import bundled_datasets, import_parquet
    from nas.search import resolve_device
    from predictors import latency_metric

    assert latency_metric("nemotron_flash") == "e2e_ms"
    assert latency_metric("mnasnet") == latency_metric("ofa") == "latency_ms"
    url = f"sqlite:///{tmp_path_factory.mktemp('lm') / 'hwdb.sqlite'}"
    with HardwareDB(url) as db:
        path = next(p for p in bundled_datasets() if p.name == "nemotron_flash.parquet")
        import_parquet(db, path)
        match = resolve_device(db, "cpu-torch-fp32-t1", space="nemotron_flash")
        assert (match.device, match.n_measurements) == ("cpu-torch-fp32-t1", 410)
        model = get_adapted_predictor(
            db, space="nemotron_flash", device="cpu-torch-fp32-t1", predictor="flops"
        )
        assert model.n_measurements == 410 and model.workload == SHORT_PROMPT
        e2e = db.latency_table("nemotron_flash", metric="e2e_ms")["cpu-torch-fp32-t1"]
        pred = model.predict(list(e2e.index[:50])).mean_ms
        assert np.corrcoef(np.log(pred), np.log(e2e.to_numpy()[:50]))[0, 1] > 0.5
