"""Full causal GQA attention and sliding-window attention with KV caches (spec 3.5).

Full attention keeps a growing KV cache; sliding-window attention (Beltagy et al., Longformer,
arXiv:2004.05150) keeps a ring buffer of ``window`` keys/values. Both use rotary position
embeddings (Su et al., arXiv:2104.09864) and grouped-query attention (Ainslie et al.,
arXiv:2305.13245).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._slm_layers import apply_rope, rope_tables

__all__ = ["Attention", "AttentionCache"]


@dataclass
class AttentionCache:
    """Keys/values ``(B, Hkv, T, D)`` with the absolute position of each slot and tokens seen.

    For full attention ``T`` grows with the context; for SWA ``T == window`` (a ring buffer whose
    empty slots have position -1).
    """

    k: torch.Tensor
    v: torch.Tensor
    slot_pos: torch.Tensor
    seen: int


class Attention(nn.Module):
    """Causal grouped-query attention with RoPE; ``window`` > 0 makes it sliding-window.

    Args:
        dim: Model width.
        n_heads: Query heads (head dim 128).
        kv_heads: Key/value heads.
        window: 0 for full attention, else the number of most recent positions each query sees.
        head_dim: Head dimension.
    """

    def __init__(
        self, dim: int, n_heads: int, kv_heads: int, *, window: int = 0, head_dim: int = 128
    ) -> None:
        super().__init__()
        self.n_heads, self.kv_heads, self.head_dim, self.window = (
            n_heads,
            kv_heads,
            head_dim,
            window,
        )
        self.q = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * head_dim, bias=False)
        self.v = nn.Linear(dim, kv_heads * head_dim, bias=False)
        self.o = nn.Linear(n_heads * head_dim, dim, bias=False)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        b, length, _ = x.shape
        return x.view(b, length, n, self.head_dim).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, cache: AttentionCache | None = None
    ) -> tuple[torch.Tensor, AttentionCache]:
        """Attend over ``x`` ``(B, L, dim)`` and the cached context; returns output, new cache."""
        b, length, _ = x.shape
        start = 0 if cache is None else cache.seen
        q_pos = torch.arange(start, start + length, device=x.device)
        cos, sin = rope_tables(q_pos, self.head_dim)
        q = apply_rope(self._heads(self.q(x), self.n_heads), cos, sin)
        k = apply_rope(self._heads(self.k(x), self.kv_heads), cos, sin)
        v = self._heads(self.v(x), self.kv_heads)
        if cache is None and (self.window == 0 or length <= self.window):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        elif cache is not None and self.window == 0 and length == 1:  # decode sees everything
            keys, values = torch.cat([cache.k, k], dim=2), torch.cat([cache.v, v], dim=2)
            out = F.scaled_dot_product_attention(q, keys, values, enable_gqa=True)
        else:
            keys, values, k_pos = k, v, q_pos
            if cache is not None:
                keys = torch.cat([cache.k, k], dim=2)
                values = torch.cat([cache.v, v], dim=2)
                k_pos = torch.cat([cache.slot_pos, q_pos])
            mask = (k_pos[None, :] >= 0) & (k_pos[None, :] <= q_pos[:, None])
            if self.window:
                mask &= k_pos[None, :] > q_pos[:, None] - self.window
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=True)
        y = self.o(out.transpose(1, 2).reshape(b, length, -1))
        return y, self._update(cache, k, v, q_pos)

    def _update(
        self, cache: AttentionCache | None, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor
    ) -> AttentionCache:
        seen = (0 if cache is None else cache.seen) + k.shape[2]  # no .item(): meta tensors
        if not self.window:
            if cache is None:
                return AttentionCache(k, v, pos, seen)
            return AttentionCache(
                torch.cat([cache.k, k], 2),
                torch.cat([cache.v, v], 2),
                torch.cat([cache.slot_pos, pos]),
                seen,
            )
        if cache is None:
            shape = (k.shape[0], k.shape[1], self.window, k.shape[3])
            cache = AttentionCache(
                k.new_zeros(shape),
                v.new_zeros(shape),
                torch.full((self.window,), -1, dtype=torch.long, device=k.device),
                0,
            )
        keep = min(k.shape[2], self.window)  # only the last `window` positions survive
        slots = pos[-keep:] % self.window
        cache.k[:, :, slots] = k[:, :, -keep:]  # the ring buffer is updated in place
        cache.v[:, :, slots] = v[:, :, -keep:]
        cache.slot_pos[slots] = pos[-keep:]
        cache.seen = seen
        return cache
