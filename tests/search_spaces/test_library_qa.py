"""Findings of the library QA pass (``search_spaces``): ``restrict_space`` argument types,
pickling every space and restricted space, and ``random``'s ``rng``."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from search_spaces import UnknownSpaceError, get_space, list_spaces, restrict_space


# ---------------------------------------------------------------- M6: restrict_space arguments
def test_restrict_space_takes_a_space_name() -> None:
    by_name = restrict_space("mnasnet", {"b1_op": ["conv"]})
    by_object = restrict_space(get_space("mnasnet"), {"b1_op": ["conv"]})
    assert by_name.search_parameters() == by_object.search_parameters()
    assert by_name.restricted_choices == {"b1_op": ["conv"]}  # type: ignore[attr-defined]
    with pytest.raises(UnknownSpaceError, match="unknown search space 'nope'"):
        restrict_space("nope", {"b1_op": ["conv"]})


@pytest.mark.parametrize("choices", [None, ["b1_op"], "b1_op"])
def test_restrict_space_refuses_choices_that_are_no_mapping(choices: Any) -> None:
    with pytest.raises(ValueError, match="`choices` must be a mapping"):
        restrict_space(get_space("mnasnet"), choices)


def test_restrict_space_refuses_a_space_of_another_type() -> None:
    with pytest.raises(ValueError, match="`space` must be a SearchSpace or a registered space"):
        restrict_space(3, {"b1_op": ["conv"]})  # type: ignore[arg-type]


# ---------------------------------------------------------------- M9: pickling
def _same_space(a: Any, b: Any) -> None:
    assert type(a) is type(b) and a.name == b.name
    assert a.search_parameters() == b.search_parameters()
    for seed in range(3):
        arch = a.random(seed)
        text = a.to_string(arch)
        assert b.to_string(b.random(seed)) == text
        assert b.to_string(b.from_string(text)) == text
        np.testing.assert_array_equal(a.encode(arch), b.encode(b.from_string(text)))
        assert a.profile(arch).params == b.profile(b.from_string(text)).params


@pytest.mark.parametrize("name", list_spaces())
def test_every_space_pickles_and_works_identically(name: str) -> None:
    space = get_space(name)
    _same_space(space, pickle.loads(pickle.dumps(space)))


def test_restricted_spaces_pickle_and_keep_their_grid() -> None:
    space = get_space("nasbench201")
    edge = next(iter(space.search_parameters()))
    small = restrict_space(space, {edge: ["none", "skip_connect"]})
    back = pickle.loads(pickle.dumps(small))
    _same_space(small, back)
    assert back.search_parameters()[edge] == ["none", "skip_connect"]
    assert back.restricted_choices == small.restricted_choices  # type: ignore[attr-defined]
    mnas = restrict_space("mnasnet", {"b1_op": ["conv"]})
    _same_space(mnas, pickle.loads(pickle.dumps(mnas)))


@pytest.mark.parametrize("name", ["nasbench201", "fbnet"])
def test_profile_caches_survive_pickling_and_restriction(name: str) -> None:
    space = get_space(name)
    back = pickle.loads(pickle.dumps(space))
    arch = back.random(0)
    back.profile(arch)
    back.profile(arch)
    assert back._profile.cache_info().hits >= 1  # type: ignore[attr-defined]
    param, grid = next(iter(space.search_parameters().items()))
    small = restrict_space(space, {param: [grid[0]]})
    assert small._profile is space._profile  # type: ignore[attr-defined]


# ---------------------------------------------------------------- L1: random's rng
@pytest.mark.parametrize("rng", [-1, "a", 1.5, True, [1, 2]])
def test_random_refuses_a_bad_rng(rng: Any) -> None:
    with pytest.raises(ValueError, match="`rng` must be a numpy Generator, a seed"):
        get_space("mnasnet").random(rng)


def test_random_takes_generators_seeds_and_none() -> None:
    space = get_space("mnasnet")
    numpy_seed: Any = np.int64(3)
    assert space.to_string(space.random(numpy_seed)) == space.to_string(space.random(3))
    gen = np.random.default_rng(0)
    assert space.to_string(space.random(gen)) == space.to_string(space.random(0))
    space.random(None)


def test_random_takes_what_numpy_seeds_a_generator_with() -> None:
    space = get_space("mnasnet")
    a = space.random(np.random.SeedSequence(3))
    assert a == space.random(np.random.PCG64(3)) == space.random(np.random.default_rng(3))
