"""Memory guard of the accuracy objectives that build real models.

A search space can hold models far larger than the machine: a random ``nemotron_flash``
architecture has 1-2 billion parameters (spec 3.10: search on CPU at proxy widths), and
SynFlow in float64 needs ~28 bytes per parameter. On Linux an allocation past the free memory
does not raise: the kernel's out-of-memory killer ends the whole search. The guard reads the
parameter count from the space's analytic profile (no model is built) and skips an architecture
whose evaluation would not fit, as a failed trial, warning once.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_spaces import SearchSpace

__all__ = ["MEMORY_SHARE", "MemoryGuard", "available_memory_bytes"]

#: Share of the free memory one evaluation may take (the rest: activations, the process).
MEMORY_SHARE = 0.8

_CGROUP = Path("/sys/fs/cgroup")


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), None without one."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((_CGROUP / "memory.current").read_text()), 0)
    except (OSError, ValueError):
        return None


def available_memory_bytes(device: str = "cpu") -> int | None:
    """Bytes an evaluation on ``device`` can still allocate, None when unknown.

    CPU: the kernel's ``MemAvailable``, capped by a cgroup v2 limit when the process runs in
    one. CUDA: the free memory ``torch.cuda.mem_get_info`` reports.
    """
    if str(device).startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except (RuntimeError, AssertionError):
            return None
    free = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(free) if free else None


class MemoryGuard:
    """Decides, per architecture, whether an objective's evaluation fits in memory.

    Args:
        space: The search space (its ``profile`` gives the parameter count).
        bytes_per_param: Peak bytes the evaluation needs per parameter (weights, gradients,
            optimiser state, copies), measured for each objective.
        what: The objective's name, for the warning.
        device: Torch device the evaluation runs on.
    """

    def __init__(
        self, space: SearchSpace[Any], *, bytes_per_param: float, what: str, device: str = "cpu"
    ) -> None:
        if not bytes_per_param > 0:
            raise ValueError("`bytes_per_param` must be greater than 0.")
        self.space, self.bytes_per_param, self.what, self.device = (
            space, bytes_per_param, what, device,
        )  # fmt: skip
        self.skipped = 0

    def needed_bytes(self, arch: str) -> float:
        """Estimated peak bytes of evaluating ``arch`` (canonical string)."""
        params = self.space.profile(self.space.from_string(arch)).params
        return float(params) * self.bytes_per_param

    def fits(self, arch: str) -> bool:
        """Whether ``arch`` fits; the first that does not is named in a warning."""
        free = available_memory_bytes(self.device)
        need = self.needed_bytes(arch)
        if free is None or need <= MEMORY_SHARE * free or not math.isfinite(need):
            return True
        if self.skipped == 0:
            warnings.warn(
                f"{self.what}: skipping architectures too large for this machine's free memory "
                f"(they become failed trials; narrow the grid with --choices); e.g. "
                f"{arch[:48]} needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB is free",
                stacklevel=2,
            )
        self.skipped += 1
        return False
