"""MobileViG-style hybrid CNN + graph search space (spec section 2).

Munir, Avery, Marculescu, *MobileViG: Graph-Based Sparse Attention for Mobile Vision
Applications*, CVPRW 2023, arXiv:2307.00395; official code ``SLDGroup/MobileViG``.
The space generalises MobileViG so that stages 3 and 4 each hold some inverted-residual blocks
followed by some SVGA blocks; the four published models are the case "stage 3 = IR only,
stage 4 = SVGA only".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces._base import ParamValue, SearchSpace
from search_spaces._errors import InvalidArchError
from search_spaces._mobilevig_blocks import effective_hop, register_block
from search_spaces._mobilevig_config import (
    MobileViGArch,
    MobileViGBlockCfg,
    MobileViGModelCfg,
    format_arch,
    parse_arch,
)
from search_spaces._mobilevig_model import (
    MobileViG,
    analytic_profile,
    build_mobilevig,
    feature_sizes,
)
from search_spaces._registry import register_space
from search_spaces._workload import Profile, Workload

__all__ = [
    "MobileViG",
    "MobileViGArch",
    "MobileViGBlockCfg",
    "MobileViGModelCfg",
    "MobileViGSpace",
    "analytic_profile",
    "build_mobilevig",
    "register_block",
]

# The 18 Optuna parameters of spec 2.4, each with its fixed, ordered choice list.
_PARAMETERS: dict[str, tuple[int, ...]] = {
    "n1": tuple(range(1, 7)),
    "n2": tuple(range(1, 7)),
    "n3_ir": tuple(range(2, 17)),
    "n3_svga": tuple(range(0, 5)),
    "n4_ir": tuple(range(0, 3)),
    "n4_svga": tuple(range(1, 7)),
    "c1": (32, 42, 48, 64),
    "c2": (64, 84, 96, 128),
    "c3": tuple(range(128, 321, 8)),
    "c4": tuple(range(192, 513, 16)),
    "e1": (2, 3, 4, 6),
    "e2": (2, 3, 4, 6),
    "e3": (2, 3, 4, 6),
    "e4": (2, 3, 4, 6),
    "k3": (2, 3, 4),
    "k4": (1, 2, 3),
    "ffn_ratio": (2, 3, 4),
    "emb": (512, 768, 1024),
}

# Published models (spec 2.3): (c1, c2, c3, c4), (n1, n2, n3, n4), emb.
_PUBLISHED: dict[str, tuple[tuple[int, ...], tuple[int, ...], int]] = {
    "mobilevig-ti": ((42, 84, 168, 256), (2, 2, 6, 2), 512),
    "mobilevig-s": ((42, 84, 176, 256), (3, 3, 9, 3), 512),
    "mobilevig-m": ((42, 84, 224, 400), (3, 3, 9, 3), 768),
    "mobilevig-b": ((42, 84, 240, 464), (5, 5, 15, 5), 768),
}


def _published(name: str) -> MobileViGArch:
    (c1, c2, c3, c4), (n1, n2, n3, n4), emb = _PUBLISHED[name]
    return MobileViGArch(
        c1=c1, c2=c2, c3=c3, c4=c4, n1=n1, n2=n2, n3_ir=n3, n3_svga=0, n4_ir=0, n4_svga=n4,
        e1=4, e2=4, e3=4, e4=4, k3=0, k4=2, ffn_ratio=4, emb=emb,
    )  # fmt: skip


@register_space("mobilevig")
class MobileViGSpace(SearchSpace[MobileViGArch]):
    """MobileViG-style space: IR stages 1-2, mixed IR + SVGA stages 3-4 (spec 2.4).

    Munir, Avery, Marculescu, *MobileViG*, CVPRW 2023, arXiv:2307.00395.

    Args:
        resolution: Input side the sampled architectures are meant for; hop distances are
            repaired to ``min(K, H - 1)`` for the stage feature size ``H`` at this resolution.
    """

    name = "mobilevig"
    description = "MobileViG-style hybrid CNN + sparse vision graph attention (CVPRW 2023)"

    def __init__(self, *, resolution: int = 224) -> None:
        if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 32:
            raise ValueError(
                f"`resolution` must be an integer greater than or equal to 32, got {resolution!r}."
            )
        self.resolution = resolution

    # ----------------------------------------------------------------- sampling grid
    def search_parameters(self) -> dict[str, Sequence[ParamValue]]:
        """The 18 parameters of spec 2.4 with their fixed choice lists (all always suggested)."""
        return {name: list(choices) for name, choices in _PARAMETERS.items()}

    def from_params(self, params: Mapping[str, Any]) -> MobileViGArch:
        """Map a full assignment to an architecture, repairing ``K`` to ``min(K, H - 1)``.

        ``k3`` is ignored (stored as 0) when ``n3_svga == 0``.

        Raises:
            InvalidArchError: naming a missing, unknown or off-grid parameter.
        """
        unknown = sorted(set(params) - set(_PARAMETERS))
        if unknown:
            raise InvalidArchError(f"unknown MobileViG parameter(s): {', '.join(unknown)}")
        values: dict[str, int] = {}
        for name, choices in _PARAMETERS.items():
            if name not in params:
                raise InvalidArchError(f"missing MobileViG parameter `{name}`")
            value = params[name]
            if isinstance(value, bool) or value not in choices:
                raise InvalidArchError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
            values[name] = int(value)
        _, _, h3, h4 = feature_sizes(self.resolution)
        values["k3"] = effective_hop(values["k3"], h3)
        values["k4"] = effective_hop(values["k4"], h4)
        return MobileViGArch.from_dict(values)

    # ----------------------------------------------------------------- identity
    def to_string(self, arch: MobileViGArch) -> str:
        """``vig_c{c1}-{c2}-{c3}-{c4}_d{n1}-{n2}-{n3_ir}+{n3_svga}-{n4_ir}+{n4_svga}_e..._k..._f.._E..``."""
        return format_arch(arch)

    def from_string(self, text: str) -> MobileViGArch:
        """Parse an ID string (spec 2.4).

        Raises:
            InvalidArchError: naming the bad token.
        """
        return parse_arch(text)

    # ----------------------------------------------------------------- models
    def default_workload(self) -> Workload:
        """Batch 1, 3 x 224 x 224 (spec 0.4), or this space's resolution."""
        return Workload(batch_size=1, resolution=self.resolution)

    def smoke_workload(self) -> Workload:
        """Batch 1, 3 x 64 x 64: stage 4 is 2 x 2, so every hop is repaired to 1."""
        return Workload(batch_size=1, resolution=64)

    def build(self, arch: MobileViGArch) -> nn.Module:
        """Fresh :class:`MobileViG` in train mode (distillation head included)."""
        return build_mobilevig(arch)

    def example_inputs(self, workload: Workload | None = None) -> tuple[torch.Tensor, ...]:
        """One seeded image batch of shape ``(batch, 3, resolution, resolution)``."""
        wl = workload or self.default_workload()
        gen = torch.Generator().manual_seed(0)
        return (torch.randn(wl.batch_size, 3, wl.resolution, wl.resolution, generator=gen),)

    def profile(self, arch: MobileViGArch, workload: Workload | None = None) -> Profile:
        """Analytic params, MACs, FLOPs and peak activation bytes (equal to the real module's)."""
        wl = workload or self.default_workload()
        return analytic_profile(arch, wl.batch_size, wl.resolution)

    def encode(self, arch: MobileViGArch, workload: Workload | None = None) -> np.ndarray:
        """The 27 values of spec 2.5: 20 per-stage, 2 global, 2 workload, 3 analytic.

        ``K_s`` is the hop actually used at the workload's feature size (0 without SVGA).
        """
        wl = workload or self.default_workload()
        sizes = feature_sizes(wl.resolution)
        n_ir = (arch.n1, arch.n2, arch.n3_ir, arch.n4_ir)
        n_svga = (0, 0, arch.n3_svga, arch.n4_svga)
        exps = (arch.e1, arch.e2, arch.e3, arch.e4)
        hops = (0, 0, arch.k3, arch.k4)
        values: list[float] = []
        for s in range(4):
            k = effective_hop(hops[s], sizes[s]) if n_svga[s] else 0
            values += [n_ir[s] / 16, n_svga[s] / 6, arch.channels[s] / 512, exps[s] / 6, k / 4]
        values += [arch.ffn_ratio / 4, arch.emb / 1024]
        values += [wl.resolution / 224, math.log2(wl.batch_size) / 8]
        prof = self.profile(arch, wl)
        values += [math.log10(prof.params), math.log10(prof.macs), math.log10(prof.memory_bytes)]
        return np.asarray(values, dtype=np.float64)

    # ----------------------------------------------------------------- reference sets
    def reference_archs(self) -> dict[str, MobileViGArch]:
        """MobileViG-Ti, -S, -M and -B (spec 2.3)."""
        return {name: _published(name) for name in _PUBLISHED}

    def hardware_embedding_archs(self) -> list[MobileViGArch]:
        """The 10 HELP reference architectures of spec 2.7."""
        ti, s, m, b = (_published(n) for n in _PUBLISHED)
        lo = MobileViGArch.from_dict({k: v[0] for k, v in _PARAMETERS.items()})
        hi = MobileViGArch.from_dict({k: v[-1] for k, v in _PARAMETERS.items()})
        return [
            ti,
            s,
            m,
            b,
            lo,
            hi,
            replace(ti, k4=1),
            replace(ti, k4=3),
            replace(s, n3_svga=2, k3=2),
            replace(m, e1=2, e2=2, e3=2, e4=2),
        ]
