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

Which operators run depends on the runtime (``DeviceModel.runtime``): a graph runtime (TensorRT,
TFLite, ONNX Runtime, TensorFlow graphs) runs the simplified graph of
:mod:`predictors.zeroshot._trace`, eager PyTorch runs every traced operator unfused. A device
whose runtime is unknown gets the mean of the two estimates, its expected latency when either
is equally likely. On NAS-Bench-201 the two modes rank eager-PyTorch devices very differently:
HELP's GTX 1080 Ti at batch 1 is ranked at 0.531 by the graph roofline and 0.978 by the eager
one, and LatBench's TensorFlow Jetson Nano at 0.818 and 0.619 (README, issue 8).

Language models decode one token at a time; each step streams every weight once plus the
KV-cache / recurrent state, so decode is memory-bound:
``decode_ms_per_token = (weight bytes + cache bytes) / (B * eff_b) + layers * overhead``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from predictors._errors import PredictorError
from predictors.zeroshot._trace import (
    KINDS,
    OpRecord,
    OpTable,
    meta_device,
    trace_module_modes,
)
from predictors.zeroshot._tracecache import TraceStore, persisting, trace_store

if TYPE_CHECKING:
    from search_spaces import SearchSpace, Workload

__all__ = [
    "RUNTIME_MODES",
    "DeviceModel",
    "estimate_latency_ms",
    "op_table",
    "roofline_latency_ms",
    "runtime_mode",
]

# A model that cannot be traced on the meta device is built for real; beyond this many
# parameters (2 GB of fp32 weights) that would exhaust a small machine's memory instead.
_MAX_CPU_TRACE_PARAMS = 500_000_000
#: How the runtime executes the traced module: ``"graph"`` (optimised graph), ``"eager"`` (every
#: operator as traced) or ``"unknown"`` (the mean of both estimates).
RUNTIME_MODES = ("graph", "eager", "unknown")
_EAGER_RUNTIMES = {"torch", "pytorch", "eager"}
_UNKNOWN_RUNTIMES = {"", "unknown"}
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
        runtime: One of :data:`RUNTIME_MODES`.
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
    runtime: str = "graph"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIME_MODES:
            raise ValueError(
                f"`runtime` must be one of {', '.join(RUNTIME_MODES)}, got {self.runtime!r}."
            )
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


def runtime_mode(runtime: str | None) -> str:
    """The :data:`RUNTIME_MODES` entry of a hardware-database runtime name (``torch`` is
    eager, ``unknown`` or none is unknown, any other named runtime optimises a graph)."""
    name = (runtime or "").strip().lower()
    if name in _EAGER_RUNTIMES:
        return "eager"
    return "unknown" if name in _UNKNOWN_RUNTIMES else "graph"


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


_CACHE_SIZE = 65536
# (space, arch, workload) -> (simplified table, eager table or None when not traced yet)
_TABLES: OrderedDict[tuple[str, str, str], tuple[OpTable, OpTable | None]] = OrderedDict()
_TABLES_LOCK = threading.Lock()


def _cached_table(space_name: str, arch: str, workload_json: str, simplify: bool) -> OpTable:
    """Memoised tables of registered spaces; the eager table is traced (together with the
    simplified one, in one pass) only when first asked for."""
    import json

    from search_spaces import Workload, get_space

    key = (space_name, arch, workload_json)
    with _TABLES_LOCK:
        hit = _TABLES.get(key)
        if hit is not None:
            _TABLES.move_to_end(key)
            if simplify or hit[1] is not None:
                return hit[0] if simplify else hit[1]  # type: ignore[return-value]
    space = get_space(space_name)
    store = _store_for(space)
    tables = store.get(space_name, arch, workload_json) if store is not None else None
    if tables is None or (not simplify and tables[1] is None):
        tables = _trace(space, arch, Workload.from_dict(json.loads(workload_json)), not simplify)
        if store is not None:
            store.put(space_name, arch, workload_json, tables)
    with _TABLES_LOCK:
        _TABLES[key] = tables
        while len(_TABLES) > _CACHE_SIZE:
            _TABLES.popitem(last=False)
    return tables[0] if simplify else tables[1]  # type: ignore[return-value]


def _store_for(space: SearchSpace[Any]) -> TraceStore | None:
    """The on-disk store, inside :func:`persistent_traces` and for built-in spaces only."""
    if not persisting() or not type(space).__module__.startswith("search_spaces."):
        return None
    return trace_store()


def _trace(
    space: SearchSpace[Any], arch: str, workload: Workload, eager: bool = True
) -> tuple[OpTable, OpTable | None]:
    """The simplified and (with ``eager``) the eager operator table of one trace on the
    ``meta`` device (no weights, activations or kernels: a 250M-parameter language model
    traces in a fraction of a second); modules that cannot be built or run there are traced
    on the CPU."""
    modes = (True, False) if eager else (True,)
    import torch

    from predictors._progress import torch_threads

    with torch_threads(1), torch.no_grad():
        try:
            with meta_device():
                module = space.build(space.from_string(arch))
            inputs = [_to_meta(t) for t in space.example_inputs(workload)]
            return _tables(trace_module_modes(module, inputs, modes))
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
        return _tables(trace_module_modes(module, space.example_inputs(workload), modes))


def _tables(records: list[list[OpRecord]]) -> tuple[OpTable, OpTable | None]:
    eager = OpTable.from_records(records[1]) if len(records) > 1 else None
    return OpTable.from_records(records[0]), eager


def _to_meta(value: Any) -> Any:
    import torch

    return value.to("meta") if isinstance(value, torch.Tensor) else value


def op_table(
    space: SearchSpace[Any] | str,
    arch: str,
    workload: Workload | None = None,
    *,
    simplify: bool = True,
) -> OpTable:
    """Deployed operators of ``arch`` (canonical string) traced from the real torch module.

    ``simplify=False`` keeps every eager operator (what eager PyTorch runs). Results of
    registered spaces are cached per ``(space, arch, workload, simplify)``.
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
        return _cached_table(sp.name, canon, json.dumps(wl.to_dict(), sort_keys=True), simplify)
    graph, eager = _trace(sp, canon, wl, not simplify)
    return graph if simplify or eager is None else eager


def roofline_latency_ms(
    space: SearchSpace[Any] | str,
    archs: Sequence[str],
    device: DeviceModel,
    *,
    workload: Workload | None = None,
) -> np.ndarray:
    """Roofline latency (ms) of every arch of ``archs`` on ``device`` (its ``runtime`` picks
    the simplified graph, the eager trace or the mean of both)."""
    # eager first: its trace also fills the simplified table, which is then a cache hit
    modes = {"graph": (True,), "eager": (False,), "unknown": (False, True)}[device.runtime]
    return np.array(
        [
            np.mean([estimate_latency_ms(op_table(space, a, workload, simplify=m), device)
                     for m in modes])
            for a in archs
        ],
        dtype=float,
    )  # fmt: skip
