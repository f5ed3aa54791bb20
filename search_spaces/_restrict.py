"""A space with some decision variables restricted to a subset of their choices."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from search_spaces._base import ParamValue, SearchSpace

__all__ = ["restrict_space"]


def _pick(space: SearchSpace[Any], name: str, grid: Sequence[ParamValue], wanted: object) -> Any:
    """The grid value equal to ``wanted`` or printed as it (command-line strings)."""
    for value in grid:
        if wanted == value or str(wanted) == str(value):
            return value
    raise ValueError(
        f"`choices`: {wanted!r} is not a choice of {name!r} in space {space.name!r} "
        f"(choices: {', '.join(map(str, grid))})"
    )


def restrict_space(
    space: SearchSpace[Any], choices: Mapping[str, Sequence[object]]
) -> SearchSpace[Any]:
    """A copy of ``space`` whose grid keeps only ``choices`` of the named parameters.

    Everything else (name, builder, encoding, profile) is the original space's, so
    architectures keep their canonical strings and their measurements; only sampling (a
    search, ``random``) is confined, e.g. ``nemotron_flash`` to the CPU-sized ``hidden``
    widths its bundled measurements cover. Values may be given as the grid's values or as
    their printed form (``"512"`` for ``512``). Order follows the original grid.

    Raises:
        ValueError: naming an unknown parameter, a value outside its grid or an empty list.
    """
    grid = {name: list(values) for name, values in space.search_parameters().items()}
    kept: dict[str, list[Any]] = {}
    for name, wanted in choices.items():
        if name not in grid:
            raise ValueError(
                f"`choices`: space {space.name!r} has no parameter {name!r} "
                f"(parameters: {', '.join(grid)})"
            )
        if isinstance(wanted, str) or not len(wanted):
            raise ValueError(f"`choices`: give {name!r} a non-empty list of values")
        picked = [_pick(space, name, grid[name], w) for w in wanted]
        kept[name] = [v for v in grid[name] if v in picked]
    restricted = copy.copy(space)
    narrowed = {**grid, **kept}
    # An instance attribute shadows the method: every sampler reads the grid through it.
    restricted.__dict__["search_parameters"] = lambda: {k: list(v) for k, v in narrowed.items()}
    restricted.__dict__["restricted_choices"] = {k: [str(v) for v in kept[k]] for k in kept}
    return restricted
