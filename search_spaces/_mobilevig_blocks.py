"""MobileViG blocks (inverted residual, SVGA), their analytic costs, and the block registry.

Follows the official ``SLDGroup/MobileViG`` code (``models/mobilevig.py``) as written in spec 2.2;
Munir, Avery, Marculescu, *MobileViG: Graph-Based Sparse Attention for Mobile Vision
Applications*, CVPRW 2023, arXiv:2307.00395. The max-relative graph convolution is from
Li et al., *DeepGCNs*, ICCV 2019, arXiv:1904.03751. A new block type plugs in through
:func:`register_block` (as timm's ``byobnet.register_block``) without builder edits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from search_spaces._errors import InvalidArchError
from search_spaces._mobilevig_config import MobileViGBlockCfg

__all__ = [
    "FFN",
    "BlockType",
    "ConvBN",
    "CostTally",
    "Grapher",
    "InvertedResidual",
    "MRConv",
    "SVGABlock",
    "effective_hop",
    "get_block",
    "graph_shifts",
    "list_blocks",
    "register_block",
]

LAYER_SCALE_INIT = 1e-5


# ---------------------------------------------------------------------------- analytic cost
@dataclass
class CostTally:
    """Running totals of an analytic walk over the leaf modules of a model (one sample).

    ``peak_elems`` mirrors :func:`search_spaces._profiling.peak_activation_bytes`: the largest
    input + output element count of any single leaf module. ``ops`` counts the operators an
    eager runtime dispatches one at a time (aten calls other than views); ``traffic_elems``
    the activation elements those operators read plus write (weights excluded), the memory
    term of a roofline of the eager forward.
    """

    params: int = 0
    macs: int = 0
    peak_elems: int = 0
    shift_passes: int = 0
    ops: int = 0
    traffic_elems: int = 0

    def leaf(self, in_elems: int, out_elems: int, *, ops: int = 1) -> None:
        """Record one leaf module call (``ops``: the operators it dispatches)."""
        self.peak_elems = max(self.peak_elems, in_elems + out_elems)
        if ops:
            self.op(in_elems, out_elems, ops=ops)

    def op(self, in_elems: int, out_elems: int, *, ops: int = 1) -> None:
        """Record dispatched operators outside leaf modules (products, sums) and their traffic."""
        self.ops += ops
        self.traffic_elems += in_elems + out_elems

    def conv(
        self,
        cin: int,
        cout: int,
        hw: tuple[int, int],
        *,
        k: int = 1,
        stride: int = 1,
        groups: int = 1,
    ) -> tuple[int, int]:
        """A ``Conv2d`` with bias and padding ``k // 2``; returns the output size."""
        h, w = hw
        ho, wo = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
        weights = cout * (cin // groups) * k * k
        self.params += weights + cout
        self.macs += weights * ho * wo
        self.leaf(cin * h * w, cout * ho * wo)
        return ho, wo

    def norm_act(self, c: int, hw: tuple[int, int], *, act: bool) -> None:
        """A ``BatchNorm2d`` (two affine vectors), optionally followed by a GELU."""
        self.params += 2 * c
        n = c * hw[0] * hw[1]
        self.leaf(n, n)
        if act:
            self.leaf(n, n)

    def conv_bn(
        self,
        cin: int,
        cout: int,
        hw: tuple[int, int],
        *,
        k: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: bool = False,
    ) -> tuple[int, int]:
        """:class:`ConvBN` cost; returns the output size."""
        out = self.conv(cin, cout, hw, k=k, stride=stride, groups=groups)
        self.norm_act(cout, out, act=act)
        return out


# ---------------------------------------------------------------------------- modules
class ConvBN(nn.Sequential):
    """``Conv2d`` (with bias, padding ``k // 2``), ``BatchNorm2d``, optional GELU."""

    def __init__(
        self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = False
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.GELU())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileViG inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, layer scale.

    ``y = x + gamma * BN(PW(GELU(BN(DW(GELU(BN(PW(x))))))))`` with a per-channel ``gamma``
    initialised to 1e-5 (spec 2.2).

    Args:
        c: Channel width.
        expansion: Hidden-width multiplier.
        layer_scale_init: Initial value of ``gamma``.
    """

    def __init__(self, c: int, expansion: int, layer_scale_init: float = LAYER_SCALE_INIT) -> None:
        super().__init__()
        hidden = int(c * expansion)
        self.mlp = nn.Sequential(
            ConvBN(c, hidden, act=True),
            ConvBN(hidden, hidden, k=3, groups=hidden, act=True),
            ConvBN(hidden, c),
        )
        self.layer_scale = nn.Parameter(torch.full((c, 1, 1), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.mlp(x)
        return x + self.layer_scale * y


def graph_shifts(hop: int, size: int) -> range:
    """Shifts ``hop, 2 hop, ...`` below ``size``: one neighbour per shift and axis (spec 2.2)."""
    return range(hop, size, hop)


def effective_hop(hop: int, size: int) -> int:
    """Hop repaired for a feature map side ``size``: ``max(1, min(hop, size - 1))`` (spec 2.4)."""
    return max(1, min(hop, size - 1))


class MRConv(nn.Module):
    """Max-relative graph convolution on MobileViG's fixed shift graph (SVGA).

    Each position is linked to the positions ``K, 2K, ...`` rows above and columns to the left,
    with wrap-around, so every node has ``(ceil(H/K) - 1) + (ceil(W/K) - 1)`` neighbours.
    The hop is repaired to ``min(K, min(H, W) - 1)`` for small feature maps.

    Args:
        c: Channel width of the input; the output has ``2 c`` channels.
        k: Hop distance ``K``.
    """

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.nn = ConvBN(2 * c, 2 * c, act=True)

    def max_relative(self, u: torch.Tensor) -> torch.Tensor:
        """``max(0, max_j (u_i - u_j))`` over the graph neighbours ``j`` of every node ``i``."""
        h, w = u.shape[-2:]
        hop = effective_hop(self.k, min(h, w))
        m = torch.zeros_like(u)
        for s in graph_shifts(hop, h):
            m = torch.maximum(m, u - torch.roll(u, s, dims=-2))
        for s in graph_shifts(hop, w):
            m = torch.maximum(m, u - torch.roll(u, s, dims=-1))
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.nn(torch.cat([x, self.max_relative(x)], dim=1))
        return out


class Grapher(nn.Module):
    """``x + BN(Conv1x1(2C -> C)(MRConv(BN(Conv1x1(C -> C)(x)))))`` (spec 2.2)."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.fc1 = ConvBN(c, c)
        self.graph_conv = MRConv(c, k)
        self.fc2 = ConvBN(2 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.fc2(self.graph_conv(self.fc1(x)))
        return x + y


class FFN(nn.Module):
    """``x + BN(Conv1x1(GELU(BN(Conv1x1(x)))))`` with hidden width ``ratio * C``."""

    def __init__(self, c: int, ratio: int) -> None:
        super().__init__()
        self.fc1 = ConvBN(c, ratio * c)
        self.act = nn.GELU()
        self.fc2 = ConvBN(ratio * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return x + y


class SVGABlock(nn.Sequential):
    """Sparse Vision Graph Attention block: :class:`Grapher` then :class:`FFN`."""

    def __init__(self, c: int, k: int, ffn_ratio: int) -> None:
        super().__init__(Grapher(c, k), FFN(c, ffn_ratio))


# ---------------------------------------------------------------------------- registry
BlockBuilder = Callable[[MobileViGBlockCfg], nn.Module]
BlockCost = Callable[[MobileViGBlockCfg, tuple[int, int], CostTally], None]


@dataclass(frozen=True)
class BlockType:
    """A registered block type: how to build one block and how to cost it analytically."""

    build: BlockBuilder
    cost: BlockCost


_BLOCK_TYPES: dict[str, BlockType] = {}


def register_block(name: str, build: BlockBuilder, cost: BlockCost) -> None:
    """Register a block type under ``name`` (used as ``MobileViGBlockCfg.type``).

    Args:
        name: Block type name, e.g. ``"ir"``.
        build: Builds one (resolution-independent) block from its config.
        cost: Adds one block's params, MACs and leaf activations at a feature size to a tally.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
    if name in _BLOCK_TYPES:
        raise ValueError(f"block type {name!r} is already registered.")
    _BLOCK_TYPES[name] = BlockType(build=build, cost=cost)


def get_block(name: str) -> BlockType:
    """Look up a registered block type.

    Raises:
        InvalidArchError: naming the unknown type.
    """
    if name not in _BLOCK_TYPES:
        known = ", ".join(sorted(_BLOCK_TYPES))
        raise InvalidArchError(f"unknown MobileViG block type {name!r} (known: {known})")
    return _BLOCK_TYPES[name]


def list_blocks() -> list[str]:
    """Names of the registered block types, sorted."""
    return sorted(_BLOCK_TYPES)


def _ir_cost(cfg: MobileViGBlockCfg, hw: tuple[int, int], tally: CostTally) -> None:
    hidden = int(cfg.c * cfg.expansion)
    tally.conv_bn(cfg.c, hidden, hw, act=True)
    tally.conv_bn(hidden, hidden, hw, k=3, groups=hidden, act=True)
    tally.conv_bn(hidden, cfg.c, hw)
    tally.params += cfg.c  # layer scale
    n = cfg.c * hw[0] * hw[1]
    tally.op(n, n)  # the layer-scale product (its scale is a weight)
    tally.op(2 * n, n)  # the residual sum


def _svga_cost(cfg: MobileViGBlockCfg, hw: tuple[int, int], tally: CostTally) -> None:
    c = cfg.c
    tally.conv_bn(c, c, hw)
    hop = effective_hop(cfg.k, min(hw))
    passes = len(graph_shifts(hop, hw[0])) + len(graph_shifts(hop, hw[1]))
    tally.shift_passes += passes
    u = c * hw[0] * hw[1]
    tally.op(u, u)  # zeros (the trace counts the input it reads the shape of)
    for _ in range(passes):
        tally.op(u, u)  # roll
        tally.op(2 * u, u)  # subtract
        tally.op(2 * u, u)  # maximum
    tally.op(2 * u, 2 * u)  # the concatenation
    tally.conv_bn(2 * c, 2 * c, hw, act=True)
    tally.conv_bn(2 * c, c, hw)
    tally.op(2 * u, u)  # the grapher's residual sum
    tally.conv_bn(c, cfg.ffn_ratio * c, hw)
    n = cfg.ffn_ratio * c * hw[0] * hw[1]
    tally.leaf(n, n)  # FFN activation
    tally.conv_bn(cfg.ffn_ratio * c, c, hw)
    tally.op(2 * u, u)  # the FFN's residual sum


register_block("ir", lambda cfg: InvertedResidual(cfg.c, cfg.expansion), _ir_cost)
register_block("svga", lambda cfg: SVGABlock(cfg.c, cfg.k, cfg.ffn_ratio), _svga_cost)
