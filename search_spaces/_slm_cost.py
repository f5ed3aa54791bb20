"""Analytic parameter, MAC, decode-state and dispatched-operator counts of Nemotron-Flash archs.

Parameter counts are exact for :class:`~search_spaces._slm_model.NemotronFlashLM` (a test checks
them against the module on the ``meta`` device); MACs follow the per-operator table of spec 3.8
(matrix products only, norms excluded); :func:`slm_dispatched_ops` counts the operators eager
PyTorch dispatches in one measured run (a test checks it against a dispatch trace of the real
module). Everything is closed-form, so profiling takes microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from search_spaces._slm_arch import NemotronFlashArch, op_kind

__all__ = ["SLMCost", "op_params", "slm_cost", "slm_dispatched_ops"]

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


# Operators eager PyTorch dispatches one by one: aten calls (after the decomposition of composite
# ops, as under ``torch.no_grad``) other than views and bare allocations, *including* the ones
# computed from constants only (RoPE tables, SWA masks, ``exp(A_log)``, causal masks), which eager
# mode runs again at every call. "Views" are those of ``predictors.zeroshot._trace``, which also
# counts dtype copies as free (the RoPE tables' five ``_to_copy`` per attention call are left
# out). Counted by tracing each operator on CPU, where the measurements run:
# ``scaled_dot_product_attention`` is one fused kernel there (it decomposes into a handful of ops
# on the ``meta`` device), plus ``scalar_tensor``, ``scalar_tensor``, ``where`` that turn a
# boolean mask into an additive one.
_NORM_OPS = 6  # RMSNorm: pow, mean, add, rsqrt, mul, mul
_RESIDUAL_OPS = _NORM_OPS + 1  # pre-norm + residual add, around every operator
_HEAD_OPS = 2 + _NORM_OPS  # embedding, final RMSNorm, tied-head matmul (one position)
_META_CAT_OPS = 1  # the prefill's cat of meta tokens and prompt embeddings
#: One prefill call of an operator, without its residual wrapper and the chunk terms below.
#: ``attn``: 4 projections, 10 RoPE-table ops, 2 x 5 rotation ops, fused SDPA; ``swa`` adds the
#: ring-buffer cache (2 ``new_zeros``, ``full``, ``remainder``, 3 ``index_put_``).
_PREFILL_OPS = {"ffn": 5, "attn": 25, "swa": 32, "mamba2": 29, "deltanet": 52, "gdn": 60}
#: Chunked prefill (Mamba2 SSD, (Gated) DeltaNet WY): a group of equal chunks (the full chunks,
#: then a shorter last chunk if any) costs these ops once ...
_CHUNK_GROUP_OPS = {"mamba2": 21, "deltanet": 25, "gdn": 25}
#: ... and its sequential pass over chunk states these ops per chunk.
_CHUNK_OPS = {"mamba2": 3, "deltanet": 12, "gdn": 12}
#: SWA attending through an explicit mask (prefill longer than the window, every decode step):
#: 6 mask ops (``ge``, ``le``, ``and``, ``sub``, ``gt``, ``and_``) and the 3 mask conversions.
_SWA_MASK_OPS = 9
#: One decode step (one token with a cache) of an operator, without its residual wrapper.
#: ``attn`` adds 2 KV concatenations for attending and 3 for the grown cache; ``swa`` attends
#: through the mask and concatenates keys, values and slot positions.
_DECODE_OPS = {
    "ffn": 5,
    "attn": 25 + 5,
    "swa": 25 + 3 + _SWA_MASK_OPS + 4,
    "mamba2": 34,
    "deltanet": 53,
    "gdn": 64,
}


@lru_cache(maxsize=4096)
def slm_dispatched_ops(
    arch: NemotronFlashArch, *, prompt_len: int, decode_len: int, chunk: int
) -> int:
    """Operators eager PyTorch dispatches in one measured run of ``arch``.

    One run is what :class:`nas.measure.LanguageModelSampler` times: the prefill of
    ``meta_tokens + prompt_len`` positions, then ``decode_len`` single-token decode steps.
    Counts do not depend on widths or batch; they depend on the prefill length through the
    chunked prefill of Mamba2 / DeltaNet / GDN (``chunk`` positions per chunk) and through SWA,
    whose prefill needs a mask only when it is longer than the window.

    Args:
        arch: The architecture.
        prompt_len: Prompt tokens (meta tokens come on top).
        decode_len: Decode steps.
        chunk: Chunk length of the chunked prefill (the space's ``chunk_size``).

    Returns:
        The number of dispatched operators (views and bare allocations excluded).
    """
    length = arch.meta_tokens + prompt_len
    full, rest = divmod(length, chunk)
    groups = (full > 0) + (rest > 0)
    chunks = full + (rest > 0)
    prefill = _HEAD_OPS + (_META_CAT_OPS if arch.meta_tokens else 0)
    step = _HEAD_OPS
    for kind, window in (op_kind(t) for t in arch.ops):
        prefill += _RESIDUAL_OPS + _PREFILL_OPS[kind]
        prefill += _CHUNK_GROUP_OPS.get(kind, 0) * groups + _CHUNK_OPS.get(kind, 0) * chunks
        if kind == "swa" and length > window:
            prefill += _SWA_MASK_OPS
        step += _RESIDUAL_OPS + _DECODE_OPS[kind]
    return prefill + decode_len * step
