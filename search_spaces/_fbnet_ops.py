"""PyTorch modules of the FBNet space in HW-NAS-Bench's CIFAR setting.

Follows HW-NAS-Bench (Li et al., "HW-NAS-Bench: Hardware-Aware Neural Architecture Search
Benchmark", ICLR 2021; github.com/GATECH-EIC/HW-NAS-Bench,
``hw_nas_bench_api/fbnet_models/model_infer.py``, class ``FBNet_Infer``), which instantiates
the FBNet macro-architecture (Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via
Differentiable Neural Architecture Search", CVPR 2019, Table 1) for CIFAR:

* stem: 3x3 conv, 16 channels, stride 1 (stride 2 on ImageNet), BN, ReLU;
* 22 searchable layers in 7 stages of ``[1, 4, 4, 4, 4, 4, 1]`` layers with
  ``[16, 24, 32, 64, 112, 184, 352]`` channels and first-layer strides
  ``[1, 1, 2, 2, 1, 2, 1]`` (``[1, 2, 2, 2, 1, 2, 1]`` on ImageNet);
* head: 1x1 conv to 1504 channels (1984 on ImageNet), BN, ReLU, global average pooling, linear.

A block ``k{k}_e{e}[_g2]`` is an inverted residual: 1x1 conv (``groups`` g) to ``e * C_in``,
BN, ReLU, channel shuffle when g > 1, kxk depthwise conv (stride), BN, ReLU, 1x1 conv
(``groups`` g) to ``C_out``, BN, plus the input when shapes match. ``skip`` is the identity,
or a 1x1 conv-BN-ReLU when the stride or the channel count changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BLOCKS", "FBNetNetwork", "STAGE_CHANNELS", "STAGE_LAYERS"]

#: The 9 candidate blocks, in FBNet / HW-NAS-Bench / HELP op-index order.
BLOCKS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
STAGE_LAYERS = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
CIFAR_STRIDES = (1, 1, 2, 2, 1, 2, 1)
STEM_CHANNELS = 16
CIFAR_HEAD_CHANNELS = 1504


def block_config(name: str) -> tuple[int, int, int]:
    """``(kernel, expansion, groups)`` of a non-skip block name such as ``k5_e1_g2``."""
    parts = name.split("_")
    groups = int(parts[2][1:]) if len(parts) == 3 else 1
    return int(parts[0][1:]), int(parts[1][1:]), groups


class ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups (ShuffleNet)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class InvertedResidual(nn.Module):
    """One FBNet ``k{k}_e{e}[_g{g}]`` block (see module docstring)."""

    def __init__(self, c_in: int, c_out: int, stride: int, name: str) -> None:
        super().__init__()
        kernel, expansion, groups = block_config(name)
        hidden = c_in * expansion
        expand: list[nn.Module] = [*_conv_bn(c_in, hidden, 1, groups=groups), nn.ReLU(True)]
        if groups > 1:
            expand.append(ChannelShuffle(groups))
        self.expand = nn.Sequential(*expand)
        self.depthwise = nn.Sequential(
            *_conv_bn(hidden, hidden, kernel, stride, groups=hidden), nn.ReLU(True)
        )
        self.project = nn.Sequential(*_conv_bn(hidden, c_out, 1, groups=groups))
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.project(self.depthwise(self.expand(x)))
        return out + x if self.residual else out


def make_block(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The block ``name`` mapping ``c_in`` to ``c_out`` channels with ``stride``."""
    if name == "skip":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride), nn.ReLU(True))
    return InvertedResidual(c_in, c_out, stride, name)


class FBNetNetwork(nn.Module):
    """HW-NAS-Bench's FBNet network for CIFAR (Wu et al., CVPR 2019; Li et al., ICLR 2021).

    Args:
        blocks: The 22 block names, layer by layer.
        num_classes: Classifier outputs (100 for CIFAR-100).
    """

    def __init__(self, blocks: Sequence[str], *, num_classes: int = 100) -> None:
        super().__init__()
        if len(blocks) != sum(STAGE_LAYERS):
            raise ValueError(f"`blocks` must hold {sum(STAGE_LAYERS)} names, got {len(blocks)}.")
        self.stem = nn.Sequential(*_conv_bn(3, STEM_CHANNELS, 3), nn.ReLU(True))
        layers: list[nn.Module] = []
        c_in, k = STEM_CHANNELS, 0
        for n_layers, c_out, stride in zip(
            STAGE_LAYERS, STAGE_CHANNELS, CIFAR_STRIDES, strict=True
        ):
            for i in range(n_layers):
                layers.append(make_block(blocks[k], c_in, c_out, stride if i == 0 else 1))
                c_in, k = c_out, k + 1
        self.layers = nn.Sequential(*layers)
        self.header = nn.Sequential(*_conv_bn(c_in, CIFAR_HEAD_CHANNELS, 1), nn.ReLU(True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(CIFAR_HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.header(self.layers(self.stem(x)))
        logits: torch.Tensor = self.fc(torch.flatten(self.avgpool(out), 1))
        return logits
