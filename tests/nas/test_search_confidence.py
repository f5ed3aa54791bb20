"""How sure the front is: `p_front`, the contenders, `to_measure.txt`, and re-scoring with
measurements taken after the search."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from tests.nas.test_search import DEVICE, _setup, db_url  # noqa: F401 - fixture


# ------------------------------------------------------------------ front_probability itself
def test_without_spread_the_probability_is_the_front_itself() -> None:
    from nas.search import front_probability, pareto_mask

    rng = np.random.default_rng(0)
    acc = rng.integers(60, 95, 300).astype(float)  # ties in accuracy, as in benchmark tables
    lat = rng.integers(2, 40, (300, 1)).astype(float)  # ties in latency too
    p = front_probability(acc, lat, np.zeros_like(lat))
    np.testing.assert_array_equal(p, pareto_mask(np.column_stack([-acc, lat[:, 0]])))


def test_one_device_draws_match_the_general_front_rule() -> None:
    """The vectorised one-device rule gives the same fronts as `pareto_mask`, ties included."""
    from nas.search import pareto_mask
    from nas.search._confidence import _nondominated_1d

    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(1, 30))
        acc = rng.integers(0, 6, n).astype(float)
        lat = rng.integers(1, 5, (4, n)).astype(float)
        got = _nondominated_1d(acc, lat)
        for s in range(4):
            assert (got[s] == pareto_mask(np.column_stack([-acc, lat[s]]))).all()


def test_indistinguishable_architectures_share_the_probability() -> None:
    from nas.search import front_probability

    acc = np.array([90.0, 90.0, 80.0])
    lat = np.array([[10.0], [10.0], [30.0]])  # the third is far behind both
    p = front_probability(acc, lat, 0.05 * lat, samples=4000)
    assert p[0] == pytest.approx(0.5, abs=0.03) and p[1] == pytest.approx(0.5, abs=0.03)
    assert p[2] == 0.0
    # a measured (exact) latency is not drawn; its predicted twin beats it in half the draws,
    # and exactly one of the two is on the front in each draw
    p = front_probability(acc[:2], lat[:2], np.array([[0.0], [0.5]]), samples=4000)
    assert p[0] == pytest.approx(0.5, abs=0.03) and p[0] + p[1] == pytest.approx(1.0)


def test_several_devices_use_every_latency() -> None:
    from nas.search import front_probability

    acc = np.array([90.0, 90.0, 90.0])
    # the second is slower on both devices, the third trades one against the other
    lat = np.array([[10.0, 5.0], [12.0, 50.0], [50.0, 4.0]])
    p = front_probability(acc, lat, 0.02 * lat)
    np.testing.assert_array_equal(p, [1.0, 0.0, 1.0])
    # equal on the first device: then the draws there decide half the time
    lat[1, 0] = 10.0
    assert front_probability(acc, lat, 0.02 * lat, samples=4000)[1] == pytest.approx(0.5, abs=0.03)


def test_the_probability_is_calibrated_when_the_spread_is_right() -> None:
    """A synthetic device whose predictions err by exactly the log-normal they report: of the
    architectures given a probability p, about a share p is on the true front."""
    from nas.search import front_probability, pareto_mask

    rng = np.random.default_rng(2)
    p_all, truth = [], []
    for _ in range(20):
        n = 400
        acc = rng.normal(90.0, 3.0, n).round(1)
        true = np.exp(1.5 + 0.08 * (acc - 90.0) + rng.normal(0.0, 0.15, n))
        pred = true * np.exp(rng.normal(0.0, 0.05, n))
        std = pred * np.sqrt(np.expm1(0.05**2))
        p_all.append(front_probability(acc, pred[:, None], std[:, None], seed=int(rng.integers(9))))
        truth.append(pareto_mask(np.column_stack([-acc, true])))
    p, t = np.concatenate(p_all), np.concatenate(truth)
    for lo, hi in ((0.1, 0.4), (0.4, 0.7), (0.7, 1.01)):
        sel = (p >= lo) & (p < hi)
        assert sel.sum() > 30
        assert t[sel].mean() == pytest.approx(p[sel].mean(), abs=0.12), (lo, hi)
    assert t[p == 0].mean() < 0.01


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0, 2.0], [[1.0]], [[0.1]]), "`latency_ms` must have shape"),
        (([1.0], [[1.0]], [[0.1, 0.1]]), "`latency_std_ms` must have shape"),
        (([1.0], [[0.0]], [[0.1]]), "`latency_ms` must be finite and > 0"),
        (([1.0], [[1.0]], [[-0.1]]), "`latency_std_ms` must be finite and >= 0"),
        (([float("nan")], [[1.0]], [[0.1]]), "`accuracy` must be finite"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(args: tuple[Any, ...], match: str) -> None:
    from nas.search import front_probability

    with pytest.raises(ValueError, match=match):
        front_probability(*(np.asarray(a, dtype=float) for a in args))
    with pytest.raises(ValueError, match="`samples`"):
        front_probability(np.ones(1), np.ones((1, 1)), np.zeros((1, 1)), samples=0)


# ------------------------------------------------------------------------- in a search
class _Noisy:
    """The wrapped model's latencies with a 10 % reported spread (so there are contenders)."""

    def __init__(self, inner: Any, source: str = "adapted") -> None:
        self.inner, self.source = inner, source

    def predict(self, archs: Sequence[str]) -> Any:
        from nas.search import MeasuredPrediction

        mean = np.asarray(self.inner.predict(archs).mean_ms, dtype=float)
        return MeasuredPrediction(list(archs), mean, 0.1 * mean, "noisy", "1", 0, self.source)


def _search(db_url: str, out: Path, model: Any, **kwargs: Any) -> Any:  # noqa: F811
    from nas.search import run_search

    acc, _ = _setup(db_url)
    return run_search(
        space="nasbench201", devices=[DEVICE], accuracy=acc, latency_models={DEVICE: model},  # type: ignore[arg-type]
        trials=120, population=20, seed=0, out_dir=out, **kwargs,
    )  # fmt: skip


def test_front_points_carry_p_front_and_contenders_are_written(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from nas.search import CONTENDER_P, to_measure

    _, models = _setup(db_url)
    res = _search(db_url, tmp_path / "out", _Noisy(models[DEVICE]))
    assert res.front and res.contenders
    assert all(0.0 < e["p_front"] <= 1.0 for e in res.front)
    on_front = {e["arch"] for e in res.front}
    assert not on_front & {c["arch"] for c in res.contenders}
    ps = [c["p_front"] for c in res.contenders]
    assert min(ps) >= CONTENDER_P and ps == sorted(ps, reverse=True)
    assert all(c["params"] > 0 and c["objective"] == res.accuracy for c in res.contenders)
    out = tmp_path / "out"
    assert json.loads((out / "contenders.json").read_text()) == res.contenders
    with (out / "pareto.csv").open() as fh:
        assert [float(r["p_front"]) for r in csv.DictReader(fh)] == [
            e["p_front"] for e in res.front
        ]
    lines = (out / "to_measure.txt").read_text().splitlines()
    assert lines == to_measure(res) == [*on_front_order(res), *[c["arch"] for c in res.contenders]]
    assert res.files["to_measure"] == str(out / "to_measure.txt")


def on_front_order(res: Any) -> list[str]:
    return [e["arch"] for e in res.front]


def test_a_zero_shot_device_gets_no_probability(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    """A datasheet's spread is mostly one scale shared by every architecture: it does not
    reorder the front, so no probability is claimed from it."""
    _, models = _setup(db_url)
    res = _search(db_url, tmp_path / "out", _Noisy(models[DEVICE], "zero-shot (datasheet)"))
    assert res.front and all(e["p_front"] is None for e in res.front)
    assert res.contenders == []
    assert (tmp_path / "out" / "to_measure.txt").read_text().splitlines() == [
        e["arch"] for e in res.front
    ]


def test_rerunning_after_measuring_uses_the_measurements(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Measure `to_measure.txt`, rerun the same search: the study resumes without new trials
    and those archs are re-scored with their medians (std 0, `measured_on`); a measured
    latency over the budget makes its arch infeasible, so it leaves the front."""
    from nas.search import MeasuredFirstModel, to_measure

    _, models = _setup(db_url)
    noisy = _Noisy(models[DEVICE])
    first = _search(db_url, tmp_path / "out", noisy, budget_ms=1e6)
    pending = to_measure(first)
    slow = pending[0]
    measured = {a: 0.5 * float(noisy.predict([a]).mean_ms[0]) for a in pending[1:]}
    measured[slow] = 2e6  # over the budget once measured
    again = _search(db_url, tmp_path / "out", MeasuredFirstModel(noisy, measured), budget_ms=1e6)
    assert again.n_new_trials == 0 and again.n_trials == first.n_trials
    rows = {t["arch"]: t for t in again.trials}
    for arch, ms in measured.items():
        assert rows[arch]["latency_ms"][DEVICE] == ms
        assert rows[arch]["latency_std_ms"][DEVICE] == 0.0
        assert rows[arch]["measured_on"] == [DEVICE]
    assert rows[slow]["feasible"] is False
    assert slow not in {e["arch"] for e in again.front}
    assert not set(to_measure(again)) & set(measured)


def test_an_arch_measured_again_since_its_trial_gets_the_newest_value(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Review: a trial evaluated on a measurement kept that measurement after the device was
    measured again."""
    from nas.search import MeasuredFirstModel
    from search_spaces import get_space

    _, models = _setup(db_url)
    noisy = _Noisy(models[DEVICE])
    sp = get_space("nasbench201")
    archs = list(dict.fromkeys(sp.to_string(sp.random(i)) for i in range(3000)))
    old = {a: 5.0 for a in archs}  # measured before the search: its trials record these
    first = _search(db_url, tmp_path / "out", MeasuredFirstModel(noisy, old))
    hit = next(t["arch"] for t in first.trials if t["measured_on"])
    again = _search(db_url, tmp_path / "out", MeasuredFirstModel(noisy, {**old, hit: 7.5}))
    row = {t["arch"]: t for t in again.trials}[hit]
    assert row["latency_ms"][DEVICE] == 7.5 and row["measured_on"] == [DEVICE]


def test_collect_study_rebuilds_a_result_without_running_trials(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`collect_study` (what the API uses for a cancelled search's front) gives the result
    `run_search` gave for the same study, and None where there is no study to read."""
    from nas.search import collect_study

    acc, models = _setup(db_url)
    model = _Noisy(models[DEVICE])
    res = _search(db_url, tmp_path / "out", model)
    kw: dict[str, Any] = dict(
        space="nasbench201", devices=[DEVICE], accuracy=acc, latency_models={DEVICE: model},
        trials=120, population=20,
    )  # fmt: skip
    again = collect_study(study_name=res.study_name, out_dir=tmp_path / "out", **kw)
    assert again is not None and again.n_new_trials == again.n_trials == res.n_trials
    assert again.front == res.front and again.contenders == res.contenders
    assert collect_study(study_name="no-such-study", out_dir=tmp_path / "out", **kw) is None
    assert collect_study(study_name=res.study_name, out_dir=tmp_path / "empty", **kw) is None
    assert collect_study(study_name=res.study_name, **kw) is None  # in memory: nothing kept
    with pytest.raises(ValueError, match="`trials`"):
        collect_study(study_name=res.study_name, out_dir=tmp_path / "out", **{**kw, "trials": 0})


def test_the_suggested_measure_command_keeps_the_devices_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: the suggested `nas measure` left out the device's settings and input, so for a
    device measured at 64 px the new rows landed at the default input and were not used."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from nas._cli.device import measure_options
    from search_spaces import get_space

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    sp = get_space("nasbench201")
    archs = list(dict.fromkeys(sp.to_string(sp.random(i)) for i in range(3)))
    with HardwareDB(url, create=True) as db:
        db.upsert_device(DeviceSpec(name="cam", runtime="onnxruntime", threads=4))
        db.add_measurements(
            [MeasurementIn("cam", "nasbench201", a, median=2.0, workload={"resolution": 64})
             for a in archs]
        )  # fmt: skip
    monkeypatch.setenv("NAS_DATABASE_URL", url)
    assert measure_options("nasbench201", "cam") == (
        " --runtime onnxruntime --threads 4 --resolution 64",
        [],
        None,  # rows that record no CPU
    )
    assert measure_options("nasbench201", "jetson-orin-nano") == ("", [], None)  # not stored


def test_the_suggestion_says_when_nas_measure_cannot_add_to_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left open by session 28: for a TensorRT int8 device, or an imported one that did not
    record its threads (LatBench's Jetson Nano, the search benchmark's own device), the
    suggested `nas measure` command was refused by `nas measure`. The suggestion now says
    what it cannot reproduce and to import the rows instead."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from nas._cli.device import measure_options
    from nas._cli.search import _suggest_measuring
    from search_spaces import get_space

    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    sp = get_space("nasbench201")
    archs = list(dict.fromkeys(sp.to_string(sp.random(i)) for i in range(3)))
    with HardwareDB(url, create=True) as db:
        db.upsert_device(DeviceSpec(name="orin-trt", runtime="tensorrt", precision="int8",
                                    threads=6))  # fmt: skip
        db.upsert_device(DeviceSpec(name="nano", runtime="torch", provenance="imported"))
        db.add_measurements(
            [MeasurementIn(d, "nasbench201", a, median=2.0) for a in archs
             for d in ("orin-trt", "nano")]
        )  # fmt: skip
    monkeypatch.setenv("NAS_DATABASE_URL", url)
    assert measure_options("nasbench201", "orin-trt").conflict == [
        "runtime='tensorrt'",
        "precision='int8'",
    ]
    assert measure_options("nasbench201", "nano").conflict == ["threads=None"]
    result = SimpleNamespace(
        space="nasbench201", devices=["nano"], front=[{"arch": archs[0]}], contenders=[]
    )
    monkeypatch.setattr("nas.search.to_measure", lambda res: [archs[0]])
    _suggest_measuring(cast(Any, result), tmp_path / "out")
    said = " ".join(capsys.readouterr().out.split())
    assert "on nano as its rows were measured (threads=None, which `nas measure` does not" in said
    assert "import them with `nas hwdb import csv FILE`" in said
    assert "nas measure --space" not in said


def test_the_suggestion_names_the_cpu_a_devices_rows_were_timed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review (session 29): for a CPU device the suggested `nas measure` is refused on any
    other CPU than its rows record, so the suggestion names that CPU, and carries the --db."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from nas._cli._common import set_db_option
    from nas._cli.search import _suggest_measuring
    from search_spaces import get_space

    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    sp = get_space("nasbench201")
    arch = sp.to_string(sp.random(0))
    with HardwareDB(url, create=True) as db:
        db.upsert_device(DeviceSpec(name="xeon-t1", threads=1))
        env = {"device_type": "cpu", "cpu_model": "Intel(R) Xeon(R) Processor"}
        db.add_measurements([MeasurementIn("xeon-t1", "nasbench201", arch, median=2.0,
                                           environment=env)])  # fmt: skip
    monkeypatch.setenv("NAS_DATABASE_URL", url)
    monkeypatch.setattr("nas.search.to_measure", lambda res: [arch])
    result = SimpleNamespace(
        space="nasbench201", devices=["xeon-t1"], front=[{"arch": arch}], contenders=[]
    )
    set_db_option(url)
    try:
        _suggest_measuring(cast(Any, result), tmp_path / "out")
    finally:
        set_db_option(None)
    said = " ".join(capsys.readouterr().out.split())
    assert "on a machine with the CPU its rows were timed on (Intel(R) Xeon(R) Processor):" in said
    assert f"nas --db {url} measure --space nasbench201 --device-name xeon-t1 --threads 1" in said


def test_the_suggestion_counts_what_to_measure_txt_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: a contender measured already was counted ("8 unmeasured front architectures and 5
    contenders" over a to_measure.txt of 12 lines)."""
    from nas._cli.search import _suggest_measuring

    monkeypatch.setenv("NAS_DATABASE_URL", f"sqlite:///{tmp_path / 'e.sqlite'}")
    result = SimpleNamespace(
        space="nasbench201", devices=["dev"],
        front=[{"arch": "f0"}, {"arch": "f1", "measured_on": ["dev"]}],
        contenders=[{"arch": "c0", "measured_on": ["dev"]}, {"arch": "c1"}, {"arch": "c2"}],
    )  # fmt: skip
    _suggest_measuring(cast(Any, result), tmp_path / "out")
    said = " ".join(capsys.readouterr().out.split())
    assert "measure its 1 unmeasured front architecture and 2 contenders (p_front" in said
