"""PyTorch modules of the NAS-Bench-201 network (cell operations, cell, macro skeleton).

The network follows NAS-Bench-201 (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020, arXiv:2001.00326, Sec. 2.1 and Fig. 1):
a 3x3 conv stem, three stages of ``N`` cells with ``C``, ``2C`` and ``4C`` channels, a
residual reduction block between stages, then BN-ReLU, global average pooling and a linear
classifier. Cell operations are ReLU-Conv-BN convolutions, 3x3 average pooling (no padding
counted), identity and zero, summed at each of the 3 intermediate nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["NB201Network", "build_cell_op"]


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution without bias, BatchNorm (the ``nor_conv_*`` ops)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` op: multiplies its input by zero (kept in the graph, as upstream)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ResNetBasicBlock(nn.Module):
    """Residual reduction block between stages (stride 2, channels doubled).

    Two ReLU-Conv-BN 3x3 convolutions on the main path; 2x2 average pooling followed by a 1x1
    convolution on the shortcut.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.downsample(x) + self.conv_b(self.conv_a(x))
        return out


def build_cell_op(name: str, channels: int) -> nn.Module:
    """One stride-1 cell operation with ``channels`` in and out.

    Args:
        name: One of ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``,
            ``avg_pool_3x3``.
        channels: Channel count of the cell.

    Raises:
        ValueError: for an unknown ``name``.
    """
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"`name` must be a NAS-Bench-201 operation, got {name!r}.")


# Edge k of the arch string goes from node EDGE_SRC[k] to node EDGE_DST[k].
EDGE_SRC = (0, 0, 1, 0, 1, 2)
EDGE_DST = (1, 2, 2, 3, 3, 3)


class InferCell(nn.Module):
    """A NAS-Bench-201 cell: 4 nodes, node ``i`` sums the ops on its incoming edges."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(build_cell_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in (1, 2, 3):
            inputs = [
                edge(nodes[EDGE_SRC[k]]) for k, edge in enumerate(self.edges) if EDGE_DST[k] == dst
            ]
            nodes.append(sum(inputs[1:], inputs[0]))
        return nodes[-1]


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton around one searched cell (Dong & Yang, ICLR 2020).

    Args:
        ops: The 6 edge operations in arch-string order.
        channels: Stem / first-stage channels ``C`` (16 in the benchmark).
        cells_per_stage: ``N`` (5 in the benchmark).
        num_classes: Classifier outputs (10 for CIFAR-10).
    """

    def __init__(
        self,
        ops: Sequence[str],
        *,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        layers: list[nn.Module] = []
        c_prev = channels
        for stage in range(3):
            c_stage = channels * 2**stage
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c_stage))
            layers.extend(InferCell(ops, c_stage) for _ in range(cells_per_stage))
            c_prev = c_stage
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        logits: torch.Tensor = self.classifier(torch.flatten(self.global_pooling(out), 1))
        return logits
