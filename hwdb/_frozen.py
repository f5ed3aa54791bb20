"""A read-only dict for ``DataFrame.attrs`` that pandas can copy for free."""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

__all__ = ["FrozenMap"]

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(dict[K, V]):
    """A dict that cannot be changed and whose copies (shallow and deep) are itself.

    pandas deep-copies ``DataFrame.attrs`` in ``__finalize__``, i.e. after almost every
    operation (``.loc``, column selection, ``dropna``, ...). A latency table's per-arch
    benchmark index has one entry per architecture (15,625 on NAS-Bench-201), so a plain
    dict there made every such operation cost a 15k-entry deep copy. Nothing can change a
    ``FrozenMap``, so frames can share one. It is still a ``dict``: ``json.dumps`` (which
    ``to_parquet`` uses for ``attrs``), ``==`` and pickling work as for a dict.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("FrozenMap is read-only; copy it with dict(...) to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __copy__(self) -> FrozenMap[K, V]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenMap[K, V]:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenMap({dict.__repr__(self)})"
