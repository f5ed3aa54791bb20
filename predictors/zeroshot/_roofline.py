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

Which operators run depends on the runtime (``DeviceModel.runtime``; the operator lists are
the modes of :mod:`predictors.zeroshot._trace`): a fusing graph compiler (TensorRT, TFLite, ONNX
Runtime) runs the fused and pruned graph, TensorFlow's graph executor the pruned graph without
fusion, eager PyTorch every traced operator. A device whose runtime is unknown gets the mean of
the eager and the pruned estimates: every runtime but eager PyTorch prunes what cannot reach the
output, and whether it fuses is unknown, so each kernel keeps its own dispatch cost. On
NAS-Bench-201 the modes rank devices very differently: HELP's GTX 1080 Ti at batch 1 is ranked
at 0.531 by the fused graph, 0.676 by the pruned one and 0.978 by the eager one; LatBench's
TensorFlow Jetson Nano at 0.818, 0.934 and 0.619. Over 13 measured NAS-Bench-201 devices with
a catalog entry the unknown-runtime mean ranks at 0.764 with the pruned graph and 0.730 with
the fused one; on the project's own spaces (6 device-space pairs, nothing dead to prune, so
pruned = eager) 0.845 against 0.871; over all 19 pairs 0.790 against 0.774
(``benchmarks/runtime_modes.py``, README, issue 8).

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
    TRACE_MODES,
    OpRecord,
    OpTable,
    TraceTables,
    check_modes,
    meta_device,
    trace_module_modes,
)
from predictors.zeroshot._tracecache import TraceStore, persisting, trace_store

if TYPE_CHECKING:
    from search_spaces import SearchSpace, Workload

__all__ = [
    "KNOWN_RUNTIMES",
    "RUNTIME_MODES",
    "RUNTIME_MODE_TEXT",
    "DeviceModel",
    "estimate_latency_ms",
    "is_known_runtime",
    "op_table",
    "op_tables",
    "roofline_latency_ms",
    "runtime_mode",
]

# A model that cannot be traced on the meta device is built for real; beyond this many
# parameters (2 GB of fp32 weights) that would exhaust a small machine's memory instead.
_MAX_CPU_TRACE_PARAMS = 500_000_000
#: How the runtime executes the traced module: ``"graph"`` (fused and pruned graph),
#: ``"eager"`` (every operator as traced), ``"pruned"`` (pruned graph, nothing fused) or
#: ``"unknown"`` (the mean of the eager and the pruned estimates).
RUNTIME_MODES = ("graph", "eager", "pruned", "unknown")
#: What each runtime mode prices, in words (for the terminal).
RUNTIME_MODE_TEXT = {
    "graph": "the fused graph",
    "eager": "every eager op",
    "pruned": "the pruned graph, unfused",
    "unknown": "the mean of the eager and pruned estimates",
}
_EAGER_RUNTIMES = {"torch", "pytorch", "eager"}
_PRUNED_RUNTIMES = {"tensorflow", "tf", "pruned"}
_UNKNOWN_RUNTIMES = {"", "unknown"}
_GRAPH_RUNTIMES = {
    "tensorrt", "tensorrt-llm", "tflite", "litert", "onnxruntime", "onnxruntime-gpu",
    "openvino", "coreml", "tvm", "ncnn", "mnn", "executorch", "snpe", "qnn", "xla", "inductor",
    "graph",
}  # fmt: skip
#: The runtime names the roofline knows (lower case), each priced by its
#: :data:`RUNTIME_MODES` entry (:func:`runtime_mode`). A device priced from a datasheet must
#: use one of them: any other name would be priced as a fused graph, so a typo (``torhc``)
#: would silently change its predictions. Measured devices may carry any runtime label.
KNOWN_RUNTIMES: tuple[str, ...] = tuple(
    sorted((_EAGER_RUNTIMES | _PRUNED_RUNTIMES | _GRAPH_RUNTIMES | _UNKNOWN_RUNTIMES) - {""})
)


def is_known_runtime(runtime: str) -> bool:
    """Whether ``runtime`` (any case, surrounding spaces ignored) is in :data:`KNOWN_RUNTIMES`."""
    return runtime.strip().lower() in KNOWN_RUNTIMES


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
    eager, ``tensorflow`` a pruned graph, ``unknown`` or none unknown, any other named
    runtime, in :data:`KNOWN_RUNTIMES` or not, a fused graph)."""
    name = (runtime or "").strip().lower()
    if name in _EAGER_RUNTIMES:
        return "eager"
    if name in _PRUNED_RUNTIMES:
        return "pruned"
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
# (space, arch, workload) -> (graph, eager, pruned), each None until traced (see TraceTables)
_TABLES: OrderedDict[tuple[str, str, str], TraceTables] = OrderedDict()
_TABLES_LOCK = threading.Lock()
_NONE: TraceTables = (None, None, None)


def _missing(tables: TraceTables, modes: Sequence[str]) -> list[str]:
    return [m for m in modes if tables[TRACE_MODES.index(m)] is None]


def _merged(old: TraceTables, new: TraceTables) -> TraceTables:
    """``new``'s tables, ``old``'s where ``new`` has none."""
    graph, eager, pruned = (n if n is not None else o for o, n in zip(old, new, strict=True))
    return graph, eager, pruned


def _select(tables: TraceTables, modes: Sequence[str]) -> list[OpTable]:
    out = [tables[TRACE_MODES.index(m)] for m in modes]
    if any(t is None for t in out):
        raise PredictorError(f"no operator table traced for modes {list(modes)}")
    return [t for t in out if t is not None]


def _cached_tables(
    space_name: str, arch: str, workload_json: str, modes: Sequence[str]
) -> list[OpTable]:
    """Memoised tables of registered spaces; the modes not yet known are traced together,
    in one pass."""
    import json

    from search_spaces import Workload, get_space

    key = (space_name, arch, workload_json)
    with _TABLES_LOCK:
        tables = _TABLES.get(key, _NONE)
        if key in _TABLES:
            _TABLES.move_to_end(key)
    if _missing(tables, modes):
        space = get_space(space_name)
        store = _store_for(space)
        if store is not None:
            tables = _merged(tables, store.get(space_name, arch, workload_json) or _NONE)
        missing = _missing(tables, modes)
        if missing:
            workload = Workload.from_dict(json.loads(workload_json))
            tables = _merged(tables, _trace(space, arch, workload, missing))
            if store is not None:
                store.put(space_name, arch, workload_json, tables)
        with _TABLES_LOCK:  # keep what another thread traced meanwhile
            tables = _merged(_TABLES.get(key, _NONE), tables)
            _TABLES[key] = tables
            while len(_TABLES) > _CACHE_SIZE:
                _TABLES.popitem(last=False)
    return _select(tables, modes)


def _store_for(space: SearchSpace[Any]) -> TraceStore | None:
    """The on-disk store, inside :func:`persistent_traces` and for built-in spaces only."""
    if not persisting() or not type(space).__module__.startswith("search_spaces."):
        return None
    return trace_store()


def _trace(
    space: SearchSpace[Any], arch: str, workload: Workload, modes: Sequence[str] = TRACE_MODES
) -> TraceTables:
    """The operator tables of ``modes`` from one trace on the ``meta`` device (no weights,
    activations or kernels: a 250M-parameter language model traces in a fraction of a
    second); modules that cannot be built or run there are traced on the CPU. The other
    modes' slots are None."""
    import torch

    from predictors._progress import torch_threads

    with torch_threads(1), torch.no_grad():
        try:
            with meta_device():
                module = space.build(space.from_string(arch))
            inputs = [_to_meta(t) for t in space.example_inputs(workload)]
            return _tables(trace_module_modes(module, inputs, modes), modes)
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
        return _tables(trace_module_modes(module, space.example_inputs(workload), modes), modes)


def _tables(records: list[list[OpRecord]], modes: Sequence[str]) -> TraceTables:
    by_mode = {m: OpTable.from_records(r) for m, r in zip(modes, records, strict=True)}
    return by_mode.get("graph"), by_mode.get("eager"), by_mode.get("pruned")


def _to_meta(value: Any) -> Any:
    import torch

    return value.to("meta") if isinstance(value, torch.Tensor) else value


def op_table(
    space: SearchSpace[Any] | str,
    arch: str,
    workload: Workload | None = None,
    *,
    mode: str = "graph",
) -> OpTable:
    """Deployed operators of ``arch`` (canonical string) traced from the real torch module.

    ``mode`` is one of :data:`~predictors.zeroshot._trace.TRACE_MODES`: ``"graph"`` (fused and
    pruned), ``"eager"`` (every operator eager PyTorch runs) or ``"pruned"`` (pruned, nothing
    fused). Results of registered spaces are cached per ``(space, arch, workload)``.

    Raises:
        ValueError: for an unknown ``mode``.
    """
    check_modes((mode,), "mode")
    return _op_tables(space, arch, workload, (mode,))[0]


def op_tables(
    space: SearchSpace[Any] | str,
    arch: str,
    workload: Workload | None = None,
    *,
    modes: Sequence[str] = TRACE_MODES,
) -> list[OpTable]:
    """:func:`op_table` of several ``modes``, traced together (one forward pass).

    Raises:
        ValueError: for an unknown entry of ``modes``.
    """
    check_modes(modes)
    return _op_tables(space, arch, workload, modes)


def _op_tables(
    space: SearchSpace[Any] | str, arch: str, workload: Workload | None, modes: Sequence[str]
) -> list[OpTable]:
    """:func:`op_tables` for modes already checked."""
    import json

    from search_spaces import UnknownSpaceError, get_space

    sp = get_space(space) if isinstance(space, str) else space
    wl = workload or sp.default_workload()
    canon = sp.canonicalize(arch)
    try:
        registered = get_space(sp.name) is sp
    except UnknownSpaceError:  # an unregistered space instance
        registered = False
    if registered:
        return _cached_tables(sp.name, canon, json.dumps(wl.to_dict(), sort_keys=True), modes)
    return _select(_trace(sp, canon, wl, modes), modes)


def roofline_latency_ms(
    space: SearchSpace[Any] | str,
    archs: Sequence[str],
    device: DeviceModel,
    *,
    workload: Workload | None = None,
) -> np.ndarray:
    """Roofline latency (ms) of every arch of ``archs`` on ``device`` (its ``runtime`` picks
    the fused graph, the eager trace, the pruned graph or the mean of the last two)."""
    modes = {"unknown": ("eager", "pruned")}.get(device.runtime, (device.runtime,))
    return np.array(
        [
            np.mean([estimate_latency_ms(t, device)
                     for t in _op_tables(space, a, workload, modes)])
            for a in archs
        ],
        dtype=float,
    )  # fmt: skip
