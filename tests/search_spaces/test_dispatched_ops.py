"""``Profile.extra["dispatched_ops"]``: the analytic count of operators an eager runtime
dispatches one at a time equals the aten calls (views excluded) of the real module's forward."""

from __future__ import annotations

import pytest
import torch

from predictors.zeroshot._trace import trace_module
from search_spaces import get_space


@pytest.mark.parametrize("space_name", ["mnasnet", "mobilevig"])
def test_dispatched_ops_match_the_eager_trace(space_name: str) -> None:
    space = get_space(space_name)
    workload = space.default_workload()
    counts = set()
    for seed in range(4):
        arch = space.random(seed)
        with torch.device("meta"):
            model = space.build(arch)
        inputs = [t.to("meta") for t in space.example_inputs(workload)]
        traced = trace_module(model, inputs, simplify=False)
        expected = space.profile(arch).extra["dispatched_ops"]
        assert expected == len(traced)
        counts.add(expected)
    assert len(counts) > 1  # the count depends on the architecture
