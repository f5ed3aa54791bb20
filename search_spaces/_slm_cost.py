"""Analytic parameter, MAC and decode-state counts of Nemotron-Flash archs (spec 3.8).

Parameter counts are exact for :class:`~search_spaces._slm_model.NemotronFlashLM` (a test checks
them against the module on the ``meta`` device); MACs follow the per-operator table of spec 3.8
(matrix products only, norms excluded). Everything is closed-form, so profiling takes microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from search_spaces._slm_arch import NemotronFlashArch, op_kind

__all__ = ["SLMCost", "op_params", "slm_cost"]

_BYTES_PER_ELEMENT = 4  # fp32


@dataclass(frozen=True)
class SLMCost:
    """Workload-dependent analytic costs (batch included)."""

    params: int
    prefill_macs: int
    decode_macs_per_token: int
    decode_macs_total: int
    cache_bytes: int
    prefill_len: int


def op_params(token: str, arch: NemotronFlashArch) -> int:
    """Exact parameters of one operator, including its pre-norm weight."""
    kind, _ = op_kind(token)
    d, h, hkv, n = arch.hidden, arch.n_heads, arch.kv_heads, arch.d_state
    di, mh = arch.d_inner, arch.mamba_heads
    if kind == "ffn":
        core = 3 * d * arch.ffn_dim
    elif kind in ("attn", "swa"):
        core = 2 * d * 128 * h + 2 * d * 128 * hkv
    elif kind == "mamba2":
        conv = di + 2 * n
        core = d * (2 * di + 2 * n + mh) + 5 * conv + 3 * mh + di + di * d
    else:
        core = 4 * d * d + 12 * d + d * h + 128
        if kind == "gdn":
            core += d * h + 2 * h + d * d
    return core + d


def _weight_macs(kind: str, arch: NemotronFlashArch) -> int:
    d, h, hkv, di, n = arch.hidden, arch.n_heads, arch.kv_heads, arch.d_inner, arch.d_state
    if kind == "ffn":
        return 3 * d * arch.ffn_dim
    if kind in ("attn", "swa"):
        return 2 * d * 128 * h + 2 * d * 128 * hkv
    if kind == "mamba2":
        return d * (2 * di + 2 * n + di // 64) + di * d
    if kind == "deltanet":
        return 4 * d * d + d * h
    return 5 * d * d + 2 * d * h


def _seq_macs(kind: str, window: int, arch: NemotronFlashArch, ctx: int) -> int:
    """Sequence-dependent MACs of one token that sees ``ctx`` positions (itself included)."""
    if kind in ("attn", "swa"):
        return 2 * 128 * arch.n_heads * (min(ctx, window) if window else ctx)
    if kind == "mamba2":
        return 3 * arch.d_inner * arch.d_state
    if kind in ("deltanet", "gdn"):
        return 3 * 128 * arch.hidden
    return 0


def _seq_macs_sum(kind: str, window: int, arch: NemotronFlashArch, length: int) -> int:
    """Sum of :func:`_seq_macs` over contexts 1..length (closed form)."""
    if kind in ("attn", "swa"):
        w = window if window else length
        head = min(length, w)
        total = head * (head + 1) // 2 + max(0, length - w) * w
        return 2 * 128 * arch.n_heads * total
    return length * _seq_macs(kind, window, arch, 1)


def _state_elements(kind: str, window: int, arch: NemotronFlashArch, ctx: int) -> int:
    d, di, n = arch.hidden, arch.d_inner, arch.d_state
    if kind in ("attn", "swa"):
        return 2 * 128 * arch.kv_heads * (min(ctx, window) if window else ctx)
    if kind == "mamba2":
        return di * n + 3 * (di + 2 * n)
    if kind in ("deltanet", "gdn"):
        return 128 * d + 9 * d
    return 0


@lru_cache(maxsize=4096)
def slm_cost(
    arch: NemotronFlashArch, *, prompt_len: int, decode_len: int, batch: int, vocab: int
) -> SLMCost:
    """Params, prefill MACs, decode MACs and decode-state bytes of ``arch`` under a workload.

    The prefill covers ``meta_tokens + prompt_len`` positions and computes logits of the last
    one only; each of the ``decode_len`` decode steps feeds one token and computes its logits.
    Decode MACs per token and cache bytes are taken at the end of the workload.
    """
    d = arch.hidden
    params = vocab * d + arch.meta_tokens * d + d + sum(op_params(t, arch) for t in arch.ops)
    lp = arch.meta_tokens + prompt_len
    end = lp + decode_len
    ops = [op_kind(t) for t in arch.ops]
    prefill = vocab * d
    per_token_end = vocab * d
    decode_total = decode_len * vocab * d
    state = 0
    for kind, window in ops:
        wm = _weight_macs(kind, arch)
        prefill += lp * wm + _seq_macs_sum(kind, window, arch, lp)
        per_token_end += wm + _seq_macs(kind, window, arch, end)
        decode_total += decode_len * wm + (
            _seq_macs_sum(kind, window, arch, end) - _seq_macs_sum(kind, window, arch, lp)
        )
        state += _state_elements(kind, window, arch, end)
    return SLMCost(
        params=params,
        prefill_macs=batch * prefill,
        decode_macs_per_token=batch * per_token_end,
        decode_macs_total=batch * decode_total,
        cache_bytes=batch * state * _BYTES_PER_ELEMENT,
        prefill_len=lp,
    )
