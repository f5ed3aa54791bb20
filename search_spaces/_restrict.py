"""A space with some decision variables restricted to a subset of their choices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from search_spaces._base import ParamValue, SearchSpace

__all__ = ["restrict_space"]


class _NarrowedGrid:
    """The ``search_parameters`` of a restricted space: a module-level class, not a lambda,
    so the space pickles (spawn and joblib workers)."""

    def __init__(self, grid: Mapping[str, Sequence[ParamValue]]) -> None:
        self.grid = {k: list(v) for k, v in grid.items()}

    def __call__(self) -> dict[str, Sequence[ParamValue]]:
        """A fresh copy of the narrowed grid (callers may change it)."""
        return {k: list(v) for k, v in self.grid.items()}


def _pick(space: SearchSpace[Any], name: str, grid: Sequence[ParamValue], wanted: object) -> Any:
    """The grid value equal to ``wanted``, printed as it, or of the same number (command-line
    strings: ``"0"`` for ``0.0``)."""
    for value in grid:
        if wanted == value or str(wanted) == str(value) or _same_number(wanted, value):
            return value
    raise ValueError(
        f"`choices`: {wanted!r} is not a choice of {name!r} in space {space.name!r} "
        f"(choices: {', '.join(map(str, grid))})"
    )


def _same_number(text: object, value: object) -> bool:
    """Whether ``text`` (a command-line string) reads as the number ``value``."""
    if not isinstance(text, str) or isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return float(text) == float(value)
    except ValueError:
        return False


def restrict_space(
    space: SearchSpace[Any] | str, choices: Mapping[str, Sequence[object]]
) -> SearchSpace[Any]:
    """A copy of ``space`` whose grid keeps only ``choices`` of the named parameters.

    Everything else (name, builder, encoding, profile) is the original space's, so
    architectures keep their canonical strings and their measurements; only sampling (a
    search, ``random``) is confined, e.g. ``nemotron_flash`` to the CPU-sized ``hidden``
    widths its bundled measurements cover. Values may be given as the grid's values or as
    their printed form (``"512"`` for ``512``). Order follows the original grid.

    Args:
        space: A space, or the name of a registered one (``"mnasnet"``).
        choices: Parameter name -> the values to keep.

    Raises:
        UnknownSpaceError: naming an unregistered space name.
        ValueError: naming ``space`` when it is neither a space nor a name, ``choices`` when
            it is not a mapping, an unknown parameter, a value outside its grid or an empty
            list.
    """
    if isinstance(space, str):
        from search_spaces._registry import get_space

        space = get_space(space)
    if not isinstance(space, SearchSpace):
        raise ValueError(
            f"`space` must be a SearchSpace or a registered space name, got {type(space).__name__}."
        )
    if not isinstance(choices, Mapping):
        raise ValueError(
            "`choices` must be a mapping of parameter names to lists of values, got "
            f"{type(choices).__name__}."
        )
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
    # A shallow copy of the instance's attributes (not copy.copy, which goes through pickling's
    # state and would give the copy an empty profile cache instead of sharing the original's).
    restricted = object.__new__(type(space))
    restricted.__dict__.update(space.__dict__)
    # An instance attribute shadows the method: every sampler reads the grid through it.
    restricted.__dict__["search_parameters"] = _NarrowedGrid({**grid, **kept})
    restricted.__dict__["restricted_choices"] = {k: [str(v) for v in kept[k]] for k in kept}
    return restricted
