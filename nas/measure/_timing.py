"""Timing protocols: interleaved round-robin (default) and sequential back-to-back.

Timing many models one after another confounds each model's latency with whatever else the
machine was doing during its slot (frequency scaling, other tenants, thermal state). The
interleaved protocol instead warms every model up and then runs ``rounds`` rounds; in each round
every model runs ``repeats`` times back to back, in a fresh random order per round. Slow drifts
in machine speed then hit all models alike, and per-model medians across rounds are comparable.
This is the randomised-interleaving idea of Georges, Buytaert & Eeckhout, *Statistically Rigorous
Java Performance Evaluation* (OOPSLA 2007) and of Kalibera & Jones, *Rigorous Benchmarking in
Reasonable Time* (ISMM 2013), applied to a population of models instead of program variants.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from nas.measure._allocator import retain_freed_memory

__all__ = [
    "Sampler",
    "TimingProtocol",
    "round_robin_schedule",
    "run_protocol",
]

ProtocolKind = Literal["interleaved", "sequential"]


class Sampler(Protocol):
    """One ready-to-run model: each call of :meth:`sample` runs one timed inference."""

    def sample(self) -> dict[str, float]:
        """Run once and return milliseconds per metric (e.g. ``{"latency_ms": 3.1}``)."""
        ...


@dataclass(frozen=True)
class TimingProtocol:
    """How samples are collected; :attr:`name` is stored with every measurement.

    Args:
        kind: ``"interleaved"`` (round-robin over models) or ``"sequential"`` (each model's
            runs back to back, one model after another).
        rounds: Rounds over all models (interleaved) or blocks per model (sequential).
        repeats: Back-to-back runs of one model per round.
        warmup: Untimed runs of each model before timing.
        outlier_threshold: Modified z-score above which a sample is dropped.
        retain_heap: Keep freed memory in the process while timing (see
            :mod:`nas.measure._allocator`); adds ``-rh`` to :attr:`name`.
        anchor: Time one fixed architecture, the drift anchor, in every group and divide the
            group's times by how much slower it ran than in the reference group (see
            :mod:`nas.measure._runner`); adds ``-an`` to :attr:`name`.
    """

    kind: ProtocolKind = "interleaved"
    rounds: int = 10
    repeats: int = 3
    warmup: int = 5
    outlier_threshold: float = 3.5
    retain_heap: bool = True
    anchor: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("interleaved", "sequential"):
            raise ValueError(f"`kind` must be 'interleaved' or 'sequential', got {self.kind!r}.")
        for name, low in (("rounds", 1), ("repeats", 1), ("warmup", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(
                    f"`{name}` must be an integer greater than or equal to {low}, got {value!r}."
                )
        if not self.outlier_threshold > 0:
            raise ValueError(
                f"`outlier_threshold` must be greater than 0, got {self.outlier_threshold!r}."
            )

    @property
    def n_samples(self) -> int:
        """Timed samples per model before outlier rejection."""
        return self.rounds * self.repeats

    @property
    def name(self) -> str:
        """Protocol string, e.g. ``"interleaved-rr10x3-w5-rh-an"`` or ``"sequential-n30-w5"``."""
        suffix = ("-rh" if self.retain_heap else "") + ("-an" if self.anchor else "")
        if self.kind == "interleaved":
            return f"interleaved-rr{self.rounds}x{self.repeats}-w{self.warmup}{suffix}"
        return f"sequential-n{self.n_samples}-w{self.warmup}{suffix}"

    def steps(self, n_models: int) -> int:
        """Progress units of a run over ``n_models`` (one warm-up step + one per round each)."""
        return n_models * (self.rounds + 1)


def round_robin_schedule(
    n_models: int, rounds: int, *, rng: np.random.Generator | int | None = None
) -> list[list[int]]:
    """Model order of each round: a fresh random permutation of ``range(n_models)`` per round.

    Args:
        n_models: Models in the group (>= 1).
        rounds: Rounds (>= 1).
        rng: A numpy ``Generator`` or a seed.

    Returns:
        ``rounds`` lists, each a permutation of ``range(n_models)``.
    """
    if not isinstance(n_models, int) or n_models < 1:
        raise ValueError(f"`n_models` must be greater than or equal to 1, got {n_models!r}.")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"`rounds` must be greater than or equal to 1, got {rounds!r}.")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return [[int(i) for i in gen.permutation(n_models)] for _ in range(rounds)]


@contextmanager
def _timing_conditions(protocol: TimingProtocol) -> Iterator[None]:
    """Collect once, keep the garbage collector out of the timed region, flush denormals.

    Denormal floats make CPU arithmetic many times slower and depend on the weights, not on
    the architecture, so they are flushed to zero while timing (as deployment runtimes do).
    With ``protocol.retain_heap`` the C allocator keeps freed memory from then on (no page
    faults per pass; see :mod:`nas.measure._allocator`).
    """
    import torch

    was_enabled = gc.isenabled()
    flushed = torch.set_flush_denormal(True)
    gc.collect()
    gc.disable()
    if protocol.retain_heap:
        retain_freed_memory()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        if flushed:
            torch.set_flush_denormal(False)


def run_protocol(
    samplers: Sequence[Sampler],
    protocol: TimingProtocol,
    *,
    rng: np.random.Generator | int | None = None,
    on_step: Callable[[], None] | None = None,
) -> list[dict[str, list[float]]]:
    """Collect raw samples of every sampler under ``protocol``.

    Args:
        samplers: The models of one group (all built and ready).
        protocol: The timing protocol.
        rng: Randomness of the per-round order (interleaved only).
        on_step: Called after each warm-up of a model and each (model, round) block.

    Returns:
        Per sampler, a dict metric -> list of ``protocol.n_samples`` raw samples (ms).
    """
    if not samplers:
        return []
    step = on_step or (lambda: None)
    results: list[dict[str, list[float]]] = [{} for _ in samplers]

    def block(i: int, n: int) -> None:
        for _ in range(n):
            for metric, value in samplers[i].sample().items():
                results[i].setdefault(metric, []).append(value)

    def warm(i: int) -> None:
        for _ in range(protocol.warmup):
            samplers[i].sample()
        step()

    with _timing_conditions(protocol):
        if protocol.kind == "sequential":
            for i in range(len(samplers)):
                warm(i)
                for _ in range(protocol.rounds):
                    block(i, protocol.repeats)
                    step()
            return results
        for i in range(len(samplers)):
            warm(i)
        for order in round_robin_schedule(len(samplers), protocol.rounds, rng=rng):
            for i in order:
                block(i, protocol.repeats)
                step()
    return results
