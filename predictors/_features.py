"""Architecture featurizers used by the predictors.

* ``nasbench201``: HELP's operation graph (Lee et al., NeurIPS 2021, arXiv 2106.08630): one node
  per cell edge operation plus input, output and a *global* node that aggregates every node; 8
  node features (input, output, 5 operations, global). Taken from
  ``search_spaces.get_space("nasbench201").op_graph`` when that space provides it, else from the
  canonical ``|op~0|+|op~0|op~1|+|...|`` string parsed here. The flat encoding is the 6x5
  one-hot of edge operations.
* ``fbnet``: the space's ``help_encoding`` (HELP's 132-dim vector) when available, else the
  22x9 one-hot of layer operations.
* ``ofa``: per-layer kernel/expansion one-hots masked by stage depth, depth one-hots and the
  resolution (137 dims), parsed from the canonical OFA string.
* any other registered space: ``space.encode(space.from_string(arch), workload)``.

Every featurizer takes an optional ``workload`` (:class:`search_spaces.Workload`, ``None``: the
space's default). The HELP spaces' features do not depend on it (the benchmark fixes the input);
the project's own spaces encode and profile an architecture *under* a workload, so a device
measured at 32 prompt tokens is described by its prefill at 32 tokens, not at the default 512.

:func:`additive_features` are the few quantities a latency is close to *linear* in, in
milliseconds: counts of each operation type (each executed op costs its kernel time plus a
fixed dispatch overhead, the premise of lookup-table predictors such as FBNet's and nn-Meter's
kernel sums), or MACs, parameters, memory and the profile's numeric extras for spaces described
by their analytic profile; among those extras, the number of operators an eager runtime
dispatches one by one, which sets the latency of launch-bound GPUs at batch 1.

:func:`lut_features` are the one-hot (position, choice) indicators a lookup-table latency
model is linear in: one cost per operation choice at each position.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from predictors._errors import PredictorError

if TYPE_CHECKING:
    from search_spaces import Workload

__all__ = [
    "additive_features",
    "additive_runtimes",
    "analytic_cost",
    "encode",
    "graph_features",
    "lut_features",
    "nb201_live_edges",
    "nb201_path_features",
    "parse_fbnet",
    "parse_nb201",
    "parse_ofa",
]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (to_node, from_node) of the six cell edges, in canonical string order.
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
FBNET_OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
_FBNET_RE = re.compile(r"k[35]_e[136](?:_g2)?|skip")
# The canonical string, matched in one call; anything else takes the lenient token parser.
_NB201_CANON = re.compile(r"\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|")
_NB201_INDEX = {op: i for i, op in enumerate(NB201_OPS)}


@lru_cache(maxsize=131072)
def parse_nb201(arch: str) -> tuple[int, ...]:
    """Op indices (into :data:`NB201_OPS`) of the six edges of a NAS-Bench-201 string."""
    m = _NB201_CANON.fullmatch(arch)
    if m is not None:
        try:
            return tuple(map(_NB201_INDEX.__getitem__, m.groups()))
        except KeyError:
            pass  # an unknown operation: the token parser below names it
    tokens = re.findall(r"([a-z_0-9]+)~(\d)", arch)
    if len(tokens) != 6:
        raise PredictorError(f"not a NAS-Bench-201 arch string: {arch!r}")
    ops = []
    for (op, src), (_, frm) in zip(tokens, NB201_EDGES, strict=True):
        if op not in NB201_OPS or int(src) != frm:
            raise PredictorError(f"bad NAS-Bench-201 token {op}~{src} in {arch!r}")
        ops.append(NB201_OPS.index(op))
    return tuple(ops)


def parse_fbnet(arch: str) -> tuple[int, ...]:
    """Op indices (into :data:`FBNET_OPS`) of the 22 searchable FBNet layers."""
    tokens = _FBNET_RE.findall(arch)
    if len(tokens) != 22:
        raise PredictorError(f"not an FBNet arch string (need 22 layer ops): {arch!r}")
    return tuple(FBNET_OPS.index(t) for t in tokens)


_OFA_CANON = re.compile(r"^r(\d+)-d([234]{5})-k([357.]+)-e([346.]+)$")


def _parse_ofa_canonical(m: re.Match[str], arch: str) -> dict[str, list[int]]:
    """hwdb's canonical ``r<R>-d<D*5>-k<k.k.k.k.k>-e<e.e.e.e.e>`` (active layers only)."""
    depth = [int(c) for c in m.group(2)]
    ks_st, e_st = m.group(3).split("."), m.group(4).split(".")
    if len(ks_st) != 5 or len(e_st) != 5:
        raise PredictorError(f"not an OFA arch string: {arch!r}")
    ks, ex = [], []
    for d, kk, ee in zip(depth, ks_st, e_st, strict=True):
        if len(kk) != d or len(ee) != d:
            raise PredictorError(f"OFA stage lengths do not match depths in {arch!r}")
        ks += [int(c) for c in kk] + [3] * (4 - d)
        ex += [int(c) for c in ee] + [3] * (4 - d)
    return {"ks": ks, "e": ex, "d": depth, "r": [int(m.group(1))]}


def parse_ofa(arch: str) -> dict[str, list[int]]:
    """``ks`` (20), ``e`` (20), ``d`` (5) and ``r`` (1) of an OFA MobileNetV3 subnet string.

    Accepts hwdb's canonical ``r216-d34323-k357.7753.555.53.577-e644.3434.464.64.364`` (only
    active layers listed; inactive slots are filled with 3 and masked out), a JSON object or
    ``key=values`` groups (``ks=7,5,...;e=...;d=...;r=224``, separators free) and the
    ``ks/e/d/r`` or ``kernel/expand/depth/resolution`` spellings.
    """
    text = arch.strip()
    m = _OFA_CANON.match(text)
    if m:
        return _parse_ofa_canonical(m, arch)
    data: dict[str, Any] = {}
    if text.startswith("{"):
        data = {k.lower(): v for k, v in json.loads(text).items()}
    else:
        for key, vals in re.findall(r"([A-Za-z_]+)\s*[=:]\s*\[?([\d,\s\-]+)\]?", text):
            data[key.lower()] = [int(v) for v in re.findall(r"\d+", vals)]
    alias = {"kernel": "ks", "k": "ks", "expand": "e", "depth": "d", "resolution": "r", "res": "r"}
    out: dict[str, list[int]] = {}
    for key, val in data.items():
        vals = val if isinstance(val, list) else [val]
        out[alias.get(key, key)] = [int(v) for v in vals]
    sizes = {"ks": 20, "e": 20, "d": 5, "r": 1}
    if any(len(out.get(k, [])) != n for k, n in sizes.items()):
        raise PredictorError(f"not an OFA arch string (need ks[20], e[20], d[5], r): {arch!r}")
    return out


def _nb201_graph(ops: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """9 nodes (input, 6 edge ops, output, global) x 8 features; adjacency with self-loops,
    ``adj[i, j] = 1`` when node ``i`` aggregates node ``j`` (sum aggregation, as HELP's GCN)."""
    n = 9
    feat = np.zeros((n, 8), np.float32)
    feat[0, 0] = 1.0
    feat[7, 1] = 1.0
    feat[8, 7] = 1.0
    adj = np.eye(n, dtype=np.float32)
    for e, ((to, frm), op) in enumerate(zip(NB201_EDGES, ops, strict=True)):
        node = 1 + e
        feat[node, 2 + op] = 1.0
        if frm == 0:
            adj[node, 0] = 1.0
        for e2, (to2, _) in enumerate(NB201_EDGES):
            if to2 == frm:
                adj[node, 1 + e2] = 1.0
        if to == 3:
            adj[7, node] = 1.0
    adj[8, :] = 1.0
    return feat, adj


def _space_obj(space: str) -> Any:
    """The registered space ``space``, or None when no space is registered under that name
    (errors of a registered space propagate)."""
    from search_spaces import UnknownSpaceError, get_space

    try:
        return get_space(space)
    except UnknownSpaceError:  # space not registered (yet)
        return None


@lru_cache(maxsize=65536)
def _graph_one(arch: str) -> tuple[np.ndarray, np.ndarray]:
    return _nb201_graph(parse_nb201(arch))


@lru_cache(maxsize=1)
def _nb201_canonical() -> tuple[dict[str, int], np.ndarray]:
    """Every canonical NAS-Bench-201 string with its row in the ``(15625, 6)`` op-index table.

    Built once per process (a few ms): a dictionary lookup per string is several times faster
    than matching the string, which is what keeps predicting the whole space fast."""
    table = np.array(list(itertools.product(range(len(NB201_OPS)), repeat=6)), dtype=np.intp)
    names = (
        "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
        for ops in itertools.product(NB201_OPS, repeat=6)
    )
    return {name: i for i, name in enumerate(names)}, table


def _nb201_ops(archs: Sequence[str]) -> np.ndarray:
    """``(n, 6)`` op indices of NAS-Bench-201 strings (the batch form of :func:`parse_nb201`)."""
    index, table = _nb201_canonical()
    seq = archs if isinstance(archs, list) else list(archs)  # positions, not labels
    rows = np.fromiter(map(index.get, seq, itertools.repeat(-1)), np.intp, count=len(seq))
    ops = table[rows]
    for i in np.flatnonzero(rows < 0):  # not canonical: the lenient parser (or its error)
        ops[i] = parse_nb201(seq[int(i)])
    return ops


def _nb201_onehot(ops: np.ndarray) -> np.ndarray:
    """``(n, 6, 5)`` one-hot of edge operations."""
    return np.asarray(ops[:, :, None] == np.arange(len(NB201_OPS)), dtype=np.float64)


def _nb201_live(ops: np.ndarray) -> np.ndarray:
    """``(n, 6)`` :func:`nb201_live_edges` of every row, vectorised. Node 1 is reached from
    the input by edge 0, node 2 by edge 1 or through node 1 (edge 2); node 2 reaches the
    output by edge 5, node 1 by edge 4 or through node 2 (edge 2)."""
    nz = ops != 0
    on = np.ones(len(ops), bool)
    fwd1 = nz[:, 0]
    fwd = np.stack([on, fwd1, nz[:, 1] | (nz[:, 2] & fwd1)], axis=1)  # nodes 0, 1, 2
    bwd2 = nz[:, 5]
    bwd = np.stack([on, nz[:, 4] | (nz[:, 2] & bwd2), bwd2, on], axis=1)  # nodes 0..3
    frm = [f for _, f in NB201_EDGES]
    to = [t for t, _ in NB201_EDGES]
    return np.asarray(nz & fwd[:, frm] & bwd[:, to])


def graph_features(archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """HELP op-graph node features ``(n, 9, 8)`` and adjacency ``(n, 9, 9)`` (NAS-Bench-201)."""
    pairs = [_graph_one(a) for a in archs]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _ofa_vector(cfg: dict[str, list[int]]) -> np.ndarray:
    layers = np.zeros((20, 6), np.float32)
    for i in range(20):
        stage, pos = divmod(i, 4)
        if pos < cfg["d"][stage]:
            layers[i, (3, 5, 7).index(cfg["ks"][i])] = 1.0
            layers[i, 3 + (3, 4, 6).index(cfg["e"][i])] = 1.0
    depth = np.zeros((5, 3), np.float32)
    for s, d in enumerate(cfg["d"]):
        depth[s, (2, 3, 4).index(d)] = 1.0
    r = cfg["r"][0] / 224.0
    return np.concatenate([layers.ravel(), depth.ravel(), [r, r * r]]).astype(np.float32)


@lru_cache(maxsize=131072)
def _encode_one(space: str, arch: str, workload: Workload | None = None) -> np.ndarray:
    if space == "fbnet":
        obj = _space_obj(space)
        if obj is not None and hasattr(obj, "help_encoding"):
            return np.asarray(obj.help_encoding(obj.from_string(arch)), np.float32)
        vec = np.zeros((22, 9), np.float32)
        vec[np.arange(22), parse_fbnet(arch)] = 1.0
        return vec.ravel()
    if space == "ofa":
        return _ofa_vector(parse_ofa(arch))
    obj = _space_obj(space)
    if obj is None:
        raise PredictorError(f"no featurizer for space {space!r} (not a registered space)")
    return np.asarray(obj.encode(obj.from_string(arch), workload), np.float32)


def encode(space: str, archs: Sequence[str], workload: Workload | None = None) -> np.ndarray:
    """Flat float32 feature matrix ``(n, d)`` of ``archs`` in ``space`` under ``workload``."""
    if space == "nasbench201":
        ops = _nb201_ops(archs)
        out = np.zeros((len(ops), ops.shape[1] * len(NB201_OPS)), np.float32)
        out[np.arange(len(ops))[:, None], ops + len(NB201_OPS) * np.arange(ops.shape[1])] = 1.0
        return out
    return np.stack([_encode_one(space, a, workload) for a in archs]).astype(np.float32)


@lru_cache(maxsize=131072)
def _cost_one(space: str, arch: str, workload: Workload | None = None) -> tuple[float, float]:
    if space == "nasbench201":
        # Cell convolutions dominate: 5 cells per stage at (C, H) = (16, 32), (32, 16), (64, 8).
        ops = parse_nb201(arch)
        per_cell = sum({2: 1.0, 3: 9.0}.get(o, 0.0) for o in ops)
        macs = 5 * per_cell * sum(c * c * h * h for c, h in ((16, 32), (32, 16), (64, 8)))
        params = 5 * per_cell * sum(c * c for c in (16, 32, 64))
        return macs + 1e6, params + 1e4
    if space == "fbnet":
        ops = parse_fbnet(arch)
        kern = [9 if FBNET_OPS[o].startswith("k3") else 25 for o in ops]
        expand = [0 if o == 8 else int(FBNET_OPS[o].split("_")[1][1:]) for o in ops]
        macs = sum(e * (2.0 + k / 16.0) for e, k in zip(expand, kern, strict=True))
        return macs + 1.0, macs + 1.0
    if space == "ofa":
        cfg = parse_ofa(arch)
        r2 = (cfg["r"][0] / 224.0) ** 2
        width = (24, 40, 80, 112, 160)
        params = 0.0
        for i in range(20):
            stage, pos = divmod(i, 4)
            if pos < cfg["d"][stage]:
                c = width[stage]
                params += cfg["e"][i] * c * (2.0 * c + cfg["ks"][i] ** 2)
        return params * r2 * 49.0, params
    prof = _profile(space, arch, "cost model", workload)
    return float(max(prof.macs, 1)), float(max(prof.params, 1))


def _profile(space: str, arch: str, what: str, workload: Workload | None) -> Any:
    """``space.profile`` of ``arch`` under ``workload``; ``PredictorError`` naming ``what``
    for unknown spaces."""
    obj = _space_obj(space)
    if obj is None:
        raise PredictorError(f"no {what} for space {space!r}")
    return obj.profile(obj.from_string(arch), workload)


def analytic_cost(space: str, archs: Sequence[str], workload: Workload | None = None) -> np.ndarray:
    """``(n, 2)`` array of (MACs, params) per arch: analytic for the HELP spaces, else
    ``space.profile`` under ``workload``. Only the relative size matters to the predictors
    that use it."""
    return np.asarray([_cost_one(space, a, workload) for a in archs], np.float64)


def nb201_live_edges(ops: Sequence[int]) -> list[bool]:
    """Which of the six cell edges a graph-pruning runtime executes.

    An edge is live when its operation is not ``none``, its source node is reachable from the
    cell input and its target node reaches the cell output through non-``none`` edges. Runtimes
    that prune dead subgraphs (TensorFlow / TFLite graphs, e.g. LatBench's measurements) never
    run the others; eager PyTorch runs every edge.
    """
    edges = list(zip(NB201_EDGES, ops, strict=True))
    fwd = {0}
    for (to, frm), op in edges:
        if op != 0 and frm in fwd:
            fwd.add(to)
    bwd = {3}
    for (to, frm), op in reversed(edges):
        if op != 0 and to in bwd:
            bwd.add(frm)
    return [op != 0 and frm in fwd and to in bwd for (to, frm), op in edges]


@lru_cache(maxsize=131072)
def _additive_one(
    space: str, arch: str, runtime: str, workload: Workload | None = None
) -> tuple[float, ...]:
    if space == "fbnet":
        return tuple(float(c) for c in np.bincount(parse_fbnet(arch), minlength=len(FBNET_OPS)))
    if space == "ofa":
        cfg = parse_ofa(arch)
        r2 = (cfg["r"][0] / 224.0) ** 2
        kinds = [(k, e) for k in (3, 5, 7) for e in (3, 4, 6)]
        per_kind = np.zeros(len(kinds) + 1)
        for i in range(20):
            stage, pos = divmod(i, 4)
            if pos < cfg["d"][stage]:
                per_kind[kinds.index((cfg["ks"][i], cfg["e"][i]))] += r2
                per_kind[-1] += 1.0  # per-layer overhead
        return (*per_kind.tolist(), r2)
    prof = _profile(space, arch, "additive features", workload)
    extra = [float(v) for _, v in sorted(prof.extra.items()) if isinstance(v, int | float)]
    return (float(prof.macs), float(prof.params), float(prof.memory_bytes), *extra)


def additive_runtimes(space: str) -> tuple[str, ...]:
    """The execution models :func:`additive_features` distinguishes in ``space``: ``"eager"``
    (every op runs) and, where the space has ops a graph optimiser removes, ``"pruned"``."""
    return ("eager", "pruned") if space == "nasbench201" else ("eager",)


def additive_features(
    space: str, archs: Sequence[str], runtime: str = "eager", workload: Workload | None = None
) -> np.ndarray:
    """``(n, d)`` quantities latency (in ms) is roughly linear in; see the module docstring.

    NAS-Bench-201: the number of cell edges using each operation type; with
    ``runtime="pruned"`` only live edges count (:func:`nb201_live_edges`; graph-pruning
    runtimes such as TFLite). FBNet: the number of layers using each operation type. OFA: per
    (kernel, expansion) layer counts scaled by resolution squared, the layer count and the
    squared resolution. Other spaces: MACs, parameters, memory bytes and any numeric
    ``Profile.extra`` entries (e.g. prefill and decode MACs of a language model), all under
    ``workload``.

    Raises:
        ValueError: when ``runtime`` is not one of :func:`additive_runtimes`.
    """
    if runtime not in additive_runtimes(space):
        raise ValueError(f"`runtime` must be one of {additive_runtimes(space)}, got {runtime!r}.")
    if space == "nasbench201":
        ops = _nb201_ops(archs)
        k = len(NB201_OPS)
        codes = ops + k * np.arange(len(ops))[:, None]  # one bin per (arch, operation)
        if runtime == "pruned":
            live = np.bincount(codes[_nb201_live(ops)], minlength=k * len(ops))
            return live.reshape(len(ops), k)[:, 1:].astype(np.float64)
        return np.bincount(codes.ravel(), minlength=k * len(ops)).reshape(-1, k).astype(np.float64)
    return np.asarray([_additive_one(space, a, runtime, workload) for a in archs], np.float64)


# The four input-to-output paths of a NAS-Bench-201 cell, as indices into NB201_EDGES.
_NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def nb201_path_features(
    archs: Sequence[str], op_costs_ms: Sequence[float] | np.ndarray
) -> np.ndarray:
    """``(n, 8)`` features of a runtime that runs a cell's independent branches in parallel.

    TensorFlow's executor (inter-op thread pool on a multi-core CPU, concurrent streams on a
    GPU) runs the edges of a cell that do not depend on each other at the same time, so a
    cell costs its *critical path* (Kelley & Walker's critical path method, 1959): the
    input-to-output path whose operations cost the most. Every operation is still dispatched
    one by one. The features are the operation counts (skip, conv 1x1, conv 3x3, pool) along
    the critical path under ``op_costs_ms`` (one cost per operation of ``NB201_OPS``, ``none``
    first), followed by the live-operation counts (``additive_features(..., "pruned")``).
    Cells are identical in NAS-Bench-201, so the network's latency is linear in both.

    Raises:
        ValueError: when ``op_costs_ms`` does not have one entry per operation.
    """
    costs = np.asarray(op_costs_ms, np.float64)
    if costs.shape != (len(NB201_OPS),):
        raise ValueError(f"`op_costs_ms` must have {len(NB201_OPS)} entries, got {costs.shape}.")
    if not len(archs):
        return np.zeros((0, 2 * (len(NB201_OPS) - 1)))
    live = additive_features("nasbench201", archs, "pruned")
    onehot = _nb201_onehot(_nb201_ops(archs))[:, :, 1:]  # (n, 6 edges, 4 ops)
    paths = np.stack([onehot[:, list(p)].sum(axis=1) for p in _NB201_PATHS], axis=1)
    cut = np.stack([(onehot[:, list(p)].sum(axis=2) == 0).any(axis=1) for p in _NB201_PATHS], 1)
    paths[cut] = np.nan  # (n, 4 paths, 4 ops); a path through a ``none`` edge is NaN
    total = np.where(np.isnan(paths[..., 0]), -np.inf, np.nan_to_num(paths) @ costs[1:])
    best = np.nan_to_num(paths[np.arange(len(archs)), np.argmax(total, axis=1)])
    return np.concatenate([best, live], axis=1)


@lru_cache(maxsize=131072)
def _lut_one(space: str, arch: str, workload: Workload | None = None) -> tuple[float, ...]:
    if space == "fbnet":
        ops = parse_fbnet(arch)
        vec = np.zeros((len(ops), len(FBNET_OPS)))
        vec[np.arange(len(ops)), ops] = 1.0
        return tuple(vec.ravel().tolist())
    return tuple(_encode_one(space, arch, workload).astype(np.float64).tolist())


def lut_features(space: str, archs: Sequence[str], workload: Workload | None = None) -> np.ndarray:
    """``(n, d)`` one-hot (position, choice) features of a lookup-table latency model.

    NAS-Bench-201: the 6x5 one-hot of edge operations, then the same for live edges only
    (:func:`nb201_live_edges`), so both eager and graph-pruning runtimes are linear in them.
    FBNet: the 22x9 one-hot of layer operations. Other spaces: :func:`encode` (one-hots of
    each decision plus analytic terms, under ``workload``).
    """
    if space == "nasbench201":
        ops = _nb201_ops(archs)
        onehot = _nb201_onehot(ops)
        live = onehot * _nb201_live(ops)[:, :, None]
        return np.concatenate([onehot.reshape(len(ops), -1), live.reshape(len(ops), -1)], axis=1)
    return np.asarray([_lut_one(space, a, workload) for a in archs], np.float64)
