"""The row memo behind help+'s basis network."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from predictors._rowcache import RowCache


def _rows(calls: list[list[str]]) -> Callable[[list[str]], np.ndarray]:
    def compute(archs: list[str]) -> np.ndarray:
        calls.append(list(archs))
        return np.array([[float(len(a)), float(ord(a[0]))] for a in archs])

    return compute


def test_rows_follow_the_request_and_are_computed_once() -> None:
    calls: list[list[str]] = []
    cache = RowCache()
    got = cache.get(["ab", "c", "ab"], _rows(calls))
    np.testing.assert_array_equal(got, [[2, 97], [1, 99], [2, 97]])
    got = cache.get(["c", "dddd", "ab"], _rows(calls))
    np.testing.assert_array_equal(got, [[1, 99], [4, 100], [2, 97]])
    assert calls == [["ab", "c"], ["dddd"]]  # duplicates and known strings are not recomputed
    assert len(cache) == 3


def test_a_failed_computation_leaves_the_cache_as_it_was() -> None:
    cache = RowCache()
    cache.get(["a"], _rows([]))

    def broken(archs: list[str]) -> np.ndarray:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get(["a", "b"], broken)
    assert len(cache) == 1
    np.testing.assert_array_equal(cache.get(["b", "a"], _rows([])), [[1, 98], [1, 97]])


def test_empty_request_is_refused() -> None:
    with pytest.raises(ValueError, match="`archs` must not be empty"):
        RowCache().get([], _rows([]))


def test_concurrent_requests_agree() -> None:
    cache = RowCache()
    archs = [f"{chr(97 + i % 26)}{'x' * (i % 7)}" for i in range(400)]
    results: list[np.ndarray] = []

    def worker(offset: int) -> None:
        got = cache.get(archs[offset:] + archs[:offset], _rows([]))
        results.append(np.roll(got, offset, axis=0))  # back in the order of ``archs``

    threads = [threading.Thread(target=worker, args=(k * 50,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert len(cache) == len(set(archs))
    for got in results:
        np.testing.assert_array_equal(got, _rows([])(archs))


def test_memory_is_bounded_and_growth_keeps_rows() -> None:
    calls: list[list[str]] = []
    cache = RowCache(max_rows=5)
    for batch in (["a"], ["bb", "a"], ["ccc"], ["dddd", "bb"]):
        cache.get(batch, _rows(calls))
    assert len(cache) == 4 and calls[-1] == ["dddd"]
    got = cache.get(["eeeee", "ffffff", "a"], _rows(calls))  # 6 > 5: starts afresh
    np.testing.assert_array_equal(got, [[5, 101], [6, 102], [1, 97]])
    assert calls[-1] == ["eeeee", "ffffff", "a"] and len(cache) == 3
    np.testing.assert_array_equal(cache.get(["a", "eeeee"], _rows(calls)), [[1, 97], [5, 101]])
    assert len(calls) == 5  # still memoised after the restart
    with pytest.raises(ValueError, match="`max_rows` must be a positive integer"):
        RowCache(max_rows=0)


def test_copies_and_pickles_are_empty_caches_and_bad_computations_are_refused() -> None:
    import copy
    import pickle

    cache = RowCache(max_rows=7)
    cache.get(["a", "b"], _rows([]))
    for clone in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache)), copy.copy(cache)):
        assert len(clone) == 0 and clone.max_rows == 7
        np.testing.assert_array_equal(clone.get(["b"], _rows([])), [[1, 98]])
    with pytest.raises(ValueError, match=r"`compute` returned \(1, 2\) for 2 archs"):
        cache.get(["c", "d"], lambda archs: np.zeros((1, 2)))
    assert len(cache) == 2
