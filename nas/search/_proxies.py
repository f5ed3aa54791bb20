"""Zero-cost proxies: training-free accuracy estimates computed on the real torch model.

Implemented after the papers (no code copied):

- ``synflow``: Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020 (arXiv 2006.05467) - sum of ``|w * dR/dw|`` with
  ``R`` the output sum of the linearised (``|w|``) network on an all-ones input.
- ``snip``: Lee et al., "SNIP: single-shot network pruning based on connection sensitivity",
  ICLR 2019 (arXiv 1810.02340) - sum of ``|w * dL/dw|`` over conv/linear weights.
- ``grad_norm``: sum of per-tensor gradient L2 norms of the loss.
- ``jacob_cov``: Mellor et al., "Neural architecture search without training" (arXiv
  2006.04647 v1) - eigenvalue score of the correlation of input Jacobians.
- ``naswot``: Mellor et al., ICML 2021 - ``log|K_H|`` of the Hamming kernel of ReLU codes.
- ``params`` / ``flops``: model size baselines.
- ``vote``: rank ensemble of synflow, jacob_cov and snip, as in Abdelfattah et al.,
  "Zero-cost proxies for lightweight NAS", ICLR 2021 (arXiv 2101.08134).

Every proxy uses one small random batch built from a seeded ``torch.Generator`` (no global RNG).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from search_spaces import SearchSpace

__all__ = [
    "BASE_PROXIES",
    "PROXIES",
    "VOTE_MEMBERS",
    "ProxyBatch",
    "compute_proxies",
    "make_batch",
    "rank_ensemble",
]

VOTE_MEMBERS = ("synflow", "jacob_cov", "snip")
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish)


class ProxyBatch:
    """A seeded random batch: model inputs plus targets shaped like the logits.

    Args:
        inputs: Model inputs (first one is the data tensor).
        targets: Class / next-token targets.
    """

    def __init__(self, inputs: tuple[torch.Tensor, ...], targets: torch.Tensor) -> None:
        self.inputs, self.targets = inputs, targets


def _logits(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return _logits(output["logits"])
    if isinstance(output, Sequence) and output:
        return _logits(output[0])
    if hasattr(output, "logits"):
        return _logits(output.logits)
    raise TypeError(f"cannot find logits in a model output of type {type(output).__name__}")


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1)
    )


def make_batch(
    space: SearchSpace[Any],
    model: nn.Module,
    *,
    batch_size: int = 64,
    seed: int = 0,
    resolution: int | None = None,
    device: str | torch.device = "cpu",
) -> ProxyBatch:
    """Seeded random inputs of the space's default workload (short prompts for LMs).

    Float inputs are standard normal; integer inputs (token ids) are kept from
    ``space.example_inputs``; targets are uniform over the logits' last dimension.

    Args:
        space: The search space.
        model: A model of the space on ``device`` (one forward pass sizes the targets).
        batch_size: Samples in the batch.
        seed: Seed of the batch.
        resolution: Image side for vision spaces (default: the default workload's).
        device: Torch device of the returned tensors.
    """
    if batch_size < 2:
        raise ValueError("`batch_size` must be greater than or equal to 2.")
    gen = torch.Generator().manual_seed(seed)
    base = space.default_workload()
    workload = replace(
        base,
        batch_size=batch_size,
        resolution=resolution or base.resolution,
        prompt_len=min(base.prompt_len, 64),
        meta_tokens=min(base.meta_tokens, 16),
        decode_len=min(base.decode_len, 8),
    )
    examples = space.example_inputs(workload)
    inputs = tuple(
        (torch.randn(t.shape, generator=gen) if t.is_floating_point() else t).to(device)
        for t in examples
    )
    with torch.no_grad():
        was = model.training
        model.eval()
        logits = _logits(model(*inputs))
        model.train(was)
    targets = torch.randint(0, logits.shape[-1], logits.shape[:-1], generator=gen).to(device)
    return ProxyBatch(inputs, targets)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Conv1d | nn.Linear) and m.weight.requires_grad
    ]


def _grads(model: nn.Module, batch: ProxyBatch) -> None:
    model.zero_grad(set_to_none=True)
    _loss(_logits(model(*batch.inputs)), batch.targets).backward()  # type: ignore[no-untyped-call,unused-ignore]


def grad_norm(model: nn.Module, batch: ProxyBatch) -> float:
    """Sum of per-parameter-tensor gradient L2 norms of the cross-entropy loss."""
    _grads(model, batch)
    with torch.no_grad():
        return float(sum(p.grad.norm() for p in model.parameters() if p.grad is not None))


def snip(model: nn.Module, batch: ProxyBatch) -> float:
    """SNIP saliency ``sum |w * dL/dw|`` over conv/linear weights (Lee et al., 2019)."""
    _grads(model, batch)
    with torch.no_grad():
        return float(sum((w * w.grad).abs().sum() for w in _weights(model) if w.grad is not None))


@torch.no_grad()
def _linearize(model: nn.Module) -> dict[str, torch.Tensor]:
    signs = {}
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            signs[name] = torch.sign(tensor)
            tensor.abs_()
    return signs


def synflow(model: nn.Module, batch: ProxyBatch) -> float:
    """SynFlow ``sum |w * dR/dw|`` on the linearised net in float64 (Tanaka et al., 2020)."""
    net = model.double().eval()
    _linearize(net)
    x = batch.inputs[0]
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    ones = ones if x.is_floating_point() else x[:1]
    net.zero_grad(set_to_none=True)
    torch.sum(_logits(net(ones, *batch.inputs[1:]))).backward()  # type: ignore[no-untyped-call,unused-ignore]
    with torch.no_grad():
        score = sum((w * w.grad).abs().sum() for w in _weights(net) if w.grad is not None)
    return float(score)


def jacob_cov(model: nn.Module, batch: ProxyBatch) -> float:
    """Jacobian-covariance score of NASWOT v1 (Mellor et al., arXiv 2006.04647v1)."""
    x = batch.inputs[0]
    if not x.is_floating_point():
        return math.nan
    x = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    logits = _logits(model(x, *batch.inputs[1:]))
    logits.backward(torch.ones_like(logits))  # type: ignore[no-untyped-call,unused-ignore]
    assert x.grad is not None  # noqa: S101 - set by backward above
    jac = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()
    # an image whose input gradient is constant (e.g. zero: no path from input to output)
    # has no correlation with the others: 0, not NaN and no NumPy "invalid value" warning
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(jac), nan=0.0)
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


@torch.no_grad()
def naswot(model: nn.Module, batch: ProxyBatch) -> float:
    """``log|K_H|`` of binary activation codes (Mellor et al., ICML 2021)."""
    n = batch.inputs[0].shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=batch.inputs[0].device)

    def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        c = (out.reshape(n, -1) > 0).double()
        kernel.add_(c @ c.T + (1 - c) @ (1 - c).T)

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _ACTIVATIONS)
    ]
    try:
        model(*batch.inputs)
    finally:
        for h in handles:
            h.remove()
    if not handles:
        return math.nan
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) > 0 else math.nan


def _params(model: nn.Module, batch: ProxyBatch) -> float:
    return float(sum(p.numel() for p in model.parameters()))


def _flops(model: nn.Module, batch: ProxyBatch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    one = tuple(t[:1] for t in batch.inputs)
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*one)
    return float(counter.get_total_flops())


BASE_PROXIES: dict[str, Callable[[nn.Module, ProxyBatch], float]] = {
    "synflow": synflow,
    "jacob_cov": jacob_cov,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "snip": snip,
    "params": _params,
    "flops": _flops,
}
PROXIES = (*BASE_PROXIES, "vote")


def compute_proxies(
    build: Callable[[], nn.Module],
    batch_fn: Callable[[nn.Module], ProxyBatch],
    names: Sequence[str],
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    on_error: Callable[[str, BaseException], None] | None = None,
) -> dict[str, float]:
    """Compute base proxies, each on a freshly built model (same seeded initialisation).

    A proxy that raises a ``RuntimeError`` (e.g. a failed allocation, inputs the model cannot
    take) or a ``LinAlgError`` is NaN; anything ``build`` or ``batch_fn`` raises propagates
    (so a ``build`` can stop the computation between proxies).

    Args:
        build: Builds a freshly initialised model (called once per proxy).
        batch_fn: Makes the batch for a model.
        names: Base proxy names (see :data:`BASE_PROXIES`).
        seed: Seed of the weight initialisation (forked RNG; global state untouched).
        device: Torch device to compute on.
        on_error: Called with the proxy's name and the exception when a proxy raised.
    """
    unknown = [n for n in names if n not in BASE_PROXIES]
    if unknown:
        raise ValueError(
            f"`names` has unknown proxies: {', '.join(unknown)} (known: {', '.join(BASE_PROXIES)})."
        )
    out: dict[str, float] = {}
    batch: ProxyBatch | None = None
    for name in names:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build().float().to(device)
        model.train()
        batch = batch or batch_fn(model)
        try:
            value = BASE_PROXIES[name](model, batch)
        except (RuntimeError, np.linalg.LinAlgError) as exc:
            if on_error is not None:
                on_error(name, exc)
            value = math.nan
        out[name] = value if math.isfinite(value) else math.nan
    return out


def rank_ensemble(
    scores: Mapping[str, Sequence[float] | np.ndarray], members: Sequence[str] = VOTE_MEMBERS
) -> np.ndarray:
    """Sum of each member's ranks over a set of architectures (higher = better).

    NaN scores rank lowest. This is the rank-vote ensemble of Abdelfattah et al. (ICLR 2021).
    """
    from scipy.stats import rankdata

    total: np.ndarray | None = None
    for m in members:
        v = np.asarray(scores[m], dtype=float)
        ranks = rankdata(np.where(np.isfinite(v), v, -np.inf), method="average")
        total = ranks if total is None else total + ranks
    if total is None:
        raise ValueError("`members` must name at least one proxy.")
    return total
