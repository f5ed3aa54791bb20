"""DeltaNet and Gated DeltaNet mixers: chunked WY prefill and recurrent decode (spec 3.7).

Yang et al., *Parallelizing Linear Transformers with the Delta Rule over Sequence Length*,
NeurIPS 2024, arXiv:2406.06484 (DeltaNet); Yang, Kautz and Hatamizadeh, *Gated Delta Networks:
Improving Mamba2 with Delta Rule*, ICLR 2025, arXiv:2412.06464 (Gated DeltaNet).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._slm_layers import RMSNorm, ShortConv

__all__ = ["DeltaNet", "DeltaNetCache", "delta_chunked", "delta_recurrent"]


def delta_recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    log_alpha: torch.Tensor | None = None,
    s0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Delta rule ``S_t = a_t S_{t-1} (I - b_t k_t k_t^T) + b_t v_t k_t^T``, ``o_t = S_t q_t``.

    (Recurrent form, used for decode and as the reference of :func:`delta_chunked`.)

    Args:
        q: Queries ``(B, H, L, Dk)``.
        k: L2-normalised keys ``(B, H, L, Dk)``.
        v: Values ``(B, H, L, Dv)``.
        beta: Write strengths in (0, 1) ``(B, H, L)``.
        log_alpha: Log decays ``(B, H, L)``; ``None`` is DeltaNet (``alpha = 1``).
        s0: Initial state ``(B, H, Dv, Dk)`` or ``None`` for zeros.

    Returns:
        Outputs ``(B, H, L, Dv)`` and the final state.
    """
    bt, heads, length, dk = k.shape
    s = q.new_zeros(bt, heads, v.shape[-1], dk) if s0 is None else s0
    outs = []
    for t in range(length):
        if log_alpha is not None:
            s = torch.exp(log_alpha[:, :, t])[..., None, None] * s
        kt, bt_ = k[:, :, t], beta[:, :, t, None]
        err = v[:, :, t] - torch.einsum("bhvk,bhk->bhv", s, kt)
        s = s + (bt_ * err)[..., None] * kt[:, :, None, :]
        outs.append(torch.einsum("bhvk,bhk->bhv", s, q[:, :, t]))
    return torch.stack(outs, dim=2), s


def _wy_block(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-chunk WY quantities ``W``, ``U`` and the masked, decayed ``Q K^T`` (chunks in dim 2)."""
    c = k.shape[-2]
    gdiff = g[..., :, None] - g[..., None, :]  # g_i - g_j
    strict = torch.ones(c, c, dtype=torch.bool, device=k.device).tril(-1)
    lower = torch.ones(c, c, dtype=torch.bool, device=k.device).tril()
    decay = torch.exp(gdiff.masked_fill(~lower, float("-inf")))
    kk = (k @ k.transpose(-1, -2)) * decay
    a_mat = (beta[..., None] * kk).masked_fill(~strict, 0.0)
    eye = torch.eye(c, dtype=k.dtype, device=k.device)
    rhs = torch.cat([beta[..., None] * torch.exp(g)[..., None] * k, beta[..., None] * v], -1)
    sol = torch.linalg.solve_triangular(a_mat + eye, rhs, upper=False, unitriangular=True)
    w, u = sol.split([k.shape[-1], v.shape[-1]], dim=-1)
    qk = (q @ k.transpose(-1, -2)) * decay  # decay is zero above the diagonal
    return w, u, qk


def delta_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    log_alpha: torch.Tensor | None = None,
    s0: torch.Tensor | None = None,
    chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked WY form of :func:`delta_recurrent` (same arguments and results).

    Full chunks compute ``W``, ``U`` in one batched triangular solve; a shorter last chunk runs
    at its own length. Only the state pass over chunks is sequential.
    """
    if chunk < 1:
        raise ValueError(f"`chunk` must be greater than or equal to 1, got {chunk}.")
    bt, heads, length, dk = k.shape
    s = q.new_zeros(bt, heads, v.shape[-1], dk) if s0 is None else s0
    la = torch.zeros_like(beta) if log_alpha is None else log_alpha
    outs = []
    full = (length // chunk) * chunk
    for lo, hi, size in ((0, full, chunk), (full, length, length - full)):
        if hi <= lo:
            continue
        n = (hi - lo) // size

        def split(
            t: torch.Tensor, lo: int = lo, hi: int = hi, size: int = size, n: int = n
        ) -> torch.Tensor:
            return t[:, :, lo:hi].reshape(bt, heads, n, size, *t.shape[3:])

        qs, ks, vs, bs = split(q), split(k), split(v), split(beta)
        g = torch.cumsum(split(la), dim=-1)
        w, u, qk = _wy_block(qs, ks, vs, bs, g)
        gamma = torch.exp(g)
        for i in range(n):
            u_i = u[:, :, i] - w[:, :, i] @ s.transpose(-1, -2)
            qi = gamma[:, :, i, :, None] * qs[:, :, i]
            outs.append(qi @ s.transpose(-1, -2) + qk[:, :, i] @ u_i)
            to_end = torch.exp(g[:, :, i, -1:] - g[:, :, i])[..., None]
            s = gamma[:, :, i, -1, None, None] * s + u_i.transpose(-1, -2) @ (to_end * ks[:, :, i])
    return torch.cat(outs, dim=2), s


@dataclass
class DeltaNetCache:
    """Decode state of a (Gated) DeltaNet layer: three short-conv caches and the state."""

    conv_q: torch.Tensor
    conv_k: torch.Tensor
    conv_v: torch.Tensor
    state: torch.Tensor


class DeltaNet(nn.Module):
    """DeltaNet mixer, or Gated DeltaNet with ``gated=True`` (spec 3.5).

    Args:
        dim: Model width ``d`` (``d / head_dim`` heads, key and value head dim 128).
        gated: Add the decay gate ``alpha_t`` and the SiLU output gate (Gated DeltaNet).
        head_dim: Key/value head dimension.
        chunk: Chunk length of the WY prefill.
    """

    def __init__(self, dim: int, *, gated: bool = False, head_dim: int = 128, chunk: int = 64):
        super().__init__()
        self.heads, self.head_dim, self.gated, self.chunk = dim // head_dim, head_dim, gated, chunk
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.q_conv = ShortConv(dim, 4, bias=False)
        self.k_conv = ShortConv(dim, 4, bias=False)
        self.v_conv = ShortConv(dim, 4, bias=False)
        self.b_proj = nn.Linear(dim, self.heads, bias=False)
        if gated:
            self.a_proj = nn.Linear(dim, self.heads, bias=False)
            self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, self.heads)))
            self.dt_bias = nn.Parameter(torch.full((self.heads,), -2.0))
            self.g_proj = nn.Linear(dim, dim, bias=False)
        self.o_norm = RMSNorm(head_dim)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        return x.view(b, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, cache: DeltaNetCache | None = None
    ) -> tuple[torch.Tensor, DeltaNetCache]:
        """Chunked WY form for multi-token input, the recurrence for one token with a cache."""
        bt, length, dim = x.shape
        q, cq = self.q_conv(self.q_proj(x), None if cache is None else cache.conv_q)
        k, ck = self.k_conv(self.k_proj(x), None if cache is None else cache.conv_k)
        v, cv = self.v_conv(self.v_proj(x), None if cache is None else cache.conv_v)
        q = F.normalize(self._heads(F.silu(q)), dim=-1) * self.head_dim**-0.5
        k = F.normalize(self._heads(F.silu(k)), dim=-1)
        v = self._heads(F.silu(v))
        beta = torch.sigmoid(self.b_proj(x)).transpose(1, 2)
        log_alpha = None
        if self.gated:
            rate = F.softplus(self.a_proj(x) + self.dt_bias)
            log_alpha = (-torch.exp(self.A_log) * rate).transpose(1, 2)
        s0 = None if cache is None else cache.state
        if length == 1 and cache is not None:
            o, s = delta_recurrent(q, k, v, beta, log_alpha, s0)
        else:
            o, s = delta_chunked(q, k, v, beta, log_alpha, s0, self.chunk)
        o = self.o_norm(o).transpose(1, 2).reshape(bt, length, dim)
        if self.gated:
            o = o * F.silu(self.g_proj(x))
        return self.o_proj(o), DeltaNetCache(cq, ck, cv, s)
