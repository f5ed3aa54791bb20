"""Counting parameters, MACs and activation bytes of real torch modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs_flops", "count_params", "peak_activation_bytes"]

# Operators whose FLOPs are 2 x MACs: convolutions and matrix products (spec 0.5).
_MAC_OPS = ("convolution", "mm", "addmm", "bmm", "baddbmm", "matmul", "linear")


def count_params(model: nn.Module) -> int:
    """Number of parameters (works on the ``meta`` device)."""
    return sum(p.numel() for p in model.parameters())


def count_macs_flops(model: nn.Module, inputs: Sequence[Any]) -> tuple[int, int]:
    """MACs of convs/matmuls and total FLOPs of one forward pass, via ``FlopCounterMode``."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    total = int(counter.get_total_flops())
    mac_flops = 0
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        # Keys are packets such as ``aten.convolution`` (older torch: ``aten.convolution.default``).
        parts = str(op).split(".")
        name = parts[1] if len(parts) > 1 else parts[0]
        if any(name.startswith(k) for k in _MAC_OPS) or "attention" in str(op):
            mac_flops += int(flops)
    return mac_flops // 2, total


def peak_activation_bytes(model: nn.Module, inputs: Sequence[Any]) -> int:
    """Largest single leaf-module input+output footprint in bytes during one forward pass."""
    peak = 0

    def hook(_m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal peak
        size = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
        if isinstance(out, torch.Tensor):
            size += out.numel() * out.element_size()
        peak = max(peak, size)

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return peak
