"""NAS-Bench-201 cell search space.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020 (arXiv:2001.00326). 15,625 cells: 6 edges x 5 operations. The network is the
benchmark's: C=16, N=5 cells per stage, 3 stages with residual reduction blocks, 32x32 input,
10 classes by default. This is the space of the public latency data in HELP (Lee et al.,
NeurIPS 2021), HW-NAS-Bench (Li et al., ICLR 2021) and LatBench (Dudziak et al., NeurIPS 2020).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces._base import ParamValue, SearchSpace
from search_spaces._errors import InvalidArchError
from search_spaces._nb201_arch import (
    EDGE_NAMES,
    OPS,
    NB201Arch,
    output_reaching_edges,
    parse_arch_string,
)
from search_spaces._nb201_cost import (
    analytic_features,
    image_inputs,
    meta_profile,
    workload_features,
)
from search_spaces._nb201_graph import help_op_graph
from search_spaces._nb201_index import NB201IndexTable
from search_spaces._registry import register_space
from search_spaces._workload import Profile, Workload

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["NASBench201Space", "NB201Arch", "NB201IndexTable"]

#: Published cells by name (strings only; NAS-Bench-201 indices in comments).
REFERENCE_STRINGS = {
    # ResNet-like cell (NAS-Bench-201 paper, Sec. 2.1: two 3x3 convs plus the skip path).
    "resnet": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    # Index 6111: best CIFAR-10 test accuracy (94.37%).
    "best-cifar10": (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    ),
    # Index 9930: best CIFAR-100 test accuracy (73.51%).
    "best-cifar100": (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    ),
    # Index 857: best ImageNet16-120 test accuracy (47.31%).
    "best-imagenet16-120": (
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    ),
    # Index 1462: the largest cell.
    "all-conv3x3": (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    ),
}

#: HELP's hardware-embedding cells, NAS-Bench-201 indices
#: [11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462] (HELP ``hardware_embedding_index.pt``).
HARDWARE_EMBEDDING_STRINGS = (
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
    "|skip_connect~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|",
    "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
)


class NASBench201Space(SearchSpace[NB201Arch]):
    """The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020, arXiv:2001.00326).

    One Optuna parameter per edge (``edge_0_1`` ... ``edge_2_3``, arch-string order), each
    over the 5 operations; every assignment is valid, so there is no repair.

    Args:
        channels: First-stage channels ``C`` (16 in the benchmark).
        cells_per_stage: Cells per stage ``N`` (5 in the benchmark).
        num_classes: Classifier outputs (10: CIFAR-10; 100: CIFAR-100; 120: ImageNet16-120).
    """

    name = "nasbench201"
    description = "NAS-Bench-201 cell space: 6 edges x 5 ops, C=16, N=5, 32x32 input"

    def __init__(self, *, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10):
        for arg, value in (
            ("channels", channels),
            ("cells_per_stage", cells_per_stage),
            ("num_classes", num_classes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be greater than or equal to 1, got {value!r}.")
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.num_classes = num_classes
        self._profile = functools.lru_cache(maxsize=4096)(self._compute_profile)

    # ----------------------------------------------------------------- grid
    def search_parameters(self) -> dict[str, Sequence[ParamValue]]:
        return {name: OPS for name in EDGE_NAMES}

    def from_params(self, params: Mapping[str, Any]) -> NB201Arch:
        missing = [name for name in EDGE_NAMES if name not in params]
        if missing:
            raise InvalidArchError(f"missing NAS-Bench-201 parameter(s): {', '.join(missing)}")
        ops = tuple(params[name] for name in EDGE_NAMES)
        return NB201Arch((ops[0], ops[1], ops[2], ops[3], ops[4], ops[5]))

    def prune_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Edges whose result never reaches the cell output become ``none`` (same function)."""
        out = dict(params)
        if all(name in params for name in EDGE_NAMES):
            ops = [params[name] for name in EDGE_NAMES]
            for name, alive in zip(EDGE_NAMES, output_reaching_edges(ops), strict=True):
                if not alive:
                    out[name] = "none"
        return out

    # ----------------------------------------------------------------- identity
    def to_string(self, arch: NB201Arch) -> str:
        return _check(arch).to_string()

    def from_string(self, text: str) -> NB201Arch:
        return parse_arch_string(text)

    def from_op_codes(self, codes: Sequence[int]) -> NB201Arch:
        """LatBench's 6-int key (0 none, 1 skip, 2 conv1x1, 3 conv3x3, 4 avg_pool)."""
        return NB201Arch.from_op_codes(codes)

    def index_table(self, source: str | None = None) -> NB201IndexTable:
        """The official index table from a file, or from the shared data folder when ``None``.

        Args:
            source: HELP's ``str_arch2idx.pt`` or a CSV in official index order.
        """
        if source is None:
            return NB201IndexTable.from_shared_data(self.canonicalize)
        return NB201IndexTable.from_file(source, self.canonicalize)

    def benchmark_index(self, arch: NB201Arch, table: NB201IndexTable) -> int:
        """Official NAS-Bench-201 index of ``arch`` (see :meth:`index_table`)."""
        return table.index(self.to_string(arch))

    def from_index(self, index: int, table: NB201IndexTable) -> NB201Arch:
        """Architecture with official NAS-Bench-201 index ``index``."""
        return self.from_string(table.arch(index))

    # ----------------------------------------------------------------- models
    def default_workload(self) -> Workload:
        return Workload(batch_size=1, resolution=32)

    def smoke_workload(self) -> Workload:
        return Workload(batch_size=1, resolution=16)

    def build(self, arch: NB201Arch) -> nn.Module:
        from search_spaces._nb201_ops import NB201Network

        return NB201Network(
            _check(arch).ops,
            channels=self.channels,
            cells_per_stage=self.cells_per_stage,
            num_classes=self.num_classes,
        )

    def example_inputs(self, workload: Workload | None = None) -> tuple[torch.Tensor, ...]:
        return image_inputs(self._workload(workload))

    def op_graph(self, arch: NB201Arch) -> tuple[np.ndarray, np.ndarray]:
        """HELP's GCN input: ``(adjacency [9, 9], node_ops [9, 8])`` float32.

        See :mod:`search_spaces._nb201_graph` for the format and what is verified.
        """
        return help_op_graph(_check(arch).ops)

    def encode(self, arch: NB201Arch, workload: Workload | None = None) -> np.ndarray:
        """HELP op graph (flattened adjacency, then node features), workload, analytic parts."""
        adjacency, node_ops = self.op_graph(arch)
        wl = self._workload(workload)
        return np.concatenate(
            [
                adjacency.ravel(),
                node_ops.ravel(),
                workload_features(wl),
                analytic_features(self.profile(arch, wl)),
            ]
        ).astype(np.float32)

    def profile(self, arch: NB201Arch, workload: Workload | None = None) -> Profile:
        return self._profile(_check(arch), self._workload(workload))

    def _compute_profile(self, arch: NB201Arch, workload: Workload) -> Profile:
        return meta_profile(lambda: self.build(arch), workload)

    # ----------------------------------------------------------------- reference sets
    def reference_archs(self) -> dict[str, NB201Arch]:
        return {name: parse_arch_string(text) for name, text in REFERENCE_STRINGS.items()}

    def hardware_embedding_archs(self) -> list[NB201Arch]:
        return [parse_arch_string(text) for text in HARDWARE_EMBEDDING_STRINGS]

    # ----------------------------------------------------------------- helpers
    def _workload(self, workload: Workload | None) -> Workload:
        wl = self.default_workload() if workload is None else workload
        if not isinstance(wl, Workload):
            raise ValueError(f"`workload` must be a Workload, got {type(wl).__name__}.")
        if wl.resolution % 4:
            raise ValueError(
                f"`workload.resolution` must be a multiple of 4 for NAS-Bench-201, "
                f"got {wl.resolution}."
            )
        return wl


def _check(arch: object) -> NB201Arch:
    if not isinstance(arch, NB201Arch):
        raise InvalidArchError(f"expected an NB201Arch, got {type(arch).__name__}")
    return arch


@register_space("nasbench201")
def _create_nasbench201() -> NASBench201Space:
    return NASBench201Space()
