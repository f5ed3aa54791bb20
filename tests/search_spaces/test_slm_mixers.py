"""Mixers of the Nemotron-Flash space: chunked vs recurrent forms and cached decode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from search_spaces._slm_arch import NemotronFlashArch
from search_spaces._slm_attention import Attention
from search_spaces._slm_deltanet import delta_chunked, delta_recurrent
from search_spaces._slm_layers import ShortConv
from search_spaces._slm_mamba2 import ssd_chunked, ssd_recurrent
from search_spaces._slm_model import make_operator

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small ops on a shared, busy CPU run far faster without intra-op thread barriers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ssd_inputs(length: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    bt, heads, p, n = 2, 3, 4, 5
    x = torch.randn(bt, length, heads, p, generator=g, dtype=F64)
    dt = torch.rand(bt, length, heads, generator=g, dtype=F64) + 0.05
    a = -torch.rand(heads, generator=g, dtype=F64) * 2 - 0.1
    b = torch.randn(bt, length, n, generator=g, dtype=F64)
    c = torch.randn(bt, length, n, generator=g, dtype=F64)
    h0 = torch.randn(bt, heads, p, n, generator=g, dtype=F64)
    return x, dt, a, b, c, h0


@pytest.mark.parametrize(("length", "chunk"), [(37, 8), (32, 8), (5, 8), (70, 64)])
@pytest.mark.parametrize("zero_state", [True, False])
def test_ssd_chunked_matches_recurrence(length: int, chunk: int, zero_state: bool) -> None:
    x, dt, a, b, c, h0 = _ssd_inputs(length)
    init = None if zero_state else h0
    y_ref, h_ref = ssd_recurrent(x, dt, a, b, c, init)
    y, h = ssd_chunked(x, dt, a, b, c, init, chunk=chunk)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=0)
    if not zero_state:  # the initial state really matters
        assert (ssd_chunked(x, dt, a, b, c, None, chunk=chunk)[0] - y).abs().max() > 1e-3


def _delta_inputs(length: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    bt, heads, dk, dv = 2, 3, 6, 5
    q = torch.randn(bt, heads, length, dk, generator=g, dtype=F64)
    k = F.normalize(torch.randn(bt, heads, length, dk, generator=g, dtype=F64), dim=-1)
    v = torch.randn(bt, heads, length, dv, generator=g, dtype=F64)
    beta = torch.rand(bt, heads, length, generator=g, dtype=F64)
    log_alpha = -torch.rand(bt, heads, length, generator=g, dtype=F64)
    s0 = torch.randn(bt, heads, dv, dk, generator=g, dtype=F64)
    return q, k, v, beta, log_alpha, s0


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize(("length", "chunk"), [(37, 8), (24, 8), (3, 8), (70, 64)])
def test_delta_rule_chunked_matches_recurrence(gated: bool, length: int, chunk: int) -> None:
    q, k, v, beta, log_alpha, s0 = _delta_inputs(length)
    la = log_alpha if gated else None
    o_ref, s_ref = delta_recurrent(q, k, v, beta, la, s0)
    o, s = delta_chunked(q, k, v, beta, la, s0, chunk=chunk)
    torch.testing.assert_close(o, o_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(s, s_ref, atol=1e-6, rtol=0)
    o_zero, _ = delta_chunked(q, k, v, beta, la, None, chunk=chunk)
    assert (o_zero - o).abs().max() > 1e-3


def test_gate_changes_delta_rule() -> None:
    q, k, v, beta, log_alpha, s0 = _delta_inputs(10)
    assert (
        delta_recurrent(q, k, v, beta, log_alpha, s0)[0]
        - delta_recurrent(q, k, v, beta, None, s0)[0]
    ).abs().max() > 1e-3


@pytest.mark.parametrize("chunk", [0, -3])
def test_bad_chunk_raises(chunk: int) -> None:
    x, dt, a, b, c, _ = _ssd_inputs(4)
    with pytest.raises(ValueError, match="`chunk`"):
        ssd_chunked(x, dt, a, b, c, chunk=chunk)
    q, k, v, beta, _, _ = _delta_inputs(4)
    with pytest.raises(ValueError, match="`chunk`"):
        delta_chunked(q, k, v, beta, chunk=chunk)


def test_short_conv_decode_matches_prefill() -> None:
    torch.manual_seed(0)
    conv = ShortConv(6, 4, bias=True).double()
    x = torch.randn(2, 9, 6, dtype=F64)
    full, _ = conv(x)
    y, cache = conv(x[:, :5])
    outs = [y]
    for t in range(5, 9):
        y, cache = conv(x[:, t : t + 1], cache)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), full)
    # Reference of spec 3.5: conv1d with 3 zeros of left padding and groups = channels.
    ref = F.conv1d(F.pad(x.transpose(1, 2), (3, 0)), conv.conv.weight, conv.conv.bias, groups=6)
    torch.testing.assert_close(full, ref.transpose(1, 2))


_ARCH = NemotronFlashArch(256, 2, 16, 0, ("a",))


@pytest.mark.parametrize("token", ["a", "swa5", "m2", "d", "gdn", "f"])
def test_cached_decode_equals_full_forward(token: str) -> None:
    """Prefill part of the sequence, decode the rest one token at a time (chunk 4)."""
    torch.manual_seed(0)
    op = make_operator(token, _ARCH, chunk=4).double().eval()
    x = torch.randn(2, 13, 256, dtype=F64)
    with torch.no_grad():
        full, _ = op(x)
        y, cache = op(x[:, :6])
        outs = [y]
        for t in range(6, 13):
            y, cache = op(x[:, t : t + 1], cache)
            outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-9, rtol=1e-9)


def _banded_reference(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Plain softmax attention with an explicit band, without the module's fast paths."""
    length = x.shape[1]
    op_full = Attention(256, attn.n_heads, attn.kv_heads, window=0).double()
    op_full.load_state_dict(attn.state_dict())
    i = torch.arange(length)
    band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - attn.window)
    outputs = []
    for t in range(length):  # each query sees only its band: run full attention on that slice
        lo = int(band[t].nonzero().min())
        cache = None
        if lo > 0:
            _, cache = op_full(x[:, :lo])  # positions before the band only rotate positions
            cache.k, cache.v = cache.k[:, :, :0], cache.v[:, :, :0]
            cache.slot_pos = cache.slot_pos[:0]
        y, _ = op_full(x[:, lo : t + 1], cache)
        outputs.append(y[:, -1:])
    return torch.cat(outputs, 1)


def test_swa_ring_buffer_matches_banded_attention() -> None:
    torch.manual_seed(1)
    attn = Attention(256, 2, 1, window=4).double().eval()
    x = torch.randn(1, 11, 256, dtype=F64)
    with torch.no_grad():
        banded, _ = attn(x)
        ref = _banded_reference(attn, x)
        y, cache = attn(x[:, :2])
        outs = [y]
        for t in range(2, 11):
            y, cache = attn(x[:, t : t + 1], cache)
            assert cache.k.shape[2] == 4
            outs.append(y)
    torch.testing.assert_close(banded, ref, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(torch.cat(outs, 1), banded, atol=1e-9, rtol=1e-9)
    full, _ = Attention(256, 2, 1, window=0).double().eval().requires_grad_(False), None
    full.load_state_dict(attn.state_dict())
    assert (full(x)[0] - banded).abs().max() > 1e-6  # the band really restricts attention
