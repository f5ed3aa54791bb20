"""Functional HELP networks (pure functions of parameter dicts, for ``torch.func``).

Architecture of HELP (Lee et al., NeurIPS 2021, arXiv 2106.08630): an architecture branch (a
4-layer GCN 8->100->100->100->100 read at the global node for NAS-Bench-201, an MLP in->100->100
otherwise), a hardware branch 10->100->100 over the hardware embedding, and a head
200->200->200->1, all ReLU. An inference network 10->10->2*603 maps the hardware embedding to
a diagonal Gaussian latent ``z`` that modulates the head: ``w * (1 + 0.01 z_w)``,
``b + 0.01 z_b``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["forward", "init_inference", "init_params", "modulate"]

Params = dict[str, Tensor]
HEAD = ("fc3", "fc4", "fc5")


def _linear(gen: torch.Generator, n_in: int, n_out: int, name: str, out: Params) -> None:
    bound = 1.0 / math.sqrt(n_in)
    out[f"{name}.weight"] = (torch.rand(n_out, n_in, generator=gen) * 2 - 1) * bound
    out[f"{name}.bias"] = (torch.rand(n_out, generator=gen) * 2 - 1) * bound


def init_params(
    kind: str, n_feat: int, *, hidden: int, hw_dim: int, hw_on: bool, seed: int
) -> Params:
    """Fresh meta-parameters (PyTorch default initialisation; GCN weights U(-0.05, 0.05))."""
    gen = torch.Generator().manual_seed(seed)
    p: Params = {}
    if kind == "gcn":
        for i, n_in in enumerate((n_feat, hidden, hidden, hidden), start=1):
            p[f"gc{i}.weight"] = (torch.rand(n_in, hidden, generator=gen) * 2 - 1) * 0.05
            bound = 1.0 / math.sqrt(hidden)
            p[f"gc{i}.bias"] = (torch.rand(hidden, generator=gen) * 2 - 1) * bound
    else:
        _linear(gen, n_feat, hidden, "fc1", p)
        _linear(gen, hidden, hidden, "fc2", p)
    h = hidden
    if hw_on:
        _linear(gen, hw_dim, hidden, "fc_hw1", p)
        _linear(gen, hidden, hidden, "fc_hw2", p)
        h = 2 * hidden
    _linear(gen, h, h, "fc3", p)
    _linear(gen, h, h, "fc4", p)
    _linear(gen, h, 1, "fc5", p)
    return p


def init_inference(hw_dim: int, head_width: int, *, seed: int) -> Params:
    """Inference network 10 -> 10 -> 2 * 3 * (head_width + 1)."""
    gen = torch.Generator().manual_seed(seed + 7919)
    p: Params = {}
    _linear(gen, hw_dim, 10, "z1", p)
    _linear(gen, 10, 2 * 3 * (head_width + 1), "z2", p)
    return p


def modulate(
    params: Params, inf: Params, hw: Tensor, eps: Tensor, *, z_scale: float = 0.01
) -> tuple[Params, Tensor]:
    """Modulate the head with ``z ~ q(z | hw)``; returns (params, KL(q || N(0, I))).

    ``eps`` (standard normal, shape ``(3 * (width + 1),)``) is the reparameterisation noise;
    zeros give the posterior mean.
    """
    stats = F.linear(F.relu(F.linear(hw, inf["z1.weight"], inf["z1.bias"])), inf["z2.weight"])
    stats = stats + inf["z2.bias"]
    half = stats.shape[-1] // 2
    mu, sigma = stats[:half], F.softplus(stats[half:]) + 1e-6
    z = mu + sigma * eps
    kl = (0.5 * (sigma**2 + mu**2 - 1.0) - torch.log(sigma)).sum()
    width = (half - 3) // 3
    out = dict(params)
    for i, layer in enumerate(HEAD):
        zw = z[i * width : (i + 1) * width]
        out[f"{layer}.weight"] = params[f"{layer}.weight"] * (1.0 + z_scale * zw)
        out[f"{layer}.bias"] = params[f"{layer}.bias"] + z_scale * z[3 * width + i]
    return out, kl


def _arch_branch(params: Params, x: Any, kind: str) -> Tensor:
    if kind == "gcn":
        feat, adj = x
        h = feat
        for i in range(1, 5):
            h = F.relu(adj @ (h @ params[f"gc{i}.weight"]) + params[f"gc{i}.bias"])
        out: Tensor = h[..., -1, :]
        return out
    h = F.relu(F.linear(x, params["fc1.weight"], params["fc1.bias"]))
    return F.relu(F.linear(h, params["fc2.weight"], params["fc2.bias"]))


def forward(params: Params, x: Any, hw: Tensor | None, kind: str) -> Tensor:
    """Predicted (scaled) latency, shape ``(n,)``.

    Args:
        params: Meta-learner parameters (possibly adapted / modulated).
        x: ``(feat (n, 9, 8), adj (n, 9, 9))`` for ``kind="gcn"``, else ``(n, d)``.
        hw: Hardware embedding ``(10,)`` or None when the hardware branch is off.
        kind: ``"gcn"`` or ``"mlp"``.
    """
    h = _arch_branch(params, x, kind)
    if hw is not None and "fc_hw1.weight" in params:
        g = F.relu(F.linear(hw, params["fc_hw1.weight"], params["fc_hw1.bias"]))
        g = F.relu(F.linear(g, params["fc_hw2.weight"], params["fc_hw2.bias"]))
        h = torch.cat([h, g.expand(h.shape[0], -1)], dim=-1)
    h = F.relu(F.linear(h, params["fc3.weight"], params["fc3.bias"]))
    h = F.relu(F.linear(h, params["fc4.weight"], params["fc4.bias"]))
    return F.linear(h, params["fc5.weight"], params["fc5.bias"]).squeeze(-1)
