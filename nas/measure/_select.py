"""Which architectures a measurement run takes: a random draw, a file, or the reference set."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from search_spaces import SearchSpace

__all__ = ["read_archs_file", "select_architectures"]


def select_architectures(
    space: SearchSpace[Any],
    *,
    n: int | None = None,
    archs_file: str | Path | None = None,
    reference_set: bool = False,
    seed: int | None = 0,
) -> list[str]:
    """Canonical architecture strings to measure (exactly one source must be given).

    Args:
        space: The search space.
        n: Draw ``n`` distinct random architectures (``space.random``) with ``seed``; a space
            with fewer (NAS-Bench-201 has 15,625) gives all it has, with a warning.
        archs_file: Text file, one architecture string or reference name per line
            (blank lines and ``#`` comments ignored).
        reference_set: The space's 10 hardware-embedding archs plus its reference models.
        seed: Seed of the random draw.

    Raises:
        ValueError: If not exactly one source is given or ``n`` < 1, or naming the file and
            line of ``archs_file`` that is not UTF-8 text or not an architecture.
        OSError: If ``archs_file`` cannot be read.
    """
    if sum(x is not None and x is not False for x in (n, archs_file, reference_set)) != 1:
        raise ValueError("exactly one of `n`, `archs_file` and `reference_set` must be given.")
    if archs_file is not None:
        return _unique(read_archs_file(archs_file, space))
    if reference_set:
        archs = [*space.hardware_embedding_archs(), *space.reference_archs().values()]
        return _unique(space.to_string(a) for a in archs)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be greater than or equal to 1, got {n!r}.")
    return _draw(space, n, seed)


#: A draw stops early after this many draws in a row found no new architecture, times the
#: number found so far (a space smaller than ``n`` is exhausted by then with near certainty).
_STALE_DRAWS = 20


def _draw(space: SearchSpace[Any], n: int, seed: int | None) -> list[str]:
    """``n`` distinct random architectures, or all a smaller space gave (with a warning)."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    stale = 0
    for _ in range(50 * n):
        text = space.to_string(space.random(rng))
        if text in seen:
            stale += 1
            if stale > _STALE_DRAWS * len(seen) + 1000:
                break
            continue
        stale = 0
        seen.add(text)
        out.append(text)
        if len(out) == n:
            return out
    warnings.warn(
        f"{space.name} gave only {len(out):,} distinct architectures for `n` = {n:,}; "
        f"measuring those {len(out):,}",
        stacklevel=3,
    )
    return out


def read_archs_file(path: str | Path, space: SearchSpace[Any] | None = None) -> list[str]:
    """The architectures of a text file, one per line, in file order (repeats kept).

    Blank lines and ``#`` comments are ignored. ``nas measure --archs`` and ``nas predictor
    predict --archs`` read their files with it.

    Args:
        path: The file.
        space: When given, each line is resolved in it (a reference name or a string) and
            returned as its canonical string; otherwise the lines are returned as written.

    Raises:
        ValueError: Naming the file and line that is not UTF-8 text or not an architecture
            of ``space``, or a file that holds no architecture.
        OSError: If the file cannot be read.
    """
    from search_spaces import SearchSpaceError

    raw = Path(path).read_bytes()
    where = f"`archs_file` {str(path)!r}"
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{where} line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
            "write one architecture string per line"
        ) from None
    archs = []
    for number, line_text in enumerate(lines, start=1):
        text = line_text.split("#", 1)[0].strip()
        if not text:
            continue
        if space is None:
            archs.append(text)
            continue
        try:
            archs.append(space.to_string(space.resolve(text)))
        except (SearchSpaceError, ValueError) as exc:
            reason = str(exc.args[0]) if exc.args else str(exc)
            raise ValueError(f"{where} line {number}: {reason}") from None
    if not archs:
        raise ValueError(f"{where} holds no architecture.")
    return archs


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
