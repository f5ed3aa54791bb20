"""Orchestration: choose architectures, time them in groups, commit each group, resume, retest.

Groups are timed one after another, and the interleaved protocol only protects the models
*within* a group from changes in machine speed. Between groups the machine can change state: on
this project's lent H200, whole groups of 25 eager mobilevig models ran up to 1.7x slower than
their neighbours, and two passes over the same 375 archs agreed at Spearman 0.60 (0.88 within a
group). A protocol with ``anchor`` therefore times one fixed architecture, the
*drift anchor* (the space's first hardware-embedding arch), in every group, and divides each
group's times by the anchor's median in that group over its median in the reference group (the
first group of the run, or the anchor's stored row when a run resumes). This is the control
sample of a measurement series: it turns a machine-state change between groups, which hits
every model of a group alike, into a known factor, stored with each row as ``drift_factor``.
Once a series that took its reference from its own first group ends, its level moves to the
anchor's median over all its groups (:meth:`DriftAnchor.relevel`), so that one unusual first
group does not set the absolute times of the whole series; its rows are rewritten in one
transaction. Interrupted before that, they keep the first group's level.

Every row carries its run's ``run_id`` in its ``environment``, so that a run re-levels only
the rows it stored itself: two runs measuring the same archs of one device at once each keep
the rows that reached the database first (without ``force``), and neither rewrites the other's.
The rewrite checks each row's ``run_id`` inside its own transaction
(:meth:`hwdb.HardwareDB.replace_run_measurements`), so a ``force`` run that replaced some
rows in the meantime keeps them.
"""

from __future__ import annotations

import math
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from nas._errors import NasError
from nas._threads import torch_threads
from nas.measure._allocator import retain_freed_memory
from nas.measure._config import MeasureConfig, ResolvedConfig
from nas.measure._environment import cpu_model, environment
from nas.measure._memory import MemoryPlan, plan_memory
from nas.measure._stats import SampleStats, mape, spearman, summarize
from nas.measure._timing import run_protocol

if TYPE_CHECKING:
    from hwdb import Device, DeviceSpec, HardwareDB, MeasurementIn
    from search_spaces import SearchSpace

__all__ = [
    "DriftAnchor",
    "MeasureReport",
    "ProgressCallback",
    "RetestResult",
    "measure_architectures",
    "retest",
]

#: ``progress(completed, total, description)``; called after every build and timing block.
ProgressCallback = Callable[[int, int, str], None]


#: A committed group: archs, their drift-corrected statistics, the environment stored.
_Entry = tuple[Sequence[str], list[dict[str, SampleStats]], dict[str, Any]]
#: A run's committed groups.
_Series = list[_Entry]
#: Called with the archs of each group as it is committed (those whose rows this run stored).
CommitCallback = Callable[[Sequence[str]], None]


@dataclass
class MeasureReport:
    """What one :func:`measure_architectures` call did.

    Attributes:
        space: Space name.
        device: Device name.
        protocol: Protocol string stored with the rows.
        workload: Workload dict stored with the rows.
        measured: Per measured arch, metric -> :class:`SampleStats` as a dict.
        skipped: Archs already in the database under this protocol (not re-measured).
        rows_written: Rows inserted or replaced.
        stored_by_another_run: Archs this run timed whose rows another run (measuring the same
            device at the same time) stored first or replaced; those rows are kept and this
            run's times of them are not stored (nor in ``measured``).
        too_large: Archs not measured because they do not fit in this machine's free memory.
        anchor_level: What the drift-corrected times are scaled to: ``"median group"`` (the
            anchor's median over this run's groups), ``"stored anchor row"`` (a resumed
            series), ``"first group"`` (one group), or ``None`` without an anchor.
    """

    space: str
    device: str
    protocol: str
    workload: dict[str, Any]
    measured: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    rows_written: int = 0
    anchor_level: str | None = None
    stored_by_another_run: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class RetestResult:
    """Agreement of two independent measurement passes over the same architectures.

    Attributes:
        spearman: Spearman rank correlation of the two passes' medians.
        mape: Mean absolute percentage difference of pass 2 from pass 1 (percent).
        n: Number of architectures.
        metric: The compared metric.
        first: Pass-1 medians (ms), in arch order.
        second: Pass-2 medians (ms), in arch order.
        relevelled: Per pass, the factor its drift-corrected times were divided by when its
            level moved from its first group to its median group (1.0: not moved, or no
            anchor); times at the first group's level are ``first * relevelled[0]``.
    """

    spearman: float
    mape: float
    n: int
    metric: str
    first: list[float]
    second: list[float]
    relevelled: tuple[float, float] = (1.0, 1.0)

    def summary(self) -> dict[str, Any]:
        """``{"spearman", "mape", "n"}`` rounded for printing."""
        return {"spearman": round(self.spearman, 4), "mape": round(self.mape, 3), "n": self.n}


@dataclass
class DriftAnchor:
    """The drift anchor of one measurement series (see the module docstring).

    Attributes:
        arch: Canonical string of the anchor architecture.
        reference: Metric -> the anchor's median in the reference group; ``None`` until the
            first group is timed (or set from a stored row to continue a series).
    """

    arch: str
    reference: dict[str, float] | None = None
    medians: dict[str, list[float]] = field(default_factory=dict)
    own_reference: bool = False

    @classmethod
    def for_space(cls, space: SearchSpace[Any]) -> DriftAnchor:
        """The anchor of ``space``: its first hardware-embedding architecture."""
        return cls(space.to_string(space.hardware_embedding_archs()[0]))

    def factors(self, anchor_stats: dict[str, SampleStats]) -> dict[str, float]:
        """Metric -> how much slower the anchor ran in this group than in the reference group.

        The first group seen becomes the reference (factor 1) unless one was set.
        """
        if self.reference is None:
            self.reference = {m: s.median for m, s in anchor_stats.items()}
            self.own_reference = True
        for metric, s in anchor_stats.items():
            self.medians.setdefault(metric, []).append(s.median)
        out = {}
        for metric, s in anchor_stats.items():
            ref = self.reference.get(metric, 0.0)
            factor = s.median / ref if ref > 0 else 1.0
            out[metric] = factor if math.isfinite(factor) and factor > 0 else 1.0
        return out

    def relevel(self) -> dict[str, float]:
        """Move the level of a finished series from its first group to its median group.

        Applies once, to a series whose reference is its own first group (not a stored row)
        and that timed at least two groups; the reference becomes the anchor's median over
        the groups, so that later groups of the series continue at that level.

        Returns:
            Metric -> the factor to divide the series' corrected statistics by
            (:meth:`SampleStats.corrected`); empty when the level stays.
        """
        if not self.own_reference or self.reference is None:
            return {}
        self.own_reference = False
        out = {}
        for metric, ref in self.reference.items():
            seen = self.medians.get(metric, [])
            level = float(np.median(seen)) if len(seen) >= 2 else ref
            if ref > 0 and level > 0 and math.isfinite(level) and level != ref:
                out[metric] = ref / level
                self.reference[metric] = level
        return out


def _space(space: str | SearchSpace[Any]) -> SearchSpace[Any]:
    from search_spaces import SearchSpace, get_space

    return space if isinstance(space, SearchSpace) else get_space(space)


def _unique(items: Iterator[str] | Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _build(
    space: SearchSpace[Any],
    archs: Sequence[str],
    cfg: ResolvedConfig,
    tick: Callable[[str], None],
    label: str,
) -> list[Any]:
    """Samplers of ``archs``, ticking ``"<label> i/n"`` after each build."""
    if cfg.base.protocol.retain_heap:
        retain_freed_memory()  # before building: weights must come from the same heap too
    samplers = []
    for text in archs:
        try:
            samplers.append(cfg.build_sampler(space, space.from_string(text)))
        except (RuntimeError, TypeError) as exc:
            raise NasError(f"cannot build {space.name} arch {text!r}: {exc}") from exc
        tick(f"{label} {len(samplers)}/{len(archs)}")
    return samplers


def _time_group(
    space: SearchSpace[Any],
    archs: Sequence[str],
    cfg: ResolvedConfig,
    *,
    rng: np.random.Generator,
    tick: Callable[[str], None],
    anchor: DriftAnchor | None = None,
) -> list[dict[str, SampleStats]]:
    """Build ``archs`` (and the anchor), time them together, return per-arch statistics.

    With an ``anchor``, every statistic is divided by the group's drift factor.
    """
    timed = _with_anchor(archs, anchor)
    samplers = _build(space, timed, cfg, tick, "built")
    protocol = cfg.base.protocol
    try:
        raw = run_protocol(samplers, protocol, rng=rng, on_step=lambda: tick("timing"))
    except RuntimeError as exc:
        raise NasError(f"timing failed in group starting with {archs[0]!r}: {exc}") from exc
    _last_timed["at"] = time.monotonic()
    stats = [
        {m: summarize(samples[m], threshold=protocol.outlier_threshold) for m in cfg.metrics}
        for samples in raw
    ]
    if anchor is None:
        return stats
    factors = anchor.factors(stats[timed.index(anchor.arch)])
    corrected = [{m: s.corrected(factors[m]) for m, s in per.items()} for per in stats]
    return corrected[len(timed) - len(archs) :]


def _with_anchor(archs: Sequence[str], anchor: DriftAnchor | None) -> list[str]:
    """``archs``, preceded by the anchor when it is not among them."""
    if anchor is None or anchor.arch in archs:
        return list(archs)
    return [anchor.arch, *archs]


def _anchor(space: SearchSpace[Any], cfg: ResolvedConfig) -> DriftAnchor | None:
    return DriftAnchor.for_space(space) if cfg.base.protocol.anchor else None


def _steps(groups: Sequence[Sequence[str]], cfg: ResolvedConfig, anchor: DriftAnchor | None) -> int:
    """Progress steps of timing ``groups``: a build, a warm-up and one per round, per model."""
    per_model = cfg.base.protocol.rounds + 2
    return sum(len(_with_anchor(g, anchor)) * per_model for g in groups)


_STILL_WARM_S = 30.0
_last_timed = {"at": -math.inf}  # time.monotonic() when this process last finished timing


def _priming_steps(cfg: ResolvedConfig, n_archs: int) -> int:
    """Progress steps of :func:`_prime` (0 when this process timed models less than 30 s ago)."""
    if time.monotonic() - _last_timed["at"] < _STILL_WARM_S:
        return 0
    return min(cfg.base.prime, n_archs)


def _prime(
    space: SearchSpace[Any],
    cfg: ResolvedConfig,
    texts: Sequence[str],
    tick: Callable[[str], None],
) -> None:
    """Run ``texts`` (the first ``cfg.base.prime`` archs that fit in memory together, see
    :func:`plan_memory`) untimed (see ``MeasureConfig``).

    Skipped when this process finished timing models less than 30 s ago.
    """
    if _priming_steps(cfg, len(texts)) == 0:
        return
    from dataclasses import replace

    samplers = _build(space, texts[: cfg.base.prime], cfg, tick, "priming")
    protocol = replace(cfg.base.protocol, rounds=1, repeats=1, warmup=1)
    deadline = time.monotonic() + cfg.base.prime_seconds
    try:
        run_protocol(samplers, protocol)
        while time.monotonic() < deadline:
            run_protocol(samplers, replace(protocol, warmup=0))
    except RuntimeError as exc:
        raise NasError(f"priming run failed: {exc}") from exc


def _rows(
    space: str,
    device: str,
    archs: Sequence[str],
    stats: Sequence[dict[str, SampleStats]],
    cfg: ResolvedConfig,
    env: dict[str, Any],
    source: str,
) -> list[MeasurementIn]:
    from hwdb import MeasurementIn

    rows = []
    for arch, per_metric in zip(archs, stats, strict=True):
        for metric, s in per_metric.items():
            rows.append(
                MeasurementIn(
                    device=device, space=space, arch=arch, metric=metric,
                    median=s.median, mean=s.mean, std=s.std, min=s.min, p90=s.p90,
                    n_runs=s.n_runs, warmup=cfg.base.protocol.warmup, protocol=cfg.protocol,
                    environment=_row_environment(env, s, cfg),
                    source=source, workload=cfg.workload.to_dict(),
                )
            )  # fmt: skip
    return rows


def _row_environment(env: dict[str, Any], s: SampleStats, cfg: ResolvedConfig) -> dict[str, Any]:
    out = {**env, "outliers_rejected": s.n_rejected}
    if cfg.base.protocol.anchor:
        out["drift_factor"] = round(s.drift_factor, 4)
    return out


#: Workload fields that set the input shapes a device's rows were timed at. ``meta_tokens`` is
#: not one: every language model prepends its own architecture's meta tokens, whatever the
#: workload says (rows stored before it was fixed at the space default say 32).
SHAPE_KEYS = ("resolution", "prompt_len", "decode_len")


def _check_workload(db: HardwareDB, cfg: ResolvedConfig, name: str, space: str) -> None:
    """Refuse input shapes that differ from those already stored for ``name`` in ``space``.

    Latencies at different shapes are different quantities and a device keeps one workload
    per space (``HardwareDB.latency_table``), so a new shape needs a new device name.
    """
    new = cfg.workload.to_dict()
    for old in db.measured_workloads(space=space, device=name):
        diff = [
            f"{k}={old[k]!r}"
            for k in SHAPE_KEYS
            if old.get(k) is not None and new.get(k) is not None and old[k] != new[k]
        ]
        if diff:
            raise NasError(
                f"device {name!r} already has {space} measurements with {', '.join(diff)}; "
                "store this configuration under another device name"
            )


_DEVICE_KEYS = ("runtime", "precision", "batch_size", "threads")


def _device_diff(old: Device, spec: DeviceSpec, skip: Sequence[str] = ()) -> list[str]:
    """``key=old value`` for each setting of ``old`` that ``spec`` does not share."""
    return [
        f"{k}={getattr(old, k)!r}"
        for k in _DEVICE_KEYS
        if k not in skip and getattr(old, k) != getattr(spec, k)
    ]


@dataclass(frozen=True)
class _Declared:
    """What :func:`_check_device` did to the device, so that a failed run can undo it.

    Attributes:
        created: This run inserted the device (a failed run deletes it again).
        previous: The settings of a device this run declared again, or whose open settings
            it filled in (a failed run restores them); ``None`` when it did neither.
    """

    created: bool = False
    previous: DeviceSpec | None = None


def _spec_of(device: Device) -> DeviceSpec:
    """The :class:`hwdb.DeviceSpec` fields of a stored device."""
    from hwdb import DeviceSpec

    return DeviceSpec(**{f.name: getattr(device, f.name) for f in fields(DeviceSpec)})


def device_conflict(
    db: HardwareDB, name: str, cfg: ResolvedConfig, *, source: str = "nas measure"
) -> list[str]:
    """The settings for which :func:`measure_architectures` with ``cfg`` would refuse to
    store rows under the stored device ``name``: ``key=stored value`` for each setting
    (runtime, precision, batch, threads) its rows were measured with that this configuration
    does not share (empty: it may, or the device is not stored). The machine is checked
    apart, where it runs (:func:`recorded_cpu`). A setting the device does not record (runtime
    ``'unknown'``, threads ``None``: an imported device) conflicts too, since rows measured
    now could not be told apart from rows measured otherwise; only a catalog device without
    measurements takes them from its first run.
    """
    return _device_plan(db, cfg.device_spec(name, hardware="", source=source)).conflict


class _Plan(NamedTuple):
    """What :func:`_check_device` does with a device (see :func:`_device_plan`)."""

    old: Device | None  # the stored device (None: none)
    fill: dict[str, Any]  # the settings this run fills in
    conflict: list[str]  # the settings in conflict (see device_conflict)
    redeclare: bool  # an empty device of this source, declared again with this run's settings


def _device_plan(db: HardwareDB, spec: DeviceSpec) -> _Plan:
    """How the stored device ``spec.name`` meets this run's ``spec`` (``hardware`` is not
    compared)."""
    from hwdb import NotFoundError

    try:
        old = db.get_device(spec.name)
    except NotFoundError:
        return _Plan(None, {}, [], False)
    # A device registered from the datasheet catalog (`nas device add`, `nas device onboard
    # --catalog`) leaves its runtime and threads open until its first measurement.
    unset = {"runtime": "unknown", "threads": None}
    fill = {}
    empty = db.count_measurements(device=spec.name) == 0
    if old.provenance == "catalog" and empty:
        fill = {k: getattr(spec, k) for k, v in unset.items() if getattr(old, k) == v}
    diff = _device_diff(old, spec, skip=list(fill))
    if diff and old.provenance == "measured" and old.source == spec.source and empty:
        return _Plan(old, fill, [], True)  # nothing was measured under the old settings
    return _Plan(old, fill, diff, False)


def _check_device(db: HardwareDB, cfg: ResolvedConfig, name: str, source: str) -> _Declared:
    """Register the device or check its stored configuration.

    A device that this measurement source (``nas measure``) registered itself but that holds
    no measurement (a run killed before its first group was stored) is declared again with
    this run's settings: nothing was measured under the old ones. A device registered any
    other way (``HardwareDB.upsert_device``, ``POST /v1/devices``: their provenance is
    "measured" too) is the user's, and other settings are refused.

    Returns:
        What was done, for :func:`_undeclare` to undo when the run fails.
    """
    hardware = cpu_model() if cfg.device_type == "cpu" else ""
    spec = cfg.device_spec(name, hardware=hardware, source=source)
    plan = _device_plan(db, spec)
    if plan.old is None:
        db.upsert_device(spec)
        return _Declared(created=True)
    if plan.conflict:
        how = "store this configuration under another device name"
        if all(v.endswith(("=None", "='unknown'")) for v in plan.conflict):
            how = (
                "settings its rows did not record, so rows measured here could not be told "
                "apart from them; measure with the tool that measured its rows and import them "
                f"(`nas hwdb import csv`), or {how}"
            )
        raise NasError(f"device {name!r} already exists with {', '.join(plan.conflict)}; {how}")
    _check_same_cpu(db, plan.old, hardware, cfg)
    if plan.redeclare:
        db.upsert_device(spec)
        return _Declared(previous=_spec_of(plan.old))
    if plan.fill:
        from dataclasses import replace

        db.upsert_device(replace(_spec_of(plan.old), **plan.fill))
        return _Declared(previous=_spec_of(plan.old))  # a run that stores nothing reopens them
    return _Declared()


def recorded_cpu(db: HardwareDB, device: str) -> str | None:
    """The CPU model the newest row of ``device`` was timed on (its environment's
    ``cpu_model``, as :func:`environment` writes it on a CPU run); None when it records none
    (an import, a GPU run) or the device has no rows."""
    newest = db.measurements(device=device, limit=1)
    env = newest[0]["environment"] or {} if newest else {}
    cpu = env.get("cpu_model") if env.get("device_type") == "cpu" else None
    return str(cpu) if cpu else None


def _check_same_cpu(db: HardwareDB, old: Device, hardware: str, cfg: ResolvedConfig) -> None:
    """Refuse to add this CPU's timings to a device whose rows a run timed on another CPU
    (:func:`recorded_cpu`): the column would mix two machines."""
    if cfg.device_type != "cpu":
        return
    seen = recorded_cpu(db, old.name)
    if seen and seen != hardware:
        raise NasError(
            f"device {old.name!r} was measured on {seen!r}, but this machine's CPU is "
            f"{hardware!r}; measure it on a machine with that CPU, or store this machine's "
            "timings under another device name"
        )


def _undeclare(db: HardwareDB, cfg: ResolvedConfig, name: str, declared: _Declared) -> None:
    """Undo :func:`_check_device` after a run that may have stored nothing: delete a device
    it inserted, or restore the settings of one it declared again, while the device still
    has no measurement and no other run has declared it again since with its own settings.
    A device that existed before the run is never deleted."""
    if _device_changed(db, cfg, name):
        return
    if declared.created:
        db.delete_unmeasured_device(name)
    elif declared.previous is not None and db.count_measurements(device=name) == 0:
        db.upsert_device(declared.previous)


def _stored_anchor(
    db: HardwareDB, space: str, device: str, cfg: ResolvedConfig, arch: str
) -> dict[str, float] | None:
    """The anchor's stored medians under this protocol (all metrics), or ``None``."""
    frame = db.measurement_frame(space=space, device=device)
    if frame.empty:
        return None
    rows = frame[(frame["arch"] == arch) & (frame["protocol"] == cfg.protocol)]
    found = {str(r.metric): float(r.median) for r in rows.itertuples()}
    return found if set(cfg.metrics) <= set(found) else None


def measure_architectures(
    db: HardwareDB,
    *,
    space: str | SearchSpace[Any],
    device: str,
    archs: Sequence[str],
    config: MeasureConfig | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    source: str = "nas measure",
    on_commit: CommitCallback | None = None,
) -> MeasureReport:
    """Measure ``archs`` of ``space`` on this machine and store them under ``device``.

    Architectures are timed in groups of ``config.chunk_size`` under the interleaved protocol;
    each group is committed in one transaction as soon as it finishes, so an interruption loses
    at most the group in flight. Architectures already stored for this device and protocol (all
    metrics) are skipped unless ``force`` (then their rows are replaced). With the protocol's
    drift anchor (the default), the anchor architecture is timed in every group but stored only
    when it is among ``archs`` (it is in ``--reference-set``); a run that finds it stored under
    this protocol takes that row as its reference, so resumed series keep one level. Otherwise
    the level is the anchor's median over the run's groups: when the last group is committed,
    the run's rows are rescaled to it in one transaction (see :meth:`DriftAnchor.relevel`).

    Args:
        db: The hardware database.
        space: Registered space name (or a space instance, e.g. a test variant).
        device: Device name (created on first use; must match its stored configuration).
        archs: Architecture strings or reference names of ``space``.
        config: Measurement configuration (defaults: torch, fp32, batch 1).
        force: Re-measure and replace what is already stored.
        progress: Progress callback.
        source: Stored as the rows' and the device's ``source``.
        on_commit: Called with the archs of each group as it is committed, those whose rows
            this run stored (inserted, or replaced with ``force``): what an interrupted run
            kept, which its report (never returned) would have said.

    Returns:
        A :class:`MeasureReport`.
    """
    sp = _space(space)
    cfg = (config or MeasureConfig()).resolve(sp)
    texts = _unique(sp.to_string(sp.resolve(a)) for a in archs)
    declared = _check_device(db, cfg, device, source)
    try:
        return _measure(
            db, sp, cfg, device, texts, force=force, progress=progress, source=source,
            on_commit=on_commit,
        )  # fmt: skip
    except BaseException:
        # A run that stored nothing leaves no empty device behind, nor one it re-declared.
        _undeclare(db, cfg, device, declared)
        raise


def _device_changed(db: HardwareDB, cfg: ResolvedConfig, name: str) -> str | None:
    """How the stored device ``name`` now differs from this run's settings (None: it does
    not, or it is gone)."""
    from hwdb import NotFoundError

    try:
        old = db.get_device(name)
    except NotFoundError:
        return None
    diff = _device_diff(old, cfg.device_spec(name, hardware=""))
    return ", ".join(diff) or None


def _check_still_declared(db: HardwareDB, cfg: ResolvedConfig, name: str) -> None:
    """Refuse to store rows under a device another run has declared again with other
    settings while this one was measuring (see :func:`_check_device`)."""
    changed = _device_changed(db, cfg, name)
    if changed:
        raise NasError(
            f"device {name!r} was declared again by another run ({changed}) while this one "
            "was measuring; nothing more is stored under it"
        )


def _measure(
    db: HardwareDB,
    sp: SearchSpace[Any],
    cfg: ResolvedConfig,
    device: str,
    texts: list[str],
    *,
    force: bool,
    progress: ProgressCallback | None,
    source: str,
    on_commit: CommitCallback | None = None,
) -> MeasureReport:
    """The body of :func:`measure_architectures` once the device is registered."""
    _check_workload(db, cfg, device, sp.name)
    report = MeasureReport(sp.name, device, cfg.protocol, cfg.workload.to_dict())
    if not force:
        done = set(texts)
        for metric in cfg.metrics:
            done &= db.measured_archs(
                space=sp.name, device=device, metric=metric, protocol=cfg.protocol
            )
        report.skipped = [t for t in texts if t in done]
        texts = [t for t in texts if t not in done]
    anchor = _anchor(sp, cfg)
    plan = _plan(sp, texts, cfg, anchor)
    report.too_large = plan.too_large
    if anchor is not None and texts and not force:
        anchor.reference = _stored_anchor(db, sp.name, device, cfg, anchor.arch)
    total = _steps(plan.groups, cfg, anchor) + _priming_steps(cfg, len(plan.prime))
    completed = 0

    def tick(what: str) -> None:
        nonlocal completed
        completed += 1
        if progress is not None:
            progress(completed, total, what)

    rng = np.random.default_rng(cfg.base.seed)
    run_id = uuid.uuid4().hex[:16]
    series: _Series = []
    with torch_threads(cfg.threads):
        _prime(sp, cfg, plan.prime, tick)
        for group in plan.groups:
            env = environment(
                threads=cfg.threads,
                runtime=cfg.base.runtime,
                device_type=cfg.device_type,
                retain_heap=cfg.base.protocol.retain_heap,
            )
            env["run_id"] = run_id
            stats = _time_group(sp, group, cfg, rng=rng, tick=tick, anchor=anchor)
            rows = _rows(sp.name, device, group, stats, cfg, env, source)
            _check_still_declared(db, cfg, device)
            written = db.add_measurements(rows, replace=force)
            report.rows_written += written
            entry: _Entry = (group, stats, env)
            if written < len(rows):  # another run stored some of these archs first
                owned = _owned_archs(db, sp.name, device, cfg, run_id, group)
                entry, lost = _split(entry, owned)
                report.stored_by_another_run += lost
            series.append(entry)
            if on_commit is not None:
                on_commit(list(entry[0]))
    if anchor is not None and series:
        series = _relevel(db, anchor, series, report, cfg, source, run_id)
    for archs, per_arch, _ in series:
        for arch, per_metric in zip(archs, per_arch, strict=True):
            report.measured[arch] = {m: s.to_dict() for m, s in per_metric.items()}
    return report


def _plan(
    sp: SearchSpace[Any], texts: Sequence[str], cfg: ResolvedConfig, anchor: DriftAnchor | None
) -> MemoryPlan:
    """The run's groups and priming archs (:func:`plan_memory`); warns once about archs
    skipped as too large for the free memory, and refuses a run of which none fits."""
    from nas.search._memory import MEMORY_SHARE, available_memory_bytes

    plan = plan_memory(
        sp, texts, cfg, anchor=anchor.arch if anchor is not None else None,
        free_bytes=available_memory_bytes, share=MEMORY_SHARE,
    )  # fmt: skip
    message = plan.warning(sp.name)
    if message and not plan.groups:
        raise NasError(f"nothing to measure: {message.removeprefix('skipping ')}")
    if message:
        warnings.warn(message, stacklevel=4)
    return plan


def _owned_archs(
    db: HardwareDB,
    space: str,
    device: str,
    cfg: ResolvedConfig,
    run_id: str,
    archs: Sequence[str],
) -> set[str]:
    """Those of ``archs`` whose stored rows under this protocol (every metric) carry
    ``run_id`` (only the rows of ``archs`` are read)."""
    found = db.run_metrics(
        space=space, device=device, protocol=cfg.protocol, run_id=run_id, archs=archs
    )
    return {a for a, metrics in found.items() if set(cfg.metrics) <= metrics}


def _split(entry: _Entry, owned: set[str]) -> tuple[_Entry, list[str]]:
    """``entry`` less the archs not in ``owned``, and those archs."""
    group, stats, env = entry
    keep = [i for i, arch in enumerate(group) if arch in owned]
    lost = [arch for arch in group if arch not in owned]
    return ([group[i] for i in keep], [stats[i] for i in keep], env), lost


def _relevel(
    db: HardwareDB,
    anchor: DriftAnchor,
    series: _Series,
    report: MeasureReport,
    cfg: ResolvedConfig,
    source: str,
    run_id: str,
) -> _Series:
    """Re-level a finished run to its median group (:meth:`DriftAnchor.relevel`) and rewrite
    its rows in one transaction; records the level in ``report.anchor_level``.

    Only rows this run stored (its ``run_id``) are rewritten: another run measuring the same
    device may have stored or replaced some of these archs meanwhile, and its rows stay. An
    arch with any row replaced that way is reported as stored by another run, though this
    run's rows of its other metrics, if any, are still re-levelled.
    """
    if not anchor.own_reference:
        report.anchor_level = "stored anchor row"
    else:
        report.anchor_level = "median group" if len(series) > 1 else "first group"
    factors = anchor.relevel()
    if not factors:  # one group, or the first group is the median one
        return series
    series = [(group, _corrected(stats, factors), env) for group, stats, env in series]
    rows = [
        row
        for group, stats, env in series
        for row in _rows(report.space, report.device, group, stats, cfg, env, source)
    ]
    # One transaction that rewrites only rows still carrying this run's id: a --force run
    # may have replaced some since they were stored, and its rows stay.
    skipped = db.replace_run_measurements(rows, run_id=run_id)
    lost = {rows[i].arch for i in skipped}
    kept: _Series = []
    for entry in series:
        mine, gone = _split(entry, {a for a in entry[0] if a not in lost})
        kept.append(mine)
        report.stored_by_another_run += gone
    return kept


def _corrected(
    stats: list[dict[str, SampleStats]], factors: dict[str, float]
) -> list[dict[str, SampleStats]]:
    """``stats`` with each metric divided by its factor (metrics without one unchanged)."""
    return [
        {m: s.corrected(factors[m]) if m in factors else s for m, s in per.items()} for per in stats
    ]


def measure_pass(
    space: SearchSpace[Any],
    archs: Sequence[str],
    cfg: ResolvedConfig,
    *,
    seed: int | None,
    tick: Callable[[str], None],
    anchor: DriftAnchor | None = None,
    groups: Sequence[Sequence[str]] | None = None,
) -> list[dict[str, SampleStats]]:
    """One full pass over ``archs`` without touching a database (used by :func:`retest`).

    Args:
        space: The search space.
        archs: Canonical architecture strings.
        cfg: The resolved configuration.
        seed: Seed of the per-round order.
        tick: Progress callback, one call per step.
        anchor: Drift anchor to continue a series across calls (its reference is kept, and
            the first call that sets it re-levels its pass to its median group, see
            :meth:`DriftAnchor.relevel`); a new one per call when ``None``. Ignored when the
            protocol has no anchor, so that the rows' protocol string always says whether
            they were corrected.
        groups: ``archs`` split into the groups to time together, as planned once for
            several passes (:func:`retest`): a pass planned after others have run plans
            with the memory they left in the heap, and would group differently. ``None``:
            planned here (:func:`plan_memory`).

    Returns:
        Per arch of ``archs``, in order, metric -> drift-corrected statistics.
    """
    rng = np.random.default_rng(seed)
    if not cfg.base.protocol.anchor:
        anchor = None
    elif anchor is None:
        anchor = _anchor(space, cfg)
    if groups is None:
        plan = _plan(space, archs, cfg, anchor)
        if plan.too_large:  # retest filters them first; a direct call must too
            raise NasError(plan.warning(space.name) or "architectures too large for free memory")
        groups = plan.groups
    elif sorted(a for g in groups for a in g) != sorted(archs):
        raise ValueError("`groups` must hold each of `archs` exactly once.")
    by_arch: dict[str, dict[str, SampleStats]] = {}
    with torch_threads(cfg.threads):
        for group in groups:
            stats = _time_group(space, group, cfg, rng=rng, tick=tick, anchor=anchor)
            by_arch.update(zip(group, stats, strict=True))
    out = [by_arch[a] for a in archs]
    factors = anchor.relevel() if anchor is not None else {}
    return _corrected(out, factors) if factors else out


def retest(
    *,
    space: str | SearchSpace[Any],
    archs: Sequence[str],
    config: MeasureConfig | None = None,
    progress: ProgressCallback | None = None,
) -> RetestResult:
    """Measure ``archs`` twice in independent passes and compare the medians.

    Each pass rebuilds every model. Nothing is written to a database.

    Args:
        space: Registered space name (or a space instance).
        archs: At least 2 architecture strings or reference names.
        config: Measurement configuration.
        progress: Progress callback over both passes.

    Returns:
        Spearman correlation and MAPE (percent) of pass 2 against pass 1 on the primary
        metric (``latency_ms``; ``e2e_ms`` for language models).
    """
    sp = _space(space)
    cfg = (config or MeasureConfig()).resolve(sp)
    texts = _unique(sp.to_string(sp.resolve(a)) for a in archs)
    if len(texts) < 2:
        raise ValueError(
            f"`archs` must contain at least 2 distinct architectures, got {len(texts)}."
        )
    plan = _plan(sp, texts, cfg, _anchor(sp, cfg))
    texts = [t for t in texts if t not in set(plan.too_large)]
    if len(texts) < 2:
        raise NasError(f"fewer than 2 architectures fit in memory: {plan.warning(sp.name)}")
    total = 2 * _steps(plan.groups, cfg, _anchor(sp, cfg)) + _priming_steps(cfg, len(plan.prime))
    completed = 0

    def tick(what: str) -> None:
        nonlocal completed
        completed += 1
        if progress is not None:
            progress(completed, total, what)

    seed = cfg.base.seed
    with torch_threads(cfg.threads):
        _prime(sp, cfg, plan.prime, tick)
    metric = cfg.primary_metric
    passes, moved = [], []
    for k in range(2):
        anchor = _anchor(sp, cfg)
        pass_seed = None if seed is None else seed + k
        stats = measure_pass(
            sp, texts, cfg, seed=pass_seed, tick=tick, anchor=anchor, groups=plan.groups
        )
        passes.append([s[metric].median for s in stats])
        moved.append(_moved(anchor, metric))
    a, b = passes
    return RetestResult(spearman(a, b), mape(a, b), len(texts), metric, a, b, (moved[0], moved[1]))


def _moved(anchor: DriftAnchor | None, metric: str) -> float:
    """The factor :meth:`DriftAnchor.relevel` divided a finished pass by (1.0: none)."""
    if anchor is None or anchor.reference is None or not anchor.medians.get(metric):
        return 1.0
    return anchor.medians[metric][0] / anchor.reference[metric]
