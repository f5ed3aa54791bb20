"""The MnasNet-space ``nn.Module`` (spec 1.4).

Stem ``Conv3x3(3 -> 32, s2)``-BN-ReLU, seven blocks of repeated layers, head
``Conv1x1(-> 1280)``-BN-ReLU, global average pool, ``Dropout(0.2)``, ``Linear(1280 -> 1000)``.
The layer bodies follow the reference TensorFlow ``MnasBlock`` (``tensorflow/tpu``,
``models/official/mnasnet/mnasnet_model.py``), including the SE squeeze width computed from
the layer's input channels.

Reference:
    Tan et al., *MnasNet: Platform-Aware Neural Architecture Search for Mobile*, CVPR 2019,
    arXiv:1807.11626.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces._blocks import ConvBnAct, PoolProjection, Residual, SqueezeExcite, init_weights
from search_spaces._mnasnet_arch import HEAD_CH, STEM_CH, STRIDES, MnasNetArch, MnasNetBlock

__all__ = ["NUM_CLASSES", "MnasNet", "build_layer", "layer_plan", "se_squeeze", "shortcut_kind"]

NUM_CLASSES = 1000
DROPOUT = 0.2


def se_squeeze(in_ch: int, ratio: float) -> int:
    """SE bottleneck width: ``max(1, floor(in_ch * ratio))``, 0 when ``ratio == 0``."""
    return max(1, int(in_ch * ratio)) if ratio > 0 else 0


def layer_plan(arch: MnasNetArch) -> list[tuple[MnasNetBlock, int, int]]:
    """Every layer of ``arch`` as ``(block, in_ch, stride)``, in execution order."""
    plan = []
    in_ch = STEM_CH
    for block, stride in zip(arch.blocks, STRIDES, strict=True):
        for j in range(block.layers):
            plan.append((block, in_ch, stride if j == 0 else 1))
            in_ch = block.out_ch
    return plan


def shortcut_kind(skip: str, in_ch: int, out_ch: int, stride: int) -> str | None:
    """Shortcut of one layer: ``None``, ``"identity"`` or ``"pool"`` (pool and/or projection).

    ``identity`` adds the input only when the shape is unchanged; ``pool`` always adds a
    shortcut, which degenerates to the identity when the shape is unchanged (spec 1.4).
    """
    same_shape = stride == 1 and in_ch == out_ch
    if skip == "none":
        return None
    if same_shape:
        return "identity"
    return "pool" if skip == "pool" else None


def build_layer(block: MnasNetBlock, in_ch: int, stride: int) -> Residual:
    """One layer of ``block`` with ``in_ch`` input channels and the given stride."""
    out_ch, k = block.out_ch, block.kernel
    squeeze = se_squeeze(in_ch, block.se)
    mods: list[nn.Module] = []
    if block.op == "conv":
        mods.append(ConvBnAct(in_ch, out_ch, k, stride))
        if squeeze:
            mods.append(SqueezeExcite(out_ch, squeeze))
    else:
        mid = in_ch * block.expansion
        if block.expansion > 1:
            mods.append(ConvBnAct(in_ch, mid, 1))
        mods.append(ConvBnAct(mid, mid, k, stride, groups=mid))
        if squeeze:
            mods.append(SqueezeExcite(mid, squeeze))
        mods.append(ConvBnAct(mid, out_ch, 1, act=False))
    kind = shortcut_kind(block.skip, in_ch, out_ch, stride)
    shortcut: nn.Module | str | None = kind
    if kind == "pool":
        shortcut = PoolProjection(in_ch, out_ch, stride)
    return Residual(nn.Sequential(*mods), shortcut)


class MnasNet(nn.Module):
    """A MnasNet-space network (Tan et al., CVPR 2019) for 1000-class 224x224 ImageNet inputs.

    Args:
        arch: The architecture to build.
    """

    def __init__(self, arch: MnasNetArch) -> None:
        super().__init__()
        self.arch = arch
        self.stem = ConvBnAct(3, STEM_CH, 3, 2)
        self.blocks = nn.Sequential(
            *(build_layer(block, in_ch, stride) for block, in_ch, stride in layer_plan(arch))
        )
        self.head = ConvBnAct(arch.blocks[-1].out_ch, HEAD_CH, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Linear(HEAD_CH, NUM_CLASSES)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, 1000)`` for images of shape ``(batch, 3, H, W)``."""
        x = self.head(self.blocks(self.stem(x)))
        x = self.pool(x).flatten(1)
        logits: torch.Tensor = self.classifier(self.dropout(x))
        return logits
