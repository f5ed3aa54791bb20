"""Analytic cost and the workload/analytic encoding parts shared by the benchmark CNN spaces.

Used by the ``nasbench201`` and ``fbnet`` spaces (spec section 0.3: the workload part is
log2-scaled, the analytic part is log10 of params, MACs and peak activation bytes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from search_spaces._profiling import count_macs_flops, count_params, peak_activation_bytes
from search_spaces._workload import Profile, Workload

__all__ = ["analytic_features", "image_inputs", "meta_profile", "workload_features"]


def image_inputs(workload: Workload, *, device: str | None = None) -> tuple[torch.Tensor]:
    """A deterministic ``[batch, 3, res, res]`` float32 image batch (``meta``: no data)."""
    shape = (workload.batch_size, 3, workload.resolution, workload.resolution)
    if device == "meta":
        return (torch.empty(shape, device="meta"),)
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(shape, generator=gen),)


def meta_profile(build: Callable[[], nn.Module], workload: Workload) -> Profile:
    """Params, MACs, FLOPs and peak activation bytes of one forward pass, on the meta device.

    Nothing is allocated, so this is fast and independent of the host's memory.
    """
    with torch.device("meta"):
        model = build().eval()
    inputs = image_inputs(workload, device="meta")
    macs, flops = count_macs_flops(model, inputs)
    return Profile(
        params=count_params(model),
        macs=macs,
        flops=flops,
        memory_bytes=peak_activation_bytes(model, inputs),
    )


def workload_features(workload: Workload) -> np.ndarray:
    """``[log2(batch_size), log2(resolution)]``."""
    return np.array(
        [math.log2(workload.batch_size), math.log2(workload.resolution)], dtype=np.float32
    )


def analytic_features(profile: Profile) -> np.ndarray:
    """``[log10(params), log10(MACs), log10(peak activation bytes)]`` (each at least 1)."""
    values = (profile.params, profile.macs, profile.memory_bytes)
    return np.array([math.log10(max(v, 1)) for v in values], dtype=np.float32)
