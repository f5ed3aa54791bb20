"""Pareto local search children: unexplored single-parameter neighbours of the front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.nas.test_search import DEVICE, _counted_search, db_url  # noqa: F401 - fixture


def _changed(a: dict[str, Any], b: dict[str, Any]) -> int:
    return sum(a[k] != b[k] for k in a)


def test_neighbour_params_are_unseen_single_changes_spread_over_the_front() -> None:
    from nas.search._local import neighbour_params
    from search_spaces import get_space

    sp = get_space("nasbench201")
    grid = sp.search_parameters()
    rng = np.random.default_rng(0)
    front = [{k: v[i % len(v)] for k, v in grid.items()} for i in range(3)]
    seen = {sp.to_string(sp.from_params(p)) for p in front}
    picks = neighbour_params(sp, front, seen, 30, rng)
    assert len(picks) == 30
    archs = [a for _, a in picks]
    assert len(set(archs)) == 30 and not set(archs) & seen
    for params, arch in picks:
        assert arch == sp.to_string(sp.from_params(params))
        assert min(_changed(params, f) for f in front) == 1
    # the picks cover every front member, not just the first one drawn
    assert all(any(_changed(p, f) == 1 for p, _ in picks) for f in front)


def test_neighbour_params_stop_when_the_neighbourhoods_are_exhausted() -> None:
    from nas.search._local import neighbour_params
    from search_spaces import get_space

    sp = get_space("nasbench201")
    grid = sp.search_parameters()
    member = {k: v[0] for k, v in grid.items()}
    n_neighbours = sum(len(v) - 1 for v in grid.values())
    picks = neighbour_params(sp, [member], set(), 10 * n_neighbours, np.random.default_rng(1))
    assert 0 < len(picks) <= n_neighbours  # canonical strings may coincide
    again = neighbour_params(sp, [member], {a for _, a in picks}, 5, np.random.default_rng(1))
    assert again == []
    assert neighbour_params(sp, [{}], set(), 5, np.random.default_rng(1)) == []


def test_pruned_neighbours_have_no_dead_operations() -> None:
    from nas.search._local import neighbour_params
    from search_spaces import get_space

    sp = get_space("nasbench201")
    grid = sp.search_parameters()
    front = [{k: v[-1] for k, v in grid.items()}]
    picks = neighbour_params(sp, front, set(), 50, np.random.default_rng(2), prune=True)
    assert picks and all(sp.prune_params(p) == p for p, _ in picks)


def test_search_with_local_search_evaluates_front_neighbours(db_url: str) -> None:  # noqa: F811
    from search_spaces import get_space
    from search_spaces._nb201_arch import EDGE_NAMES

    sp = get_space("nasbench201")
    res, counting = _counted_search(db_url, local_search=1.0)
    assert res.n_trials == 120 and len(counting.seen) == len(set(counting.seen)) == 120
    params = [dict(zip(EDGE_NAMES, sp.from_string(a).ops, strict=True)) for a in counting.seen]
    # after the first generation (20 random archs), children are neighbours of earlier archs
    later = range(20, 120)
    assert all(min(_changed(params[i], params[j]) for j in range(i)) == 1 for i in later)
    plain, plain_counting = _counted_search(db_url)
    assert plain_counting.seen[20:] != counting.seen[20:]


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), "0.5", True])
def test_local_search_share_is_checked(db_url: str, share: object, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="local_search"):
        _counted_search(db_url, local_search=share)


def test_restricted_search_samples_inside_and_records_the_grid(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from nas.search import StudyMismatchError, run_search
    from search_spaces import get_space, restrict_space
    from tests.nas.test_search import _setup

    sp = get_space("nasbench201")
    edges = list(sp.search_parameters())[:2]
    small = restrict_space(sp, {e: ["nor_conv_3x3", "skip_connect"] for e in edges})
    acc, models = _setup(db_url)
    kwargs = {"devices": [DEVICE], "accuracy": acc, "latency_models": models, "seed": 0}
    res = run_search(space=small, trials=40, population=10, out_dir=tmp_path, **kwargs)
    assert len(res.trials) == 40
    for trial in res.trials:
        params = dict(zip(sp.search_parameters(), _edge_ops(trial["arch"]), strict=True))
        assert all(params[e] in ("nor_conv_3x3", "skip_connect") for e in edges)
    with pytest.raises(StudyMismatchError, match="choices"):  # same study, full grid
        run_search(space=sp, trials=50, population=10, out_dir=tmp_path, **kwargs)


def _edge_ops(text: str) -> list[str]:
    """The six edge operations of a NAS-Bench-201 string, in parameter order."""
    return [tok.split("~")[0] for tok in text.replace("+", "").split("|") if tok]
