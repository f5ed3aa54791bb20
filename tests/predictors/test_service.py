"""The service API over a real hwdb database."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictors import (
    AdaptedLatencyModel,
    LatencyPrediction,
    NotEnoughDataError,
    get_adapted_predictor,
    predict_latency,
)
from predictors._service import ARTIFACT_KIND


@pytest.fixture
def db_url(nb201_db_url: str) -> str:
    return nb201_db_url


def test_adapted_predictor_trains_once_and_predicts(db_url: str) -> None:
    from hwdb import HardwareDB

    with HardwareDB(db_url) as db:
        model = get_adapted_predictor(db, space="nasbench201", device="gold_6226")
        assert isinstance(model, AdaptedLatencyModel)
        assert model.n_measurements >= 2000
        art = db.load_artifact(kind=ARTIFACT_KIND, space="nasbench201", version=model.version)
        assert art.summary["sources"] == ["1080ti_1", "pixel3", "silver_4114"]
        archs = list(db.latency_table("nasbench201").index[:30])
        pred = model.predict(archs)
        assert isinstance(pred, LatencyPrediction)
        assert pred.predictor == "help+" and pred.source == "adapted"
        assert np.all(pred.mean_ms > 0) and np.all(np.isfinite(pred.std_ms))
        again = predict_latency(db, space="nasbench201", device="gold_6226", archs=archs)
        np.testing.assert_allclose(again.mean_ms, pred.mean_ms)
    from search_spaces import get_space

    sp = get_space("nasbench201")
    resnet = sp.to_string(sp.resolve("resnet"))
    named = model.predict(["ResNet", resnet])  # reference names, as the CLI and API take them
    assert named.archs == [resnet, resnet] and named.mean_ms[0] == named.mean_ms[1]
    assert repr(model).startswith("AdaptedLatencyModel(space='nasbench201', device='gold_6226'")
    with pytest.raises(ValueError, match="`archs` must be a sequence"):
        model.predict(resnet)


def test_evaluate_adapted_takes_zero_shots_and_names_shots(nb201_table: pd.DataFrame) -> None:
    """``shots=0`` adapts on the reference archs alone (notebook 02's first point)."""
    from predictors import evaluate_adapted, get_predictor, make_tasks

    model = get_predictor("flops").fit(make_tasks(nb201_table, "nasbench201", ["1080ti_1"]))
    out = evaluate_adapted(model, nb201_table, "nasbench201", "gold_6226", shots=0, seeds=[0])
    assert 0.5 < out["spearman"] <= 1.0
    with pytest.raises(ValueError, match="`shots`"):
        evaluate_adapted(model, nb201_table, "nasbench201", "gold_6226", shots=-1, seeds=[0])


def test_unknown_device_names_the_fix(db_url: str, tmp_path: Path) -> None:
    from hwdb import HardwareDB

    with HardwareDB(db_url) as db, pytest.raises(NotEnoughDataError, match="nas measure"):
        get_adapted_predictor(db, space="nasbench201", device="raspi4")


def test_catalog_device_without_measurements_is_predicted_zero_shot(tmp_path: Path) -> None:
    """``latency_model`` (what ``nas predictor predict`` and the API serve) gives a catalog
    device with no measurements in the space its datasheet roofline, as ``nas search`` does;
    a device with neither measurements nor a catalog entry is an error naming both fixes."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from predictors import catalog_only, latency_model
    from predictors.zeroshot import DATASHEET_SCALE, ZERO_SHOT_SOURCE, roofline_latency_ms
    from search_spaces import get_space

    space = get_space("nasbench201")
    archs = [space.to_string(space.random(i)) for i in range(2)]
    with HardwareDB(f"sqlite:///{tmp_path / 'z.sqlite'}") as db:
        db.upsert_device(DeviceSpec(name="orin", attributes={"catalog": "jetson-orin-nano"}))
        db.upsert_device(DeviceSpec(name="bare"))
        db.upsert_device(DeviceSpec(name="unmeasured"))
        db.add_measurements([MeasurementIn("bare", "nasbench201", archs[0], median=1.0)])
        assert catalog_only(db, space="nasbench201", device="orin")
        assert not catalog_only(db, space="nasbench201", device="bare")
        assert not catalog_only(db, space="nasbench201", device="ghost")
        model = latency_model(db, space="nasbench201", device="orin")
        pred = model.predict(archs)
        assert pred.source == ZERO_SHOT_SOURCE and pred.n_measurements == 0
        ds = model.model  # type: ignore[union-attr]
        raw = roofline_latency_ms("nasbench201", archs, ds)
        np.testing.assert_allclose(pred.mean_ms, DATASHEET_SCALE * raw)  # the measured correction
        again = predict_latency(db, space="nasbench201", device="orin", archs=archs)
        np.testing.assert_allclose(again.mean_ms, pred.mean_ms)
        with pytest.raises(NotEnoughDataError, match="has 1 measurements .* at least 3; measure"):
            latency_model(db, space="nasbench201", device="bare")
        with pytest.raises(NotEnoughDataError, match="nas measure.*--catalog"):
            latency_model(db, space="nasbench201", device="unmeasured")


def test_catalog_device_with_too_few_measurements_stays_zero_shot_in_its_own_ms(
    tmp_path: Path,
) -> None:
    """A catalog device given one or two measurements (fewer than a predictor adapts to) is
    not left without predictions: it stays zero-shot, its roofline scaled to them (the
    geometric mean of measured / estimated) and priced at their workload; from the third
    measured arch on it is adapted."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from predictors import MIN_ADAPT_MEASUREMENTS, catalog_only, datasheet_model, latency_model
    from predictors.zeroshot import (
        DATASHEET_SCALE,
        ZERO_SHOT_SOURCE,
        RooflineLatencyModel,
        roofline_latency_ms,
    )
    from search_spaces import get_space

    assert MIN_ADAPT_MEASUREMENTS == 3
    space = get_space("nasbench201")
    archs = [space.to_string(space.random(i)) for i in range(6)]
    with HardwareDB(f"sqlite:///{tmp_path / 'z.sqlite'}") as db:
        db.upsert_device(DeviceSpec(name="orin", attributes={"catalog": "jetson-orin-nano"}))
        bare = latency_model(db, space="nasbench201", device="orin")
        assert isinstance(bare, RooflineLatencyModel)
        est = bare.predict(archs).mean_ms
        measured = [4.0 * est[0], 9.0 * est[1]]  # geometric mean of the ratios: 6
        db.add_measurements(
            [
                MeasurementIn("orin", "nasbench201", a, median=m)
                for a, m in zip(archs[:2], measured, strict=True)
            ]
        )
        assert catalog_only(db, space="nasbench201", device="orin")
        model = latency_model(db, space="nasbench201", device="orin")
        pred = model.predict(archs)
        assert pred.source == ZERO_SHOT_SOURCE and pred.n_measurements == 2
        np.testing.assert_allclose(pred.mean_ms, 6.0 * est, rtol=1e-9)
        np.testing.assert_allclose(
            datasheet_model(db, space="nasbench201", device="orin").predict(archs).mean_ms,
            pred.mean_ms,
        )
        db.add_measurements([MeasurementIn("orin", "nasbench201", archs[2], median=1.0)])
        assert not catalog_only(db, space="nasbench201", device="orin")
    with pytest.raises(ValueError, match="latency_ms"):
        bare.scaled_to(archs[:2], [1.0, -1.0])
    with pytest.raises(ValueError, match="scale"):
        RooflineLatencyModel(space="nasbench201", device="x", model=bare.model, scale=0.0)
    wl = space.default_workload()
    big = type(wl).from_dict({**wl.to_dict(), "batch_size": 8})
    on_big = RooflineLatencyModel(space="nasbench201", device="x", model=bare.model, workload=big)
    np.testing.assert_allclose(
        on_big.predict(archs[:2]).mean_ms,
        DATASHEET_SCALE * roofline_latency_ms("nasbench201", archs[:2], bare.model, workload=big),
    )


def test_catalog_backed_device_adapts_with_its_datasheet(db_url: str, tmp_path: Path) -> None:
    """A device registered with a catalog entry (``nas device add --catalog``) adapts with its
    datasheet roofline as a prior; an imported device without one does not."""
    import shutil

    from hwdb import DeviceSpec, HardwareDB, NotFoundError
    from predictors import device_datasheet
    from search_spaces import Workload

    copy = tmp_path / "copy.sqlite"
    shutil.copy(db_url.removeprefix("sqlite:///"), copy)
    with HardwareDB(f"sqlite:///{copy}") as db:
        assert device_datasheet(db, "pixel3") is None
        assert device_datasheet(db, "no-such-device") is None
        with pytest.raises(NotFoundError, match="catalog"):
            device_datasheet(db, "pixel3", catalog="no-such-chip")
        spec = DeviceSpec(name="gold_6226", provenance="imported", precision="fp32",
                          attributes={"catalog": "xeon-gold-6226"})  # fmt: skip
        db.upsert_device(spec)
        ds = device_datasheet(db, "gold_6226")
        assert ds is not None and ds.name == "xeon-gold-6226-fp32"
        model = get_adapted_predictor(db, space="nasbench201", device="gold_6226")
        assert model.model.datasheet_ == ds
        assert model.model.datasheet_lut_ is not None  # type: ignore[attr-defined]
        pred = model.predict(list(db.latency_table("nasbench201").index[:20]))
        assert np.all(pred.mean_ms > 0)
        used = model.model.datasheet_used_
        assert pred.source == ("adapted (datasheet prior)" if used else "adapted")
        # Measured under another input, the tables traced in meta-training price the wrong
        # shapes: the datasheet is not used, and the prediction does not claim it.
        archs = list(db.latency_table("nasbench201")["gold_6226"].dropna().index[:20])
        lat = db.latency_table("nasbench201").loc[archs, "gold_6226"].to_numpy(float)
        other = model.model.adapt(archs, lat, datasheet=ds, workload=Workload(resolution=64))
        assert other.datasheet_lut_ is None and not other.datasheet_used_  # type: ignore[attr-defined]
        same = model.model.adapt(archs, lat, datasheet=ds)
        assert same.datasheet_lut_ is not None  # type: ignore[attr-defined]


def test_the_datasheet_prior_is_claimed_only_when_it_moves_the_predictions(db_url: str) -> None:
    """The datasheet is one candidate of adaptation; leave-one-out may prefer others. A
    prediction says "datasheet prior" exactly when it differs from the one without it (QA:
    three different datasheets gave identical numbers, all labelled "datasheet prior")."""
    from hwdb import HardwareDB
    from predictors import device_datasheet

    with HardwareDB(db_url) as db:
        model = get_adapted_predictor(db, space="nasbench201", device="pixel3").model
        ds = device_datasheet(db, "pixel3", catalog="snapdragon-845-kryo-385")
        table = db.latency_table("nasbench201")
    query = list(table.index[1000:1200])
    seen = set()
    for k in (5, 10):  # with 5 shots leave-one-out picks the datasheet here, with 10 not
        archs = list(table["pixel3"].dropna().index[:k])
        lat = table.loc[archs, "pixel3"].to_numpy(float)
        with_ds = model.adapt(archs, lat, datasheet=ds)
        without = model.adapt(archs, lat)
        moved = not np.allclose(with_ds.predict(query)[0], without.predict(query)[0])
        assert with_ds.datasheet_used_ == moved, k
        seen.add(moved)
    assert seen == {True, False}


def test_a_predictor_stored_first_by_another_worker_is_kept(tmp_path: Path) -> None:
    """Workers starting together both meta-train; the second store is not an error."""
    from hwdb import HardwareDB
    from predictors import get_predictor
    from predictors._service import store_predictor

    model = get_predictor("flops")
    model.to_bytes = lambda: b"payload"  # type: ignore[method-assign]  # storing, not fitting
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        kw = {"space": "nasbench201", "version": "flops@1:abc", "sources": ["a", "b"]}
        assert store_predictor(db, model, **kw) is True  # type: ignore[arg-type]
        assert store_predictor(db, model, **kw) is False  # type: ignore[arg-type]
        art = db.load_artifact(kind=ARTIFACT_KIND, space="nasbench201", version="flops@1:abc")
    assert art.summary["sources"] == ["a", "b"] and art.summary["predictor"] == "flops"


def test_progress_bars_write_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """`--json` commands keep stdout for JSON; meta-training progress goes to stderr."""
    from predictors._progress import progress_bar

    with progress_bar(True, "meta-training", 3) as advance:
        for _ in range(3):
            advance()
    out, err = capsys.readouterr()
    assert out == "" and "meta-training" in err
    with progress_bar(True, "tracing", 20_000) as advance:  # steps of any size (records)
        advance(12_000)
        advance(8_000)
    out, err = capsys.readouterr()
    assert out == "" and "20000/20000" in err
    with progress_bar(False, "quiet", 3) as advance:
        advance(2)
    assert capsys.readouterr() == ("", "")
