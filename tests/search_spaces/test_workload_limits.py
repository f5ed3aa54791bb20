"""Workload fields are bounded, so a typo cannot reach the cost models' 64-bit shapes."""

from __future__ import annotations

import pytest

from search_spaces import Workload
from search_spaces._workload import WORKLOAD_LIMITS


@pytest.mark.parametrize("name", sorted(WORKLOAD_LIMITS))
def test_each_field_accepts_its_bounds_and_names_itself_beyond_them(name: str) -> None:
    low, high = WORKLOAD_LIMITS[name]
    assert getattr(Workload(**{name: low}), name) == low
    assert getattr(Workload(**{name: high}), name) == high
    with pytest.raises(ValueError, match=f"`{name}` must be at most"):
        Workload(**{name: high + 1})
    with pytest.raises(ValueError, match=f"`{name}` must be a"):
        Workload(**{name: low - 1})
    with pytest.raises(ValueError, match=f"`{name}` must be a"):
        Workload(**{name: True})
