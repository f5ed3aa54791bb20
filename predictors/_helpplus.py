"""HELP+: the project's default predictor, a meta-learned latency basis plus Bayesian-style
ridge adaptation in log space.

Idea (improving on HELP, Lee et al., NeurIPS 2021, arXiv 2106.08630): a device's log-latency
over a space is close to a linear combination of other devices' log-latencies. Meta-training
fits one multi-output network mapping an architecture encoding to the standardised
log-latencies of every source device (a shared, meta-learned basis, as in stacked transfer /
ALPINE-style multi-task regression). Adapting to a new device is a closed-form ridge regression
of its log-latencies on that basis (penalty chosen by exact leave-one-out error), using every
measurement available: the K samples and the 10 hardware-embedding reference archs. Log targets
make errors relative (what ``within 10%`` measures); the leave-one-out residual gives a
log-normal uncertainty. Adaptation takes milliseconds, prediction is two small matrix products.

Roofline prior (``sim_devices > 0``, on by default): the basis also learns the
log-latencies of ``sim_devices`` simulated roofline devices (Williams et al., CACM 2009; random
peaks, bandwidths and per-operator overheads, see
:func:`predictors.zeroshot.simulated_device_models`) on ``sim_archs`` traced training archs,
and the ridge sees the top ``sim_components`` principal components of those predictions. The
source devices span what they span; the components add the physics of devices unlike them
(e.g. per-operator overhead on a Jetson Nano). Measured on NB201 with 8 simulated devices,
meta-trained on HELP's devices only (10 shots + 10 references, 5 seeds): the Jetson Nano and
five other LatBench devices (a different runtime and input size from every source device)
0.55 -> 0.73 mean Spearman (Jetson 0.65 -> 0.87; every device improves), zero-shot Jetson
0.49 -> 0.79; HELP's six test devices 0.917 -> 0.907 (within their spread). It is on because
devices unlike the sources are the ones a user brings.

Additive model (``additive=True``, on by default): adaptation also fits a ridge of the latency
in *milliseconds* on :func:`predictors._features.additive_features` (operation counts, or MACs,
parameters and memory), the "latency is a sum of per-operator costs" model behind lookup-table
predictors (FBNet, Wu et al., CVPR 2019; nn-Meter, Zhang et al., MobiSys 2021), and stacks it
with the basis ridge by a convex weight chosen on both models' exact leave-one-out predictions
(stacked generalisation, Breiman 1996). NAS-Bench-201 offers two additive models, every
operation (eager runtimes) or only live ones (graph-pruning runtimes); the lower leave-one-out
error picks one. The basis captures what devices share; the additive
model captures a device whose operators simply cost what they cost (an FPGA, an accelerator
simulator, a GPU at batch 256), which no combination of source devices reproduces. Measured on
HELP's NB201 protocol with 10 samples + 10 references (5 seeds, ``benchmarks/help_protocol.py``),
numbers in README.

Source lookup tables (``source_luts=True``, revision 2): meta-training also fits, for every
source device and every simulated roofline device, a lookup-table model (a ridge of its latency
in milliseconds on one-hot (position, choice) features, :func:`predictors._features.lut_features`).
The additive stack gets one more candidate, a ridge of the target's latency on those tables'
predictions: a target whose per-position operator costs mix those of the sources (or of the
roofline's compute-, memory- and overhead-bound regimes) is then predicted position by position,
which operation counts cannot do. Being richer, it is kept only when leave-one-out error
prefers it by more than one standard error, and then it is used alone (revision 3): built from
the same source devices as the basis, it competes with the basis rather than complementing it,
and a stacking weight fitted on 20 leave-one-out predictions only adds variance (on HELP's
FBNet test devices, lookup-table sums, 0.937 stacked against 0.957 alone on one
meta-training; NAS-Bench-201 and devices unlike the sources unchanged, README).

Concurrent branches (``parallel=True``, NAS-Bench-201): runtimes such as TensorFlow's executor
run a cell's independent edges at the same time, so a cell costs its critical path (Kelley &
Walker, 1959), not the sum of its ops. One more additive candidate regresses the latency on the
op counts along the critical path plus the live-op counts
(:func:`predictors._features.nb201_path_features`); the path depends on the op costs being
fitted, so the two alternate from the live-op model's costs. It is a richer candidate (the
one-standard-error rule applies) and its leave-one-out residuals refit the alternation without
each point. Measured on LatBench's desktop CPU and GPU (TensorFlow), 10 samples + 10 references:
0.77 / 0.80 -> 0.95 / 0.96 Spearman; serial runtimes unchanged (README).

Datasheet prior (revision 4): meta-training keeps the operator tables (fused graph and
eager) of the archs it traces for the roofline prior. A device adapted with its catalog
roofline (``adapt(..., datasheet=...)``; every device added with ``nas device add --catalog``)
gets that roofline priced on those tables and compiled into a lookup table over
:func:`~predictors._features.lut_features`, so it costs a matrix product per arch instead of a
0.1 s trace. Its (graph, eager) milliseconds are one more additive candidate, so
leave-one-out error decides whether the datasheet is used. Also giving their logs to the basis
ridge was tried: with 20 points it sometimes overfits (raspi4 0.91 -> 0.72 on one draw). On 7
catalogued NAS-Bench-201 devices (``benchmarks/datasheet_prior.py``): 5 measurements + 10
references 0.920 -> 0.934 mean Spearman, 10 + 10 0.945 -> 0.948, 20 + 10 0.950 -> 0.951.

Workloads (revision 5): a device is measured under one input (batch, resolution, prompt and
decoded tokens). The basis, the source lookup tables and the traced tables read architecture
features under the workload most source devices were measured under (``fit_workload_``);
the additive model reads the target's own MACs and operator counts under the workload it was
measured under (``adapt(..., workload=...)``). Before, every feature was computed under the
space's default workload, e.g. a 512-token prefill for devices measured at 32 tokens.

A basis that generalises (revision 6): the archs a device is adapted on are mostly training
archs of the basis network, the archs it predicts are not, and the stacking weight is fitted on
leave-one-out predictions of the former. With almost no weight decay the network memorised its
training archs (NB201 sources: log RMSE 0.005 on them, 0.086 on held-out archs), so leave-one-out
over-trusted the basis. Weight decay 1e-2 predicts held-out archs of the source devices best in
four of five spaces (``benchmarks/basis_weight_decay.py``, source devices only) and brings the
two errors together (0.064 / 0.071); HELP's NB201 six 0.941 -> 0.947, OFA 0.964 -> 0.985, the
LatBench devices 0.940 -> 0.944, mnasnet CPU configurations 0.852 -> 0.882 (README).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING

import numpy as np

from predictors._base import (
    DeviceTask,
    LatencyPredictor,
    check_bool,
    check_int,
    check_number,
    check_seed,
    register_predictor,
)
from predictors._errors import PredictorError, TrainingCancelled
from predictors._features import (
    additive_features,
    additive_runtimes,
    encode,
    lut_features,
    nb201_path_features,
)
from predictors._linear import RidgeFit, fit_ridge_loo, stack_weight
from predictors._progress import progress_bar, torch_threads
from predictors._rowcache import RowCache

if TYPE_CHECKING:
    from predictors.zeroshot import DeviceModel
    from predictors.zeroshot._trace import OpTable

__all__ = ["HELPPlusPredictor"]

_PATH_ITERATIONS = 3  # critical path <-> operation costs (``"parallel"`` candidate)
_EXACT_LOO_MAX = 50  # measurements up to which the path model's residuals are exact LOO
_CV_FOLDS = 20  # folds of its cross-validated residuals beyond that
_MIN_SIM_ARCHS = 32  # fewer traced archs than this: principal axes are not worth fitting
_OUTLIER_RATIO = 10.0  # a measurement every model misses by this factor ...
_OUTLIER_SIGMAS = 5.0  # ... and by this many robust standard deviations is left out
_OUTLIER_MIN_N = 10  # fewer measurements cannot tell an outlier from a model's error
_OUTLIER_ROUNDS = 3  # refits looking for outliers that others masked
_BASIS_BLOCK = 1024  # rows per block of the basis network's forward pass


def _one_standard_error(
    fits: list[tuple[np.ndarray, RidgeFit, str, np.ndarray]], richer: set[str]
) -> int:
    """Index of the candidate to keep: the best by mean squared leave-one-out error, except
    that a ``richer`` candidate (many more features) must beat the best simpler one by more
    than one standard error of its own errors; the one-standard-error rule (Breiman et al.,
    "Classification and Regression Trees", 1984; Hastie et al., "The Elements of Statistical
    Learning", 2009, sec. 7.10), so 20-odd measurements keep a rich model only when they
    clearly prefer it."""
    means = [float(np.mean(e)) for e, *_ in fits]
    best = int(np.argmin(means))
    simple = [i for i, f in enumerate(fits) if f[2] not in richer]
    if fits[best][2] not in richer or not simple:
        return best
    errors = fits[best][0]
    limit = means[best] + float(np.std(errors, ddof=1) / np.sqrt(len(errors)))
    runner_up = min(simple, key=lambda i: means[i])
    return runner_up if means[runner_up] <= limit else best


def _gross_outliers(latency_ms: np.ndarray, loo_ms: list[np.ndarray]) -> list[int]:
    """Measurements that every adaptation model misses by more than :data:`_OUTLIER_RATIO`
    times when fitted without them, and by more than :data:`_OUTLIER_SIGMAS` robust standard
    deviations of its log errors (the median absolute deviation, Hampel 1974; the modified
    z-score rule of Iglewicz & Hoaglin, 1993): a measurement that no smooth latency model can
    hold, such as a network a runtime folds to a constant (HELP's raspi4 and pixel3 time the
    341 NAS-Bench-201 cells whose output ignores their input at 0.01 ms, a thousandth of the
    rest) or a mistyped value. Needs at least :data:`_OUTLIER_MIN_N` measurements; adaptation
    drops at most a fifth of them (more than that is a device unlike the models, not outliers).
    """
    n = len(latency_ms)
    if n < _OUTLIER_MIN_N:
        return []
    flagged = np.ones(n, bool)
    for pred in loo_ms:
        err = np.abs(np.log(np.asarray(latency_ms, np.float64) / np.maximum(pred, 1e-12)))
        sigma = 1.4826 * float(np.median(err))
        flagged &= (err > np.log(_OUTLIER_RATIO)) & (err > _OUTLIER_SIGMAS * sigma)
    return [int(i) for i in np.flatnonzero(flagged)]


def _linear_table(features: np.ndarray, latency_ms: np.ndarray) -> tuple[np.ndarray, float]:
    """A ridge of ``latency_ms`` on raw ``features`` folded into ``(weights, offset)``."""
    fit = fit_ridge_loo(features, latency_ms)
    w = fit.coef / fit.x_scale
    return w, fit.intercept - float(fit.x_mean @ w)


def _stripped(table: OpTable) -> OpTable:
    """``table`` without operator names (all the roofline prices; a smaller artifact)."""
    return dataclasses.replace(table, ops=())


def _fit_critical_path(archs: list[str], latency_ms: np.ndarray) -> tuple[RidgeFit, np.ndarray]:
    """The ``"parallel"`` additive model and the operation costs (ms) its path uses."""
    live = fit_ridge_loo(additive_features("nasbench201", archs, "pruned"), latency_ms)
    costs = live.coef / live.x_scale
    for _ in range(_PATH_ITERATIONS):
        path_costs = np.concatenate([[0.0], np.maximum(costs, 0.0)])
        fit = fit_ridge_loo(nb201_path_features(archs, path_costs), latency_ms)
        w = fit.coef / fit.x_scale
        costs = w[:4] + w[4:]
    return fit, path_costs


def _path_cv_residuals(archs: list[str], latency_ms: np.ndarray) -> np.ndarray:
    """Out-of-sample residuals of the critical-path model, refitting the whole alternation.

    The costs that choose the path were fitted on every point, so residuals with them held
    fixed would be optimistic. Up to :data:`_EXACT_LOO_MAX` points (few-shot adaptation) each
    point is refitted without it (exact leave-one-out); beyond that, :data:`_CV_FOLDS`-fold
    cross-validation over interleaved folds keeps adaptation linear in the number of
    measurements (leave-one-out on a fully measured device, 15,625 refits, took hours).
    """
    n = len(archs)
    folds = n if n <= _EXACT_LOO_MAX else _CV_FOLDS
    resid = np.empty(n)
    for k in range(folds):
        held = np.arange(k, n, folds)
        keep = np.setdiff1d(np.arange(n), held)
        sub, costs = _fit_critical_path([archs[j] for j in keep], latency_ms[keep])
        pred = sub.predict(nb201_path_features([archs[j] for j in held], costs))
        resid[held] = latency_ms[held] - pred
    return resid


@register_predictor("help+")
class HELPPlusPredictor(LatencyPredictor):
    """Meta-learned multi-device latency basis + log-space ridge adaptation (default).

    Args:
        hidden: Width of the two hidden layers of the basis network.
        steps: Full-batch Adam steps of meta-training.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2) of the basis network. The default 1e-2 predicts
            the source devices' held-out archs best, or within 0.003 of the best, in all five
            spaces (revision 6, module docstring).
        with_encoding: Also give the adaptation ridge the raw encoding (LOO decides its use).
        n_models: Basis networks trained from different seeds and averaged (bagging).
        log_target: Model log-latency (relative errors); False models milliseconds, which suits
            additive lookup-table latencies such as the FBNet data.
        sim_devices: Simulated roofline devices added to the basis (0: no roofline prior).
        sim_archs: Training archs traced for the simulated devices (at most).
        sim_ops: Budget of traced operator records: archs are traced until their records
            reach it (tracing costs about 1.3 ms per record on this project's 2-core CPU, so
            20,000 is about 26 s: ~250 NAS-Bench-201 archs, ~180 MnasNet ones). A count, not a
            time, so the same data and seed give the same predictor on any machine under any
            load. When the first two archs show that 32 do not fit (a language model: over a
            thousand records each), the space gets no roofline prior.
        sim_components: Principal components of the simulated devices given to the ridge.
        additive: Stack the basis ridge with an additive (per-operator cost) ridge in
            milliseconds, weighted by leave-one-out error (False: the basis ridge alone).
        source_luts: Also offer the additive stack a ridge on the source devices' own
            lookup-table models (one cost per operation choice and position, fitted on each
            source's measurements); leave-one-out error decides whether it is used. Setting it
            False after fitting switches the candidate off at adaptation.
        parallel: On NAS-Bench-201, also offer the critical-path model of runtimes that run a
            cell's branches concurrently (leave-one-out error decides); a switch read at
            adaptation, like ``source_luts``.
        seed: Seed of initialisation.

    Attributes:
        source_devices_: The source devices, in the order of the basis's first outputs.
    """

    # 2: source lookup tables; 3: their model alone; 4: datasheet tables; 5: workloads;
    # 6: a basis that generalises (weight decay 1e-2)
    revision = 6
    min_support = 3

    def __init__(
        self,
        *,
        hidden: int = 256,
        steps: int = 800,
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        with_encoding: bool = False,
        n_models: int = 1,
        log_target: bool = True,
        sim_devices: int = 8,
        sim_archs: int = 600,
        sim_ops: int = 20_000,
        sim_components: int = 2,
        additive: bool = True,
        source_luts: bool = True,
        parallel: bool = True,
        seed: int | None = 0,
    ) -> None:
        self.hidden = hidden
        self.steps = steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.with_encoding = with_encoding
        self.n_models = n_models
        self.log_target = log_target
        self.sim_devices = sim_devices
        self.sim_archs = sim_archs
        self.sim_ops = sim_ops
        self.sim_components = sim_components
        self.additive = additive
        self.source_luts = source_luts
        self.parallel = parallel
        self.seed = seed

    def _check_params(self) -> None:
        check_int("hidden", self.hidden, 1)
        check_int("steps", self.steps, 1)
        check_number("lr", self.lr, 0.0, strict=True)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_int("n_models", self.n_models, 1)
        check_int("sim_devices", self.sim_devices, 0)
        check_int("sim_archs", self.sim_archs, 0)
        check_int("sim_ops", self.sim_ops, 0)
        check_int("sim_components", self.sim_components, 0)
        for name in ("with_encoding", "log_target", "additive", "source_luts", "parallel"):
            check_bool(name, getattr(self, name))
        check_seed(self.seed)

    def _fit(self, tasks: list[DeviceTask], *, progress: bool) -> None:
        archs = sorted({a for t in tasks for a in t.archs})
        pos = {a: i for i, a in enumerate(archs)}
        y = np.full((len(archs), len(tasks)), np.nan)
        for j, t in enumerate(tasks):
            y[[pos[a] for a in t.archs], j] = self._to_target(t.latency_ms)
        self.n_sources_ = len(tasks)
        from predictors.zeroshot import persistent_traces

        with persistent_traces():  # the same training archs in every process
            sim_y, sim = self._simulated_targets(archs, progress)
        y = np.concatenate([y, sim_y], axis=1)
        self.y_mean_ = np.nanmean(y, axis=0)
        self.y_std_ = np.maximum(np.nanstd(y, axis=0), 1e-6)
        y = (y - self.y_mean_) / self.y_std_
        x = encode(self.space_, archs, self.fit_workload_).astype(np.float64)
        self.x_mean_ = x.mean(axis=0)
        self.x_std_ = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
        self.source_devices_ = [t.device for t in tasks]
        xs = (x - self.x_mean_) / self.x_std_
        base = 0 if self.seed is None else int(self.seed)
        with torch_threads(1):
            self.ensemble_ = [
                self._train_basis(xs, y, progress, base + 1000 * i) for i in range(self.n_models)
            ]
        self.source_lut_ = self._fit_source_luts(tasks, sim) if self.source_luts else None

    def _fit_source_luts(
        self, tasks: list[DeviceTask], sim: tuple[list[str], np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Each source device's lookup-table model: a ridge of its latency (ms) on
        :func:`~predictors._features.lut_features`, folded into one ``(d, sources)`` matrix and
        a ``(sources,)`` offset (None for a space without such features). The simulated
        roofline devices, when traced, add their tables too: per-position costs of compute-,
        memory- and overhead-bound devices that no source may resemble."""
        pairs = [(list(t.archs), np.asarray(t.latency_ms, np.float64)) for t in tasks]
        if sim is not None:
            pairs += [(sim[0], col) for col in sim[1].T]
        cols, offsets = [], []
        try:
            for archs, latency_ms in pairs:
                feats = lut_features(self.space_, archs, self.fit_workload_)
                w, offset = _linear_table(feats, latency_ms)
                cols.append(w)
                offsets.append(offset)
        except (PredictorError, ValueError):
            return None
        return np.stack(cols, axis=1), np.asarray(offsets)

    def _simulated_targets(
        self, archs: list[str], progress: bool = False
    ) -> tuple[np.ndarray, tuple[list[str], np.ndarray] | None]:
        """``(len(archs), sim_devices)`` simulated (log-)latencies, NaN for untraced archs, and
        the traced archs with their simulated milliseconds (None without a prior).

        Also fixes the principal axes of the simulated devices (``sim_pca_``). Spaces whose
        models cannot be traced get no roofline prior.
        """
        self.sim_pca_: tuple[np.ndarray, np.ndarray] | None = None
        self.sim_traced_ = 0
        self.datasheet_tables_: tuple[list[str], list[OpTable], list[OpTable]] | None = None
        n_dev = max(int(self.sim_devices), 0)
        out = np.full((len(archs), n_dev), np.nan)
        if n_dev == 0 or self.sim_components < 1 or self.sim_archs < 2:
            return out[:, :0], None
        from predictors.zeroshot import op_tables, roofline_latency_ms, simulated_device_models

        order = np.random.default_rng(self.seed).permutation(len(archs))[: self.sim_archs]
        rows: list[int] = []
        records = 0
        graph: list[OpTable] = []
        eager: list[OpTable] = []
        try:
            with progress_bar(
                progress, "tracing archs for the roofline prior", self.sim_ops
            ) as advance:
                for i in order:  # traces are memoised; stop when the budget is spent
                    g, e = op_tables(
                        self.space_, archs[i], self.fit_workload_, modes=("graph", "eager")
                    )
                    graph.append(g)
                    eager.append(e)
                    n_ops = len(graph[-1].ops)
                    advance(min(n_ops, max(self.sim_ops - records, 0)))  # the bar ends at 100 %
                    records += n_ops
                    rows.append(int(i))
                    if len(rows) == 2 and records / 2 * _MIN_SIM_ARCHS > self.sim_ops:
                        warnings.warn(
                            f"help+: no roofline prior for {self.space_!r}: {_MIN_SIM_ARCHS} "
                            f"archs of ~{records // 2} operator records exceed "
                            f"sim_ops={self.sim_ops}",
                            stacklevel=3,
                        )
                        return out[:, :0], None
                    if records >= self.sim_ops:
                        break
            traced = [archs[i] for i in rows]
            self.sim_traced_ = len(traced)
            self.datasheet_tables_ = (
                traced,
                [_stripped(t) for t in graph],
                [_stripped(t) for t in eager],
            )
            sims = np.stack(
                [
                    roofline_latency_ms(self.space_, traced, dm, workload=self.fit_workload_)
                    for dm in simulated_device_models(n_dev, seed=self.seed)
                ],
                axis=1,
            )
        except TrainingCancelled:  # stop_when: the caller stopped the fit, not a failure
            raise
        except Exception as exc:  # noqa: BLE001 - any build/trace failure: no prior
            warnings.warn(f"help+: no roofline prior for {self.space_!r}: {exc}", stacklevel=3)
            return out[:, :0], None
        out[rows] = self._to_target(sims)
        centre = out[rows].mean(axis=0)
        _, _, vt = np.linalg.svd(out[rows] - centre, full_matrices=False)
        self.sim_pca_ = (centre, vt[: self.sim_components])
        return out, (traced, sims)

    def _to_target(self, ms: np.ndarray) -> np.ndarray:
        return np.log(ms) if self.log_target else np.asarray(ms, np.float64)

    def _from_target(self, target: np.ndarray) -> np.ndarray:
        return np.exp(target) if self.log_target else np.asarray(target, np.float64)

    def _train_basis(
        self, x: np.ndarray, y: np.ndarray, progress: bool, seed: int
    ) -> list[np.ndarray]:
        import torch
        from torch import nn

        torch.manual_seed(seed)
        h = self.hidden
        model = nn.Sequential(
            nn.Linear(x.shape[1], h),
            nn.ReLU(),
            nn.Linear(h, h),
            nn.ReLU(),
            nn.Linear(h, y.shape[1]),
        )
        xt = torch.tensor(x, dtype=torch.float32)
        mask = torch.tensor(~np.isnan(y))
        yt = torch.tensor(np.nan_to_num(y), dtype=torch.float32)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.steps)
        with progress_bar(progress, "meta-training help+ basis", self.steps) as advance:
            for _ in range(self.steps):
                err = (model(xt) - yt) ** 2
                loss = (err * mask).sum() / mask.sum()
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                sched.step()
                advance()
        return [p.detach().numpy().astype(np.float32) for p in model.parameters()]

    def basis(self, archs: list[str]) -> np.ndarray:
        """Predicted (log-)latency of every source device, ``(n, n_sources)``; memoised per
        arch string (the cache is shared by adapted copies and never persisted)."""
        cache: RowCache | None = self.__dict__.get("_basis_cache")
        if cache is None:
            cache = self.__dict__.setdefault("_basis_cache", RowCache())
        return cache.get(archs, self._basis_rows)

    def _basis_rows(self, archs: list[str]) -> np.ndarray:
        x = encode(self.space_, archs, self.fit_workload_)
        x = ((x - self.x_mean_) / self.x_std_).astype(np.float32)
        out = np.zeros((x.shape[0], len(self.y_mean_)), np.float32)
        for w1, b1, w2, b2, w3, b3 in self.ensemble_:
            # In blocks of rows, so the hidden activations stay in cache (about twice as fast
            # on the whole NAS-Bench-201 space as one product).
            for s in range(0, len(x), _BASIS_BLOCK):
                h = x[s : s + _BASIS_BLOCK] @ w1.T
                h += b1
                np.maximum(h, 0.0, out=h)
                h2 = h @ w2.T
                h2 += b2
                np.maximum(h2, 0.0, out=h2)
                out[s : s + _BASIS_BLOCK] += h2 @ w3.T + b3
        out /= len(self.ensemble_)
        return np.asarray(out * self.y_std_ + self.y_mean_, dtype=np.float64)

    def _design(self, archs: list[str]) -> np.ndarray:
        full = self.basis(archs)
        n_src = getattr(self, "n_sources_", full.shape[1])  # artifacts saved before the prior
        b = full[:, :n_src]
        pca = getattr(self, "sim_pca_", None)
        if pca is not None:
            centre, axes = pca
            b = np.concatenate([b, (full[:, n_src:] - centre) @ axes.T], axis=1)
        if self.with_encoding:
            return np.concatenate([b, encode(self.space_, archs, self.workload_)], axis=1)
        return b

    def _adapt(self, archs: list[str], latency_ms: np.ndarray, emb: np.ndarray | None) -> None:
        keep = np.arange(len(archs))
        for _ in range(_OUTLIER_ROUNDS):  # outliers can mask each other: refit, look again
            loo = self._fit_adaptation([archs[i] for i in keep], latency_ms[keep])
            drop = _gross_outliers(latency_ms[keep], loo)
            if not drop or len(archs) - len(keep) + len(drop) > len(archs) // 5:
                break
            keep = np.delete(keep, drop)
        else:
            self._fit_adaptation([archs[i] for i in keep], latency_ms[keep])
        self.outliers_ = [archs[i] for i in np.setdiff1d(np.arange(len(archs)), keep)]

    def _fit_adaptation(self, archs: list[str], latency_ms: np.ndarray) -> list[np.ndarray]:
        """Fit the basis ridge and the additive stack; returns each fitted model's
        leave-one-out predictions in milliseconds (the basis ridge's, then the additive
        candidate's when one is kept), for :func:`_gross_outliers`."""
        y = self._to_target(latency_ms)
        self.datasheet_lut_ = self._datasheet_lut()
        self.datasheet_used_ = False  # until leave-one-out picks the datasheet's candidate
        self.ridge_: RidgeFit = fit_ridge_loo(self._design(archs), y)
        self.additive_: tuple[RidgeFit, float, float, float, str] | None = None
        assert self.ridge_.loo_residuals is not None  # fresh fits always keep them
        preds = [self._from_target(y - self.ridge_.loo_residuals)]
        if not getattr(self, "additive", True):
            return preds
        floor = 0.5 * float(np.min(latency_ms))
        fits: list[tuple[np.ndarray, RidgeFit, str, np.ndarray]] = []
        for runtime in self._additive_candidates():
            try:
                fit = self._fit_additive(archs, latency_ms, runtime)
            except PredictorError:
                continue  # a space without additive features
            assert fit.loo_residuals is not None  # fresh fits always keep them
            loo = self._to_target(np.maximum(latency_ms - fit.loo_residuals, floor))
            fits.append(((loo - y) ** 2, fit, runtime, loo))
        if not fits:
            return preds  # the basis ridge alone
        _, fit, runtime, loo = fits[_one_standard_error(fits, {"sources", "parallel"})]
        preds.append(self._from_target(loo))
        if runtime == "sources":
            # Built from the same source devices as the basis: a competitor, not a complement.
            w, rmse = 0.0, float(np.sqrt(np.mean((loo - y) ** 2)))
        else:
            w, rmse = stack_weight(y - self.ridge_.loo_residuals, loo, y)
        self.additive_ = (fit, floor, w, rmse, runtime)
        self.datasheet_used_ = runtime == "datasheet" and w < 1.0  # w: the basis's weight
        return preds

    def _datasheet_lut(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The device's datasheet roofline (``datasheet_``, given to :meth:`adapt`) compiled
        into a lookup table: for each runtime mode (fused graph, eager), a ridge of the
        roofline milliseconds of the archs traced in meta-training on
        :func:`~predictors._features.lut_features`. Returns ``((d, 2) weights, (2,) offsets,
        floor)``, or None without a datasheet or traced archs, or when the device was measured
        under another workload than the one the tables were traced under (their shapes would
        price the wrong input). Pricing stored operator tables takes milliseconds; tracing new
        archs at prediction time would take 0.1 s each."""
        device: DeviceModel | None = getattr(self, "datasheet_", None)
        tables = getattr(self, "datasheet_tables_", None)
        if device is None or tables is None or not self._traced_under_own_workload():
            return None
        from predictors.zeroshot import estimate_latency_ms

        archs, graph, eager = tables
        try:
            feats = lut_features(self.space_, archs, self.fit_workload_)
        except (PredictorError, ValueError):
            return None
        ms = np.array(
            [[estimate_latency_ms(g, device), estimate_latency_ms(e, device)]
             for g, e in zip(graph, eager, strict=True)]
        )  # fmt: skip
        w, offsets = zip(*(_linear_table(feats, ms[:, j]) for j in range(ms.shape[1])), strict=True)
        return np.stack(w, axis=1), np.asarray(offsets), 0.5 * float(ms.min())

    def _traced_under_own_workload(self) -> bool:
        """Whether the device's workload is the one meta-training traced its tables under."""
        from search_spaces import get_space

        default = get_space(self.space_).default_workload()
        return (self.workload_ or default) == (self.fit_workload_ or default)

    def _datasheet_ms(self, archs: list[str]) -> np.ndarray:
        """``(n, 2)`` datasheet roofline milliseconds (graph, eager) from the compiled table."""
        w, offset, floor = self.datasheet_lut_  # type: ignore[misc]
        feats = lut_features(self.space_, archs, self.fit_workload_)
        return np.asarray(np.maximum(feats @ w + offset, floor))

    def _additive_candidates(self) -> list[str]:
        """Additive models adaptation chooses from: the space's runtimes of
        :func:`~predictors._features.additive_features`, ``"parallel"`` on NAS-Bench-201
        (branches run concurrently, :func:`~predictors._features.nb201_path_features`), and
        ``"sources"`` (a ridge on the source devices' lookup-table models) when meta-training
        fitted them."""
        use = getattr(self, "source_luts", True) and getattr(self, "source_lut_", None) is not None
        extra = ["sources"] if use else []
        if getattr(self, "datasheet_lut_", None) is not None:
            extra.insert(0, "datasheet")
        runtimes = additive_runtimes(self.space_)
        if "pruned" in runtimes and getattr(self, "parallel", True):
            extra.insert(0, "parallel")
        return [*runtimes, *extra]

    def _fit_additive(self, archs: list[str], latency_ms: np.ndarray, runtime: str) -> RidgeFit:
        """Ridge of the latency (ms) on the candidate's features. The critical path of
        ``"parallel"`` depends on the operation costs it is fitted to find, so those alternate
        (a fixed-point iteration): costs from the live-operation model, the path under them,
        the costs the refit implies (path + dispatch coefficients), and again."""
        if runtime != "parallel":
            return fit_ridge_loo(self._additive_design(archs, runtime), latency_ms)
        fit, self.path_costs_ = _fit_critical_path(archs, latency_ms)
        resid = _path_cv_residuals(archs, latency_ms)
        rmse = float(np.sqrt(np.mean(resid**2)))
        return dataclasses.replace(fit, loo_residuals=resid, loo_rmse=rmse)

    def _additive_design(self, archs: list[str], runtime: str) -> np.ndarray:
        if runtime == "parallel":
            return nb201_path_features(archs, self.path_costs_)
        if runtime == "datasheet":
            return self._datasheet_ms(archs)
        if runtime == "sources":
            w, offset = self.source_lut_  # type: ignore[misc]
            feats = lut_features(self.space_, archs, self.fit_workload_)
            return np.asarray(feats @ w + offset, np.float64)
        return additive_features(self.space_, archs, runtime, self.workload_)

    def _predict(self, archs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pred = self.ridge_.predict(self._design(archs))
        rmse = self.ridge_.loo_rmse
        stacked = getattr(self, "additive_", None)
        if stacked is not None:
            fit, floor, w, rmse, runtime = stacked
            if w < 1.0:
                add_ms = fit.predict(self._additive_design(archs, runtime))
                add = self._to_target(np.maximum(add_ms, floor))
                pred = w * pred + (1.0 - w) * add
        if not self.log_target:
            return pred, np.full_like(pred, rmse)
        mean = np.exp(pred)
        return mean, mean * np.sqrt(np.expm1(rmse**2))
