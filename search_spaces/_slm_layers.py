"""Shared building blocks of the Nemotron-Flash hybrid SLM: RMSNorm, SwiGLU, short conv, RoPE.

Plain PyTorch, no custom kernels (spec section 3.5 of ``docs/search-spaces.md``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RMSNorm", "ShortConv", "SwiGLU", "apply_rope", "rope_tables"]


class RMSNorm(nn.Module):
    """Root-mean-square layer norm (Zhang and Sennrich, NeurIPS 2019) over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` to unit RMS and scale by the learned weight."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    """SwiGLU feed-forward ``down(silu(gate(x)) * up(x))`` (Shazeer, arXiv:2002.05202)."""

    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, inner, bias=False)
        self.up = nn.Linear(dim, inner, bias=False)
        self.down = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, cache: None = None) -> tuple[torch.Tensor, None]:
        """Apply the FFN; it keeps no decode state, so the cache is always ``None``."""
        return self.down(F.silu(self.gate(x)) * self.up(x)), None


class ShortConv(nn.Module):
    """Depthwise causal 1-D convolution with a decode cache of the last ``kernel - 1`` inputs.

    Args:
        channels: Number of channels (one filter each).
        kernel: Filter length (4 in Mamba2 and DeltaNet).
        bias: Whether the convolution has a bias (Mamba2 yes, DeltaNet no).
    """

    def __init__(self, channels: int, kernel: int = 4, *, bias: bool) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(channels, channels, kernel, groups=channels, bias=bias)

    def forward(
        self, x: torch.Tensor, cache: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolve ``x`` of shape ``(B, L, C)``; ``cache`` is ``(B, kernel - 1, C)`` past inputs.

        Implemented as ``kernel`` shifted multiply-adds in the token-major layout (faster on CPU
        than a depthwise ``conv1d`` and identical in value).

        Returns:
            The output ``(B, L, C)`` and the new cache (the last ``kernel - 1`` inputs).
        """
        length = x.shape[1]
        if cache is None:
            cache = x.new_zeros(x.shape[0], self.kernel - 1, x.shape[2])
        full = torch.cat([cache, x], dim=1)
        weight = self.conv.weight[:, 0, :]  # (C, kernel); tap kernel-1 multiplies x_t
        y = full[:, :length] * weight[:, 0]
        for r in range(1, self.kernel):
            y = y + full[:, r : r + length] * weight[:, r]
        if self.conv.bias is not None:
            y = y + self.conv.bias
        return y, full[:, -(self.kernel - 1) :]


def rope_tables(
    positions: torch.Tensor, head_dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables ``(L, head_dim)`` of RoPE (Su et al., arXiv:2104.09864)."""
    steps = torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device)
    inv = 1.0 / (theta ** (steps / head_dim))
    ang = positions.to(torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` of shape ``(B, H, L, D)`` by the tables (rotate-half convention)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)
