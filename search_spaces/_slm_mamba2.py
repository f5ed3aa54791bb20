"""Mamba2 mixer in plain PyTorch: chunked SSD prefill and recurrent decode (spec 3.6).

Dao and Gu, *Transformers are SSMs: Generalized Models and Efficient Algorithms Through
Structured State Space Duality*, ICML 2024, arXiv:2405.21060.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._slm_layers import RMSNorm, ShortConv

__all__ = ["Mamba2", "Mamba2Cache", "ssd_chunked", "ssd_recurrent"]


def ssd_recurrent(
    x: torch.Tensor,
    dt: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    h0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSD recurrence ``h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T``, ``y_t = h_t C_t``.

    (Used for decode and as the reference of :func:`ssd_chunked`.)

    Args:
        x: Inputs ``(Bt, L, H, P)``.
        dt: Positive step sizes ``(Bt, L, H)``.
        a: Negative per-head decay rates ``A`` ``(H,)``.
        b: Input projections ``(Bt, L, N)`` (one group shared by all heads).
        c: Output projections ``(Bt, L, N)``.
        h0: Initial state ``(Bt, H, P, N)`` or ``None`` for zeros.

    Returns:
        ``y`` ``(Bt, L, H, P)`` (without the ``D x`` skip) and the final state.
    """
    bt, length, heads, p = x.shape
    h = x.new_zeros(bt, heads, p, b.shape[-1]) if h0 is None else h0
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * a)[:, :, None, None]
        h = decay * h + (dt[:, t, :, None] * x[:, t])[..., None] * b[:, t, None, None, :]
        ys.append(torch.einsum("bhpn,bn->bhp", h, c[:, t]))
    return torch.stack(ys, dim=1), h


def _ssd_block(
    x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Intra-chunk outputs, chunk states and cumulative log-decays of equal-length chunks.

    Shapes: ``x (Bt, K, Q, H, P)``, ``dt (Bt, K, Q, H)``, ``b, c (Bt, K, Q, N)``. Products with
    ``B`` and ``C`` (shared by all heads) fold the heads into one matmul.
    """
    bt, k, q, heads, p = x.shape
    cum = torch.cumsum(dt * a, dim=2).transpose(2, 3)  # l_i, (Bt, K, H, Q)
    seg = cum[..., :, None] - cum[..., None, :]  # l_i - l_j, (Bt, K, H, Qi, Qj)
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    scores = (c @ b.transpose(-1, -2))[:, :, None] * torch.exp(seg.masked_fill(~causal, -torch.inf))
    dx = dt[..., None] * x  # (Bt, K, Q, H, P)
    y_intra = (scores @ dx.transpose(2, 3)).transpose(2, 3)  # (Bt, K, Q, H, P)
    to_end = torch.exp(cum[..., -1:] - cum).transpose(2, 3)  # exp(l_Q - l_j), (Bt, K, Q, H)
    weighted = (to_end[..., None] * dx).reshape(bt, k, q, heads * p)
    states = (weighted.transpose(-1, -2) @ b).reshape(bt, k, heads, p, -1)  # (Bt, K, H, P, N)
    return y_intra, states, cum


def ssd_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    h0: torch.Tensor | None = None,
    chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked SSD form of :func:`ssd_recurrent` (same arguments and results).

    Full chunks are processed in one batch; a shorter last chunk runs at its own length, so
    the final state is exact. Only the scan over chunk states is sequential.
    """
    if chunk < 1:
        raise ValueError(f"`chunk` must be greater than or equal to 1, got {chunk}.")
    bt, length, heads, p = x.shape
    n = b.shape[-1]
    h = x.new_zeros(bt, heads, p, n) if h0 is None else h0
    outs = []
    full = (length // chunk) * chunk
    for lo, hi, q in ((0, full, chunk), (full, length, length - full)):
        if hi <= lo:
            continue
        k = (hi - lo) // q

        def split(
            t: torch.Tensor, lo: int = lo, hi: int = hi, q: int = q, k: int = k
        ) -> torch.Tensor:
            return t[:, lo:hi].reshape(bt, k, q, *t.shape[2:])

        cs = split(c)
        y_intra, states, cum = _ssd_block(split(x), split(dt), a, split(b), cs)
        prev = []
        for i in range(k):  # inter-chunk scan
            prev.append(h)
            h = torch.exp(cum[:, i, :, -1])[:, :, None, None] * h + states[:, i]
        hp = torch.stack(prev, 1).reshape(bt, k, heads * p, n)
        y_inter = (cs @ hp.transpose(-1, -2)).reshape(bt, k, q, heads, p)
        y_inter = y_inter * torch.exp(cum).transpose(2, 3)[..., None]
        outs.append((y_intra + y_inter).reshape(bt, hi - lo, heads, p))
    return torch.cat(outs, dim=1), h


@dataclass
class Mamba2Cache:
    """Decode state of a Mamba2 layer: short-conv inputs ``(B, 3, C)`` and SSM state."""

    conv: torch.Tensor
    ssm: torch.Tensor


class Mamba2(nn.Module):
    """Mamba2 mixer (expand 2, head dim 64, one B/C group, conv kernel 4; spec 3.5).

    Args:
        dim: Model width ``d``.
        d_state: State size ``N``.
        head_dim: SSM head dimension ``P``.
        chunk: Chunk length of the SSD prefill.
    """

    def __init__(self, dim: int, d_state: int, *, head_dim: int = 64, chunk: int = 64) -> None:
        super().__init__()
        self.d_inner, self.d_state, self.head_dim, self.chunk = 2 * dim, d_state, head_dim, chunk
        self.heads = self.d_inner // head_dim
        self.in_proj = nn.Linear(dim, 2 * self.d_inner + 2 * d_state + self.heads, bias=False)
        self.conv = ShortConv(self.d_inner + 2 * d_state, 4, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, self.heads)))
        self.dt_bias = nn.Parameter(torch.full((self.heads,), -2.0))
        self.D = nn.Parameter(torch.ones(self.heads))
        self.norm = RMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)

    def forward(
        self, x: torch.Tensor, cache: Mamba2Cache | None = None
    ) -> tuple[torch.Tensor, Mamba2Cache]:
        """Chunked SSD for multi-token input, the recurrence for one token with a cache."""
        bt, length, _ = x.shape
        di, n = self.d_inner, self.d_state
        z, xbc, dt = torch.split(self.in_proj(x), [di, di + 2 * n, self.heads], dim=-1)
        xbc, conv_cache = self.conv(xbc, None if cache is None else cache.conv)
        xs, b, c = torch.split(F.silu(xbc), [di, n, n], dim=-1)
        xs = xs.reshape(bt, length, self.heads, self.head_dim)
        dt = F.softplus(dt + self.dt_bias)
        a = -torch.exp(self.A_log)
        h0 = None if cache is None else cache.ssm
        if length == 1 and cache is not None:
            y, h = ssd_recurrent(xs, dt, a, b, c, h0)
        else:
            y, h = ssd_chunked(xs, dt, a, b, c, h0, self.chunk)
        y = y + self.D[:, None] * xs
        y = self.norm(y.reshape(bt, length, di) * F.silu(z))
        return self.out_proj(y), Mamba2Cache(conv_cache, h)
