"""README QA: objectives stop when asked to (``should_stop``), short-train refuses vision
spaces, and an objective that fails on a whole batch says why instead of scoring NaN."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch import nn

from search_spaces import get_space


class _Polls:
    """A ``should_stop`` that says stop from its ``after``-th call on."""

    def __init__(self, after: int) -> None:
        self.after, self.calls = after, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.after


@pytest.fixture
def counted_proxies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Instant stand-ins for every base proxy, recording each call (no real gradients)."""
    from nas.search import _proxies

    calls: list[str] = []

    def fake(name: str) -> Any:
        def proxy(model: nn.Module, batch: Any) -> float:
            calls.append(name)
            return float(len(calls))

        return proxy

    for name in list(_proxies.BASE_PROXIES):
        monkeypatch.setitem(_proxies.BASE_PROXIES, name, fake(name))
    return calls


def _nb201_archs(n: int) -> list[str]:
    sp = get_space("nasbench201")
    return [sp.to_string(sp.random(i)) for i in range(n)]


# ----------------------------------------------------------------------------- should_stop
def test_the_vote_stops_inside_its_calibration(counted_proxies: list[str]) -> None:
    """The vote's calibration (here 8 archs x 3 proxies) runs before the first architecture
    is scored; a stop request is seen before the next model is built, not after it."""
    from nas.search import ProxyAccuracy
    from nas.search._objectives import EvaluationCancelled

    stop = _Polls(after=5)
    sp = get_space("nasbench201")
    obj = ProxyAccuracy(sp, "vote", batch_size=2, resolution=8, calibration=8, should_stop=stop)
    with pytest.raises(EvaluationCancelled):
        obj.evaluate(_nb201_archs(2))
    assert 0 < len(counted_proxies) < 4  # of 24 calibration computations
    assert obj._calib is None  # a later evaluate starts the calibration again


def test_one_proxy_polls_before_each_architecture(counted_proxies: list[str]) -> None:
    from nas.search import make_accuracy_objective
    from nas.search._objectives import EvaluationCancelled

    stop = _Polls(after=10**9)
    obj = make_accuracy_objective("proxy:params", space=get_space("nasbench201"), should_stop=stop)
    assert np.isfinite(obj.evaluate(_nb201_archs(3))).all()
    assert stop.calls >= 3
    stop.after = stop.calls + 1
    with pytest.raises(EvaluationCancelled):
        obj.evaluate(_nb201_archs(3))


def test_short_training_stops_between_steps() -> None:
    from nas.search import ShortTrainAccuracy
    from nas.search._objectives import EvaluationCancelled

    steps: list[int] = []

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.out = nn.Embedding(256, 4), nn.Linear(4, 256)

        def forward(self, x: Any) -> Any:
            steps.append(1)
            return self.out(self.emb(x))

    stop = _Polls(after=4)
    sp = get_space("nasbench201")  # any space: ``build`` makes the language model
    obj = ShortTrainAccuracy(
        sp, steps=10_000, seq_len=8, batch_size=2, build=lambda a: Tiny(), should_stop=stop
    )
    with pytest.raises(EvaluationCancelled):
        obj.evaluate(_nb201_archs(1))
    assert len(steps) < 5  # stopped after a few of 10,000 steps


def test_make_accuracy_objective_passes_should_stop_on(tmp_path: Path) -> None:
    from nas.search import make_accuracy_objective

    def stop() -> bool:
        return False

    sp = get_space("nasbench201")
    for spec in ("auto", "proxy", "proxy:synflow"):
        assert make_accuracy_objective(spec, space=sp, should_stop=stop).should_stop is stop  # type: ignore[union-attr]
    lm = get_space("nemotron_flash").smoke_variant()  # type: ignore[attr-defined]
    short = make_accuracy_objective("short-train", space=lm, should_stop=stop)
    assert short.should_stop is stop  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- short-train
def test_short_train_refuses_a_vision_space() -> None:
    from nas.search import ShortTrainAccuracy, make_accuracy_objective

    for name in ("mnasnet", "nasbench201"):
        with pytest.raises(ValueError, match=r"`accuracy` short-train .*nemotron_flash"):
            make_accuracy_objective("short-train", space=get_space(name))
        with pytest.raises(ValueError, match="`space` must be a language-model space"):
            ShortTrainAccuracy(get_space(name))
    lm = get_space("nemotron_flash").smoke_variant()  # type: ignore[attr-defined]
    assert make_accuracy_objective("short-train", space=lm).name == "short-train:300"


def test_cli_short_train_on_mnasnet_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nas search -d jetson --trials 2 --accuracy short-train` used to fail every trial
    silently and exit 0 with an empty front."""
    from nas._cli.main import main

    args = ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "search", "-d", "jetson"]
    args += ["--trials", "2", "--accuracy", "short-train", "-o", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--accuracy short-train" in err and "nemotron_flash" in err
    assert not (tmp_path / "out" / "pareto.json").exists()


# ----------------------------------------------------------------------------- whole-batch failures
class _Conv(nn.Module):
    """A vision model: token ids (int64, 2-D) make it raise a RuntimeError."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: Any) -> Any:
        return self.conv(x)


def test_short_train_failing_on_a_whole_batch_names_the_error() -> None:
    from nas.search import SearchError, ShortTrainAccuracy

    sp = get_space("nasbench201")
    archs = _nb201_archs(2)
    obj = ShortTrainAccuracy(sp, steps=1, seq_len=8, batch_size=2, build=lambda a: _Conv())
    with (
        pytest.warns(RuntimeWarning, match="training raised RuntimeError"),
        pytest.raises(SearchError, match=r"failed on all 2 architectures .*RuntimeError"),
    ):
        obj.evaluate(archs)


def test_short_train_failing_on_some_archs_scores_the_others() -> None:
    from nas.search import ShortTrainAccuracy

    sp = get_space("nasbench201")
    archs = _nb201_archs(2)

    def build(arch: str) -> nn.Module:
        if arch == archs[0]:
            return _Conv()
        return nn.Sequential(nn.Embedding(256, 4), nn.Linear(4, 256))

    obj = ShortTrainAccuracy(sp, steps=1, seq_len=8, batch_size=2, build=build)
    with pytest.warns(RuntimeWarning, match=f"RuntimeError: .* on {re.escape(archs[0])}"):
        out = obj.evaluate(archs)
    assert math.isnan(out[0]) and 0 <= out[1] <= 100
    bad = obj.evaluate(archs[:1])  # a whole batch failing after a score: NaN, not an error
    assert math.isnan(bad[0])


@pytest.mark.parametrize("proxy", ["params", "vote"])
def test_a_proxy_raising_on_a_whole_batch_names_the_error(
    monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    from nas.search import ProxyAccuracy, SearchError, _proxies

    def broken(model: nn.Module, batch: Any) -> float:
        raise RuntimeError("proxy cannot take this model")

    for name in list(_proxies.BASE_PROXIES):
        monkeypatch.setitem(_proxies.BASE_PROXIES, name, broken)
    sp = get_space("nasbench201")
    obj = ProxyAccuracy(sp, proxy, batch_size=2, resolution=8, calibration=2)
    with (
        pytest.warns(RuntimeWarning, match="raised RuntimeError: proxy cannot take this model"),
        pytest.raises(SearchError, match=r"failed on all 2 architectures .*cannot take"),
    ):
        obj.evaluate(_nb201_archs(2))


def test_a_proxy_raising_on_some_archs_is_a_failed_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.search import ProxyAccuracy, _proxies

    calls: list[int] = []

    def flaky(model: nn.Module, batch: Any) -> float:
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("out of memory")
        return 5.0

    monkeypatch.setitem(_proxies.BASE_PROXIES, "params", flaky)
    obj = ProxyAccuracy(get_space("nasbench201"), "params", batch_size=2, resolution=8)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        out = obj.evaluate(_nb201_archs(2))
    assert math.isnan(out[0]) and out[1] == pytest.approx(math.log1p(5.0))
