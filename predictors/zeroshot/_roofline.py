"""Roofline latency estimates of architectures on a device described only by its datasheet.

Williams, Waterman & Patterson, "Roofline: An Insightful Visual Performance Model for Multicore
Architectures", CACM 52(4), 2009: an operator takes at least ``max(FLOPs / peak FLOP/s,
bytes / peak bandwidth)``. Real runtimes reach only a fraction of either peak, and at batch 1
on small inputs every operator also pays a fixed dispatch cost (framework bookkeeping plus a
kernel launch), which dominates tiny networks such as NAS-Bench-201 at 32x32. The model here is

    latency = fixed + sum_ops [ overhead + max(FLOPs / (P * eff_c * occ), bytes / (B * eff_b)) ]

with ``occ = min(1, output elements / parallel lanes)`` for convolutions and matrix products
(a kernel with fewer independent outputs than the device has lanes cannot fill it). ``P``,
``B`` and the lane count come from the catalog entry; ``eff_c``, ``eff_b``, ``overhead`` and
``fixed`` are device-class constants (:mod:`predictors.zeroshot._classes`).

Language models decode one token at a time; each step streams every weight once plus the
KV-cache / recurrent state, so decode is memory-bound:
``decode_ms_per_token = (weight bytes + cache bytes) / (B * eff_b) + layers * overhead``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from predictors._errors import PredictorError
from predictors.zeroshot._trace import KINDS, OpTable, trace_module

if TYPE_CHECKING:
    from search_spaces import SearchSpace, Workload

__all__ = ["DeviceModel", "estimate_latency_ms", "op_table", "roofline_latency_ms"]

# A model that cannot be traced on the meta device is built for real; beyond this many
# parameters (2 GB of fp32 weights) that would exhaust a small machine's memory instead.
_MAX_CPU_TRACE_PARAMS = 500_000_000
_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "int8": 1.0}
_MATRIX = (KINDS.index("conv"), KINDS.index("matmul"), KINDS.index("attention"))


@dataclass(frozen=True)
class DeviceModel:
    """The numbers the roofline prices operators with (all SI units).

    Attributes:
        name: Label (catalog entry or simulated device).
        peak_flops: Peak FLOP/s at the chosen precision.
        bandwidth: Peak memory bandwidth in bytes/s.
        lanes: Parallel arithmetic lanes (CUDA cores, CPU cores x SIMD width).
        bytes_per_element: 4 (fp32), 2 (fp16/bf16) or 1 (int8).
        compute_eff: Achievable fraction of ``peak_flops`` for conv / matmul kernels.
        window_flops: FLOP/s of pooling and other window / element-wise arithmetic (GPUs: a
            share of peak; CPU runtimes run pooling as scalar loops on one core).
        memory_eff: Achievable fraction of ``bandwidth``.
        op_overhead_s: Fixed cost of every deployed operator (dispatch + launch).
        fixed_overhead_s: Fixed cost of one inference (input/output copies, session call).
    """

    name: str
    peak_flops: float
    bandwidth: float
    lanes: float
    bytes_per_element: float
    compute_eff: float
    window_flops: float
    memory_eff: float
    op_overhead_s: float
    fixed_overhead_s: float

    def __post_init__(self) -> None:
        for field_name in ("peak_flops", "bandwidth", "lanes", "bytes_per_element", "window_flops"):
            if not float(getattr(self, field_name)) > 0:
                raise ValueError(f"`{field_name}` must be greater than 0.")
        for field_name in ("compute_eff", "memory_eff"):
            value = float(getattr(self, field_name))
            if not 0 < value <= 1:
                raise ValueError(f"`{field_name}` must be in (0, 1], got {value}.")
        for field_name in ("op_overhead_s", "fixed_overhead_s"):
            if float(getattr(self, field_name)) < 0:
                raise ValueError(f"`{field_name}` must be greater than or equal to 0.")


def bytes_per_element(precision: str) -> float:
    """Bytes of one tensor element at ``precision``."""
    if precision not in _BYTES:
        raise ValueError(f"`precision` must be one of {', '.join(_BYTES)}, got {precision!r}.")
    return _BYTES[precision]


def estimate_latency_ms(table: OpTable, device: DeviceModel) -> float:
    """Roofline latency of one traced model on ``device``, in milliseconds."""
    if len(table) == 0:
        return device.fixed_overhead_s * 1e3
    matrix = np.isin(table.kind, _MATRIX)
    occ = np.where(matrix, np.minimum(1.0, table.out_elems / device.lanes), 1.0)
    rate = np.where(matrix, device.peak_flops * device.compute_eff * occ, device.window_flops)
    t_compute = table.flops / rate
    bytes_ = (table.act_elems + table.weight_elems) * device.bytes_per_element
    t_memory = bytes_ / (device.bandwidth * device.memory_eff)
    total = np.maximum(t_compute, t_memory).sum() + len(table) * device.op_overhead_s
    return float((total + device.fixed_overhead_s) * 1e3)


@functools.lru_cache(maxsize=65536)
def _cached_table(space_name: str, arch: str, workload_json: str) -> OpTable:
    import json

    from search_spaces import Workload, get_space

    space = get_space(space_name)
    wl = Workload.from_dict(json.loads(workload_json))
    return _trace(space, arch, wl)


def _trace(space: SearchSpace[Any], arch: str, workload: Workload) -> OpTable:
    """Trace on the ``meta`` device (no weights, activations or kernels: a 250M-parameter
    language model traces in a fraction of a second); modules that cannot be built or run
    there are traced on the CPU."""
    import torch

    from predictors._progress import torch_threads

    with torch_threads(1), torch.no_grad():
        try:
            with torch.device("meta"):
                module = space.build(space.from_string(arch))
            inputs = [_to_meta(t) for t in space.example_inputs(workload)]
            return OpTable.from_records(trace_module(module, inputs))
        except (NotImplementedError, RuntimeError, TypeError, ValueError):
            pass  # an op without a meta kernel, or data-dependent control flow
        parsed = space.from_string(arch)
        params = space.profile(parsed).params
        if params > _MAX_CPU_TRACE_PARAMS:
            raise PredictorError(
                f"cannot trace {arch!r} on the meta device, and its {params / 1e9:.1f}B "
                f"parameters are too many to build on the CPU for a trace (limit "
                f"{_MAX_CPU_TRACE_PARAMS / 1e9:.1f}B)"
            )
        module = space.build(parsed)
        return OpTable.from_records(trace_module(module, space.example_inputs(workload)))


def _to_meta(value: Any) -> Any:
    import torch

    return value.to("meta") if isinstance(value, torch.Tensor) else value


def op_table(space: SearchSpace[Any] | str, arch: str, workload: Workload | None = None) -> OpTable:
    """Deployed operators of ``arch`` (canonical string) traced from the real torch module.

    Results of registered spaces are cached per ``(space, arch, workload)``.
    """
    import json

    from search_spaces import get_space

    sp = get_space(space) if isinstance(space, str) else space
    wl = workload or sp.default_workload()
    canon = sp.canonicalize(arch)
    try:
        registered = get_space(sp.name) is sp
    except Exception:  # noqa: BLE001 - an unregistered space instance
        registered = False
    if registered:
        return _cached_table(sp.name, canon, json.dumps(wl.to_dict(), sort_keys=True))
    return _trace(sp, canon, wl)


def roofline_latency_ms(
    space: SearchSpace[Any] | str,
    archs: Sequence[str],
    device: DeviceModel,
    *,
    workload: Workload | None = None,
) -> np.ndarray:
    """Roofline latency (ms) of every arch of ``archs`` on ``device``."""
    return np.array(
        [estimate_latency_ms(op_table(space, a, workload), device) for a in archs], dtype=float
    )
