"""``Profile.extra["dispatched_ops"]``: the analytic count of operators an eager runtime
dispatches one at a time equals the aten calls (views excluded) of the real module's forward;
``Profile.extra["activation_traffic_bytes"]``: the activation bytes those calls read and write
(weights excluded) equal what the calls of the real module's CPU forward see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from predictors.zeroshot._trace import _VIEW_OPS, trace_module
from search_spaces import get_space
from search_spaces._slm_arch import NemotronFlashArch
from search_spaces._workload import Workload
from search_spaces.nemotron_flash import NemotronFlashSpace

#: Allocations without a kernel (e.g. BatchNorm's empty saved statistics).
_ALLOCATIONS = {"empty", "empty_like", "empty_strided"}


class _DispatchCounter(TorchDispatchMode):
    """Counts every aten call other than views and bare allocations (``ops``) and the elements
    of their tensor inputs and outputs other than the tensors of ``state`` (``elems``; an
    in-place op reads and writes its tensor).

    Unlike ``trace_module``, which drops calls that read no traced activation (it treats them
    as weight preprocessing a deployed graph folds away), this also counts calls on constants
    only: eager PyTorch dispatches them at every call (an SLM's RoPE tables and masks).

    Args:
        state: The module's parameters and buffers, left out of ``elems``.
    """

    def __init__(self, state: Sequence[torch.Tensor] = ()) -> None:
        super().__init__()
        self.state = {t.untyped_storage().data_ptr() for t in state}
        self.ops = 0
        self.elems = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__ in _VIEW_OPS | _ALLOCATIONS:
            return out
        self.ops += 1
        for t in tree_leaves((args, kwargs, out)):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in self.state:
                self.elems += t.numel()
        return out


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
        traced = trace_module(model, inputs, mode="eager")
        expected = space.profile(arch).extra["dispatched_ops"]
        assert expected == len(traced)
        counts.add(expected)
    assert len(counts) > 1  # the count depends on the architecture


@pytest.mark.parametrize("space_name", ["mnasnet", "mobilevig"])
def test_dispatch_counter_agrees_with_the_trace_on_vision_models(space_name: str) -> None:
    """The two counts coincide where every op reads an activation (the vision spaces)."""
    space = get_space(space_name)
    arch = space.random(0)
    with torch.device("meta"):
        model = space.build(arch).eval()
    inputs = [t.to("meta") for t in space.example_inputs()]
    counter = _DispatchCounter()
    with torch.no_grad(), counter:
        model(*inputs)
    assert counter.ops == len(trace_module(model, inputs, mode="eager"))


def _counted_traffic_bytes(space_name: str, arch: Any, workload: Workload) -> int:
    """fp32 activation bytes the real module's CPU forward reads and writes."""
    space = get_space(space_name)
    model = space.build(arch).eval()
    counter = _DispatchCounter([*model.parameters(), *model.buffers()])
    inputs = space.example_inputs(workload)
    with torch.no_grad(), counter:
        model(*inputs)
    return counter.elems * 4


@pytest.mark.parametrize("space_name", ["mnasnet", "mobilevig"])
def test_activation_traffic_matches_the_dispatched_tensors(space_name: str) -> None:
    space = get_space(space_name)
    one = space.smoke_workload()
    two = Workload(batch_size=2, resolution=one.resolution)
    values = set()
    for seed in range(3):
        arch = space.random(seed)
        expected = space.profile(arch, one).extra["activation_traffic_bytes"]
        assert expected == _counted_traffic_bytes(space_name, arch, one)
        values.add(expected)
    assert len(values) > 1  # the traffic depends on the architecture
    arch = space.random(0)
    batched = space.profile(arch, two).extra["activation_traffic_bytes"]
    assert batched == 2 * space.profile(arch, one).extra["activation_traffic_bytes"]
    assert batched == _counted_traffic_bytes(space_name, arch, two)


def _measured_run_ops(space: NemotronFlashSpace, arch: NemotronFlashArch, wl: Workload) -> int:
    """Operators dispatched by one run as ``nas.measure.LanguageModelSampler.sample`` makes it:
    the prefill of the prompt, then ``decode_len`` decode steps fed the last prompt token.

    It runs on CPU, where the measurements run (on ``meta``, SDPA decomposes into the math
    path), under ``no_grad`` rather than ``inference_mode``, under which a dispatch mode sees
    composite ops (``linear``, ``scaled_dot_product_attention``) before they decompose into
    the kernels they run.
    """
    torch.manual_seed(0)
    model = space.build(arch).eval()
    (tokens,) = space.example_inputs(wl)
    next_token = tokens[:, -1:]
    counter = _DispatchCounter()
    with torch.no_grad(), counter:
        _, cache = model.prefill(tokens)
        for _ in range(wl.decode_len):
            _, cache = model.decode_step(next_token, cache)
    return counter.ops


def test_nemotron_flash_dispatched_ops_match_a_measured_run() -> None:
    # Tiny widths and vocabulary; 8-token chunks so that the prefill (21 or 277 positions) has
    # several full chunks and a shorter last one, as the default workload does at chunk 64.
    space = NemotronFlashSpace(vocab_size=512, chunk_size=8, hidden_choices=(128, 256))
    wl = Workload(prompt_len=21, decode_len=3)
    cases = [(space.random(seed), wl) for seed in range(4)]
    mixers = ("a", "f", "swa16", "m2", "f", "swa21", "d", "gdn", "f", "f")
    for meta in (0, 4):  # SWA 16 masks the 21- and 25-position prefills, SWA 21 only the 25
        cases.append((NemotronFlashArch(256, 2, 16, meta, mixers), Workload(2, 224, 21, 0, 2)))
    counts = set()
    for arch, workload in cases:
        expected = space.profile(arch, workload).extra["dispatched_ops"]
        assert expected == _measured_run_ops(space, arch, workload), space.to_string(arch)
        counts.add(expected)
    assert len(counts) == len(cases)  # the count depends on the architecture
