"""HELP: hardware-adaptive efficient latency prediction via meta-learning, and MAML.

Lee, Lee, Chong, Hwang, "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
Meta-Learning", NeurIPS 2021 (arXiv 2106.08630). Meta-SGD (Li et al., 2017) with learned
per-parameter inner learning rates (init 1e-3), 2 second-order inner steps, Adam 1e-4 outer,
loss MSE + 0.1 KL, 8 devices per episode, 10 support + 200 query archs per task, checkpoint by
validation Spearman every 50 episodes. The inner loop is ``torch.func.grad`` under
``torch.func.vmap`` over the episode's tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor
from torch.func import grad, vmap

from predictors import _help_net as net
from predictors._base import (
    DeviceTask,
    LatencyPredictor,
    check_bool,
    check_int,
    check_number,
    check_seed,
    register_predictor,
    str_list,
)
from predictors._errors import NotEnoughDataError
from predictors._features import encode, graph_features
from predictors._progress import progress_bar, torch_threads

if TYPE_CHECKING:
    from search_spaces import Workload

__all__ = ["HELPPredictor", "MAMLPredictor"]

Params = dict[str, Tensor]


def scale_targets(ms: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Min-max scale to [0.05, 0.95] given the range ``[lo, hi]``."""
    return 0.05 + 0.9 * (ms - lo) / max(hi - lo, 1e-9)


def target_range(latency_ms: np.ndarray, reference_ms: np.ndarray | None) -> tuple[float, float]:
    """``(lo, hi)`` for :func:`scale_targets` at adaptation: the range of the device's
    measurements other than its reference archs.

    HELP scales a device's targets by the range of its trimmed training pool (the 10th to 90th
    percentile), in meta-training and at test time; the random support archs come from that
    pool and their range is its few-shot estimate. The reference archs include extreme archs
    outside the pool, and letting them set the range squeezes the support targets into a band
    meta-training never saw (on HELP's NB201 test devices: 0.911 Spearman against 0.922). One
    support latency equal to each reference latency is set aside (the callers pass the
    reference archs among the support); fewer than two left: every latency counts.
    """
    rest = list(np.asarray(latency_ms, np.float64))
    for value in np.asarray(reference_ms if reference_ms is not None else [], np.float64):
        if value in rest:
            rest.remove(value)
    known = np.asarray(rest if len(rest) >= 2 else latency_ms, np.float64)
    return float(known.min()), float(known.max())


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] (the HELP hardware embedding)."""
    return np.asarray((x - x.min()) / max(float(x.max() - x.min()), 1e-9), dtype=np.float64)


class _Featurizer:
    """Arch strings -> tensors for one space (GCN graphs for NAS-Bench-201), encoded under
    one workload (the meta-training one; the hardware embedding carries the device's)."""

    def __init__(self, space: str, workload: Workload | None = None) -> None:
        self.space = space
        self.kind = "gcn" if space == "nasbench201" else "mlp"
        self.workload = workload

    def __call__(self, archs: Sequence[str]) -> Any:
        if self.kind == "gcn":
            feat, adj = graph_features(archs)
            return torch.from_numpy(feat), torch.from_numpy(adj)
        return torch.from_numpy(encode(self.space, archs, getattr(self, "workload", None)))


def _take(x: Any, idx: Tensor) -> Any:
    return (x[0][idx], x[1][idx]) if isinstance(x, tuple) else x[idx]


def _stack(xs: list[Any]) -> Any:
    if isinstance(xs[0], tuple):
        return torch.stack([x[0] for x in xs]), torch.stack([x[1] for x in xs])
    return torch.stack(xs)


@register_predictor("help")
class HELPPredictor(LatencyPredictor):
    """HELP meta-learned latency predictor (Lee et al., NeurIPS 2021, arXiv 2106.08630).

    Args:
        episodes: Meta-training episodes (paper: 2000 NAS-Bench-201, 4000 FBNet).
        tasks_per_episode: Devices per episode.
        n_support: Support archs per meta-training task.
        n_query: Query archs per meta-training task.
        inner_steps: Inner-loop gradient steps (train and adapt).
        inner_lr: Initial (Meta-SGD) or fixed (MAML) inner learning rate.
        meta_sgd: Learn per-parameter inner learning rates.
        outer_lr: Adam learning rate of the meta-update.
        kl_weight: Weight of the KL term.
        hw_embedding: Use the hardware branch and the z-modulating inference network.
        hidden: Width of the branches.
        second_order: Differentiate through the inner loop.
        validation_devices: Source devices held out for checkpoint selection.
        eval_every: Validate every this many episodes.
        mc_samples: z samples averaged at prediction (uncertainty from their spread).
        seed: Seed of initialisation and episode sampling.

    Attributes:
        history_: One ``{"episode", "valid_spearman"}`` record per validation of the
            meta-training (empty without ``validation_devices``).
        best_valid_spearman_: Validation Spearman of the kept checkpoint (NaN without
            ``validation_devices``: the last episode's parameters are kept).
    """

    revision = 2  # 2: adaptation targets scaled by the non-reference measurements' range

    def __init__(
        self,
        *,
        episodes: int = 2000,
        tasks_per_episode: int = 8,
        n_support: int = 10,
        n_query: int = 200,
        inner_steps: int = 2,
        inner_lr: float = 1e-3,
        meta_sgd: bool = True,
        outer_lr: float = 1e-4,
        kl_weight: float = 0.1,
        hw_embedding: bool = True,
        hidden: int = 100,
        second_order: bool = True,
        validation_devices: Sequence[str] | None = None,
        eval_every: int = 50,
        mc_samples: int = 4,
        seed: int | None = 0,
    ) -> None:
        self.episodes = episodes
        self.tasks_per_episode = tasks_per_episode
        self.n_support = n_support
        self.n_query = n_query
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.meta_sgd = meta_sgd
        self.outer_lr = outer_lr
        self.kl_weight = kl_weight
        self.hw_embedding = hw_embedding
        self.hidden = hidden
        self.second_order = second_order
        self.validation_devices = validation_devices
        self.eval_every = eval_every
        self.mc_samples = mc_samples
        self.seed = seed

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        for name in ("episodes", "tasks_per_episode", "n_support", "n_query", "eval_every"):
            check_int(name, getattr(self, name), 1)
        check_int("inner_steps", self.inner_steps, 0)
        check_number("inner_lr", self.inner_lr, 0.0, strict=True)
        check_number("outer_lr", self.outer_lr, 0.0, strict=True)
        check_number("kl_weight", self.kl_weight, 0.0)
        check_int("hidden", self.hidden, 1)
        check_int("mc_samples", self.mc_samples, 1)
        for name in ("meta_sgd", "hw_embedding", "second_order"):
            check_bool(name, getattr(self, name))
        if self.validation_devices is not None:
            str_list(self.validation_devices, "validation_devices", "device names", "device")
        check_seed(self.seed)

    def _validation_names(self, tasks: list[DeviceTask]) -> set[str]:
        """The devices of ``validation_devices``, all of them devices of ``tasks``.

        Raises:
            ValueError: naming ``validation_devices`` when it is one string or names a device
                that is not among ``tasks``.
        """
        if self.validation_devices is None:
            return set()
        names = str_list(self.validation_devices, "validation_devices", "device names", "device")
        known = {t.device for t in tasks}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"`validation_devices` must name devices of `tasks`, got {unknown[0]!r} "
                f"(devices: {', '.join(sorted(known))})."
            )
        return set(names)

    # ------------------------------------------------------------------ inner loop
    def _adapt_task(
        self, meta: Params, lrs: Params, inf: Params, hw: Tensor, xs: Any, ys: Tensor, eps: Tensor
    ) -> tuple[Params, Tensor]:
        """Modulate with z, then ``inner_steps`` (Meta-)SGD steps on the support set."""
        kind = self.kind_
        hw_in = hw if self.hw_embedding else None
        if self.hw_embedding:
            params, kl = net.modulate(meta, inf, hw, eps)
        else:
            params, kl = dict(meta), hw.sum() * 0.0

        def loss(p: Params) -> Tensor:
            return ((net.forward(p, xs, hw_in, kind) - ys) ** 2).mean()

        for _ in range(self.inner_steps):
            g = grad(loss)(params)
            if not self.second_order:
                g = {k: v.detach() for k, v in g.items()}
            params = {k: params[k] - lrs[k] * g[k] for k in params}
        return params, kl

    def _task_loss(
        self,
        meta: Params,
        lrs: Params,
        inf: Params,
        hw: Tensor,
        xs: Any,
        ys: Tensor,
        xq: Any,
        yq: Tensor,
        eps: Tensor,
    ) -> tuple[Tensor, Tensor]:
        params, kl = self._adapt_task(meta, lrs, inf, hw, xs, ys, eps)
        hw_in = hw if self.hw_embedding else None
        return ((net.forward(params, xq, hw_in, self.kind_) - yq) ** 2).mean(), kl

    def episode_losses(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Per-task query MSE and KL of one episode, vectorised with ``vmap``."""
        fn = vmap(self._task_loss, in_dims=(None, None, None, 0, 0, 0, 0, 0, 0))
        return fn(
            self.meta_params_,
            self._lrs(),
            self.inference_params_,
            batch["hw"],
            batch["xs"],
            batch["ys"],
            batch["xq"],
            batch["yq"],
            batch["eps"],
        )

    def _lrs(self) -> Params:
        if self.meta_sgd:
            return self.task_lr_
        return {k: torch.full_like(v, self.inner_lr) for k, v in self.meta_params_.items()}

    # ------------------------------------------------------------------ meta-training
    def _prepare(self, task: DeviceTask) -> dict[str, Any]:
        lat = task.latency_ms
        if len(task.archs) < self.n_support + 1:
            raise NotEnoughDataError(
                f"device {task.device!r} has {len(task.archs)} archs; need > {self.n_support}"
            )
        if self.hw_embedding and task.reference_ms.shape[0] != 10:
            raise NotEnoughDataError(f"device {task.device!r} lacks the 10 reference latencies")
        hw = minmax(task.reference_ms) if task.reference_ms.size else np.zeros(10)
        return {
            "x": self.featurizer_(task.archs),
            "y": torch.tensor(scale_targets(lat, lat.min(), lat.max()), dtype=torch.float32),
            "hw": torch.tensor(hw, dtype=torch.float32),
        }

    def _sample_episode(
        self, pool: list[dict[str, Any]], gen: np.random.Generator
    ) -> dict[str, Any]:
        n_tasks = min(self.tasks_per_episode, len(pool))
        chosen = gen.choice(len(pool), size=n_tasks, replace=False)
        n_avail = min(len(pool[i]["y"]) for i in chosen)
        nq = min(self.n_query, n_avail - self.n_support)
        xs, ys, xq, yq, hws = [], [], [], [], []
        for i in chosen:
            t = pool[i]
            idx = torch.from_numpy(gen.permutation(len(t["y"]))[: self.n_support + nq])
            s, q = idx[: self.n_support], idx[self.n_support :]
            xs.append(_take(t["x"], s))
            ys.append(t["y"][s])
            xq.append(_take(t["x"], q))
            yq.append(t["y"][q])
            hws.append(t["hw"])
        eps = torch.from_numpy(gen.standard_normal((n_tasks, self.z_dim_))).float()
        return {
            "xs": _stack(xs),
            "ys": torch.stack(ys),
            "xq": _stack(xq),
            "yq": torch.stack(yq),
            "hw": torch.stack(hws),
            "eps": eps,
        }

    def _init_state(self, n_feat: int) -> None:
        seed = 0 if self.seed is None else int(self.seed)
        self.meta_params_ = net.init_params(
            self.kind_, n_feat, hidden=self.hidden, hw_dim=10, hw_on=self.hw_embedding, seed=seed
        )
        width = 2 * self.hidden if self.hw_embedding else self.hidden
        self.inference_params_ = net.init_inference(10, width, seed=seed)
        self.z_dim_ = 3 * (width + 1)
        self.task_lr_ = {k: torch.full_like(v, self.inner_lr) for k, v in self.meta_params_.items()}

    def _fit(self, tasks: list[DeviceTask], *, progress: bool) -> None:
        with torch_threads(1):
            self._meta_train(tasks, progress=progress)

    def _meta_train(self, tasks: list[DeviceTask], *, progress: bool) -> None:
        self.featurizer_ = _Featurizer(self.space_, self.fit_workload_)
        self.kind_ = self.featurizer_.kind
        valid_names = self._validation_names(tasks)
        train = [self._prepare(t) for t in tasks if t.device not in valid_names]
        valid = [t for t in tasks if t.device in valid_names]
        if not train:
            raise NotEnoughDataError("no meta-training device left after removing validation ones")
        x0 = train[0]["x"]
        self._init_state(int((x0[0] if isinstance(x0, tuple) else x0).shape[-1]))
        leaves = [*self.meta_params_.values(), *self.inference_params_.values()]
        if self.meta_sgd:
            leaves += list(self.task_lr_.values())
        for leaf in leaves:
            leaf.requires_grad_(True)
        opt = torch.optim.Adam(leaves, lr=self.outer_lr)
        gen = np.random.default_rng(self.seed)
        best, best_state = -np.inf, None
        self.history_: list[dict[str, float]] = []
        with progress_bar(progress, f"meta-training {self.name}", self.episodes) as advance:
            for epi in range(self.episodes):
                mse, kl = self.episode_losses(self._sample_episode(train, gen))
                loss = mse.mean() + (self.kl_weight * kl.mean() if self.hw_embedding else 0.0)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                if valid and ((epi + 1) % self.eval_every == 0 or epi + 1 == self.episodes):
                    score = self._validate(valid)
                    self.history_.append({"episode": epi + 1, "valid_spearman": score})
                    if score > best:
                        best, best_state = score, self._snapshot()
                advance()
        if best_state is not None:
            self.meta_params_, self.inference_params_, self.task_lr_ = best_state
        self.best_valid_spearman_ = float(best) if best_state is not None else float("nan")
        self._freeze()

    def _snapshot(self) -> tuple[Params, Params, Params]:
        def cp(d: Params) -> Params:
            return {k: v.detach().clone() for k, v in d.items()}

        return cp(self.meta_params_), cp(self.inference_params_), cp(self.task_lr_)

    def _freeze(self) -> None:
        self.meta_params_, self.inference_params_, self.task_lr_ = self._snapshot()

    def _validate(self, tasks: list[DeviceTask]) -> float:
        scores = []
        for t in tasks:
            gen = np.random.default_rng(0)
            idx = gen.permutation(len(t.archs))
            sup, qry = idx[: self.n_support], idx[self.n_support : self.n_support + 500]
            adapted = self._adapted_copy(
                [t.archs[i] for i in sup], t.latency_ms[sup], t.reference_ms
            )
            mean, _ = adapted._predict([t.archs[i] for i in qry])
            scores.append(float(spearmanr(mean, t.latency_ms[qry])[0]))
        return float(np.nanmean(scores))

    # ------------------------------------------------------------------ adaptation
    def _adapted_copy(
        self, archs: list[str], ms: np.ndarray, emb: np.ndarray | None
    ) -> HELPPredictor:
        import copy

        other = copy.copy(self)
        other._adapt(archs, ms, emb)
        return other

    def _adapt(self, archs: list[str], latency_ms: np.ndarray, emb: np.ndarray | None) -> None:
        with torch_threads(1):
            self._adapt_impl(archs, latency_ms, emb)

    def _adapt_impl(self, archs: list[str], latency_ms: np.ndarray, emb: np.ndarray | None) -> None:
        if self.hw_embedding and (emb is None or emb.shape[0] != 10):
            raise NotEnoughDataError(
                "HELP needs `hw_embedding_ms`: the latencies of the 10 reference archs"
            )
        self.scale_ = target_range(latency_ms, emb)
        hw = torch.tensor(minmax(emb) if emb is not None else np.zeros(10), dtype=torch.float32)
        xs = self.featurizer_(archs)
        ys = torch.tensor(scale_targets(latency_ms, *self.scale_), dtype=torch.float32)
        n_mc = max(1, int(self.mc_samples))
        eps = torch.zeros(n_mc, self.z_dim_)
        if n_mc > 1:
            gen = torch.Generator().manual_seed(0)
            eps[1:] = torch.randn(n_mc - 1, self.z_dim_, generator=gen)
        meta = {k: v.detach() for k, v in self.meta_params_.items()}
        fn = vmap(self._adapt_task, in_dims=(None, None, None, None, None, None, 0))
        lrs = {k: v.detach() for k, v in self._lrs().items()}
        inf = {k: v.detach() for k, v in self.inference_params_.items()}
        with torch.no_grad():  # torch.func.grad still differentiates inside
            params, _ = fn(meta, lrs, inf, hw, xs, ys, eps)
        self.adapted_params_ = {k: v.detach() for k, v in params.items()}
        self.hw_tensor_ = hw
        fitted = self._samples_ms(xs)[0]
        self.support_log_rmse_ = float(np.sqrt(np.mean(np.log(fitted / latency_ms) ** 2)))

    def _samples_ms(self, x: Any) -> np.ndarray:
        """Milliseconds of the featurised archs ``x`` under each z sample (rows)."""
        hw = self.hw_tensor_ if self.hw_embedding else None
        with torch.no_grad(), torch_threads(1):
            fn = vmap(net.forward, in_dims=(0, None, None, None))
            y = fn(self.adapted_params_, x, hw, self.kind_).numpy().astype(np.float64)
        lo, hi = self.scale_
        ms = lo + (y - 0.05) / 0.9 * (hi - lo)
        return np.maximum(ms, 0.05 * lo)

    def _predict(self, archs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The mean-z prediction and its spread in ms: the adapted network's log-space error
        on the device's own measurements (as a log-normal, the form every predictor reports)
        combined with the spread over z samples, which alone says nothing about the error."""
        ms = self._samples_ms(self.featurizer_(archs))
        z_std = ms.std(axis=0) if ms.shape[0] > 1 else np.zeros(ms.shape[1])
        rmse = getattr(self, "support_log_rmse_", 0.0)  # 0: adapted by an older release
        err = ms[0] * np.sqrt(np.expm1(rmse**2))
        return ms[0], np.sqrt(z_std**2 + err**2)


@register_predictor("maml")
class MAMLPredictor(HELPPredictor):
    """MAML (Finn et al., ICML 2017) on the same network *without* hardware embedding.

    The HELP paper's meta-learning baseline: fixed inner learning rate, no hardware branch and
    no inference network, so the device is identified from the support set alone.
    """

    def __init__(
        self,
        *,
        episodes: int = 2000,
        tasks_per_episode: int = 8,
        n_support: int = 10,
        n_query: int = 200,
        inner_steps: int = 2,
        inner_lr: float = 1e-2,
        meta_sgd: bool = False,
        outer_lr: float = 1e-4,
        kl_weight: float = 0.0,
        hw_embedding: bool = False,
        hidden: int = 100,
        second_order: bool = True,
        validation_devices: Sequence[str] | None = None,
        eval_every: int = 50,
        mc_samples: int = 1,
        seed: int | None = 0,
    ) -> None:
        super().__init__(
            episodes=episodes,
            tasks_per_episode=tasks_per_episode,
            n_support=n_support,
            n_query=n_query,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            meta_sgd=meta_sgd,
            outer_lr=outer_lr,
            kl_weight=kl_weight,
            hw_embedding=hw_embedding,
            hidden=hidden,
            second_order=second_order,
            validation_devices=validation_devices,
            eval_every=eval_every,
            mc_samples=mc_samples,
            seed=seed,
        )
