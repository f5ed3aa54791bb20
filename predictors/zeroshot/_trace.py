"""Per-operator FLOPs and memory traffic of a real torch module, from an aten dispatch trace.

The module runs once on the ``meta`` device (no data, no kernels) under a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` that records every aten call with the
shapes of its inputs, weights and outputs. FLOPs come from :mod:`torch.utils.flop_counter`'s
registry (convolutions, matrix products, attention); element-wise and pooling ops count one
FLOP per output element (pooling: one per window element).

The recorded eager graph is then *simplified the way an inference runtime deploys it*
(TensorRT / TFLite / ONNX Runtime graph optimisers): views are free, multiplications by the
constant 0 (NAS-Bench-201's ``none`` op) make known-zero tensors that additions drop,
BatchNorm after a convolution folds into its weights, an activation fuses into the op that
produced its input, identical ops on the same value are computed once (CSE), and ops that do
not reach the output are removed. What remains is the kernel list a roofline model prices.

Three modes (:data:`TRACE_MODES`) describe three kinds of runtime: ``"graph"`` applies every
pass above (a fusing compiler: TensorRT, TFLite, ONNX Runtime); ``"eager"`` keeps every aten
call (eager PyTorch runs all of them, ``x * 0`` and dead edges included); ``"pruned"`` folds
zeros, removes common subexpressions and dead ops but fuses nothing, so BatchNorm and every
activation stay kernels of their own (a graph executor without a fusing compiler, e.g.
TensorFlow's, which prunes the graph to what the output needs but on GPUs does not fold
BatchNorm into convolutions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "TRACE_MODES",
    "OpRecord",
    "OpTable",
    "TraceTables",
    "check_modes",
    "meta_device",
    "trace_module",
    "trace_module_modes",
]

#: Operator classes priced differently by the roofline.
KINDS = ("conv", "matmul", "attention", "pool", "eltwise", "reduce", "norm", "other")
#: Operator lists one trace can record (module docstring): fused graph, eager, pruned graph.
TRACE_MODES = ("graph", "eager", "pruned")

_VIEW_OPS = {
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "unsqueeze",
    "squeeze", "flatten", "detach", "alias", "slice", "select", "as_strided", "lift_fresh",
    "_to_copy", "clone", "contiguous", "split", "unbind", "chunk", "split_with_sizes",
}  # fmt: skip
_ACTIVATIONS = {"relu", "relu_", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
                "clamp", "hardtanh", "leaky_relu", "elu"}  # fmt: skip
_NORMS = {"_native_batch_norm_legit_no_training", "native_batch_norm", "batch_norm",
          "native_layer_norm", "layer_norm", "group_norm", "native_group_norm", "rms_norm",
          "_fused_rms_norm"}  # fmt: skip
_BATCH_NORMS = {"_native_batch_norm_legit_no_training", "native_batch_norm", "batch_norm",
                "_native_batch_norm_legit", "cudnn_batch_norm"}  # fmt: skip
_POOLS = {"avg_pool2d", "max_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d",
          "_adaptive_avg_pool2d", "avg_pool1d", "adaptive_max_pool2d"}  # fmt: skip
_REDUCE = {"mean", "sum", "amax", "amin", "max", "min", "softmax", "_softmax", "log_softmax",
           "_log_softmax", "cumsum", "var", "std"}  # fmt: skip
_ZERO_PRESERVING = {"relu", "relu_", "mul", "avg_pool2d", "convolution", "mean", "max_pool2d"}


@dataclass(frozen=True)
class OpRecord:
    """One deployed operator (after simplification).

    Attributes:
        op: aten op name, e.g. ``"convolution"``.
        kind: One of :data:`KINDS`.
        flops: Floating-point operations (a multiply-accumulate counts 2).
        act_elems: Activation elements read plus written (fused epilogues included).
        weight_elems: Parameter / constant elements read.
        out_elems: Output elements (the parallelism available to the kernel).
    """

    op: str
    kind: str
    flops: float
    act_elems: float
    weight_elems: float
    out_elems: float


@dataclass(frozen=True)
class OpTable:
    """Column arrays of a model's deployed operators (fast to price for many devices)."""

    kind: np.ndarray  # int index into KINDS
    flops: np.ndarray
    act_elems: np.ndarray
    weight_elems: np.ndarray
    out_elems: np.ndarray
    ops: tuple[str, ...]

    @classmethod
    def from_records(cls, records: Sequence[OpRecord]) -> OpTable:
        """Build the columns from records."""

        def col(name: str) -> np.ndarray:
            return np.array([float(getattr(r, name)) for r in records], dtype=np.float64)

        return cls(
            kind=np.array([KINDS.index(r.kind) for r in records], dtype=np.int64),
            flops=col("flops"),
            act_elems=col("act_elems"),
            weight_elems=col("weight_elems"),
            out_elems=col("out_elems"),
            ops=tuple(r.op for r in records),
        )

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def counts(self) -> dict[str, int]:
        """Number of deployed ops per kind."""
        return {k: int((self.kind == i).sum()) for i, k in enumerate(KINDS)}


#: The tables of one arch in :data:`TRACE_MODES` order (fused graph, eager, pruned), each
#: ``None`` until some caller asks for that mode.
TraceTables = tuple[OpTable | None, OpTable | None, OpTable | None]


def _kind(name: str) -> str:
    if name in ("convolution", "_convolution", "conv2d", "conv1d"):
        return "conv"
    if name in ("mm", "addmm", "bmm", "baddbmm", "linear", "matmul"):
        return "matmul"
    if "attention" in name:
        return "attention"
    if name in _POOLS:
        return "pool"
    if name in _NORMS:
        return "norm"
    if name in _REDUCE:
        return "reduce"
    return "eltwise"


@dataclass
class _Node:
    """A recorded aten call in the raw trace."""

    op: str
    kind: str
    inputs: list[int]  # value ids of activation inputs
    weights: float  # parameter elements
    out: list[int]
    out_elems: float
    flops: float
    key: tuple[Any, ...]
    alive: bool = True


def _numel(t: Any) -> float:
    return float(t.numel())


def _tensors(obj: Any) -> list[Any]:
    """The tensors in ``obj`` (nested lists, tuples and dicts), in order; a plain walk, as
    torch's general pytree flattening cost a fifth of a MnasNet trace."""
    import torch

    out: list[Any] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            out.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return out


def _scalar_args(args: Sequence[Any]) -> tuple[Any, ...]:
    import torch

    out: list[Any] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append("T")
        elif isinstance(a, (list, tuple)):
            out.append(tuple("T" if isinstance(x, torch.Tensor) else x for x in a))
        else:
            out.append(a)
    return tuple(out)


def _flops(func: Any, name: str, args: Any, kwargs: Any, out: Any, out_elems: float) -> float:
    from torch.utils.flop_counter import flop_registry

    packet = func.overloadpacket
    if packet in flop_registry:
        # counted from shapes only: memoised like the meta kernels (:func:`_meta_call`)
        key = (func, _meta_key(args), _meta_key(tuple(sorted(kwargs.items()))))
        flops = _FLOPS_MEMO.get(key) if None not in key else None
        if flops is None:
            flops = float(flop_registry[packet](*args, **kwargs, out_val=out))
            if None not in key:
                if len(_FLOPS_MEMO) >= _META_MEMO_SIZE:
                    _FLOPS_MEMO.clear()
                _FLOPS_MEMO[key] = flops
        return flops
    if name in ("avg_pool2d", "max_pool2d", "max_pool2d_with_indices"):
        ks = args[1] if len(args) > 1 else kwargs.get("kernel_size", 1)
        ks = list(ks) if isinstance(ks, (list, tuple)) else [ks]
        area = float(np.prod(ks * (2 // len(ks)))) if ks else 1.0
        return out_elems * area
    if name in _POOLS or name in _REDUCE:
        ins = _tensors(args)
        return _numel(ins[0]) if ins else out_elems
    if name in _NORMS:
        return 4.0 * out_elems
    return out_elems


# In-place ops that change a tensor's values only (never its shape, strides or dtype): what
# weight initialisation calls (``nn.init``, ``reset_parameters``).
_VALUE_ONLY_INPLACE = frozenset({
    "normal_", "uniform_", "zero_", "fill_", "erfinv_", "mul_", "add_", "sub_", "div_",
    "clamp_", "copy_", "exp_", "log_", "sqrt_", "abs_", "bernoulli_", "exponential_",
    "random_", "fill_diagonal_",
})  # fmt: skip


@contextmanager
def meta_device() -> Iterator[None]:
    """``torch.device("meta")`` that also skips value-only in-place ops on meta tensors.

    A module built on the ``meta`` device has shapes but no values, yet its constructors
    still run weight initialisation, and many meta kernels are Python reference
    implementations: on this project's CPU, initialisation was two thirds of building a
    MnasNet on the meta device. The skipped calls return their input, which is what an
    in-place op returns, with unchanged metadata."""
    import torch
    from torch.overrides import TorchFunctionMode

    class _SkipInit(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            if getattr(func, "__name__", "") in _VALUE_ONLY_INPLACE:
                # the tensor changed: the first argument (``nn.init`` passes ``tensor=``)
                target = args[0] if args else next(iter(kwargs.values()), None)
                if isinstance(target, torch.Tensor) and target.is_meta:
                    return target
            return func(*args, **kwargs)

    with torch.device("meta"), _SkipInit():
        yield


# (op, input metadata, other arguments) -> output metadata of a fresh-output op on ``meta``
_META_MEMO: dict[tuple[Any, ...], Any] = {}
_FLOPS_MEMO: dict[tuple[Any, ...], float] = {}  # the same key -> FLOPs of the call
_META_MEMO_SIZE = 20_000  # entries per memo (a few MB; cleared when full)


def _meta_key(value: Any) -> Any:
    """A hashable key of an argument: a meta tensor by its metadata, containers by their
    items, anything else by itself; None when the value cannot be keyed (a tensor not on the
    ``meta`` device, an unhashable object)."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.device.type != "meta":
            return None
        return ("T", tuple(value.shape), value.stride(), value.dtype, value.storage_offset())
    if isinstance(value, (list, tuple)):
        items = tuple(_meta_key(v) for v in value)
        return None if None in items else items
    try:
        hash(value)
    except TypeError:
        return None
    return ("V", type(value).__name__, value)


def _fresh_outputs(func: Any) -> bool:
    """Whether ``func`` returns new tensors only (no views of, or writes to, its inputs)."""
    schema = func._schema
    if any(a.alias_info is not None for a in schema.arguments):
        return False
    return all(r.alias_info is None for r in schema.returns)


def _meta_call(func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)``, memoised for fresh-output ops on the ``meta`` device.

    Many meta kernels are Python decompositions (BatchNorm's runs a dozen element-wise
    reference ops, ~5 ms per call here); the output's shape, strides and dtype depend only on
    the inputs' metadata and the other arguments, and a model repeats the same few calls, so
    the second call with the same key builds empty meta tensors instead. A trace's records
    are unchanged (``tests/predictors/zeroshot/test_roofline.py``)."""
    import torch

    key = None
    if _fresh_outputs(func):
        key = (func, _meta_key(args), _meta_key(tuple(sorted(kwargs.items()))))
        if None in key[1:] or not any(isinstance(t, torch.Tensor) for t in _tensors(args)):
            key = None
    if key is not None:
        spec = _META_MEMO.get(key)
        if spec is not None:
            return _rebuild(spec)
    out = func(*args, **kwargs)
    if key is not None:
        spec = _spec(out)
        if spec is not None:
            if len(_META_MEMO) >= _META_MEMO_SIZE:
                _META_MEMO.clear()
            _META_MEMO[key] = spec
    return out


def _spec(out: Any) -> Any:
    """Output metadata to rebuild ``out`` from (None: not plain meta tensors)."""
    import torch

    if isinstance(out, torch.Tensor):
        if out.device.type != "meta" or out.storage_offset() != 0:
            return None
        return ("T", tuple(out.shape), out.stride(), out.dtype)
    if isinstance(out, (list, tuple)):
        items = [_spec(o) for o in out]
        return None if any(i is None for i in items) else (type(out), items)
    return None


def _rebuild(spec: Any) -> Any:
    import torch

    if spec[0] == "T":
        _, shape, stride, dtype = spec
        return torch.empty_strided(shape, stride, dtype=dtype, device="meta")
    kind, items = spec
    return kind([_rebuild(i) for i in items])


class _Graph:
    """Raw trace: values (activation tensors), parameters, nodes; simplified on the fly."""

    def __init__(self) -> None:
        self.keep: list[Any] = []  # keep tensors alive so ``id`` stays unique
        self.value_of: dict[int, int] = {}  # tensor id -> value id
        self.param_elems: dict[int, float] = {}  # tensor id -> elements (weights, constants)
        self.elems: dict[int, float] = {}  # value id -> elements
        self.zero: set[int] = set()
        self.nodes: list[_Node] = []
        self.cse: dict[tuple[Any, ...], list[int]] = {}
        self.n_values = 0

    def new_value(self, t: Any, *, zero: bool = False) -> int:
        vid = self.n_values
        self.n_values += 1
        self.keep.append(t)
        self.value_of[id(t)] = vid
        self.elems[vid] = _numel(t)
        if zero:
            self.zero.add(vid)
        return vid

    def alias(self, outs: list[Any], vid: int) -> None:
        for t in outs:
            self.keep.append(t)
            self.value_of[id(t)] = vid

    def record(self, func: Any, args: Any, kwargs: Any, out: Any) -> None:
        name = func.overloadpacket.__name__
        outs = _tensors(out)
        ins = _tensors((args, kwargs))
        acts = [self.value_of[id(t)] for t in ins if id(t) in self.value_of]
        weights = [t for t in ins if id(t) not in self.value_of]
        if not outs:
            return
        if not acts:  # parameter/constant preprocessing (e.g. weight.t()): stays a weight
            for t in outs:
                self.keep.append(t)
                self.param_elems[id(t)] = _numel(t)
            return
        if name in _VIEW_OPS:
            self.alias(outs, acts[0])
            return
        if self._fold_zero(name, args, acts, outs):
            return
        key = (name, tuple(acts), tuple(sorted(id(w) for w in weights)), _scalar_args(args))
        if key in self.cse:
            for t, vid in zip(outs, self.cse[key], strict=False):
                self.alias([t], vid)
            return
        vids = [self.new_value(t) for t in outs]
        self.cse[key] = vids
        out_elems = _numel(outs[0])
        self.nodes.append(
            _Node(
                op=name,
                kind=_kind(name),
                inputs=list(dict.fromkeys(acts)),
                weights=float(sum(_numel(w) for w in weights)),
                out=vids,
                out_elems=out_elems,
                flops=_flops(func, name, args, kwargs, out, out_elems),
                key=key,
            )
        )

    def record_plain(self, func: Any, args: Any, kwargs: Any, out: Any) -> None:
        """Record without simplification (views still free)."""
        name = func.overloadpacket.__name__
        outs = _tensors(out)
        ins = _tensors((args, kwargs))
        acts = [self.value_of[id(t)] for t in ins if id(t) in self.value_of]
        if not outs or not acts:
            for t in outs:
                self.keep.append(t)
            return
        if name in _VIEW_OPS:
            self.alias(outs, acts[0])
            return
        vids = [self.new_value(t) for t in outs]
        weights = [t for t in ins if id(t) not in self.value_of]
        out_elems = _numel(outs[0])
        self.nodes.append(
            _Node(name, _kind(name), list(dict.fromkeys(acts)),
                  float(sum(_numel(w) for w in weights)), vids, out_elems,
                  _flops(func, name, args, kwargs, out, out_elems), ()),
        )  # fmt: skip

    def _fold_zero(self, name: str, args: Any, acts: list[int], outs: list[Any]) -> bool:
        """Constant-fold the known-zero tensors of ``x * 0`` (NAS-Bench-201's ``none``)."""
        if name == "mul" and len(args) > 1 and isinstance(args[1], (int, float)) and args[1] == 0:
            self.new_value(outs[0], zero=True)
            return True
        if all(a in self.zero for a in acts) and name in _ZERO_PRESERVING:
            self.new_value(outs[0], zero=True)
            return True
        if name in ("add", "sub") and len(acts) == 2 and any(a in self.zero for a in acts):
            live = [a for a in acts if a not in self.zero]
            if live:
                self.alias(outs[:1], live[0])
            else:
                self.new_value(outs[0], zero=True)
            return True
        return False

    # ------------------------------------------------------------------ deployment passes
    def fuse(self, outputs: list[int]) -> list[int]:
        """Fold BatchNorm into a producing conv/matmul, fuse activations into their producer.

        Returns:
            ``outputs`` with fused values redirected.
        """
        prod: dict[int, _Node] = {v: n for n in self.nodes for v in n.out}
        uses: dict[int, int] = {}
        for n in self.nodes:
            for v in n.inputs:
                uses[v] = uses.get(v, 0) + 1
        alias: dict[int, int] = {}
        for node in self.nodes:
            node.inputs = [alias.get(v, v) for v in node.inputs]
            src = prod.get(node.inputs[0]) if node.inputs else None
            if src is None:
                continue
            bn = node.op in _BATCH_NORMS
            if bn and src.kind in ("conv", "matmul") and uses.get(node.inputs[0], 0) == 1:
                node.alive = False
                alias[node.out[0]] = node.inputs[0]
                uses[node.inputs[0]] += uses.get(node.out[0], 0) - 1
            elif node.op in _ACTIVATIONS and src.kind != "other" and len(node.inputs) == 1:
                node.alive = False  # epilogue of ``src``; a second output if the raw value is used
                src.flops += node.out_elems
                uses[node.inputs[0]] -= 1
                if uses[node.inputs[0]] > 0:
                    src.out.append(node.out[0])
                    prod[node.out[0]] = src
                else:
                    src.out[src.out.index(node.inputs[0])] = node.out[0]
                    prod[node.out[0]] = src
        return [alias.get(v, v) for v in outputs]

    def eliminate_dead(self, outputs: list[int]) -> None:
        """Remove ops whose results never reach ``outputs``."""
        needed = set(outputs)
        for node in reversed(self.nodes):
            if not node.alive:
                continue
            live = [v for v in node.out if v in needed]
            if live:
                node.out = live
                needed.update(node.inputs)
            else:
                node.alive = False

    def records(self) -> list[OpRecord]:
        """The deployed operators, in execution order."""
        out = []
        for n in self.nodes:
            if n.alive:
                act = sum(self.elems[v] for v in (*n.inputs, *n.out))
                out.append(OpRecord(n.op, n.kind, n.flops, act, n.weights, n.out_elems))
        return out


def trace_module(module: Any, inputs: Sequence[Any], *, mode: str = "graph") -> list[OpRecord]:
    """Deployed operators of ``module(*inputs)`` (see the module docstring).

    ``module`` and ``inputs`` may live on any device; the ``meta`` device makes the trace
    free of kernels. The module is switched to ``eval`` mode.

    Args:
        module: A ``torch.nn.Module``.
        inputs: Positional inputs of one forward pass.
        mode: One of :data:`TRACE_MODES`: ``"graph"`` applies the deployment passes (zero
            folding, CSE, fusion, dead-code removal), ``"pruned"`` all but fusion, ``"eager"``
            keeps every aten call that computes something (views excluded).

    Returns:
        One :class:`OpRecord` per deployed operator, in execution order.

    Raises:
        ValueError: for an unknown ``mode``.
    """
    check_modes((mode,), "mode")
    return _trace_modes(module, inputs, (mode,))[0]


def check_modes(modes: Sequence[str], name: str = "modes") -> None:
    """Raise ``ValueError`` naming argument ``name`` unless every mode is a :data:`TRACE_MODES`
    entry."""
    bad = [m for m in modes if m not in TRACE_MODES]
    if bad:
        raise ValueError(f"`{name}`: unknown mode {bad[0]!r} (modes: {', '.join(TRACE_MODES)}).")


def trace_module_modes(
    module: Any, inputs: Sequence[Any], modes: Sequence[str] = ("graph", "eager")
) -> list[list[OpRecord]]:
    """:func:`trace_module` for several ``modes`` from one forward pass (the operator lists of
    every mode of a model cost one trace)."""
    check_modes(modes)
    return _trace_modes(module, inputs, modes)


def _trace_modes(module: Any, inputs: Sequence[Any], modes: Sequence[str]) -> list[list[OpRecord]]:
    """:func:`trace_module_modes` for modes already checked."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    graphs = [_Graph() for _ in modes]
    for graph in graphs:
        for t in inputs:
            if isinstance(t, torch.Tensor):
                graph.new_value(t)

    class _Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            out = _meta_call(func, args, kwargs)
            for graph, mode in zip(graphs, modes, strict=True):
                if mode == "eager":
                    graph.record_plain(func, args, kwargs, out)
                else:
                    graph.record(func, args, kwargs, out)
            return out

    module.eval()
    with torch.no_grad(), _Recorder():  # type: ignore[no-untyped-call]
        result = module(*inputs)
    out = []
    for graph, mode in zip(graphs, modes, strict=True):
        outputs = [graph.value_of[id(t)] for t in _tensors(result) if id(t) in graph.value_of]
        if mode == "graph":
            outputs = graph.fuse(outputs)
        if mode != "eager":
            graph.eliminate_dead(outputs)
        out.append(graph.records())
    return out
