"""Duplicate elimination: the mutation walk that replaces a revisited child."""

from __future__ import annotations

import numpy as np


def test_novel_params_walks_to_an_unseen_architecture() -> None:
    from nas.search._novel import novel_params
    from search_spaces import get_space

    sp = get_space("nasbench201")
    rng = np.random.default_rng(0)
    params = {name: choices[0] for name, choices in sp.search_parameters().items()}
    start = sp.to_string(sp.from_params(params))
    found = novel_params(sp, params, {start}, rng)
    assert found is not None
    new_params, arch = found
    assert arch != start and arch == sp.to_string(sp.from_params(new_params))
    assert set(new_params) == set(params)
    for name, value in new_params.items():
        assert value in sp.search_parameters()[name]


def test_novel_params_gives_up_when_everything_was_seen() -> None:
    from nas.search._novel import novel_params
    from search_spaces import get_space

    sp = get_space("nasbench201")

    class Everything:
        def __contains__(self, item: object) -> bool:
            return True

    params = {name: choices[0] for name, choices in sp.search_parameters().items()}
    assert novel_params(sp, params, Everything(), np.random.default_rng(0), max_steps=5) is None
    assert novel_params(sp, {}, set(), np.random.default_rng(0)) is None  # missing parameters
