"""The batch NAS-Bench-201 featurizers against per-architecture definitions, on all 15,625."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from predictors import PredictorError
from predictors._features import (
    NB201_OPS,
    additive_features,
    encode,
    lut_features,
    nb201_live_edges,
    nb201_path_features,
    parse_nb201,
)

ALL_OPS = list(itertools.product(range(len(NB201_OPS)), repeat=6))
TEMPLATE = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|"
ALL = [TEMPLATE.format(*(NB201_OPS[o] for o in ops)) for ops in ALL_OPS]
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))  # input-to-output edge chains of a cell


def _onehot(ops: tuple[int, ...], keep: list[bool] | None = None) -> np.ndarray:
    out = np.zeros((6, len(NB201_OPS)))
    for edge, op in enumerate(ops):
        out[edge, op] = 1.0 if keep is None else float(keep[edge])
    return out


def test_parse_and_encode_every_arch() -> None:
    assert [parse_nb201(a) for a in ALL] == ALL_OPS
    expected = np.stack([_onehot(ops).ravel() for ops in ALL_OPS])
    np.testing.assert_array_equal(encode("nasbench201", ALL), expected)
    spaced = "| nor_conv_3x3~0 |+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    assert parse_nb201(spaced) == (3, 0, 1, 0, 0, 4)  # the lenient parser still applies
    with pytest.raises(PredictorError, match="bad NAS-Bench-201 token"):
        parse_nb201("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_op_counts_and_lookup_table_features() -> None:
    live = [nb201_live_edges(ops) for ops in ALL_OPS]
    eager = np.stack([_onehot(ops).sum(axis=0) for ops in ALL_OPS])
    pruned = np.stack([_onehot(o, k).sum(axis=0)[1:] for o, k in zip(ALL_OPS, live, strict=True)])
    np.testing.assert_array_equal(additive_features("nasbench201", ALL, "eager"), eager)
    np.testing.assert_array_equal(additive_features("nasbench201", ALL, "pruned"), pruned)
    pairs = zip(ALL_OPS, live, strict=True)
    lut = [np.concatenate([_onehot(o).ravel(), _onehot(o, k).ravel()]) for o, k in pairs]
    np.testing.assert_array_equal(lut_features("nasbench201", ALL), np.stack(lut))


def test_critical_path_features() -> None:
    costs = np.array([0.0, 0.1, 0.5, 2.0, 0.3])
    got = nb201_path_features(ALL, costs)
    for i in range(0, len(ALL), 7):  # a spread subset keeps the loop quick
        ops = ALL_OPS[i]
        best, best_cost = np.zeros(4), -np.inf
        for path in PATHS:
            chosen = [ops[e] for e in path]
            if 0 in chosen:
                continue
            counts = np.bincount(chosen, minlength=len(NB201_OPS))[1:]
            if counts @ costs[1:] > best_cost:
                best, best_cost = counts.astype(float), float(counts @ costs[1:])
        np.testing.assert_array_equal(got[i, :4], best)


def test_batch_parse_mixes_canonical_and_lenient_strings() -> None:
    """The batch featurizers look canonical strings up and parse the rest one by one."""
    spaced = "| nor_conv_3x3~0 |+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    batch = [ALL[5], spaced, ALL[15624], spaced]
    expected = np.stack([_onehot(o).ravel() for o in (ALL_OPS[5], (3, 0, 1, 0, 0, 4))] * 2)
    np.testing.assert_array_equal(
        encode("nasbench201", batch)[[0, 1, 0, 3]], expected[[0, 1, 0, 1]]
    )
    np.testing.assert_array_equal(encode("nasbench201", batch)[2], _onehot(ALL_OPS[15624]).ravel())
    with pytest.raises(PredictorError, match="not a NAS-Bench-201 arch string"):
        additive_features("nasbench201", [ALL[0], "|nor_conv_3x3~0|"], "pruned")
