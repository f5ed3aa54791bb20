"""Robust statistics, retest metrics and the round-robin timing protocol."""

from __future__ import annotations

import numpy as np
import pytest

from nas.measure import (
    TimingProtocol,
    mape,
    reject_outliers,
    round_robin_schedule,
    run_protocol,
    spearman,
    summarize,
)


def test_reject_outliers_drops_spikes_only() -> None:
    rng = np.random.default_rng(0)
    base = 10.0 + rng.normal(0.0, 0.1, size=50)
    samples = np.concatenate([base, [25.0, 40.0]])
    kept, rejected = reject_outliers(samples)
    assert sorted(rejected.tolist()) == [25.0, 40.0]
    assert kept.size == 50


def test_reject_outliers_zero_mad_uses_mean_deviation() -> None:
    kept, rejected = reject_outliers([5.0, 5.0, 5.0, 5.0, 5.0, 50.0])
    assert rejected.tolist() == [50.0]
    kept, rejected = reject_outliers([3.0, 3.0, 3.0])
    assert kept.tolist() == [3.0, 3.0, 3.0] and rejected.size == 0


def test_summarize_percentiles_and_counts() -> None:
    samples = np.arange(1.0, 11.0)  # 1..10, no outliers
    s = summarize(samples)
    assert s.median == pytest.approx(5.5)
    assert s.mean == pytest.approx(5.5)
    assert s.min == 1.0
    assert s.p90 == pytest.approx(np.percentile(samples, 90))
    assert s.std == pytest.approx(np.std(samples, ddof=1))
    assert (s.n_runs, s.n_rejected) == (10, 0)
    spiky = summarize([*samples, 1000.0])
    assert spiky.n_rejected == 1 and spiky.median == pytest.approx(5.5)
    assert summarize([7.0]).std == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_bad_samples(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="`samples`"):
        summarize(bad)


def test_reject_outliers_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="`threshold`"):
        reject_outliers([1.0, 2.0], threshold=0)


def test_spearman_and_mape() -> None:
    a = [1.0, 2.0, 3.0, 4.0]
    assert spearman(a, [10.0, 20.0, 30.0, 40.0]) == pytest.approx(1.0)
    assert spearman(a, [4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert mape(a, [1.1, 2.2, 3.3, 4.4]) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="same length"):
        mape(a, [1.0])
    with pytest.raises(ValueError, match="`reference`"):
        mape([0.0, 1.0], [1.0, 1.0])


def test_round_robin_schedule_is_a_seeded_permutation_per_round() -> None:
    sched = round_robin_schedule(5, 4, rng=1)
    assert len(sched) == 4
    assert all(sorted(order) == list(range(5)) for order in sched)
    assert sched == round_robin_schedule(5, 4, rng=1)
    assert len({tuple(o) for o in round_robin_schedule(6, 8, rng=2)}) > 1
    with pytest.raises(ValueError, match="`n_models`"):
        round_robin_schedule(0, 3)
    with pytest.raises(ValueError, match="`rounds`"):
        round_robin_schedule(3, 0)


class _Recorder:
    """A sampler that logs the global call order and returns its call count as latency."""

    def __init__(self, index: int, log: list[int]) -> None:
        self.index, self.log, self.calls = index, log, 0

    def sample(self) -> dict[str, float]:
        self.calls += 1
        self.log.append(self.index)
        return {"latency_ms": float(self.calls)}


def test_interleaved_protocol_order() -> None:
    log: list[int] = []
    samplers = [_Recorder(i, log) for i in range(3)]
    protocol = TimingProtocol(rounds=4, repeats=2, warmup=1)
    steps: list[int] = []
    out = run_protocol(samplers, protocol, rng=0, on_step=lambda: steps.append(1))
    assert log[:3] == [0, 1, 2]  # warm-up of every model first
    timed = log[3:]
    blocks = [timed[i : i + 2] for i in range(0, len(timed), 2)]
    assert all(b[0] == b[1] for b in blocks)  # repeats run back to back
    expected = [i for order in round_robin_schedule(3, 4, rng=0) for i in order]
    assert [b[0] for b in blocks] == expected
    assert all(len(r["latency_ms"]) == 8 for r in out)
    assert out[0]["latency_ms"][0] == 2.0  # the warm-up sample is not recorded
    assert len(steps) == protocol.steps(3)


def test_sequential_protocol_order_and_names() -> None:
    log: list[int] = []
    samplers = [_Recorder(i, log) for i in range(2)]
    protocol = TimingProtocol(kind="sequential", rounds=2, repeats=3, warmup=1)
    run_protocol(samplers, protocol)
    assert log == [0] * 7 + [1] * 7
    assert protocol.name == "sequential-n6-w1-rh-an"
    assert TimingProtocol().name == "interleaved-rr10x3-w5-rh-an"
    assert TimingProtocol(retain_heap=False).name == "interleaved-rr10x3-w5-an"
    assert TimingProtocol(retain_heap=False, anchor=False).name == "interleaved-rr10x3-w5"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"rounds": 0}, "rounds"), ({"repeats": 0}, "repeats"), ({"warmup": -1}, "warmup"),
     ({"kind": "random"}, "kind"), ({"outlier_threshold": 0.0}, "outlier_threshold")],
)  # fmt: skip
def test_timing_protocol_validation(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        TimingProtocol(**kwargs)  # type: ignore[arg-type]
