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

    Thread-safe: the REST service predicts from a thread pool. Rows are appended, never
    replaced, so a row handed out stays valid.
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._rows: np.ndarray | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def get(self, archs: list[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """``(len(archs), d)`` rows of ``archs``, computing (once) those not seen before.

        Raises:
            ValueError: when ``archs`` is empty.
        """
        if not archs:
            raise ValueError("`archs` must not be empty.")
        with self._lock:
            missing = [a for a in dict.fromkeys(archs) if a not in self._index]
            if missing:
                new = np.asarray(compute(missing))
                start = len(self._index)
                self._rows = new if self._rows is None else np.concatenate([self._rows, new])
                self._index.update(zip(missing, range(start, start + len(missing)), strict=True))
            at = np.fromiter(map(self._index.__getitem__, archs), np.intp, count=len(archs))
            rows = self._rows
        assert rows is not None  # archs is not empty, so a row was computed
        return rows[at]
