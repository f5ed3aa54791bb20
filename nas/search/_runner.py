"""The hardware-aware NSGA-II search loop (batched ask/tell over Optuna).

Each generation is asked from Optuna's ``NSGAIISampler`` (Deb et al., "A fast and elitist
multiobjective genetic algorithm: NSGA-II", IEEE TEVC 2002) as one batch of ``population``
trials. Every parameter of the space is suggested in every trial (``SearchSpace.sample``), the
batch's new architectures are scored with one accuracy call and one latency-model call per
device, and all trials are told together; the storage is then checkpointed once. With
``local_search > 0`` part of each generation after the first is enqueued as unexplored
single-parameter neighbours of the current front (:mod:`nas.search._local`), a genetic local
search; NSGA-II breeds the rest and keeps selecting the population from all of them.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from nas.search._errors import SearchError, StudyMismatchError
from nas.search._latency import MeasuredFirstModel, latency_model_name
from nas.search._local import LOCAL_SEARCH_DEFAULT, neighbour_params
from nas.search._novel import novel_params
from nas.search._pareto import pareto_mask, pid_alive
from nas.search._storage import StudyStorage, open_storage
from nas.search._study import UNCHOSEN_LATENCY, join_number, mismatch_message, mismatches
from nas.search._types import (
    AccuracyObjective,
    LatencyModel,
    SearchResult,
    SearchWarning,
    latency_upper_bound,
)

if TYPE_CHECKING:
    from search_spaces import SearchSpace

__all__ = ["collect_study", "run_search"]

ProgressFn = Callable[[int, int], None]
_FINISHED = (TrialState.COMPLETE, TrialState.FAIL)
_MAX_REPLACEMENTS = 8  # asks per child before a revisit is kept (other workers may race us)
_STALE_AFTER_S = 60.0  # a shared study's RUNNING trial older than this belongs to a dead worker
_POLL_S = 0.5  # wait between looks at a shared study whose last trials other workers hold
_WORKER_ATTR = "worker"


@dataclass(frozen=True)
class _Evaluation:
    accuracy: float
    mean: dict[str, float]
    std: dict[str, float]
    measured_on: tuple[str, ...] = ()  # devices whose latency is a measurement, not a prediction

    @property
    def ok(self) -> bool:
        return math.isfinite(self.accuracy)


@dataclass(frozen=True)
class _Config:
    space: SearchSpace[Any]
    devices: list[str]
    accuracy: AccuracyObjective
    models: dict[str, LatencyModel]
    trials: int
    population: int
    budget: dict[str, float]
    z: float
    unique: bool = True
    prune: bool = False
    local: float = 0.0
    worker: str | None = None  # "host:pid" tag of this worker's trials on a shared storage


def _check_budget(
    budget_ms: float | Mapping[str, float] | None, devices: list[str]
) -> dict[str, float]:
    if budget_ms is None:
        return {}
    raw = dict(budget_ms) if isinstance(budget_ms, Mapping) else dict.fromkeys(devices, budget_ms)
    unknown = sorted(set(raw) - set(devices))
    if unknown:
        raise ValueError(f"`budget_ms` names devices that are not searched: {', '.join(unknown)}.")
    for dev, value in raw.items():
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"`budget_ms` for {dev!r} must be a positive number, got {value!r}.")
    return {d: float(v) for d, v in raw.items()}


def _check_args(
    space: str | SearchSpace[Any],
    devices: Sequence[str],
    accuracy: AccuracyObjective,
    latency_models: Mapping[str, LatencyModel] | Sequence[LatencyModel],
    trials: int,
    population: int,
    budget_ms: float | Mapping[str, float] | None,
    budget_quantile_z: float,
) -> _Config:
    from search_spaces import get_space

    space_obj = get_space(space) if isinstance(space, str) else space
    if isinstance(devices, str):
        raise ValueError(
            f"`devices` must be a list of device names, not one string: [{devices!r}]."
        )
    devs = list(devices)
    if not devs or not all(isinstance(d, str) and d for d in devs):
        raise ValueError("`devices` must be a non-empty list of device names.")
    if len(set(devs)) != len(devs):
        raise ValueError("`devices` must not repeat a device.")
    if isinstance(latency_models, Mapping):
        missing = [d for d in devs if d not in latency_models]
        if missing:
            raise ValueError(f"`latency_models` has no model for: {', '.join(missing)}.")
        models = {d: latency_models[d] for d in devs}
    else:
        if len(latency_models) != len(devs):
            raise ValueError("`latency_models` must have one model per device.")
        models = dict(zip(devs, latency_models, strict=True))
    for dev, model in models.items():
        if not callable(getattr(model, "predict", None)):
            raise ValueError(f"`latency_models[{dev!r}]` has no predict(archs) method.")
    if not callable(getattr(accuracy, "evaluate", None)) or not getattr(accuracy, "name", ""):
        raise ValueError("`accuracy` must have a name and an evaluate(archs) method.")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"`trials` must be an integer >= 1, got {trials!r}.")
    if isinstance(population, bool) or not isinstance(population, int) or population < 2:
        raise ValueError(f"`population` must be an integer >= 2, got {population!r}.")
    if not math.isfinite(budget_quantile_z) or budget_quantile_z < 0:
        raise ValueError("`budget_quantile_z` must be a finite number >= 0.")
    budget = _check_budget(budget_ms, devs)
    return _Config(space_obj, devs, accuracy, models, trials, population, budget, budget_quantile_z)


def _study_attrs(cfg: _Config) -> dict[str, Any]:
    return {
        "nas_space": cfg.space.name,
        "nas_devices": cfg.devices,
        "nas_accuracy": cfg.accuracy.name,
        "nas_budget_ms": cfg.budget,
        "nas_budget_quantile_z": cfg.z,
        # search_spaces.restrict_space; None (also absent: studies before it) is the full grid
        "nas_choices": getattr(cfg.space, "restricted_choices", None),
        # what predicts each device (None: a model of unknown kind, never compared)
        "nas_latency": {d: latency_model_name(cfg.models[d]) for d in cfg.devices},
        "nas_units": _units(cfg),
        # NSGA-II selects each generation's parents from the last `population` trials, and
        # history.json groups trials into generations of it: one study keeps one
        "nas_population": cfg.population,
    }


def _units(cfg: _Config) -> dict[str, Any] | None:
    """What this release's latencies and budget bound mean where earlier releases differ
    (``nas.search._study._same_units`` compares them): the measured factor of a device priced
    by its datasheet alone, and the log-normal budget quantile."""
    from predictors.zeroshot import DATASHEET_SCALE

    units: dict[str, Any] = {}
    if cfg.budget and cfg.z > 0:
        units["budget_bound"] = "lognormal"
    for d in cfg.devices:
        model = cfg.models[d]
        inner = model.model if isinstance(model, MeasuredFirstModel) else model
        roofline = latency_model_name(model) == "datasheet-roofline"
        if roofline and not getattr(inner, "n_measurements", 0):
            units["datasheet_scale"] = DATASHEET_SCALE
    return units or None


_READY_ATTR = "nas_ready"  # set once a study's settings are all written
#: The devices whose trials the results re-predict (:func:`_repriced`).
_REPRICED_ATTR = "nas_repriced"
_SETTLE_S = 30.0  # how long a worker waits for another to finish writing a new study's settings


def _settled_study(name: str, storage: Any) -> optuna.Study:
    """Load study ``name``; one that another worker has just created, without trials yet and
    without :data:`_READY_ATTR`, is re-read until its settings are all written (they are
    written one attribute at a time, so a worker starting beside its creator could otherwise
    compare half of them and refuse the study). Studies from before the marker have trials or
    are waited for at most :data:`_SETTLE_S`."""
    deadline = time.monotonic() + _SETTLE_S
    while True:
        study = optuna.load_study(study_name=name, storage=storage)
        settled = _READY_ATTR in study.user_attrs or study.get_trials(deepcopy=False)
        if settled or time.monotonic() > deadline:
            return study
        time.sleep(0.2)


def _create_new_study(
    storage: optuna.storages.BaseStorage | None, name: str, directions: list[StudyDirection]
) -> optuna.Study | None:
    """A new study called ``name``, or ``None`` when ``storage`` holds one already, also one
    that another worker created a moment ago (only the worker that created it writes its
    settings: two writing them at once collide on a shared database).

    Whether it exists is one lookup by name: listing study summaries reads every trial of
    every study, seconds on a shared database.
    """
    if storage is not None:
        try:
            storage.get_study_id_from_name(name)
        except KeyError:
            pass
        else:
            return None
    try:
        return optuna.create_study(storage=storage, study_name=name, directions=directions)
    except optuna.exceptions.DuplicatedStudyError:
        return None


def _open_study(
    cfg: _Config, store: StudyStorage, name: str, seed: int | None
) -> tuple[optuna.Study, int, list[str]]:
    """Create or resume the study, refusing one created with other settings.

    The sampler is seeded with ``seed``, the number of trials finished when this call
    started (a resumed search does not replay its first generations) and, on a shared RDB
    storage, the number of this worker's join marker (:func:`~nas.search._study.join_number`):
    cooperating workers explore differently, while one worker replaying the same commands
    on a fresh study gets the same seeds (marker 0 on a new study, as with a journal).

    Returns:
        The study, the join number (0 without a shared storage) and the devices whose
        stored predictions the results re-predict (:func:`_repriced`).
    """
    directions = [StudyDirection.MAXIMIZE] + [StudyDirection.MINIMIZE] * len(cfg.devices)
    created = _create_new_study(store.storage, name, directions)
    n_done = 0
    repriced: list[str] = []
    if created is None:
        assert store.storage is not None  # noqa: S101 - only a storage holds a study
        study = _settled_study(name, store.storage)
        want = _study_attrs(cfg)
        diff = mismatches(study.user_attrs, want)
        if diff or len(study.directions) != len(directions):
            raise StudyMismatchError(
                mismatch_message(name, store.description, diff, study.user_attrs, want)
            )
        n_done = len(study.get_trials(deepcopy=False, states=_FINISHED))
        repriced = _repriced(study.user_attrs, want["nas_latency"])
        if repriced != study.user_attrs.get(_REPRICED_ATTR, []):
            study.set_user_attr(_REPRICED_ATTR, repriced)
        if study.user_attrs.get("nas_latency") != want["nas_latency"]:
            # a study from before it was stored, or a device searched zero-shot that has been
            # measured since: from now on its adapted predictor is what a change is checked
            # against
            study.set_user_attr("nas_latency", want["nas_latency"])
    else:
        study = created
        for key, value in _study_attrs(cfg).items():
            study.set_user_attr(key, value)
        names = [f"accuracy:{cfg.accuracy.name}"] + [f"latency_ms:{d}" for d in cfg.devices]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
        study.set_user_attr(_READY_ATTR, True)  # written last: the settings are complete
    if "nas_population" not in study.user_attrs:  # a study from before it was stored
        study.set_user_attr("nas_population", cfg.population)
    join = join_number(study, cfg.worker) if store.is_rdb and cfg.worker else 0
    sampler_seed = None
    if seed is not None:
        sampler_seed = (seed + 1_000_003 * n_done + join) % 2**32
    study.sampler = optuna.samplers.NSGAIISampler(population_size=cfg.population, seed=sampler_seed)
    return study, join, repriced


def _repriced(attrs: Mapping[str, Any], now: Mapping[str, str | None]) -> list[str]:
    """Devices whose trials (some of them) were priced by their datasheet (zero-shot) and
    which a predictor adapted to their measurements prices now: those stored predictions are
    another model's, so the results re-predict every trial of them
    (:func:`~nas.search._results.collect_result`). Kept in the study (:data:`_REPRICED_ATTR`)
    so that every later run and worker knows, as the stored ``nas_latency`` then names the
    adapted model."""
    stored = attrs.get("nas_latency")
    was_zero_shot = set(attrs.get(_REPRICED_ATTR, []))
    if isinstance(stored, Mapping):
        was_zero_shot |= {d for d in now if stored.get(d) in UNCHOSEN_LATENCY}
    return [d for d in now if d in was_zero_shot and now[d] not in (None, *UNCHOSEN_LATENCY)]


def _absorb(
    trials: Sequence[optuna.trial.FrozenTrial],
    devices: list[str],
    cache: dict[str, _Evaluation],
    params_of: dict[str, dict[str, Any]],
    absorbed: set[int],
) -> None:
    """Add the finished ``trials`` not yet in ``absorbed`` (trial numbers) to ``cache`` and
    ``params_of``: on a shared study, what other workers scored since the last look, so that
    duplicate elimination holds across workers."""
    for t in trials:
        if t.number in absorbed or t.state not in _FINISHED:
            continue
        absorbed.add(t.number)
        arch = t.user_attrs.get("arch")
        if not isinstance(arch, str):
            continue
        params_of.setdefault(arch, dict(t.params))
        if t.state == TrialState.FAIL or t.values is None:
            cache.setdefault(arch, _Evaluation(math.nan, {}, {}))
            continue
        std = t.user_attrs.get("latency_std_ms", {})
        mean = dict(zip(devices, map(float, t.values[1:]), strict=True))
        cache[arch] = _Evaluation(
            float(t.values[0]), mean, {d: float(std.get(d, 0.0)) for d in devices},
            tuple(t.user_attrs.get("measured_on", ())),
        )  # fmt: skip


def _predict(model: LatencyModel, archs: list[str], device: str) -> tuple[np.ndarray, np.ndarray]:
    pred = model.predict(archs)
    if isinstance(pred, tuple) and len(pred) == 2:  # a predictors.LatencyPredictor: (mean, std)
        mean = np.asarray(pred[0], dtype=float).reshape(-1)
        std = np.asarray(pred[1], dtype=float).reshape(-1)
    elif hasattr(pred, "mean_ms"):
        mean = np.asarray(pred.mean_ms, dtype=float).reshape(-1)
        std = np.asarray(getattr(pred, "std_ms", np.zeros_like(mean)), dtype=float).reshape(-1)
    else:
        raise SearchError(
            f"latency model of {device!r} returned a {type(pred).__name__}; predict(archs) "
            "must return an object with mean_ms (and std_ms) or a (mean_ms, std_ms) tuple"
        )
    if mean.shape != (len(archs),) or std.shape != (len(archs),):
        raise SearchError(
            f"latency model of {device!r} returned {mean.shape[0]} values for {len(archs)} archs"
        )
    if not (np.all(np.isfinite(mean)) and np.all(mean > 0)):
        raise SearchError(
            f"latency model of {device!r} returned non-finite or non-positive latencies"
        )
    return mean, np.nan_to_num(std, nan=0.0).clip(min=0.0)


def _evaluate(cfg: _Config, archs: list[str]) -> dict[str, _Evaluation]:
    if not archs:
        return {}
    acc = np.asarray(cfg.accuracy.evaluate(archs), dtype=float).reshape(-1)
    if acc.shape != (len(archs),):
        raise SearchError(
            f"accuracy objective {cfg.accuracy.name!r} returned {acc.size} values "
            f"for {len(archs)} archs"
        )
    ok = [i for i in range(len(archs)) if math.isfinite(acc[i])]
    out = {a: _Evaluation(math.nan, {}, {}) for a in archs}
    lat = {d: _predict(cfg.models[d], [archs[i] for i in ok], d) for d in cfg.devices} if ok else {}
    known = {d: getattr(cfg.models[d], "measured", None) or {} for d in cfg.devices}
    for j, i in enumerate(ok):
        mean = {d: float(lat[d][0][j]) for d in cfg.devices}
        std = {d: float(lat[d][1][j]) for d in cfg.devices}
        measured = tuple(d for d in cfg.devices if archs[i] in known[d])
        out[archs[i]] = _Evaluation(float(acc[i]), mean, std, measured)
    return out


def _violation(cfg: _Config, ev: _Evaluation, device: str, budget: float) -> float:
    """Budget constraint of one device, ``upper bound - budget`` (feasible when <= 0; the
    bound is :func:`~nas.search._types.latency_upper_bound`)."""
    return latency_upper_bound(ev.mean[device], ev.std[device], cfg.z) - budget


def _tell(
    cfg: _Config, study: optuna.Study, trial: optuna.Trial, arch: str, ev: _Evaluation
) -> None:
    trial.set_user_attr("arch", arch)
    if not ev.ok:
        study.tell(trial, state=TrialState.FAIL)
        return
    trial.set_user_attr("latency_std_ms", ev.std)
    if ev.measured_on:
        trial.set_user_attr("measured_on", list(ev.measured_on))
    for dev, budget in cfg.budget.items():
        trial.set_constraint(dev, _violation(cfg, ev, dev, budget))
    study.tell(trial, [ev.accuracy] + [ev.mean[d] for d in cfg.devices])


def _swap(
    cfg: _Config, study: optuna.Study, trial: optuna.Trial, arch: str, params: dict[str, Any],
    tag: str, asked: list[optuna.Trial],
) -> tuple[optuna.Trial, str]:  # fmt: skip
    """Ask ``params`` as a new trial in place of ``trial``, then tell ``trial`` ``PRUNED``
    (tagged; NSGA-II's populations hold only complete trials).

    In that order, the slot of the study's trial budget stays claimed throughout: told first,
    it looked free for a moment, and another worker of a shared study could claim it before
    the replacement was asked, overshooting ``trials`` by one (seen in CI, 81 of 80). The
    replacement joins ``asked`` at once, so an interruption from here on abandons it too.
    """
    study.enqueue_trial(params)
    replacement = _ask(cfg, study)
    asked.append(replacement)
    trial.set_user_attr("arch", arch)
    trial.set_user_attr(tag, True)
    study.tell(trial, state=TrialState.PRUNED)
    return replacement, cfg.space.to_string(cfg.space.sample(replacement))


def _pause() -> None:
    """Wait before looking at a shared study again."""
    time.sleep(_POLL_S)


def _ask(cfg: _Config, study: optuna.Study) -> optuna.Trial:
    """A new trial, tagged with ``cfg.worker`` on a shared storage (see :func:`_dead_worker`)."""
    trial = study.ask()
    if cfg.worker is not None:
        trial.set_user_attr(_WORKER_ATTR, cfg.worker)
    return trial


def _dead_worker(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` was asked by a process of this host that no longer runs."""
    tag = trial.user_attrs.get(_WORKER_ATTR)
    if not isinstance(tag, str) or ":" not in tag:
        return False
    host, _, pid = tag.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not pid_alive(int(pid))


def _retire_abandoned(study: optuna.Study, shared: bool) -> None:
    """Tell ``PRUNED`` (tagged ``interrupted``, as :func:`_abandon` does) the ``RUNNING``
    trials of a process killed before it could (``kill -9``), so optuna-dashboard does not
    show them running for ever: on a storage only one process writes, every one (this process
    holds it now); on a shared one, those a dead process of this host asked."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    dead = [t for t in running if not shared or _dead_worker(t)]
    _abandon(study, [optuna.Trial(study, t._trial_id) for t in dead])


def _replace_children(
    cfg: _Config,
    study: optuna.Study,
    batch: list[optuna.Trial],
    archs: list[str],
    seen: set[str],
    rng: np.random.Generator,
    asked: list[optuna.Trial],
) -> tuple[list[optuna.Trial], list[str]]:
    """Swap each child for the architecture search should evaluate in its place (each
    replacement is appended to ``asked`` as soon as it is asked).

    With ``cfg.prune``, a child with dead operations (:meth:`SearchSpace.prune_params`) becomes
    the same network without them (tagged ``dead_ops``); with ``cfg.unique``, a child that
    revisits an architecture becomes a novel mutation of it (tagged ``revisit``).
    """
    out_t, out_a = [], []
    for trial, arch in zip(batch, archs, strict=True):
        for _ in range(_MAX_REPLACEMENTS):
            pruned = cfg.space.prune_params(trial.params) if cfg.prune else trial.params
            if pruned != trial.params:
                trial, arch = _swap(cfg, study, trial, arch, pruned, "dead_ops", asked)
                continue
            if not cfg.unique or arch not in seen:
                break
            found = novel_params(cfg.space, trial.params, seen, rng)
            if found is None:  # the space is (nearly) exhausted: keep the revisit
                break
            trial, arch = _swap(cfg, study, trial, arch, found[0], "revisit", asked)
        seen.add(arch)
        out_t.append(trial)
        out_a.append(arch)
    return out_t, out_a


def _front(cfg: _Config, cache: Mapping[str, _Evaluation], archs: Sequence[str]) -> list[str]:
    """The non-dominated ``archs`` (feasible ones first when budgets are set)."""
    ok = [a for a in archs if cache[a].ok]
    if cfg.budget:
        feasible = [
            a for a in ok
            if all(_violation(cfg, cache[a], d, b) <= 0 for d, b in cfg.budget.items())
        ]  # fmt: skip
        ok = feasible or ok
    if not ok:
        return []
    pts = np.array([[-cache[a].accuracy] + [cache[a].mean[d] for d in cfg.devices] for a in ok])
    return [ok[i] for i in np.nonzero(pareto_mask(pts))[0]]


def _enqueue_neighbours(
    cfg: _Config,
    study: optuna.Study,
    k: int,
    cache: Mapping[str, _Evaluation],
    params_of: Mapping[str, dict[str, Any]],
    rng: np.random.Generator,
) -> None:
    """Enqueue ``cfg.local`` of the next ``k`` children as unexplored neighbours of the front
    (:func:`~nas.search._local.neighbour_params`); NSGA-II breeds the rest."""
    n = int(round(cfg.local * k))
    if n < 1:
        return
    front = _front(cfg, cache, [a for a in cache if a in params_of])
    picks = neighbour_params(
        cfg.space, [params_of[a] for a in front], cache, n, rng, prune=cfg.prune
    )
    for params, _ in picks:
        study.enqueue_trial(params, user_attrs={"local_search": True})


@dataclass(frozen=True)
class _Claims:
    """Who holds the trial budget of a shared study.

    ``order`` lists the numbers of the trials that count towards ``trials``: finished ones and
    those other workers are evaluating (``RUNNING``, started within ``stale_s`` and not tagged
    by an exited process of this host; the others belong to a worker that died), in the order
    Optuna numbered them.
    """

    finished: int
    running: int
    order: list[int]

    @classmethod
    def of(
        cls,
        study: optuna.Study,
        stale_s: float | None,
        trials: Sequence[optuna.trial.FrozenTrial] | None = None,
    ) -> _Claims:
        """The claims on ``study`` (from ``trials``, its finished and ``RUNNING`` trials, when
        the caller has just read them); ``stale_s=None`` (a storage only this process
        writes) counts no ``RUNNING`` trial but this worker's own."""
        if trials is None:
            trials = study.get_trials(deepcopy=False, states=(*_FINISHED, TrialState.RUNNING))
        oldest = datetime.now() - timedelta(seconds=stale_s or 0.0)
        fresh = [
            t for t in trials
            if t.state == TrialState.RUNNING and stale_s is not None
            and t.datetime_start is not None and t.datetime_start >= oldest
            and not _dead_worker(t)
        ]  # fmt: skip
        done = [t for t in trials if t.state != TrialState.RUNNING]
        return cls(len(done), len(fresh), sorted(t.number for t in [*done, *fresh]))


def _drop_surplus(
    study: optuna.Study, batch: list[optuna.Trial], trials: int, stale_s: float | None
) -> list[optuna.Trial]:
    """Tell ``PRUNED`` (tagged ``surplus``) the trials of ``batch`` beyond the study's first
    ``trials`` claims: workers that asked at the same moment keep the earliest-numbered."""
    if stale_s is None:
        return batch
    allowed = set(_Claims.of(study, stale_s).order[:trials])
    for trial in batch:
        if trial.number not in allowed:
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.PRUNED)
    return [t for t in batch if t.number in allowed]


def _generation(
    cfg: _Config,
    study: optuna.Study,
    k: int,
    cache: dict[str, _Evaluation],
    params_of: dict[str, dict[str, Any]],
    rng: np.random.Generator,
    stale_s: float | None = None,
    refresh: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Ask, evaluate and tell up to ``k`` trials; ``refresh`` (a shared study) adds to
    ``cache`` what other workers scored meanwhile, once the batch is asked (asking takes
    seconds on an RDB, in which another worker may score the same children).

    Returns:
        How many architectures were evaluated (not in ``cache``) and how many trials told.
    """
    if cache:
        _enqueue_neighbours(cfg, study, k, cache, params_of, rng)
    asked: list[optuna.Trial] = []
    told: set[int] = set()
    try:
        for _ in range(k):
            asked.append(_ask(cfg, study))
        batch = list(_drop_surplus(study, asked, cfg.trials, stale_s))  # asked grows below
        if refresh is not None:
            refresh()
        archs = [cfg.space.to_string(cfg.space.sample(t)) for t in batch]
        if cfg.unique or cfg.prune:
            batch, archs = _replace_children(cfg, study, batch, archs, set(cache), rng, asked)
        new = list(dict.fromkeys(a for a in archs if a not in cache))
        cache.update(_evaluate(cfg, new))
        for trial, arch in zip(batch, archs, strict=True):
            _tell(cfg, study, trial, arch, cache[arch])
            told.add(trial.number)
            params_of.setdefault(arch, dict(trial.params))
    except BaseException:  # Ctrl-C, a cancelled API search, a broken objective
        _abandon(study, [t for t in asked if t.number not in told])
        raise
    return len(new), len(batch)


def _abandon(study: optuna.Study, trials: Sequence[optuna.Trial]) -> None:
    """Tell ``PRUNED`` (tagged ``interrupted``) the trials of a generation that stopped
    before they were told, so they do not stay ``RUNNING`` (e.g. in optuna-dashboard) and
    count towards no budget; a trial already told is left as it is."""
    for trial in trials:
        with contextlib.suppress(Exception):  # finished already: a revisit or surplus
            trial.set_user_attr("interrupted", True)
        with contextlib.suppress(Exception):  # a storage gone with the interruption
            study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)


def _make_progress(
    progress: bool | ProgressFn, total: int
) -> tuple[ProgressFn | None, Callable[[], None]]:
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return None, lambda: None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("search"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("search", total=total)
    bar.start()
    return (lambda done, _total: bar.update(task, completed=done)), bar.stop


def _loop(
    cfg: _Config,
    study: optuna.Study,
    store: StudyStorage,
    cache: dict[str, _Evaluation],
    params_of: dict[str, dict[str, Any]],
    absorbed: set[int],
    rng: np.random.Generator,
    report: ProgressFn | None,
    counts: list[int],
) -> None:
    """Run generations until the study holds ``cfg.trials`` finished trials; ``counts``
    accumulates the trials told and the architectures evaluated."""
    slowest = 0.0
    while True:
        stale_s = max(_STALE_AFTER_S, 3 * slowest) if store.is_rdb else None
        trials = study.get_trials(deepcopy=False, states=(*_FINISHED, TrialState.RUNNING))
        if store.is_rdb:  # what the other workers scored since the last look
            _absorb(trials, cfg.devices, cache, params_of, absorbed)
        claims = _Claims.of(study, stale_s, trials)
        if report is not None:
            report(min(claims.finished, cfg.trials), cfg.trials)
        if claims.finished >= cfg.trials:
            return
        k = min(cfg.population, cfg.trials - claims.finished - claims.running)
        if k < 1:  # other workers are evaluating the rest: wait for their results
            _pause()
            continue
        start = time.perf_counter()
        refresh = (
            (
                lambda: _absorb(
                    study.get_trials(deepcopy=False, states=_FINISHED),
                    cfg.devices,
                    cache,
                    params_of,
                    absorbed,
                )
            )  # fmt: skip
            if store.is_rdb
            else None
        )
        n_new, n_told = _generation(cfg, study, k, cache, params_of, rng, stale_s, refresh)
        slowest = max(slowest, time.perf_counter() - start)
        counts[0] += n_told
        counts[1] += n_new
        store.checkpoint()


def _collect(
    cfg: _Config,
    study: optuna.Study,
    store: StudyStorage,
    counts: list[int],
    elapsed: float,
    out_dir: str | os.PathLike[str] | None,
    repriced: Sequence[str] = (),
) -> SearchResult:
    from nas.search._results import collect_result

    return collect_result(
        study,
        cfg.space,
        cfg.devices,
        cfg.accuracy.name,
        cfg.budget,
        budget_quantile_z=cfg.z,
        measured={d: getattr(cfg.models[d], "measured", None) or {} for d in cfg.devices},
        repredict={d: functools.partial(_predict, cfg.models[d], device=d) for d in repriced},
        confidence=not any(map(_zero_shot, cfg.models.values())),
        population=cfg.population,
        storage=store.description,
        n_new=counts[0],
        n_evaluated=counts[1],
        elapsed_s=elapsed,
        out_dir=out_dir,
    )


def _zero_shot(model: LatencyModel) -> bool:
    """Whether ``model`` prices from a datasheet (``source`` ``zero-shot ...``): its spread is
    mostly a scale shared by all architectures, not a per-architecture error."""
    return str(getattr(model, "source", "")).startswith("zero-shot")


def run_search(
    *,
    space: str | SearchSpace[Any],
    devices: Sequence[str],
    accuracy: AccuracyObjective,
    latency_models: Mapping[str, LatencyModel] | Sequence[LatencyModel],
    trials: int = 1000,
    population: int = 50,
    budget_ms: float | Mapping[str, float] | None = None,
    budget_quantile_z: float = 0.0,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool | ProgressFn = False,
    eliminate_duplicates: bool = True,
    prune_dead_ops: bool = False,
    local_search: float = LOCAL_SEARCH_DEFAULT,
) -> SearchResult:
    """Search Pareto-optimal architectures: maximise accuracy, minimise latency per device.

    The study is resumed when ``storage`` already holds ``study_name`` (after a crash, rerun
    the same call); ``trials`` is the total wanted in the study, not per call. Several
    processes sharing one RDB storage and study cooperate: each asks only for trials that
    nobody holds (workers asking at the same moment keep the earliest-numbered, the rest are
    told ``PRUNED`` with the tag ``surplus``), and a worker with nothing left to ask waits for
    the others' last trials, so the study ends with exactly ``trials`` and every worker's
    result holds all of them. A ``RUNNING`` trial is taken for a dead worker's and no longer
    counted when it is older than 60 s (or than three of the worker's slowest generations),
    or at once when its ``worker`` tag names a process of this host that has exited.

    Args:
        space: Search-space name or object (e.g. :func:`search_spaces.restrict_space` of one,
            to search a subset of its choices).
        devices: Device names, one latency objective each.
        accuracy: The accuracy objective (see :func:`nas.search.make_accuracy_objective`).
        latency_models: Per device, an object whose ``predict(archs)`` returns ``mean_ms`` and
            ``std_ms`` (e.g. ``predictors.get_adapted_predictor(...)``) or a ``(mean_ms,
            std_ms)`` tuple (an adapted ``predictors.LatencyPredictor``); a mapping by
            device or a sequence in ``devices`` order.
        trials: Total finished trials wanted in the study.
        population: NSGA-II population size (= trials asked per batch).
        budget_ms: Latency budget (ms) for every device, or per device; a constraint
            ``bound - budget <= 0``.
        budget_quantile_z: 0 bounds the predicted latency; ``z > 0`` its upper quantile ``z``
            standard deviations out, of the log-normal the predictors report
            (:func:`nas.search.latency_upper_bound`; 1.645: the 95 % quantile).
        storage: RDB URL or journal file; default ``OUT/study.journal`` (in memory without
            ``out_dir``).
        study_name: Study name; default ``"<space>-<devices>-<accuracy>"``.
        seed: Seed of the sampler (``None``: random).
        out_dir: Folder for ``pareto.json/.csv/.png`` and ``history.json``.
        progress: ``True`` for a rich progress bar, or a callback ``(done, total)``.
        eliminate_duplicates: Replace a child that revisits an evaluated architecture by a
            novel mutation of it (the revisit is kept as a pruned trial), so ``trials``
            counts distinct architectures; ``False`` tells revisits their cached values.
        prune_dead_ops: Evaluate a child with operations that cannot reach the output (e.g.
            a NAS-Bench-201 edge into a node that feeds nothing) as the same network without
            them (:meth:`~search_spaces.SearchSpace.prune_params`; the child is kept as a
            pruned trial). Same function, so the same expected accuracy, and never slower;
            the budget then goes to distinct networks rather than variants of one.
        local_search: Share of each generation after the first given to unexplored
            single-parameter neighbours of the current front (Pareto local search, see
            :mod:`nas.search._local`); NSGA-II breeds the rest. 0 is plain NSGA-II.

    Returns:
        The :class:`SearchResult` (front, all trials, per-generation hypervolume).

    Raises:
        ValueError: On bad arguments (the message names the argument).
        StudyMismatchError: If the stored study was created with other settings.
        SearchError: If an objective or latency model misbehaves (returns the wrong number
            of values, or latencies that are not positive). Exceptions they raise themselves
            propagate unchanged; finished trials stay in the study.
    """
    from nas.search._pareto import check_output_dir

    cfg = _check_args(
        space, devices, accuracy, latency_models, trials, population, budget_ms, budget_quantile_z
    )
    if isinstance(local_search, bool) or not isinstance(local_search, int | float):
        raise ValueError(f"`local_search` must be a number in [0, 1], got {local_search!r}.")
    if not 0.0 <= local_search <= 1.0:
        raise ValueError(f"`local_search` must be in [0, 1], got {local_search!r}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"`seed` must be None or an integer >= 0, got {seed!r}.")
    cfg = replace(
        cfg, unique=bool(eliminate_duplicates), prune=bool(prune_dead_ops), local=local_search
    )
    name = study_name or f"{cfg.space.name}-{'+'.join(cfg.devices)}-{cfg.accuracy.name}"
    if out_dir is not None:
        check_output_dir(out_dir, study=name)  # before the search, not after it
    store = open_storage(storage, out_dir=out_dir)
    if store.is_rdb:
        cfg = replace(cfg, worker=f"{socket.gethostname()}:{os.getpid()}")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study, join, repriced = _open_study(cfg, store, name, seed)
        _retire_abandoned(study, store.is_rdb)
        cache: dict[str, _Evaluation] = {}
        params_of: dict[str, dict[str, Any]] = {}
        absorbed: set[int] = set()
        done = study.get_trials(deepcopy=False, states=_FINISHED)
        _absorb(done, cfg.devices, cache, params_of, absorbed)
        rng = np.random.default_rng(
            None if seed is None else [seed, len(done), *([join] if join else [])]
        )
        report, stop = _make_progress(progress, cfg.trials)
        t0 = time.perf_counter()
        counts = [0, 0]  # trials told and architectures evaluated by this call
        try:
            _loop(cfg, study, store, cache, params_of, absorbed, rng, report, counts)
        except KeyboardInterrupt as exc:
            finished = study.get_trials(deepcopy=False, states=_FINISHED)
            if out_dir is not None and finished:  # the front of what finished, to look at
                with contextlib.suppress(Exception):
                    stop()
                    elapsed = time.perf_counter() - t0
                    res = _collect(cfg, study, store, counts, elapsed, out_dir, repriced)
                    exc.add_note(f"the front of its {res.n_trials} finished trials is in {out_dir}")
            raise
        finally:
            store.checkpoint()
            stop()
        result = _collect(cfg, study, store, counts, time.perf_counter() - t0, out_dir, repriced)
        for message in result.warnings:  # also in result.warnings (the API reports those)
            warnings.warn(message, SearchWarning, stacklevel=2)
        return result
    finally:
        optuna.logging.set_verbosity(verbosity)
        store.close()


def collect_study(
    *,
    space: str | SearchSpace[Any],
    devices: Sequence[str],
    accuracy: AccuracyObjective,
    latency_models: Mapping[str, LatencyModel] | Sequence[LatencyModel],
    study_name: str,
    trials: int,
    population: int,
    budget_ms: float | Mapping[str, float] | None = None,
    budget_quantile_z: float = 0.0,
    storage: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    elapsed_s: float = 0.0,
) -> SearchResult | None:
    """The result of the finished trials of a study that :func:`run_search` left, e.g. one a
    cancelled or interrupted search stopped in, built as :func:`run_search` builds its own
    (with the output files in ``out_dir`` when given). It runs no trial.

    Args:
        space, devices, accuracy, latency_models, trials, population, budget_ms,
            budget_quantile_z, storage, out_dir: As given to :func:`run_search`.
        study_name: The study.
        elapsed_s: The search's wall time (for ``trials_per_s``).

    Returns:
        ``None`` when the storage holds no such study, or none of its trials finished.

    Raises:
        ValueError: naming a bad argument, as :func:`run_search` does.
    """
    from pathlib import Path

    cfg = _check_args(
        space, devices, accuracy, latency_models, trials, population, budget_ms,
        budget_quantile_z,
    )  # fmt: skip
    if storage is None and (out_dir is None or not (Path(out_dir) / "study.journal").is_file()):
        return None  # in memory (gone), or a journal never written: no study to read
    store = open_storage(storage, out_dir=out_dir)
    try:
        if store.storage is None:  # pragma: no cover - in memory is excluded above
            return None
        try:
            study = optuna.load_study(study_name=study_name, storage=store.storage)
        except KeyError:  # no such study
            return None
        finished = study.get_trials(deepcopy=False, states=_FINISHED)
        if not finished:
            return None
        repriced = _repriced(study.user_attrs, _study_attrs(cfg)["nas_latency"])
        return _collect(cfg, study, store, [len(finished)] * 2, elapsed_s, out_dir, repriced)
    finally:
        store.close()
