"""Memory plan of a measurement run: which models may be built together, decided before any is.

A group of models is built at once and kept alive while it is timed, and so are the priming
models. A group of large language models can need more memory than the machine has free (the
``nemotron_flash`` reference set holds two 2.75 B-parameter models, ~11 GB each in fp32), and
on Linux an allocation past the free memory does not raise: the kernel's out-of-memory killer
ends the process. The plan reads each model's parameter count from its space's analytic
profile (nothing is built), skips models that cannot fit even alone next to the drift anchor,
and closes a group early when the next model would not fit beside the ones already in it.
The free memory is read once, before the first build: freed models stay in the process's heap
(see :mod:`nas.measure._allocator`), so later groups reuse that memory rather than the
kernel's.

Some spaces' profiles trace a model on the meta device (NAS-Bench-201: 0.07-0.25 s per arch
here, as long as timing it), so the plan first sizes the drift anchor alone: when a whole
group of models :data:`SIZE_MARGIN` times the anchor's size fits, no arch is profiled. In the
registered spaces the largest model is at most 17 times the anchor (nemotron_flash: 4.6 B
against 0.28 B parameters; NAS-Bench-201: 15 times; mnasnet, mobilevig: 3 and 8 times).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.measure._config import ResolvedConfig
    from search_spaces import SearchSpace

__all__ = ["SIZE_MARGIN", "MemoryPlan", "bytes_per_param", "plan_memory"]

#: How much larger than the drift anchor a model of its space is assumed to be at most when
#: the plan skips profiling each arch (see the module docstring).
SIZE_MARGIN = 100.0

#: Peak bytes per parameter of one built model: fp32 weights (bf16/fp16 run under autocast, so
#: weights stay fp32); ONNX Runtime holds the exported graph and its session's copy besides.
_BYTES_PER_PARAM = {"torch": 4.0, "onnxruntime": 12.0}


@lru_cache(maxsize=1 << 16)
def _params(space: SearchSpace[Any], text: str) -> float:
    """Parameter count of ``text`` from the space's analytic profile (nothing is built)."""
    return float(space.profile(space.from_string(text)).params)


def bytes_per_param(runtime: str) -> float:
    """Bytes a built model of ``runtime`` holds per parameter (see ``_BYTES_PER_PARAM``)."""
    return _BYTES_PER_PARAM.get(runtime, max(_BYTES_PER_PARAM.values()))


@dataclass
class MemoryPlan:
    """Groups and priming models that fit in memory together.

    Attributes:
        groups: Architectures timed together, in order (each at most ``chunk_size`` long).
        prime: The priming architectures (a prefix of the kept ones).
        too_large: Architectures skipped: alone with the anchor they need more than the budget.
        budget: Bytes the built models may take (None: free memory unknown, nothing checked).
        need: Estimated bytes per architecture that was checked.
    """

    groups: list[list[str]]
    prime: list[str]
    too_large: list[str] = field(default_factory=list)
    budget: float | None = None
    need: dict[str, float] = field(default_factory=dict)

    def warning(self, space: str) -> str | None:
        """One line naming what was skipped and why (None when nothing was)."""
        if not self.too_large or self.budget is None:
            return None
        worst = max(self.too_large, key=lambda a: self.need.get(a, 0.0))
        return (
            f"skipping {len(self.too_large)} {space} architecture(s) too large for this "
            f"machine's free memory ({self.budget / 1e9:.1f} GB usable): e.g. {worst[:48]} "
            f"needs ~{self.need[worst] / 1e9:.1f} GB"
        )


def plan_memory(
    space: SearchSpace[Any],
    texts: Sequence[str],
    cfg: ResolvedConfig,
    *,
    anchor: str | None,
    free_bytes: Callable[[str], int | None],
    share: float,
) -> MemoryPlan:
    """Split ``texts`` into groups of at most ``cfg.base.chunk_size`` that fit in memory.

    Args:
        space: The search space (its ``profile`` gives parameter counts).
        texts: Canonical strings to measure, in order.
        cfg: The resolved configuration (runtime, device type, chunk size, priming).
        anchor: The drift anchor timed in every group (None: no anchor).
        free_bytes: ``device_type -> free bytes`` (None when unknown).
        share: Share of the free memory the built models may take.

    Returns:
        The plan; without a known free memory, plain ``chunk_size`` groups.
    """
    size, n_prime = cfg.base.chunk_size, cfg.base.prime
    free = free_bytes(cfg.device_type) if texts else None
    if free is None:
        groups = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        return MemoryPlan(groups, list(texts[:n_prime]))
    budget = share * free
    per_param = bytes_per_param(cfg.base.runtime)
    need: dict[str, float] = {}

    def bytes_of(text: str) -> float:
        if text not in need:
            params = _params(space, text)
            need[text] = params * per_param if math.isfinite(params) else 0.0
        return need[text]

    base = bytes_of(anchor) if anchor is not None else 0.0
    if anchor is not None and 0 < base and (max(size, n_prime) + 1) * SIZE_MARGIN * base <= budget:
        groups = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        return MemoryPlan(groups, list(texts[:n_prime]), budget=budget, need=need)
    plan = MemoryPlan([], [], budget=budget, need=need)
    group: list[str] = []
    used = base
    for text in texts:
        extra = 0.0 if text == anchor else bytes_of(text)
        if base + extra > budget:
            plan.too_large.append(text)
            continue
        if len(group) == size or used + extra > budget:
            plan.groups.append(group)
            group, used = [], base
        group.append(text)
        used += extra
    if group:
        plan.groups.append(group)
    kept = [t for g in plan.groups for t in g]
    used = 0.0
    for text in kept[:n_prime]:  # the priming models are built together, without the anchor
        if used + bytes_of(text) > budget:
            break
        plan.prime.append(text)
        used += bytes_of(text)
    return plan
