"""FBNet block search space in HW-NAS-Bench's CIFAR-100 setting.

Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search", CVPR 2019 (arXiv:1812.03443): 22 searchable layers, each one of 9
blocks. HW-NAS-Bench (Li et al., ICLR 2021, arXiv:2103.10584) measures it on CIFAR-100 at
32x32; HELP (Lee et al., NeurIPS 2021) releases latencies of 5,000 of its architectures.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces._base import ParamValue, SearchSpace
from search_spaces._errors import InvalidArchError
from search_spaces._fbnet_ops import BLOCKS
from search_spaces._nb201_cost import (
    analytic_features,
    image_inputs,
    meta_profile,
    workload_features,
)
from search_spaces._registry import register_space
from search_spaces._workload import Profile, Workload

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["BLOCKS", "FBNetArch", "FBNetSpace", "help_encoding"]

NUM_LAYERS = 22
LAYER_NAMES = tuple(f"layer_{i:02d}" for i in range(NUM_LAYERS))


@dataclass(frozen=True)
class FBNetArch:
    """One FBNet architecture: the block name of each of the 22 searchable layers.

    Raises:
        InvalidArchError: naming the bad layer or block.
    """

    blocks: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.blocks, tuple) or len(self.blocks) != NUM_LAYERS:
            raise InvalidArchError(f"FBNet `blocks` must be a tuple of {NUM_LAYERS} block names")
        for name, block in zip(LAYER_NAMES, self.blocks, strict=True):
            if block not in BLOCKS:
                raise InvalidArchError(
                    f"unknown FBNet block {block!r} on {name} (choices: {', '.join(BLOCKS)})"
                )

    @property
    def op_indices(self) -> tuple[int, ...]:
        """HW-NAS-Bench / HELP ``op_idx_list`` (index into :data:`BLOCKS`)."""
        return tuple(BLOCKS.index(b) for b in self.blocks)

    @classmethod
    def from_op_indices(cls, indices: Sequence[int]) -> FBNetArch:
        """Inverse of :attr:`op_indices` (HELP ``arch.pt`` rows, HW-NAS-Bench configs)."""
        if isinstance(indices, str | bytes) or len(indices) != NUM_LAYERS:
            raise InvalidArchError(f"FBNet needs {NUM_LAYERS} op indices, got {len(indices)}")
        for name, i in zip(LAYER_NAMES, indices, strict=True):
            if (
                isinstance(i, bool)
                or not isinstance(i, numbers.Integral)
                or not 0 <= int(i) < len(BLOCKS)
            ):
                raise InvalidArchError(f"bad FBNet op index {i!r} on {name} (expected 0..8)")
        return cls(tuple(BLOCKS[int(i)] for i in indices))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``{"blocks": [...]}``)."""
        return {"blocks": list(self.blocks)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FBNetArch:
        """Inverse of :meth:`to_dict`."""
        if set(data) != {"blocks"} or not isinstance(data["blocks"], list | tuple):
            raise InvalidArchError(f"FBNet arch dict needs exactly a 'blocks' list, got {data!r}")
        return cls(tuple(data["blocks"]))


def help_encoding(arch: FBNetArch) -> np.ndarray:
    """HELP's 132-dim FBNet MLP input: 6 features per layer, zeros for ``skip``.

    Per layer: ``[k3, k5, e1, e1_g2, e3, e6]`` one-hots (kernel, then expansion/group), as in
    HELP's ``utils.arch_enc`` (github.com/HayeonLee/HELP, commit 45f70eb).
    """
    out = np.zeros((NUM_LAYERS, 6), dtype=np.float32)
    for layer, index in enumerate(arch.op_indices):
        if index == BLOCKS.index("skip"):
            continue
        out[layer, 0 if index < 4 else 1] = 1.0
        out[layer, 2 + index % 4] = 1.0
    return out.ravel()


#: Reference architectures by name (uniform choices spanning the space's cost range).
REFERENCE_BLOCKS = {
    "all-k3_e6": ("k3_e6",) * NUM_LAYERS,
    "all-k5_e6": ("k5_e6",) * NUM_LAYERS,  # largest
    "all-k3_e1": ("k3_e1",) * NUM_LAYERS,  # smallest without skips
    "all-skip": ("skip",) * NUM_LAYERS,  # smallest
}

#: HELP's FBNet hardware-embedding architectures, positions
#: [3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100] of HELP's ``metainfo.pt``.
HARDWARE_EMBEDDING_STRINGS = (
    "k3_e1_g2-skip-k5_e3-k5_e3-skip-k3_e1-k3_e6-k5_e1-k3_e6-k5_e6-skip-k5_e6-k5_e1-k3_e6-k3_e3"
    "-k5_e1_g2-k5_e6-k3_e6-k3_e1-k3_e1_g2-k3_e6-k5_e6",
    "k5_e1_g2-k5_e1-skip-k5_e1_g2-k3_e1_g2-k5_e3-skip-k5_e1_g2-k3_e6-k3_e1-k5_e1-skip-k3_e1-k3_e3"
    "-k5_e1-k5_e1_g2-k3_e1-k5_e3-k5_e3-k3_e1-k3_e1-k5_e1_g2",
    "k5_e6-k3_e3-k5_e6-k5_e1_g2-k5_e1-k5_e3-skip-k3_e1-k5_e3-k5_e3-k5_e1_g2-k3_e1_g2-k3_e3-k5_e1"
    "-k3_e1-k5_e6-k5_e1_g2-k5_e3-k3_e1-k3_e6-k3_e6-k3_e3",
    "skip-k3_e1_g2-k5_e3-k3_e1_g2-k5_e3-k3_e3-k5_e6-k3_e1_g2-k5_e3-skip-k5_e6-k5_e1_g2-k3_e3-k3_e1"
    "-k3_e1_g2-skip-k3_e1-k3_e6-k3_e3-k3_e3-k5_e1_g2-k5_e1",
    "k3_e1_g2-k5_e6-k3_e1-k5_e6-k5_e1-k3_e6-k5_e1-k5_e3-k5_e3-k3_e1_g2-k3_e1_g2-k3_e1-k5_e1_g2"
    "-k5_e3-k5_e6-k5_e6-k5_e3-k5_e6-k5_e3-k3_e6-k3_e1_g2-k3_e3",
    "k3_e3-k3_e3-k5_e1-k5_e1_g2-k5_e6-k3_e3-k5_e1_g2-k5_e6-k3_e3-k3_e3-k3_e1_g2-k3_e3-k3_e6"
    "-k3_e1_g2-k5_e1-k5_e3-k3_e6-k5_e3-k3_e6-k3_e3-k3_e1-k3_e1_g2",
    "k5_e1-k5_e1-k5_e1_g2-k5_e1_g2-k3_e6-k3_e1_g2-k3_e1_g2-k3_e1-k5_e1-k3_e3-k3_e3-k5_e1-k3_e3"
    "-k3_e1-k5_e1_g2-k3_e1-k5_e1_g2-k5_e3-k3_e3-k5_e1_g2-k3_e3-k5_e1_g2",
    "skip-skip-k5_e1-k5_e1-k5_e3-skip-k3_e1_g2-skip-k3_e1-k3_e6-k3_e1_g2-k3_e3-skip-skip-k5_e1_g2"
    "-skip-k3_e3-k3_e3-skip-k3_e1_g2-k5_e1-skip",
    "k3_e1-k5_e6-k5_e3-k5_e6-k3_e6-k3_e6-k5_e3-k3_e1_g2-k5_e6-k5_e1-k3_e6-k5_e6-k5_e6-k3_e1-skip"
    "-k5_e1-skip-k5_e1_g2-k5_e3-skip-k5_e1_g2-k3_e1_g2",
    "k3_e1_g2-k3_e3-k5_e1-k3_e1-k5_e6-k3_e6-k3_e1-k5_e1_g2-k5_e3-k5_e1-k5_e1_g2-k5_e6-k3_e1"
    "-k3_e1_g2-k5_e1-k3_e6-k3_e3-k3_e6-k3_e6-k3_e6-k3_e1-k5_e3",
)


class FBNetSpace(SearchSpace[FBNetArch]):
    """FBNet's 22-layer x 9-block space (Wu et al., CVPR 2019) on CIFAR (HW-NAS-Bench).

    One Optuna parameter per layer (``layer_00`` ... ``layer_21``) over the 9 blocks; every
    assignment is valid (no repair). Canonical string: the 22 block names joined by ``-``.

    Args:
        num_classes: Classifier outputs (100: CIFAR-100, HW-NAS-Bench's setting).
    """

    name = "fbnet"
    description = "FBNet space: 22 layers x 9 blocks, HW-NAS-Bench CIFAR-100 network, 32x32"

    def __init__(self, *, num_classes: int = 100) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"`num_classes` must be greater than or equal to 1, got {num_classes!r}."
            )
        self.num_classes = num_classes
        self._profile = functools.lru_cache(maxsize=4096)(self._compute_profile)

    def search_parameters(self) -> dict[str, Sequence[ParamValue]]:
        return {name: BLOCKS for name in LAYER_NAMES}

    def from_params(self, params: Mapping[str, Any]) -> FBNetArch:
        missing = [name for name in LAYER_NAMES if name not in params]
        if missing:
            raise InvalidArchError(f"missing FBNet parameter(s): {', '.join(missing)}")
        return FBNetArch(tuple(params[name] for name in LAYER_NAMES))

    def to_string(self, arch: FBNetArch) -> str:
        return "-".join(_check(arch).blocks)

    def from_string(self, text: str) -> FBNetArch:
        if not isinstance(text, str):
            raise InvalidArchError(f"FBNet arch string must be a str, got {type(text).__name__}")
        tokens = text.strip().split("-")
        for pos, token in enumerate(tokens):
            if token not in BLOCKS:
                raise InvalidArchError(
                    f"unknown FBNet block {token!r} at position {pos} "
                    f"(choices: {', '.join(BLOCKS)})"
                )
        if len(tokens) != NUM_LAYERS:
            raise InvalidArchError(
                f"FBNet arch string needs {NUM_LAYERS} '-'-joined blocks, got {len(tokens)}"
            )
        return FBNetArch(tuple(tokens))

    def default_workload(self) -> Workload:
        return Workload(batch_size=1, resolution=32)

    def smoke_workload(self) -> Workload:
        return Workload(batch_size=1, resolution=16)

    def build(self, arch: FBNetArch) -> nn.Module:
        from search_spaces._fbnet_ops import FBNetNetwork

        return FBNetNetwork(_check(arch).blocks, num_classes=self.num_classes)

    def example_inputs(self, workload: Workload | None = None) -> tuple[torch.Tensor, ...]:
        return image_inputs(self._workload(workload))

    def help_encoding(self, arch: FBNetArch) -> np.ndarray:
        """HELP's 132-dim FBNet encoding (see :func:`help_encoding`)."""
        return help_encoding(_check(arch))

    def encode(self, arch: FBNetArch, workload: Workload | None = None) -> np.ndarray:
        """22x9 block one-hot, then workload and analytic parts (spec 0.3); 203 values."""
        one_hot = np.zeros((NUM_LAYERS, len(BLOCKS)), dtype=np.float32)
        one_hot[np.arange(NUM_LAYERS), list(_check(arch).op_indices)] = 1.0
        wl = self._workload(workload)
        return np.concatenate(
            [one_hot.ravel(), workload_features(wl), analytic_features(self.profile(arch, wl))]
        ).astype(np.float32)

    def profile(self, arch: FBNetArch, workload: Workload | None = None) -> Profile:
        return self._profile(_check(arch), self._workload(workload))

    def _compute_profile(self, arch: FBNetArch, workload: Workload) -> Profile:
        return meta_profile(lambda: self.build(arch), workload)

    def reference_archs(self) -> dict[str, FBNetArch]:
        return {name: FBNetArch(blocks) for name, blocks in REFERENCE_BLOCKS.items()}

    def hardware_embedding_archs(self) -> list[FBNetArch]:
        return [self.from_string(text) for text in HARDWARE_EMBEDDING_STRINGS]

    def _workload(self, workload: Workload | None) -> Workload:
        wl = self.default_workload() if workload is None else workload
        if not isinstance(wl, Workload):
            raise ValueError(f"`workload` must be a Workload, got {type(wl).__name__}.")
        return wl


def _check(arch: object) -> FBNetArch:
    if not isinstance(arch, FBNetArch):
        raise InvalidArchError(f"expected an FBNetArch, got {type(arch).__name__}")
    return arch


@register_space("fbnet")
def _create_fbnet() -> FBNetSpace:
    return FBNetSpace()
