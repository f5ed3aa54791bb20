"""A per-process memo of one feature row per architecture string, kept as one matrix.

Predicting a whole space repeatedly (a search's generations, REST queries) looks up many
thousands of rows at once; one dictionary of row numbers and one fancy index into a matrix
is several times faster than stacking thousands of per-string arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

__all__ = ["RowCache"]


class RowCache:
    """Rows computed by ``compute`` (a batch function), memoised by architecture string.

    Thread-safe: the REST service predicts from a thread pool. The matrix grows by doubling;
    past ``max_rows`` (a long-running service queried with ever new archs) it starts afresh,
    so memory stays bounded. Rows are handed out as copies. Pickling or copying a cache gives an
    empty one (it is a memo, and its lock cannot be copied).

    Args:
        max_rows: Rows kept at most.

    Raises:
        ValueError: when ``max_rows`` is not a positive integer.
    """

    def __init__(self, max_rows: int = 1_000_000) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"`max_rows` must be a positive integer, got {max_rows!r}.")
        self.max_rows = max_rows
        self._index: dict[str, int] = {}
        self._rows: np.ndarray | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def __getstate__(self) -> dict[str, int]:
        return {"max_rows": self.max_rows}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(state["max_rows"])  # type: ignore[misc]

    def get(self, archs: list[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """``(len(archs), d)`` rows of ``archs``, computing (once) those not seen before.

        Raises:
            ValueError: when ``archs`` is empty.
        """
        if not archs:
            raise ValueError("`archs` must not be empty.")
        with self._lock:
            missing = [a for a in dict.fromkeys(archs) if a not in self._index]
            if missing and len(self._index) + len(missing) > self.max_rows:
                missing = list(dict.fromkeys(archs))  # start afresh, with this call's rows
                self._index, self._rows = {}, None
            if missing:
                rows = np.asarray(compute(missing))
                if rows.ndim < 1 or rows.shape[0] != len(missing):
                    shape = rows.shape
                    raise ValueError(f"`compute` returned {shape} for {len(missing)} archs.")
                self._add(missing, rows)
            at = np.fromiter(map(self._index.__getitem__, archs), np.intp, count=len(archs))
            assert self._rows is not None  # archs is not empty, so a row was stored
            return self._rows[at]

    def _add(self, archs: list[str], rows: np.ndarray) -> None:
        start = len(self._index)
        end = start + len(archs)
        if self._rows is None or end > len(self._rows):
            size = max(end, min(2 * start, self.max_rows))
            grown = np.empty((size, *rows.shape[1:]), rows.dtype)
            if self._rows is not None:
                grown[:start] = self._rows[:start]
            self._rows = grown
        self._rows[start:end] = rows
        self._index.update(zip(archs, range(start, end), strict=True))
