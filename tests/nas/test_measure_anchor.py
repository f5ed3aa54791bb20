"""The drift anchor: a change of machine speed between groups does not reach the numbers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hwdb import HardwareDB
from nas._cli.measure import _drift_line
from nas.measure import (
    DriftAnchor,
    MeasureConfig,
    MeasureReport,
    SampleStats,
    TimingProtocol,
    measure_architectures,
    measure_pass,
    retest,
    select_architectures,
)
from nas.measure import _runner as runner
from search_spaces import get_space

SPACE = "nasbench201"
CHUNK = 4


class _Machine:
    """Fake samplers: each arch's true latency times the machine's speed in its group."""

    def __init__(self, true_ms: dict[str, float], slowdown: list[float]) -> None:
        self.true_ms = true_ms
        self.slowdown = iter(slowdown)
        self.built: list[list[str]] = []

    def build(self, space: Any, archs: Any, cfg: Any, tick: Any, label: str) -> list[Any]:
        self.built.append(list(archs))
        factor = next(self.slowdown)  # one machine state per group, as seen on the H200
        return [_Fixed(self.true_ms[a] * factor) for a in archs]


class _Fixed:
    def __init__(self, ms: float) -> None:
        self.ms = ms

    def sample(self) -> dict[str, float]:
        return {"latency_ms": self.ms}


@pytest.fixture
def setup() -> Iterator[tuple[Any, list[str], dict[str, float], DriftAnchor]]:
    space = get_space(SPACE)
    archs = select_architectures(space, n=3 * CHUNK, seed=0)
    anchor = DriftAnchor.for_space(space)
    assert anchor.arch not in archs
    true_ms = {a: 1.0 + i for i, a in enumerate(archs)} | {anchor.arch: 6.5}
    yield space, archs, true_ms, anchor


def _config(anchor: bool = True) -> MeasureConfig:
    protocol = TimingProtocol(rounds=2, repeats=1, warmup=0, anchor=anchor)
    return MeasureConfig(protocol=protocol, chunk_size=CHUNK, device_type="cpu", prime=0)


def test_factors_are_relative_to_the_first_group() -> None:
    anchor = DriftAnchor("a")
    stats = SampleStats(2.0, 2.0, 0.0, 2.0, 2.0, 3, 0)
    assert anchor.factors({"latency_ms": stats}) == {"latency_ms": 1.0}
    slower = SampleStats(3.0, 3.0, 0.0, 3.0, 3.0, 3, 0)
    assert anchor.factors({"latency_ms": slower}) == {"latency_ms": 1.5}
    assert anchor.reference == {"latency_ms": 2.0}
    assert slower.corrected(1.5).median == 2.0 and slower.corrected(1.5).drift_factor == 1.5
    with pytest.raises(ValueError, match="factor"):
        slower.corrected(0.0)


def test_anchor_removes_a_speed_change_between_groups(
    monkeypatch: pytest.MonkeyPatch, setup: tuple[Any, list[str], dict[str, float], DriftAnchor]
) -> None:
    space, archs, true_ms, anchor = setup
    slowdown = [1.0, 1.7, 0.8]
    machine = _Machine(true_ms, slowdown)
    monkeypatch.setattr(runner, "_build", machine.build)
    cfg = _config().resolve(space)
    stats = measure_pass(space, archs, cfg, seed=0, tick=lambda _w: None)
    assert [s["latency_ms"].median for s in stats] == pytest.approx([true_ms[a] for a in archs])
    drift = [s["latency_ms"].drift_factor for s in stats]
    assert drift == pytest.approx([f for f in slowdown for _ in range(CHUNK)])
    assert all(group[0] == anchor.arch for group in machine.built)  # timed in every group

    # Without the anchor the machine's states stay in the numbers.
    monkeypatch.setattr(runner, "_build", _Machine(true_ms, slowdown).build)
    off = _config(anchor=False).resolve(space)
    plain = measure_pass(space, archs, off, seed=0, tick=lambda _w: None)
    assert plain[CHUNK]["latency_ms"].median == pytest.approx(1.7 * true_ms[archs[CHUNK]])
    # ... also when handed an anchor: the protocol string must say whether rows are corrected.
    monkeypatch.setattr(runner, "_build", _Machine(true_ms, slowdown).build)
    handed = measure_pass(space, archs, off, seed=0, tick=lambda _w: None, anchor=anchor)
    assert handed[CHUNK]["latency_ms"].drift_factor == 1.0


def test_a_resumed_series_keeps_the_level_of_the_stored_anchor(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    setup: tuple[Any, list[str], dict[str, float], DriftAnchor],
) -> None:
    space, archs, true_ms, anchor = setup
    with HardwareDB(sqlite_url) as db:
        # First run: the reference set (anchor included) at normal speed.
        monkeypatch.setattr(runner, "_build", _Machine(true_ms, [1.0]).build)
        first = [anchor.arch, *archs[:2]]
        measure_architectures(db, space=SPACE, device="d", archs=first, config=_config())
        # Later, on a machine running twice as slow, the rest of the archs.
        monkeypatch.setattr(runner, "_build", _Machine(true_ms, [2.0, 2.0, 2.0]).build)
        report = measure_architectures(db, space=SPACE, device="d", archs=archs, config=_config())
        assert sorted(report.skipped) == sorted(archs[:2])
        assert report.anchor_level == "stored anchor row"
        table = db.latency_table(SPACE, devices=["d"])["d"]
        assert table[archs].tolist() == pytest.approx([true_ms[a] for a in archs])
        rows = db.measurements(space=SPACE, device="d")
        later = [r for r in rows if r["arch"] == archs[-1]][0]
        assert later["environment"]["drift_factor"] == pytest.approx(2.0)
        assert anchor.arch in table.dropna().index  # stored once, as asked


def test_a_finished_series_takes_the_level_of_its_median_group(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    setup: tuple[Any, list[str], dict[str, float], DriftAnchor],
) -> None:
    space, archs, true_ms, _ = setup
    slowdown = [0.5, 1.0, 1.0]  # an unusual (fast) first group, then the machine's usual speed
    monkeypatch.setattr(runner, "_build", _Machine(true_ms, slowdown).build)
    cfg = _config().resolve(space)
    stats = measure_pass(space, archs, cfg, seed=0, tick=lambda _w: None)
    assert [s["latency_ms"].median for s in stats] == pytest.approx([true_ms[a] for a in archs])
    drift = [s["latency_ms"].drift_factor for s in stats]
    assert drift == pytest.approx([f for f in slowdown for _ in range(CHUNK)])
    with HardwareDB(sqlite_url) as db:
        monkeypatch.setattr(runner, "_build", _Machine(true_ms, slowdown).build)
        report = measure_architectures(db, space=SPACE, device="d", archs=archs, config=_config())
        assert report.anchor_level == "median group" and report.rows_written == len(archs)
        table = db.latency_table(SPACE, devices=["d"])["d"]
        assert table[archs].tolist() == pytest.approx([true_ms[a] for a in archs])
        first = [r for r in db.measurements(space=SPACE, device="d") if r["arch"] == archs[0]]
        assert first[0]["environment"]["drift_factor"] == pytest.approx(0.5)
        assert report.measured[archs[0]]["latency_ms"]["median"] == pytest.approx(1.0)


def test_a_first_group_that_is_the_median_one_is_the_level(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    setup: tuple[Any, list[str], dict[str, float], DriftAnchor],
) -> None:
    space, archs, true_ms, _ = setup
    monkeypatch.setattr(runner, "_build", _Machine(true_ms, [1.0, 1.7, 0.8]).build)
    with HardwareDB(sqlite_url) as db:
        report = measure_architectures(db, space=SPACE, device="d", archs=archs, config=_config())
        assert report.anchor_level == "median group"
        table = db.latency_table(SPACE, devices=["d"])["d"]
        assert table[archs].tolist() == pytest.approx([true_ms[a] for a in archs])


def test_a_series_continued_across_passes_is_levelled_once(
    monkeypatch: pytest.MonkeyPatch, setup: tuple[Any, list[str], dict[str, float], DriftAnchor]
) -> None:
    space, archs, true_ms, anchor = setup
    cfg = _config().resolve(space)
    monkeypatch.setattr(runner, "_build", _Machine(true_ms, [2.0, 1.0, 1.0]).build)
    measure_pass(space, archs, cfg, seed=0, tick=lambda _w: None, anchor=anchor)
    assert anchor.reference == {"latency_ms": pytest.approx(6.5)}  # the median group's level
    monkeypatch.setattr(runner, "_build", _Machine(true_ms, [3.0, 3.0, 3.0]).build)
    later = measure_pass(space, archs, cfg, seed=1, tick=lambda _w: None, anchor=anchor)
    assert [s["latency_ms"].median for s in later] == pytest.approx([true_ms[a] for a in archs])
    assert anchor.relevel() == {}


def test_retest_reports_how_far_each_pass_was_relevelled(
    monkeypatch: pytest.MonkeyPatch, setup: tuple[Any, list[str], dict[str, float], DriftAnchor]
) -> None:
    space, archs, true_ms, _ = setup
    monkeypatch.setattr(runner, "_build", _Machine(true_ms, [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]).build)
    result = retest(space=space, archs=archs, config=_config())
    assert result.first == pytest.approx(result.second) and result.mape == pytest.approx(0.0)
    assert result.relevelled == pytest.approx((0.5, 1.0))


def _report(factors: list[float], level: str | None = "median group") -> MeasureReport:
    measured = {
        f"a{i}": {"latency_ms": {"median": 1.0, "drift_factor": f}} for i, f in enumerate(factors)
    }
    report = MeasureReport("nasbench201", "d", "interleaved-rr2x1-w0-rh-an@r32", {}, measured)
    report.anchor_level = level
    return report


def test_the_cli_report_says_how_the_machine_drifted() -> None:
    assert _drift_line(_report([1.0, 1.0, 1.0])) is None  # one group, or no anchor
    line = _drift_line(_report([0.8, 1.0, 1.0, 1.5]))
    assert line is not None and "0.80-1.50x the time of the median group" in line
    assert "unlike" not in line
    resumed = _drift_line(_report([0.3, 0.3, 0.3], "stored anchor row"))
    assert resumed is not None and "unlike the stored series (0.30x its time)" in resumed
