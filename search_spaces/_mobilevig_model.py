"""The MobileViG network built from a :class:`MobileViGArch`, and its analytic cost.

Layer by layer as spec 2.2 (official ``SLDGroup/MobileViG`` code); Munir, Avery, Marculescu,
*MobileViG: Graph-Based Sparse Attention for Mobile Vision Applications*, CVPRW 2023,
arXiv:2307.00395.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from search_spaces._mobilevig_blocks import ConvBN, CostTally, get_block
from search_spaces._mobilevig_config import MobileViGArch, MobileViGModelCfg
from search_spaces._workload import Profile

__all__ = ["MobileViG", "analytic_profile", "build_mobilevig", "feature_sizes"]

BYTES_PER_ELEMENT = 4  # fp32


class MobileViG(nn.Module):
    """MobileViG: a conv stem, stages of registered blocks, and a head with distillation.

    In training mode ``forward`` returns ``(head, dist_head)`` logits; in eval mode their mean,
    as the official code (DeiT-style distillation) does. Without a distillation head it
    returns the ``head`` logits.

    Args:
        cfg: Stage widths, block runs and head of the network.
        dropout: Dropout before the classifiers (0 in all published models).
    """

    def __init__(self, cfg: MobileViGModelCfg, *, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout!r}.")
        c0 = cfg.channels[0]
        self.stem = nn.Sequential(
            ConvBN(3, c0 // 2, k=3, stride=2, act=True),
            ConvBN(c0 // 2, c0, k=3, stride=2, act=True),
        )
        stages: list[nn.Module] = []
        prev = c0
        for i, (c, blocks) in enumerate(zip(cfg.channels, cfg.stages, strict=True)):
            layers: list[nn.Module] = [ConvBN(prev, c, k=3, stride=2)] if i > 0 else []
            for block_cfg in blocks:
                block = get_block(block_cfg.type)
                layers.extend(block.build(block_cfg) for _ in range(block_cfg.d))
            stages.append(nn.Sequential(*layers))
            prev = c
        self.stages = nn.Sequential(*stages)
        self.prediction = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), ConvBN(prev, cfg.emb, act=True), nn.Dropout(dropout)
        )
        self.head = nn.Conv2d(cfg.emb, cfg.num_classes, 1)
        self.dist_head = nn.Conv2d(cfg.emb, cfg.num_classes, 1) if cfg.distillation else None
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and all stages: the last stage's feature map."""
        out: torch.Tensor = self.stages(self.stem(x))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        z: torch.Tensor = self.prediction(self.forward_features(x))
        logits: torch.Tensor = self.head(z).flatten(1)
        if self.dist_head is None:
            return logits
        dist: torch.Tensor = self.dist_head(z).flatten(1)
        if self.training:
            return logits, dist
        return (logits + dist) / 2


def build_mobilevig(arch: MobileViGArch | MobileViGModelCfg) -> MobileViG:
    """Build a freshly initialised MobileViG (train mode) from an architecture or model config."""
    cfg = arch.model_cfg() if isinstance(arch, MobileViGArch) else arch
    return MobileViG(cfg)


def _down(size: int) -> int:
    """Output side of a 3x3, stride-2, padding-1 convolution."""
    return (size - 1) // 2 + 1


def feature_sizes(resolution: int) -> tuple[int, int, int, int]:
    """Feature-map side of stages 1-4 for a square input (56, 28, 14, 7 at 224)."""
    s1 = _down(_down(resolution))
    s2 = _down(s1)
    s3 = _down(s2)
    return (s1, s2, s3, _down(s3))


def _tally(cfg: MobileViGModelCfg, resolution: int) -> CostTally:
    tally = CostTally()
    c0 = cfg.channels[0]
    hw = tally.conv_bn(3, c0 // 2, (resolution, resolution), k=3, stride=2, act=True)
    hw = tally.conv_bn(c0 // 2, c0, hw, k=3, stride=2, act=True)
    prev = c0
    for i, (c, blocks) in enumerate(zip(cfg.channels, cfg.stages, strict=True)):
        if i > 0:
            hw = tally.conv_bn(prev, c, hw, k=3, stride=2)
        for block_cfg in blocks:
            cost = get_block(block_cfg.type).cost
            for _ in range(block_cfg.d):
                cost(block_cfg, hw, tally)
        prev = c
    tally.leaf(prev * hw[0] * hw[1], prev)  # global average pool
    tally.conv_bn(prev, cfg.emb, (1, 1), act=True)
    tally.leaf(cfg.emb, cfg.emb, ops=0)  # dropout (the identity at inference)
    for _ in range(2 if cfg.distillation else 1):
        tally.conv(cfg.emb, cfg.num_classes, (1, 1))
    if cfg.distillation:  # mean of the two heads: sum, halving
        tally.op(2 * cfg.num_classes, cfg.num_classes)
        tally.op(cfg.num_classes, cfg.num_classes)
    return tally


@lru_cache(maxsize=4096)
def _arch_cfg(arch: MobileViGArch) -> MobileViGModelCfg:
    return arch.model_cfg()


@lru_cache(maxsize=4096)
def _cached_tally(cfg: MobileViGModelCfg, resolution: int) -> tuple[int, int, int, int, int, int]:
    t = _tally(cfg, resolution)
    return t.params, t.macs, t.peak_elems, t.shift_passes, t.ops, t.traffic_elems


def analytic_profile(
    arch: MobileViGArch | MobileViGModelCfg, batch_size: int, resolution: int
) -> Profile:
    """Params, MACs (convs only), FLOPs and peak activation bytes without building the model.

    Matches :mod:`search_spaces._profiling` on the real module: FLOPs are ``2 x MACs`` as
    ``torch.utils.flop_counter`` counts them, and the memory term is the largest input + output
    footprint of one leaf module. ``extra["graph_shift_passes"]`` counts the roll/subtract/max
    passes of all MRConvs, which are memory-bound and carry no MACs (spec 2.6);
    ``extra["dispatched_ops"]`` the operators an eager runtime dispatches one by one and
    ``extra["activation_traffic_bytes"]`` the activation bytes they read and write. Cached per
    architecture, so repeated calls cost microseconds.
    """
    cfg = _arch_cfg(arch) if isinstance(arch, MobileViGArch) else arch
    params, macs, peak, shifts, ops, traffic = _cached_tally(cfg, resolution)
    return Profile(
        params=params,
        macs=macs * batch_size,
        flops=2 * macs * batch_size,
        memory_bytes=peak * batch_size * BYTES_PER_ELEMENT,
        extra={
            "graph_shift_passes": float(shifts),
            "dispatched_ops": float(ops),
            "activation_traffic_bytes": float(traffic * batch_size * BYTES_PER_ELEMENT),
        },
    )
