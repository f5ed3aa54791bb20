"""QA findings on `nas search`: study settings, seeds on RDB storage, cross-worker duplicates,
empty-front reasons, usage errors, user objectives, proxies, Ctrl-C, journal locks, plots."""

from __future__ import annotations

import json
import types
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from tests.nas.test_cli_search_errors import _base, _run
from tests.nas.test_search import DEVICE, _setup, build_db


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('qa') / 'hwdb.sqlite'}"
    build_db(url, shared_data, n_measured=40)
    return url


class Recording:
    """The table objective, recording each batch it scores; ``hook`` runs on every batch."""

    def __init__(self, inner: Any, hook: Any = None) -> None:
        self.inner, self.name, self.hook = inner, "table:cifar10", hook
        self.batches: list[list[str]] = []

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        self.batches.append(list(archs))
        if self.hook is not None:
            self.hook(len(self.batches), list(archs))
        return self.inner.evaluate(archs)  # type: ignore[no-any-return]


class Renamed:
    """A latency model that presents itself as the adapted predictor ``name``."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.model = inner, types.SimpleNamespace(name=name)

    def predict(self, archs: Sequence[str]) -> Any:
        return self.inner.predict(archs)


def _search(db_url: str, **kwargs: Any) -> Any:
    from nas.search import run_search

    acc, models = _setup(db_url)
    args: dict[str, Any] = dict(
        space="nasbench201", devices=[DEVICE], accuracy=acc, latency_models=models,
        trials=20, population=10, seed=5, study_name="s",
    )  # fmt: skip
    args.update(kwargs)
    return run_search(**args)


# ------------------------------------------------------------------ 1, 2: study settings
def test_resuming_with_another_predictor_is_refused_naming_flag_and_values(
    db_url: str, tmp_path: Path
) -> None:
    from nas.search import StudyMismatchError

    _, models = _setup(db_url)
    _search(db_url, out_dir=tmp_path, trials=10)
    other = {DEVICE: Renamed(models[DEVICE], "flops")}
    with pytest.raises(StudyMismatchError) as exc:
        _search(db_url, out_dir=tmp_path, trials=20, latency_models=other)
    text = str(exc.value)
    assert f"--predictor (latency_models) was {{{DEVICE}: measured-knn}}" in text
    assert f"now {{{DEVICE}: flops}}" in text and "\n" not in text
    with pytest.raises(StudyMismatchError, match=r"--latency-budget \(budget_ms\) was none, now"):
        _search(db_url, out_dir=tmp_path, trials=20, budget_ms=5.0)
    assert _search(db_url, out_dir=tmp_path, trials=20).n_trials == 20  # same settings resume


class RooflineLatencyModel(Renamed):
    """Presents itself as a catalog device's datasheet roofline (by its class name)."""


def test_a_device_measured_since_a_zero_shot_search_resumes_it(db_url: str, tmp_path: Path) -> None:
    """A catalog device searched zero-shot gets its adapted predictor once it is measured:
    rerunning the same command resumes (nobody chose another predictor), and from then on a
    change of predictor is checked against the adapted one."""
    from nas.search import StudyMismatchError

    _, models = _setup(db_url)
    zero_shot = {DEVICE: RooflineLatencyModel(models[DEVICE], "")}
    _search(db_url, out_dir=tmp_path, trials=10, latency_models=zero_shot)
    adapted = {DEVICE: Renamed(models[DEVICE], "help+")}
    assert _search(db_url, out_dir=tmp_path, trials=20, latency_models=adapted).n_trials == 20
    other = {DEVICE: Renamed(models[DEVICE], "flops")}
    with pytest.raises(StudyMismatchError, match=r"was \{[^}]*: help\+\}, now"):
        _search(db_url, out_dir=tmp_path, trials=30, latency_models=other)


def test_a_study_of_an_earlier_release_does_not_resume_with_new_units(
    db_url: str, tmp_path: Path
) -> None:
    """Zero-shot milliseconds are 2.8x what earlier releases stored, and a --budget-z bound
    is now the log-normal quantile: resuming such a study would mix the two in one front."""
    from nas.search import StudyMismatchError

    _, models = _setup(db_url)
    zero_shot = {DEVICE: RooflineLatencyModel(models[DEVICE], "")}
    storage = f"sqlite:///{tmp_path / 's.db'}"
    _search(db_url, storage=storage, trials=10, latency_models=zero_shot)
    assert _search(db_url, storage=storage, trials=20, latency_models=zero_shot).n_trials == 20
    optuna.load_study(study_name="s", storage=storage).set_user_attr("nas_units", None)
    with pytest.raises(StudyMismatchError, match="earlier releases priced devices known only"):
        _search(db_url, storage=storage, trials=30, latency_models=zero_shot)
    adapted = {DEVICE: Renamed(models[DEVICE], "help+")}  # measured since: nothing to compare
    assert _search(db_url, storage=storage, trials=30, latency_models=adapted).n_trials == 30
    bounded: dict[str, Any] = {"budget_ms": 50.0, "budget_quantile_z": 1.645, "study_name": "z"}
    _search(db_url, storage=storage, trials=10, **bounded)
    optuna.load_study(study_name="z", storage=storage).set_user_attr("nas_units", None)
    with pytest.raises(StudyMismatchError, match="bounded --budget-z as mean"):
        _search(db_url, storage=storage, trials=20, **bounded)
    # a study of this release whose units changed since (its device lost its measurements)
    # is refused with the usual advice, not blamed on an earlier release
    from nas.search._study import mismatch_message

    stored = {"nas_units": {"budget_bound": "lognormal"}}
    given = {"nas_units": {"budget_bound": "lognormal", "datasheet_scale": 2.8}}
    text = mismatch_message("s", "db", ["nas_units"], stored, given)
    assert "earlier releases" not in text and "rerun with the study's settings" in text


# ------------------------------------------------------------------ 3: seeds on RDB storage
def test_a_seeded_search_on_an_rdb_storage_repeats_in_another_process(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from nas.search import _runner

    fronts = []
    for pid, name in ((4242, "a"), (4343, "b")):  # as two processes would be
        fake_os = types.SimpleNamespace(getpid=lambda pid=pid: pid, kill=os.kill)
        monkeypatch.setattr(_runner, "os", fake_os)
        res = _search(db_url, storage=f"sqlite:///{tmp_path / name}.db", trials=30)
        fronts.append(sorted((t["trial"], t["arch"]) for t in res.trials))
    assert fronts[0] == fronts[1]


def test_cooperating_workers_get_different_join_numbers(db_url: str, tmp_path: Path) -> None:
    from nas.search._study import JOIN_ATTR, join_number

    storage = f"sqlite:///{tmp_path / 'j.db'}"
    _search(db_url, storage=storage, trials=10)
    study = optuna.load_study(study_name="s", storage=storage)
    first, second = join_number(study, "h:1"), join_number(study, "h:2")
    assert first != second
    markers = [t for t in study.get_trials(deepcopy=False) if JOIN_ATTR in t.user_attrs]
    assert len(markers) == 3 and {t.state for t in markers} == {TrialState.PRUNED}


# ------------------------------------------------------------------ 4: cross-worker duplicates
def test_archs_another_worker_scored_meanwhile_are_not_evaluated_again(
    db_url: str, tmp_path: Path
) -> None:
    """While a seeded search scores its first generation, "another worker" tells ten archs.
    A first run learns which archs the second generation scores after such a telling (the
    sampler does not see what the other worker's trials hold); in a replay the other worker
    tells exactly those: they must be replaced, not scored again."""
    from search_spaces import get_space

    acc, models = _setup(db_url)
    sp = get_space("nasbench201")
    rng = np.random.default_rng(0)
    decoys = [sp.to_string(sp.random(rng)) for _ in range(10)]

    def run(name: str, theirs: list[str]) -> tuple[Recording, Any]:
        storage = f"sqlite:///{tmp_path / name}.db"

        def other_worker(batch: int, _archs: list[str]) -> None:
            if batch != 1:
                return
            study = optuna.load_study(study_name="s", storage=storage)
            lat = models[DEVICE].predict(theirs).mean_ms  # type: ignore[attr-defined]
            values = acc.evaluate(theirs)  # type: ignore[attr-defined]
            for arch, acc_value, ms in zip(theirs, values, lat, strict=True):
                trial = optuna.trial.create_trial(
                    values=[float(acc_value), float(ms)], user_attrs={"arch": arch}
                )
                study.add_trial(trial)

        rec = Recording(acc, other_worker)
        return rec, _search(db_url, accuracy=rec, storage=storage, trials=30)

    first, _ = run("a", decoys)
    theirs = first.batches[1]
    assert not set(theirs) & set(decoys)
    second, res = run("b", theirs)
    scored = [a for b in second.batches for a in b]
    assert second.batches[0] == first.batches[0]
    assert not set(scored) & set(theirs)
    assert len({t["arch"] for t in res.trials}) == len(res.trials) == 30


# ------------------------------------------------------------------ 5: empty-front reason
def test_the_empty_front_warning_names_the_z_bound_and_the_closest_arch() -> None:
    from nas.search import SearchResult

    def trial(arch: str, mean: tuple[float, float], std: tuple[float, float]) -> dict[str, Any]:
        return {
            "arch": arch, "accuracy": 50.0, "feasible": False,
            "latency_ms": {"jet": mean[0], "pi": mean[1]},
            "latency_std_ms": {"jet": std[0], "pi": std[1]},
        }  # fmt: skip

    trials = [
        trial("fast-on-jet", (1.0, 30.0), (0.1, 1.0)),  # meets jet only
        trial("fast-on-pi", (5.0, 10.0), (0.1, 1.0)),  # meets pi only
        trial("near-both", (2.5, 18.0), (0.5, 2.0)),  # means meet both, z-bounds do not
    ]
    res = SearchResult(
        study_name="s", storage=None, space="nb", devices=["jet", "pi"], accuracy="table",
        budget_ms={"jet": 3.0, "pi": 20.0}, front=[], trials=trials, history=[],
        hypervolume_convention="", n_trials=3, n_new_trials=3, n_evaluated=3, elapsed_s=1.0,
        budget_quantile_z=1.645,
    )  # fmt: skip
    (text,) = res.warnings
    assert "applied to the upper (+1.645 std, log-normal) quantile of the latency" in text
    assert "closest to meeting all budgets: near-both (jet 2.5 (std 0.5) -> 3.46 ms" in text
    assert "pi 18 (std 2) -> 21.6 ms" in text


def test_budget_bound_is_the_log_normal_quantile() -> None:
    """``--budget-z 1.645`` bounds the 95 % quantile of the log-normal the predictors report,
    also for a wide zero-shot prediction, where ``mean + z * std`` would be its 90 % one."""
    from scipy.stats import lognorm

    from nas.search import latency_upper_bound
    from predictors.zeroshot import DATASHEET_LOG_SIGMA as s

    median = 10.0
    std = median * np.sqrt(np.expm1(s**2))  # how the predictors report it
    bound = latency_upper_bound(median, std, 1.645)
    assert lognorm(s, scale=median).cdf(bound) == pytest.approx(0.95, abs=1e-3)
    assert lognorm(s, scale=median).cdf(median + 1.645 * std) < 0.91
    assert latency_upper_bound(median, 0.0, 1.645) == median  # a measurement
    assert latency_upper_bound(median, std, 0.0) == median
    # narrow predictions: the same as mean + z * std to within 0.5 %
    assert latency_upper_bound(median, 0.05 * median, 1.645) == pytest.approx(
        median + 1.645 * 0.05 * median, rel=5e-3
    )


# ------------------------------------------------------------------ 6: usage errors
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "jetson"], "--device queries resolve to the same device twice"),
        (["--predictor", "nosuch"], "--predictor must be one of"),
        (["--storage", "foo://bar"], "--storage 'foo://bar' has an unknown URL scheme 'foo'"),
        (["--study", ""], "--study must be a study name"),
        (["--accuracy", "proxy:"], "--accuracy proxy:NAME needs a proxy name"),
    ],
)
def test_more_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert _run([*_base(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert message in line and "Traceback" not in err
    assert not any(ln.startswith("latency:") for ln in err.splitlines())


# ------------------------------------------------------------------ 7: user objectives
@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "userqa.py").write_text(
        "def boolean(model, arch):\n    return True if 'pool' in arch else 50.0\n\n"
        "def numstr(model, arch):\n    return '42.5' if 'pool' in arch else 50.0\n\n"
        "def nan(model, arch):\n    return float('nan') if 'pool' in arch else 50.0\n\n"
        "def exits(model, arch):\n"
        "    if 'pool' in arch:\n        raise SystemExit(3)\n    return 50.0\n"
    )
    (tmp_path / "userqa_exit.py").write_text("raise SystemExit(2)\n\ndef f(m, a):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "userqa"


_ARCHS = [
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
]


@pytest.mark.parametrize(
    ("func", "reason"),
    [
        ("boolean", "returned bool True, not a number"),
        ("numstr", "returned str '42.5', not a number"),
        ("nan", "returned nan, not a finite number"),
        ("exits", "raised SystemExit: 3"),
    ],
)
def test_a_user_function_returning_no_number_fails_the_trial_with_one_warning(
    user_module: str, func: str, reason: str
) -> None:
    from nas.search import UserFunctionAccuracy
    from search_spaces import get_space

    obj = UserFunctionAccuracy(get_space("nasbench201"), f"{user_module}:{func}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = obj.evaluate(_ARCHS)
        second = obj.evaluate(_ARCHS)
    assert np.isnan(first[0]) and first[1] == 50.0 and np.isnan(second[0])
    assert [str(w.message).split(" on ")[0] for w in caught] == [
        f"accuracy function '{user_module}:{func}' {reason}"
    ]


def test_a_user_module_exiting_on_import_is_one_error_line(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run([*_base(tmp_path), "--accuracy", "userqa_exit:f"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: cannot load accuracy function 'userqa_exit:f': SystemExit: 2"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("userqa_missing:f", "cannot load accuracy function 'userqa_missing:f': No module named"),
        ("userqa:nofunc", "cannot load accuracy function 'userqa:nofunc': module 'userqa' has"),
        ("json:__name__", "accuracy function 'json:__name__' is not callable"),
    ],
)
def test_an_accuracy_function_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    """QA: a mistyped --accuracy MODULE:FUNC exited 1, as a failure; it is a bad option value."""
    assert _run([*_base(tmp_path), "--accuracy", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {message}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import userqa_not_installed\n", "No module named 'userqa_not_installed'"),
        ("X = None.foo\n", "AttributeError: 'NoneType' object has no attribute 'foo'"),
    ],
)
def test_an_accuracy_module_failing_inside_is_a_failure_not_a_usage_error(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str], source: str,
    message: str,
) -> None:  # fmt: skip
    """Review: an import or attribute error raised by the user's own module exited 2, as if
    --accuracy named something that does not exist."""
    (tmp_path / "userqa_inner.py").write_text(source + "\ndef f(m, a):\n    return 1.0\n")
    assert _run([*_base(tmp_path), "--accuracy", "userqa_inner:f"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot load accuracy function 'userqa_inner:f': ")
    assert message in err[-1]


# ------------------------------------------------------------------ 8: proxies
def test_jacob_cov_of_an_arch_without_input_gradient_warns_nothing() -> None:
    from nas.search import ProxyAccuracy
    from search_spaces import get_space

    sp = get_space("nasbench201")
    arch = sp.to_string(sp.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (value,) = ProxyAccuracy(sp, "jacob_cov", batch_size=4).evaluate([arch])
    assert np.isfinite(value)


# ------------------------------------------------------------------ 9: Ctrl-C
def test_ctrl_c_writes_the_front_so_far_and_leaves_no_running_trial(
    db_url: str, tmp_path: Path
) -> None:
    from nas.search._storage import open_storage

    acc, _ = _setup(db_url)

    def interrupt(batch: int, _archs: list[str]) -> None:
        if batch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as exc:
        _search(db_url, accuracy=Recording(acc, interrupt), out_dir=tmp_path, trials=50)
    assert any("finished trials is in" in n for n in getattr(exc.value, "__notes__", []))
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert front and all(e["trial"] < 40 for e in front)
    store = open_storage(None, out_dir=tmp_path)
    try:
        assert store.storage is not None
        study = optuna.load_study(study_name="s", storage=store.storage)
        states = [t.state for t in study.get_trials(deepcopy=False)]
    finally:
        store.close()
    assert TrialState.RUNNING not in states and states.count(TrialState.COMPLETE) == 20


def test_ctrl_c_in_the_cli_says_how_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "userkbd.py").write_text(
        "calls = []\n\ndef f(model, arch):\n    calls.append(arch)\n"
        "    if len(calls) > 8:\n        raise KeyboardInterrupt\n    return 1.0 + len(arch)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert _run([*_base(tmp_path, "--accuracy", "userkbd:f"), "-o", str(out)]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted; the finished trials are saved in the study")
    assert f"in {out}" in last and last.endswith("rerun the same command to resume")
    assert (out / "pareto.json").is_file()


def test_ctrl_c_before_any_trial_finished_writes_no_empty_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: stopped before the first trial finished, the search wrote empty pareto.* files and
    said "the front of its 0 finished trials is in ..."."""
    (tmp_path / "userkbd0.py").write_text("def f(model, arch):\n    raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert _run([*_base(tmp_path, "--accuracy", "userkbd0:f"), "-o", str(out)]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "0 finished trials" not in last and "the front of" not in last
    assert not (out / "pareto.json").exists()


# ------------------------------------------------------------------ 10, 11: journal, trials
def test_a_journal_in_use_is_refused_before_the_models_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.search import BatchedJournalFileBackend

    journal = tmp_path / "j.journal"
    held = BatchedJournalFileBackend(journal)
    try:
        assert _run([*_base(tmp_path), "--storage", str(journal)]) == 1
    finally:
        held.close()
    err = capsys.readouterr().err
    assert "is in use by another process" in err.strip().splitlines()[-1]
    assert not any(ln.startswith("latency:") for ln in err.splitlines())


def test_fewer_trials_than_the_study_holds_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*_base(tmp_path, "--accuracy", "proxy:params", "--seed", "0"), "-o", str(tmp_path)]
    assert _run(args) == 0
    capsys.readouterr()
    assert _run([*args, "--trials", "6"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "already holds 12 finished trials (--trials 6): nothing new was searched" in err


# ------------------------------------------------------------------ 12: plot
def test_the_plot_has_one_panel_per_device_with_honest_labels() -> None:
    from nas.search import SearchResult
    from nas.search._pareto import _figure

    def entry(arch: str, acc: float, jet: float, pi: float) -> dict[str, Any]:
        return {
            "arch": arch, "accuracy": acc, "feasible": True, "trial": 0,
            "latency_ms": {"jet": jet, "pi": pi}, "latency_std_ms": {"jet": 0.0, "pi": 0.0},
            "measured_on": ["jet"],
        }  # fmt: skip

    pts = [entry("a", 70.0, 1.0, 9.0), entry("b", 72.0, 2.0, 5.0), entry("c", 75.0, 3.0, 7.0)]
    res = SearchResult(
        study_name="s", storage=None, space="nb", devices=["jet", "pi"], accuracy="table",
        budget_ms={"jet": 2.5, "pi": 8.0}, front=pts, trials=pts, history=[],
        hypervolume_convention="", n_trials=3, n_new_trials=3, n_evaluated=3, elapsed_s=1.0,
    )  # fmt: skip
    fig = _figure(res)
    jet, pi = fig.axes
    assert jet.get_xlabel() == "measured latency on jet (ms)"
    assert pi.get_xlabel() == "predicted latency on pi (ms)"
    for ax, budget in ((jet, 2.5), (pi, 8.0)):
        (line,) = ax.get_lines()  # the budget only: no step line through a 3-d front
        assert np.asarray(line.get_xdata()).tolist() == [budget, budget]
    import matplotlib.pyplot as plt

    plt.close(fig)
    long = "embedded-gpu-jetson-nano-fp32"  # QA: side by side, long names overlapped
    res.devices = [long, "pi"]
    for e in pts:
        e["latency_ms"][long] = e["latency_ms"].pop("jet")
        e["latency_std_ms"][long] = e["latency_std_ms"].pop("jet")
    res.budget_ms = {}
    fig = _figure(res)
    assert fig.axes[0].get_xlabel() == f"predicted latency\non {long} (ms)"
    assert fig.axes[1].get_xlabel() == "predicted latency on pi (ms)"
    plt.close(fig)


def test_plots_of_one_device_keep_the_step_line(db_url: str, tmp_path: Path) -> None:
    from nas.search._pareto import _figure

    res = _search(db_url, trials=20)
    fig = _figure(res)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 1 and ax.get_xlabel().endswith(f"latency on {DEVICE} (ms)")
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_worker_waits_for_a_new_study_s_settings(tmp_path: Path) -> None:
    """A worker starting beside the study's creator reads its settings only once they are all
    written (the creator writes them one at a time, then the ready marker): before, the
    two-worker PostgreSQL test once saw 'budget_quantile_z was none, now 0.0'."""
    import threading
    import time

    from nas.search._runner import _READY_ATTR, _settled_study

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="new")
    study.set_user_attr("nas_space", "nasbench201")

    def finish() -> None:
        time.sleep(0.5)
        study.set_user_attr("nas_budget_quantile_z", 0.0)
        study.set_user_attr(_READY_ATTR, True)

    writer = threading.Thread(target=finish)
    writer.start()
    seen = _settled_study("new", storage)
    writer.join()
    assert seen.user_attrs.get("nas_budget_quantile_z") == 0.0
