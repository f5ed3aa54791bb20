"""``pareto_mask`` against the definition: a row is kept unless another row dominates it."""

from __future__ import annotations

import numpy as np
import pytest

from nas.search import pareto_mask


def _all_pairs(f: np.ndarray) -> np.ndarray:
    return np.array(
        [not (np.all(f <= row, axis=1) & np.any(f < row, axis=1)).any() for row in f], dtype=bool
    )


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_mask_matches_the_definition_with_ties_duplicates_and_nan(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        f = rng.integers(0, 4, (n, dims)).astype(float)  # small grid: many ties and duplicates
        f[rng.random((n, dims)) < 0.05] = np.nan
        f[rng.random((n, dims)) < 0.05] = np.inf
        np.testing.assert_array_equal(pareto_mask(f), _all_pairs(f))


def test_duplicated_front_rows_are_all_kept_and_shapes_are_checked() -> None:
    f = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0]])
    assert pareto_mask(f).tolist() == [True, True, True, False]
    assert pareto_mask(np.empty((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match="objectives"):
        pareto_mask([1.0, 2.0])


def test_a_large_cloud_keeps_exactly_its_staircase() -> None:
    rng = np.random.default_rng(0)
    f = rng.random((20_000, 2))
    mask = pareto_mask(f)
    front = f[mask]
    order = np.argsort(front[:, 0])
    assert np.all(np.diff(front[order, 1]) < 0)  # a strict staircase in 2-d
    best = np.minimum.accumulate(f[np.argsort(f[:, 0]), 1])  # running minimum of y over x
    assert mask.sum() == len(np.unique(best))
