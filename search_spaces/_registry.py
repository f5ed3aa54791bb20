"""Registry of search spaces (``@register_space``, ``get_space``, ``list_spaces``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from search_spaces._base import SearchSpace
from search_spaces._errors import UnknownSpaceError

__all__ = ["get_space", "list_spaces", "register_space"]

_FACTORIES: dict[str, Callable[[], SearchSpace[Any]]] = {}
_INSTANCES: dict[str, SearchSpace[Any]] = {}

F = TypeVar("F", bound=Callable[[], SearchSpace[Any]])


def register_space(name: str) -> Callable[[F], F]:
    """Register a zero-argument factory (or a space class) under ``name``.

    Args:
        name: Lower-case space name, e.g. ``"mnasnet"``.
    """
    if not name or name != name.lower():
        raise ValueError(f"`name` must be a non-empty lower-case string, got {name!r}.")

    def decorator(factory: F) -> F:
        if name in _FACTORIES:
            raise ValueError(f"search space {name!r} is already registered.")
        _FACTORIES[name] = factory
        return factory

    return decorator


def get_space(name: str) -> SearchSpace[Any]:
    """Return the (cached) space registered under ``name``.

    Raises:
        UnknownSpaceError: naming the space and the registered ones.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise UnknownSpaceError(f"unknown search space {name!r} (known: {known})")
    if key not in _INSTANCES:
        _INSTANCES[key] = _FACTORIES[key]()
    return _INSTANCES[key]


def list_spaces() -> list[str]:
    """Names of all registered spaces, sorted."""
    return sorted(_FACTORIES)
