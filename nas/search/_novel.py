"""Duplicate elimination for the genetic search: turn a revisited child into a novel one.

Once an NSGA-II population converges on a discrete space, crossover and mutation keep proposing
architectures that were already evaluated; on nasbench201, 27-33 % of 1000 trials (population
50) were revisits. Like pymoo's ``eliminate_duplicates`` (Blank & Deb, "pymoo: Multi-objective
optimization in Python", IEEE Access 2020), a revisited child is replaced before evaluation, here
by a random walk of single-parameter mutations from it until the walk reaches an architecture
that has not been seen. The budget then counts distinct evaluations.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from search_spaces import SearchSpace

__all__ = ["novel_params"]


def _mutate_one(
    params: dict[str, Any], grid: Mapping[str, list[Any]], rng: np.random.Generator
) -> dict[str, Any]:
    names = [n for n in grid if len(grid[n]) > 1]
    if not names:
        return params
    name = names[int(rng.integers(len(names)))]
    others = [c for c in grid[name] if c != params.get(name)]
    out = dict(params)
    out[name] = others[int(rng.integers(len(others)))]
    return out


def novel_params(
    space: SearchSpace[Any],
    params: Mapping[str, Any],
    seen: Container[str],
    rng: np.random.Generator,
    max_steps: int = 64,
) -> tuple[dict[str, Any], str] | None:
    """Walk from ``params`` by single-parameter mutations to an architecture not in ``seen``.

    Args:
        space: The search space (its ``search_parameters`` grid and ``from_params``).
        params: The revisited trial's parameters.
        seen: Canonical strings already evaluated or proposed.
        rng: Random generator of the walk.
        max_steps: Mutations tried before giving up.

    Returns:
        ``(params, canonical string)`` of the first novel architecture, or ``None`` when the
        walk found none (the space is nearly exhausted).
    """
    grid = {name: list(choices) for name, choices in space.search_parameters().items()}
    current = {name: params[name] for name in grid if name in params}
    if len(current) != len(grid):
        return None
    for _ in range(max_steps):
        current = _mutate_one(current, grid, rng)
        arch = space.to_string(space.from_params(current))
        if arch not in seen:
            return current, arch
    return None
