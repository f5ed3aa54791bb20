"""restrict_space: a space whose sampling is confined to some choices of some parameters."""

from __future__ import annotations

import pytest

from search_spaces import get_space, restrict_space


def test_sampling_stays_inside_the_restriction() -> None:
    full = get_space("nemotron_flash")
    small = restrict_space(full, {"hidden": ["768", 512]})
    assert small.search_parameters()["hidden"] == [512, 768]  # grid order, grid types
    assert small.restricted_choices == {"hidden": ["512", "768"]}  # type: ignore[attr-defined]
    assert {small.random(seed).hidden for seed in range(40)} == {512, 768}  # type: ignore[attr-defined]
    assert len(full.search_parameters()["hidden"]) == 10  # the registered space is untouched
    arch = small.random(0)
    assert small.name == full.name and full.to_string(arch) == small.to_string(arch)


def test_bad_restrictions_name_the_problem() -> None:
    sp = get_space("nasbench201")
    edge = next(iter(sp.search_parameters()))
    with pytest.raises(ValueError, match="no parameter 'nope'"):
        restrict_space(sp, {"nope": ["x"]})
    with pytest.raises(ValueError, match=r"'conv9' is not a choice .* \(choices: none, "):
        restrict_space(sp, {edge: ["conv9"]})
    with pytest.raises(ValueError, match="non-empty list"):
        restrict_space(sp, {edge: []})
    with pytest.raises(ValueError, match="non-empty list"):
        restrict_space(sp, {edge: "none"})
