"""Analytic cost model of the MnasNet-space network (no torch, microseconds per arch).

It walks the same layer plan as :mod:`search_spaces._mnasnet_model` and counts, for every leaf
module, parameters, multiply-accumulates of convolutions and matrix products (spec 0.5) and the
bytes of its input plus output tensors. The results equal what
:mod:`search_spaces._profiling` measures on the real module (``count_params``,
``count_macs_flops``, ``peak_activation_bytes``), which the tests check; FLOPs follow
``torch.utils.flop_counter`` and are therefore ``2 x MACs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces._mnasnet_arch import HEAD_CH, STEM_CH, MnasNetArch
from search_spaces._mnasnet_model import (
    NUM_CLASSES,
    layer_plan,
    se_squeeze,
    shortcut_kind,
)

__all__ = ["FP32_BYTES", "CostTally", "analytic_costs"]

FP32_BYTES = 4


def _down(size: int, stride: int) -> int:
    """Output side of a ``k // 2``-padded odd-kernel conv (or a ceil-mode pool): ceil(h / s)."""
    return -(-size // stride)


@dataclass
class CostTally:
    """Running totals for one image; ``peak`` is in elements (input + output of one leaf);
    ``ops`` counts the operators an eager runtime dispatches one at a time (aten calls other
    than views: each conv, BN, activation, pool, product, sum and the classifier);
    ``traffic`` the activation elements those operators read plus write (weights excluded),
    the memory term of a roofline of the eager forward."""

    params: int = 0
    macs: int = 0
    peak: int = 0
    ops: int = 0
    traffic: int = 0

    def leaf(self, in_elems: int, out_elems: int, *, ops: int = 1) -> None:
        """Record one leaf module's input and output sizes and its dispatched operators."""
        self.peak = max(self.peak, in_elems + out_elems)
        if ops:
            self.op(in_elems, out_elems, ops=ops)

    def op(self, in_elems: int, out_elems: int, *, ops: int = 1) -> None:
        """Record dispatched operators outside leaf modules (products, sums) and their traffic."""
        self.ops += ops
        self.traffic += in_elems + out_elems

    def conv_bn(
        self,
        cin: int,
        cout: int,
        k: int,
        stride: int,
        hw: int,
        *,
        groups: int = 1,
        act: bool = True,
    ) -> int:
        """Conv (no bias), BN and optional ReLU at input side ``hw``; return the output side."""
        out_hw = _down(hw, stride)
        per_out = (cin // groups) * k * k
        self.params += cout * per_out + 2 * cout
        self.macs += cout * out_hw * out_hw * per_out
        out = cout * out_hw * out_hw
        self.leaf(cin * hw * hw, out)
        self.leaf(out, out)  # BN
        if act:
            self.leaf(out, out)  # ReLU
        return out_hw

    def squeeze_excite(self, ch: int, squeeze: int, hw: int) -> None:
        """SE on a ``ch x hw x hw`` tensor (two 1x1 convs with bias at 1x1)."""
        self.params += 2 * ch * squeeze + squeeze + ch
        self.macs += 2 * ch * squeeze
        self.leaf(ch * hw * hw, ch)  # pool
        self.leaf(ch, squeeze)  # reduce
        self.leaf(squeeze, squeeze)  # ReLU
        self.leaf(squeeze, ch)  # expand
        self.leaf(ch, ch)  # sigmoid
        self.op(ch * hw * hw + ch, ch * hw * hw)  # the gated product


def _layer(
    t: CostTally, op: str, exp: int, k: int, se: float, spec: tuple[int, int, int, int]
) -> int:
    """Count one layer; ``spec`` = (in_ch, out_ch, stride, hw). Return the output side."""
    in_ch, out_ch, stride, hw = spec
    squeeze = se_squeeze(in_ch, se)
    if op == "conv":
        out_hw = t.conv_bn(in_ch, out_ch, k, stride, hw)
        if squeeze:
            t.squeeze_excite(out_ch, squeeze, out_hw)
        return out_hw
    mid = in_ch * exp
    if exp > 1:
        t.conv_bn(in_ch, mid, 1, 1, hw)
    out_hw = t.conv_bn(mid, mid, k, stride, hw, groups=mid)
    if squeeze:
        t.squeeze_excite(mid, squeeze, out_hw)
    t.conv_bn(mid, out_ch, 1, 1, out_hw, act=False)
    return out_hw


def _shortcut(t: CostTally, in_ch: int, out_ch: int, stride: int, hw: int) -> None:
    out_hw = _down(hw, stride)
    if stride > 1:
        t.leaf(in_ch * hw * hw, in_ch * out_hw * out_hw)  # AvgPool2d
    if in_ch != out_ch:
        t.conv_bn(in_ch, out_ch, 1, 1, out_hw, act=False)


def analytic_costs(arch: MnasNetArch, resolution: int) -> CostTally:
    """Parameters, MACs, peak leaf activation elements, dispatched operators and activation
    traffic of one image at ``resolution``.

    Args:
        arch: The architecture.
        resolution: Square input side in pixels.
    """
    t = CostTally()
    hw = t.conv_bn(3, STEM_CH, 3, 2, resolution)
    for block, in_ch, stride in layer_plan(arch):
        kind = shortcut_kind(block.skip, in_ch, block.out_ch, stride)
        if kind == "pool":
            _shortcut(t, in_ch, block.out_ch, stride, hw)
        spec = (in_ch, block.out_ch, stride, hw)
        hw = _layer(t, block.op, block.expansion, block.kernel, block.se, spec)
        if kind is not None:  # the residual sum
            t.op(2 * block.out_ch * hw * hw, block.out_ch * hw * hw)
    last = arch.blocks[-1].out_ch
    hw = t.conv_bn(last, HEAD_CH, 1, 1, hw)
    t.leaf(HEAD_CH * hw * hw, HEAD_CH)  # global average pool
    t.leaf(HEAD_CH, HEAD_CH, ops=0)  # dropout (the identity at inference)
    t.leaf(HEAD_CH, NUM_CLASSES)  # linear
    t.params += HEAD_CH * NUM_CLASSES + NUM_CLASSES
    t.macs += HEAD_CH * NUM_CLASSES
    return t
