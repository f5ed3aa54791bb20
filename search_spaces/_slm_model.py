"""The Nemotron-Flash hybrid language model: meta tokens, pre-norm residual operators, tied head.

Fu et al., *Nemotron-Flash: Towards Latency-Optimal Hybrid Small Language Models*, NeurIPS 2025,
arXiv:2511.18890 (Sec. 3-4); meta tokens after Dong et al., *Hymba*, arXiv:2411.13676.
Layer-by-layer construction follows spec section 3.5 of ``docs/search-spaces.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from search_spaces._slm_arch import NemotronFlashArch, op_kind
from search_spaces._slm_attention import Attention
from search_spaces._slm_deltanet import DeltaNet
from search_spaces._slm_layers import RMSNorm, SwiGLU
from search_spaces._slm_mamba2 import Mamba2

__all__ = ["DEFAULT_VOCAB", "NemotronFlashLM", "SLMCache", "make_operator"]

DEFAULT_VOCAB = 131072


@dataclass
class SLMCache:
    """Per-layer decode caches (``None`` for FFNs) and the number of positions processed."""

    layers: list[Any] = field(default_factory=list)
    seen: int = 0


def make_operator(token: str, arch: NemotronFlashArch, *, chunk: int = 64) -> nn.Module:
    """Build the operator module of one flat-list token."""
    kind, window = op_kind(token)
    d = arch.hidden
    if kind == "ffn":
        return SwiGLU(d, arch.ffn_dim)
    if kind in ("attn", "swa"):
        return Attention(d, arch.n_heads, arch.kv_heads, window=window)
    if kind == "mamba2":
        return Mamba2(d, arch.d_state, chunk=chunk)
    return DeltaNet(d, gated=kind == "gdn", chunk=chunk)


class _Residual(nn.Module):
    """Pre-norm residual wrapper ``x + Op(RMSNorm(x))``."""

    def __init__(self, dim: int, op: nn.Module) -> None:
        super().__init__()
        self.norm = RMSNorm(dim)
        self.op = op

    def forward(self, x: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        y, cache = self.op(self.norm(x), cache)
        return x + y, cache


class NemotronFlashLM(nn.Module):
    """Hybrid SLM built from a :class:`NemotronFlashArch`.

    ``forward(tokens)`` returns the logits of the last position (a prefill); the measurement
    harness times :meth:`prefill` and :meth:`decode_step` separately.

    Args:
        arch: The architecture.
        vocab_size: Vocabulary (131,072 for the released tokenizer).
        chunk: Chunk length of the Mamba2 / DeltaNet prefill.
    """

    def __init__(
        self, arch: NemotronFlashArch, *, vocab_size: int = DEFAULT_VOCAB, chunk: int = 64
    ):
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"`vocab_size` must be greater than or equal to 1, got {vocab_size}.")
        self.arch, self.vocab_size = arch, vocab_size
        self.embed = nn.Embedding(vocab_size, arch.hidden)
        nn.init.normal_(self.embed.weight, std=arch.hidden**-0.5)
        self.meta = nn.Parameter(torch.randn(arch.meta_tokens, arch.hidden) * arch.hidden**-0.5)
        self.layers = nn.ModuleList(
            _Residual(arch.hidden, make_operator(tok, arch, chunk=chunk)) for tok in arch.ops
        )
        self.norm = RMSNorm(arch.hidden)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.norm(h) @ self.embed.weight.t()  # tied LM head
        return logits

    def _run(self, x: torch.Tensor, cache: SLMCache | None) -> tuple[torch.Tensor, SLMCache]:
        old = [None] * len(self.layers) if cache is None else cache.layers
        new = []
        for layer, layer_cache in zip(self.layers, old, strict=True):
            x, layer_cache = layer(x, layer_cache)
            new.append(layer_cache)
        seen = (0 if cache is None else cache.seen) + x.shape[1]
        return x, SLMCache(new, seen)

    def prefill(self, tokens: torch.Tensor) -> tuple[torch.Tensor, SLMCache]:
        """Prepend the meta tokens, run the prompt ``(B, L)`` and return last logits and cache."""
        if tokens.ndim != 2 or tokens.shape[1] < 1:
            raise ValueError(
                f"`tokens` must have shape (batch, length>=1), got {tuple(tokens.shape)}."
            )
        x = self.embed(tokens)
        if self.arch.meta_tokens:
            x = torch.cat([self.meta.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        h, cache = self._run(x, None)
        return self._logits(h[:, -1]), cache

    def decode_step(self, token: torch.Tensor, cache: SLMCache) -> tuple[torch.Tensor, SLMCache]:
        """Feed one token per sequence (``(B,)`` or ``(B, 1)``); returns its logits ``(B, V)``."""
        tok = token.reshape(-1, 1)
        h, cache = self._run(self.embed(tok), cache)
        return self._logits(h[:, -1]), cache

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the last prompt position (the prefill)."""
        logits: torch.Tensor = self.prefill(tokens)[0]
        return logits

    @torch.no_grad()
    def generate(self, tokens: torch.Tensor, n: int) -> torch.Tensor:
        """Greedy generation of ``n`` tokens after the prompt; returns ``(B, n)`` token ids."""
        if n < 1:
            raise ValueError(f"`n` must be greater than or equal to 1, got {n}.")
        logits, cache = self.prefill(tokens)
        out = [logits.argmax(-1)]
        for _ in range(n - 1):
            logits, cache = self.decode_step(out[-1], cache)
            out.append(logits.argmax(-1))
        return torch.stack(out, dim=1)
