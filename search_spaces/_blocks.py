"""Convolutional building blocks shared by the CNN search spaces.

Conv-BN-activation stacks, squeeze-and-excitation and a residual wrapper with the shortcut kinds
used by MnasNet-style spaces. They follow the reference MnasNet TensorFlow block
(``tensorflow/tpu``, ``models/official/mnasnet/mnasnet_model.py``) and timm's
``_efficientnet_blocks.py``: no conv bias except inside SE, padding ``k // 2``.

References:
    Tan et al., *MnasNet: Platform-Aware Neural Architecture Search for Mobile*, CVPR 2019,
    arXiv:1807.11626.
    Hu et al., *Squeeze-and-Excitation Networks*, CVPR 2018, arXiv:1709.01507.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "ConvBnAct",
    "PoolProjection",
    "Residual",
    "SqueezeExcite",
    "init_weights",
    "make_divisible",
]

# TF's BatchNorm momentum 0.99 equals PyTorch's 0.01 (spec 1.4).
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (reference TF rounding).

    ``max(min_value, floor((value + divisor / 2) / divisor) * divisor)``, plus ``divisor`` when
    that would drop below 90% of ``value``.

    Args:
        value: The unrounded channel count (must be positive).
        divisor: The multiple to round to (positive).
        min_value: Lower bound of the result; defaults to ``divisor``.

    Returns:
        The rounded channel count.

    Raises:
        ValueError: If ``value`` or ``divisor`` is not positive.
    """
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"`value` must be a positive finite number, got {value!r}.")
    if divisor < 1:
        raise ValueError(f"`divisor` must be greater than or equal to 1, got {divisor!r}.")
    floor_value = divisor if min_value is None else min_value
    rounded = max(floor_value, int(math.floor((value + divisor / 2) / divisor)) * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBnAct(nn.Sequential):
    """``Conv2d`` (no bias, padding ``k // 2``), ``BatchNorm2d`` and an optional ReLU.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        kernel: Square kernel size (odd).
        stride: Convolution stride.
        groups: Convolution groups (``in_ch`` for a depthwise convolution).
        act: Append a ReLU when true.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 1,
        stride: int = 1,
        *,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_ch, out_ch, kernel, stride, padding=kernel // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation gate (Hu et al., 2018).

    Global average pool, ``Conv1x1(channels -> squeeze)`` with bias, ReLU,
    ``Conv1x1(squeeze -> channels)`` with bias, sigmoid, then a channel-wise product.

    Args:
        channels: Channels of the gated tensor.
        squeeze: Width of the bottleneck (MnasNet computes it from the layer's *input* channels).
    """

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` scaled by its per-channel gate."""
        scale: torch.Tensor = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


class PoolProjection(nn.Module):
    """Shortcut that matches the body's output shape: average pool and/or a 1x1 projection.

    ``AvgPool2d(stride, stride, ceil_mode=True)`` when ``stride > 1`` (``ceil_mode`` keeps the
    size equal to a padded strided convolution's), then ``Conv1x1(in_ch -> out_ch)`` + BN when
    the channel counts differ.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        stride: Spatial reduction of the body.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.pool: nn.Module | None = (
            nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else None
        )
        self.proj: nn.Module | None = (
            ConvBnAct(in_ch, out_ch, 1, act=False) if in_ch != out_ch else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the shortcut tensor."""
        if self.pool is not None:
            x = self.pool(x)
        if self.proj is not None:
            x = self.proj(x)
        return x


class Residual(nn.Module):
    """A layer body with an optional shortcut: ``body(x) [+ x | + shortcut(x)]``.

    Args:
        body: The layer body.
        shortcut: ``None`` for no shortcut, ``"identity"`` to add the input unchanged, or a
            module applied to the input (for example :class:`PoolProjection`).
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module | str | None = None) -> None:
        super().__init__()
        if isinstance(shortcut, str) and shortcut != "identity":
            raise ValueError(f"`shortcut` must be None, 'identity' or a module, got {shortcut!r}.")
        self.body = body
        self.add_input = shortcut == "identity"
        self.shortcut: nn.Module | None = shortcut if isinstance(shortcut, nn.Module) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the body and add the shortcut."""
        y: torch.Tensor = self.body(x)
        if self.shortcut is not None:
            short: torch.Tensor = self.shortcut(x)
            return y + short
        if self.add_input:
            return y + x
        return y


def init_weights(module: nn.Module) -> None:
    """Initialise convs (He, fan-out per group), BN (1, 0) and linear layers (uniform, as timm).

    Args:
        module: A module; apply with ``model.apply(init_weights)``.
    """
    if isinstance(module, nn.Conv2d):
        # Fan-out per group, as timm's ``_init_weight_goog``; torch's own fan-out would be
        # ``groups`` times too large for depthwise convs and make activations vanish.
        k_h, k_w = module.kernel_size
        fan_out = k_h * k_w * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        bound = 1.0 / math.sqrt(module.weight.shape[1])
        nn.init.uniform_(module.weight, -bound, bound)
        nn.init.zeros_(module.bias)
