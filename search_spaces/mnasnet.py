"""MnasNet-style mobile CNN search space (spec section 1).

Tan et al., *MnasNet: Platform-Aware Neural Architecture Search for Mobile*, CVPR 2019,
arXiv:1807.11626 (https://arxiv.org/abs/1807.11626): a factorized hierarchical space over the
MobileNetV2 skeleton (Sandler et al., CVPR 2018, Table 2). Each of seven blocks picks one layer
design (op, kernel, SE, skip) plus a width and a depth relative to MobileNetV2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces._base import ParamValue, SearchSpace
from search_spaces._blocks import make_divisible
from search_spaces._errors import InvalidArchError
from search_spaces._mnasnet_arch import (
    BASE_CHANNELS,
    BASE_LAYERS,
    DLAYERS,
    KERNELS,
    NUM_BLOCKS,
    OPS,
    SE_RATIOS,
    SKIPS,
    WIDTHS,
    MnasNetArch,
    MnasNetBlock,
    decode_block_string,
    encode_block_string,
)
from search_spaces._mnasnet_profile import FP32_BYTES, analytic_costs
from search_spaces._registry import register_space
from search_spaces._workload import Profile, Workload

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["MnasNetArch", "MnasNetBlock", "MnasNetSpace", "mnasnet_reward"]

ENCODING_LENGTH = 82
_MAX_OUT_CH = 400
_MAX_LAYERS = 5


def mnasnet_reward(
    acc: float, lat_ms: float, target_ms: float, alpha: float = -0.07, beta: float = -0.07
) -> float:
    """MnasNet's latency-aware reward ``ACC * (LAT / T) ** w`` (Tan et al., 2019, Eq. 2-3).

    ``w = alpha`` when ``lat_ms <= target_ms``, else ``beta``. The defaults are the paper's soft
    constraint; ``alpha=0, beta=-1`` is the hard constraint.

    Args:
        acc: Accuracy (or a proxy), non-negative.
        lat_ms: Measured or predicted latency in milliseconds, positive.
        target_ms: Target latency ``T`` in milliseconds, positive (75 ms on a Pixel 1 in the paper).
        alpha: Exponent when the target is met.
        beta: Exponent when the target is exceeded.

    Returns:
        The scalar reward.

    Raises:
        ValueError: Naming the argument that is out of range or not finite.
    """
    for name, value in (("acc", acc), ("alpha", alpha), ("beta", beta)):
        if not math.isfinite(value):
            raise ValueError(f"`{name}` must be finite, got {value!r}.")
    if acc < 0:
        raise ValueError(f"`acc` must be greater than or equal to 0, got {acc!r}.")
    for name, value in (("lat_ms", lat_ms), ("target_ms", target_ms)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a positive finite number, got {value!r}.")
    w = alpha if lat_ms <= target_ms else beta
    return float(acc * (lat_ms / target_ms) ** w)


# ------------------------------------------------------------------ reference configurations
def _blocks(*specs: tuple[str, int, float, str, int, int]) -> MnasNetArch:
    return MnasNetArch(tuple(MnasNetBlock(*spec) for spec in specs))


# MnasNet-A1: paper Fig. 7(a), tensorflow/tpu mnasnet_a1(); block 5 (112) is off-grid.
_A1 = _blocks(
    ("dwconv", 3, 0.0, "none", 16, 1),
    ("mbconv6", 3, 0.0, "identity", 24, 2),
    ("mbconv3", 5, 0.25, "identity", 40, 3),
    ("mbconv6", 3, 0.0, "identity", 80, 4),
    ("mbconv6", 3, 0.25, "identity", 112, 2),
    ("mbconv6", 5, 0.25, "identity", 160, 3),
    ("mbconv6", 3, 0.0, "identity", 320, 1),
)
# MnasNet-B1: tensorflow/tpu mnasnet_b1() = torchvision mnasnet1_0; block 6 (192) is off-grid.
_B1 = _blocks(
    ("dwconv", 3, 0.0, "none", 16, 1),
    ("mbconv3", 3, 0.0, "identity", 24, 3),
    ("mbconv3", 5, 0.0, "identity", 40, 3),
    ("mbconv6", 5, 0.0, "identity", 80, 3),
    ("mbconv6", 3, 0.0, "identity", 96, 2),
    ("mbconv6", 5, 0.0, "identity", 192, 4),
    ("mbconv6", 3, 0.0, "none", 320, 1),
)
_MOBILENETV2 = _blocks(
    ("dwconv", 3, 0.0, "none", 16, 1),
    *(
        ("mbconv6", 3, 0.0, "identity", c, n)
        for c, n in zip(BASE_CHANNELS[1:], BASE_LAYERS[1:], strict=True)
    ),
)


def _single_type(op: str, kernel: int) -> MnasNetArch:
    """MnasNet Table 6: A1's depth, filters, SE and skips with one layer type in every block."""
    return MnasNetArch(tuple(replace(b, op=op, kernel=kernel) for b in _A1.blocks))


_REFERENCES: dict[str, MnasNetArch] = {
    "mnasnet-a1": _A1,
    "mnasnet-b1": _B1,
    "mobilenetv2": _MOBILENETV2,
    "mnasnet-a1-all-mbconv3-k3": _single_type("mbconv3", 3),
    "mnasnet-a1-all-mbconv3-k5": _single_type("mbconv3", 5),
    "mnasnet-a1-all-mbconv6-k3": _single_type("mbconv6", 3),
    "mnasnet-a1-all-mbconv6-k5": _single_type("mbconv6", 5),
}


def _uniform_params(op: str, k: int, se: float, skip: str, width: float, d: int) -> dict[str, Any]:
    values = {"op": op, "k": k, "se": se, "skip": skip, "width": width, "dlayers": d}
    return {f"b{i}_{key}": v for i in range(1, NUM_BLOCKS + 1) for key, v in values.items()}


# ------------------------------------------------------------------ cached analytics
@lru_cache(maxsize=1 << 16)
def _profile_cached(
    arch: MnasNetArch, batch: int, resolution: int
) -> tuple[int, int, int, int, int]:
    t = analytic_costs(arch, resolution)
    traffic = t.traffic * batch * FP32_BYTES
    return t.params, t.macs * batch, t.peak * batch * FP32_BYTES, t.ops, traffic


@lru_cache(maxsize=1 << 16)
def _arch_features(arch: MnasNetArch) -> tuple[float, ...]:
    values: list[float] = []
    for b in arch.blocks:
        values += [float(b.op == op) for op in OPS]
        values += [(b.kernel - 3) / 2, float(b.se > 0)]
        values += [float(b.skip == skip) for skip in SKIPS]
        values += [b.out_ch / _MAX_OUT_CH, b.layers / _MAX_LAYERS]
    return tuple(values)


@register_space("mnasnet")
class MnasNetSpace(SearchSpace[MnasNetArch]):
    """MnasNet's factorized hierarchical search space (Tan et al., CVPR 2019, Sec. 4.1).

    42 categorical parameters ``b{i}_op``, ``b{i}_k``, ``b{i}_se``, ``b{i}_skip``, ``b{i}_width``
    and ``b{i}_dlayers`` for blocks ``i = 1..7`` (432 choices per block, about 2.8e18 models).
    """

    name = "mnasnet"
    description = "MnasNet-style mobile CNN: 7 blocks over MobileNetV2 (Tan et al., CVPR 2019)"

    # ----------------------------------------------------------------- sampling grid
    def search_parameters(self) -> dict[str, Sequence[ParamValue]]:
        """The 42 parameters with their fixed choice lists (spec 1.3)."""
        choices: dict[str, Sequence[ParamValue]] = {}
        for i in range(1, NUM_BLOCKS + 1):
            choices[f"b{i}_op"] = list(OPS)
            choices[f"b{i}_k"] = list(KERNELS)
            choices[f"b{i}_se"] = list(SE_RATIOS)
            choices[f"b{i}_skip"] = list(SKIPS)
            choices[f"b{i}_width"] = list(WIDTHS)
            choices[f"b{i}_dlayers"] = list(DLAYERS)
        return choices

    def from_params(self, params: Mapping[str, Any]) -> MnasNetArch:
        """Map a full assignment of the 42 parameters to an architecture.

        ``out_ch = round8(width * c_i)``; ``layers = max(1, n_i + dlayers)`` (repair: a block never
        disappears). Keys that are not parameters of this space are ignored.

        Raises:
            InvalidArchError: Naming a missing parameter or a value outside its choices.
        """
        grid = self.search_parameters()
        missing = [name for name in grid if name not in params]
        if missing:
            raise InvalidArchError(f"missing parameter(s): {', '.join(missing)}.")
        for name, options in grid.items():
            value = params[name]
            if isinstance(value, bool) or value not in options:
                raise InvalidArchError(
                    f"parameter `{name}` must be one of {options}, got {value!r}."
                )
        blocks = []
        for i in range(NUM_BLOCKS):
            p = {key: params[f"b{i + 1}_{key}"] for key in ("op", "k", "se", "skip")}
            blocks.append(
                MnasNetBlock(
                    op=str(p["op"]),
                    kernel=int(p["k"]),
                    se=float(p["se"]),
                    skip=str(p["skip"]),
                    out_ch=make_divisible(float(params[f"b{i + 1}_width"]) * BASE_CHANNELS[i]),
                    layers=max(1, BASE_LAYERS[i] + int(params[f"b{i + 1}_dlayers"])),
                )
            )
        return MnasNetArch(tuple(blocks))

    # ----------------------------------------------------------------- identity
    def to_string(self, arch: MnasNetArch) -> str:
        """Canonical block string (spec 1.4), e.g. ``ds_r1_k3_s1_c16_noskip-ir_r2_k3_s2_e6_c24``."""
        return encode_block_string(arch)

    def from_string(self, text: str) -> MnasNetArch:
        """Parse a block string.

        Raises:
            InvalidArchError: Naming the offending block and token.
        """
        return decode_block_string(text)

    # ----------------------------------------------------------------- models
    def default_workload(self) -> Workload:
        """Batch 1, 3x224x224 (spec 0.4)."""
        return Workload(batch_size=1, resolution=224)

    def smoke_workload(self) -> Workload:
        """Batch 1, 3x64x64, for fast CPU tests."""
        return Workload(batch_size=1, resolution=64)

    def build(self, arch: MnasNetArch) -> nn.Module:
        """Build the network of spec 1.4 (freshly initialised, train mode)."""
        from search_spaces._mnasnet_model import MnasNet

        if not isinstance(arch, MnasNetArch):
            raise InvalidArchError(f"expected a MnasNetArch, got {type(arch).__name__}.")
        return MnasNet(arch)

    def example_inputs(self, workload: Workload | None = None) -> tuple[torch.Tensor, ...]:
        """One seeded batch of images ``(batch, 3, resolution, resolution)``."""
        import torch

        wl = workload or self.default_workload()
        gen = torch.Generator().manual_seed(0)
        shape = (wl.batch_size, 3, wl.resolution, wl.resolution)
        return (torch.randn(shape, generator=gen),)

    def profile(self, arch: MnasNetArch, workload: Workload | None = None) -> Profile:
        """Analytic params, MACs, FLOPs (``2 x MACs``), peak leaf activation bytes (fp32) and,
        in ``extra["dispatched_ops"]``, the operators an eager runtime dispatches one by one and,
        in ``extra["activation_traffic_bytes"]``, the fp32 activation bytes they read and write.

        Equal to what ``search_spaces._profiling`` measures on the built model; cached per
        ``(arch, workload)``.
        """
        wl = workload or self.default_workload()
        params, macs, peak, ops, traffic = _profile_cached(arch, wl.batch_size, wl.resolution)
        extra = {"dispatched_ops": float(ops), "activation_traffic_bytes": float(traffic)}
        return Profile(params=params, macs=macs, flops=2 * macs, memory_bytes=peak, extra=extra)

    def encode(self, arch: MnasNetArch, workload: Workload | None = None) -> np.ndarray:
        """The 82 values of spec 1.7: 77 per-block, 2 workload, 3 analytic (log10)."""
        wl = workload or self.default_workload()
        params, macs, peak, _, _ = _profile_cached(arch, wl.batch_size, wl.resolution)
        tail = (
            wl.resolution / 224,
            math.log2(wl.batch_size) / 8,
            math.log10(params),
            math.log10(macs),
            math.log10(peak),
        )
        return np.asarray(_arch_features(arch) + tail, dtype=np.float64)

    # ----------------------------------------------------------------- reference sets
    def reference_archs(self) -> dict[str, MnasNetArch]:
        """A1, B1, MobileNetV2-1.0 and the four single-type variants of MnasNet Table 6."""
        return dict(_REFERENCES)

    def hardware_embedding_archs(self) -> list[MnasNetArch]:
        """The 10 HELP reference architectures of spec 1.8 (the last one is ``random(0)``)."""
        refs = self.reference_archs()
        return [
            refs["mobilenetv2"],
            refs["mnasnet-a1"],
            refs["mnasnet-b1"],
            refs["mnasnet-a1-all-mbconv3-k3"],
            refs["mnasnet-a1-all-mbconv3-k5"],
            refs["mnasnet-a1-all-mbconv6-k3"],
            refs["mnasnet-a1-all-mbconv6-k5"],
            self.from_params(_uniform_params("dwconv", 3, 0.0, "none", 0.75, -1)),
            self.from_params(_uniform_params("mbconv6", 5, 0.25, "pool", 1.25, 1)),
            self.random(0),
        ]

    @property
    def encoding_length(self) -> int:
        """82 (spec 1.7)."""
        return ENCODING_LENGTH
