"""HELP's operation graph of a NAS-Bench-201 cell (GCN input of the HELP latency predictor).

HELP (Lee et al., "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
Meta-Learning", NeurIPS 2021, github.com/HayeonLee/HELP) feeds NAS-Bench-201 cells to a GCN as
an operation-on-node graph. Its loader (``loader.py``, ``utils.add_global_node`` at commit
45f70eb) appends a *global* node to a per-architecture graph: the op matrix gains one column
(the "global" op type, set only on the new last row) and one zero row; the adjacency matrix
gains a column of ones (every node feeds the global node) and a zero row, then its diagonal
is set to 1 and the whole matrix is transposed, so ``adj[dst, src] = 1``. The GCN reads the
global node's (last row's) features. ``net.py`` builds the GCN with ``nfeat=8``, so the
stored op one-hot has 7 op types.

Reproduced here (verified against HELP's code): the global-node augmentation, the transpose,
the self loops, the 8 feature columns with "global" last, the readout node being the last row.

Assumed (HELP's ``architecture.pt`` is not available to check against): the base graph is
the usual NAS-Bench-201 op-on-node graph with 8 nodes, ``input``, the 6 edge operations in
arch-string order, ``output``; op-node ``(j->i)`` receives from every op-node entering node
``j`` (or from ``input`` when ``j == 0``) and feeds every op-node leaving node ``i`` (or
``output`` when ``i == 3``); ``none``/``skip_connect`` edges stay as typed nodes; the 7 op
types are ordered as in BRP-NAS's NAS-Bench-201 tools (Dudziak et al., NeurIPS 2020,
SamsungLabs/eagle ``models/nasbench201/utils.py``), whose table puts ``global`` at index 7,
exactly where HELP's augmentation adds it.

Checked against HELP's released GCN checkpoint (``tests/search_spaces/test_nasbench201.py``):
fed these graphs with no adaptation, it ranks real latencies with Spearman ~0.8-0.9 on six
devices; with the adjacency not transposed it drops to ~0, with ``nor_conv_3x3`` moved to
another column to -0.3..0.1. So the orientation and the conv columns are confirmed. Swapping
columns among ``none``, ``skip_connect``, ``avg_pool_3x3``, ``input`` and ``output`` changes
the zero-shot ranking only by about +-0.07, so their relative order stays an assumption.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["HELP_OP_TYPES", "NUM_GRAPH_NODES", "help_op_graph"]

#: Feature columns of HELP's node-op matrix, in order (``global`` added by the loader).
HELP_OP_TYPES = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
    "input",
    "output",
    "global",
)

_EDGE_SRC = (0, 0, 1, 0, 1, 2)
_EDGE_DST = (1, 2, 2, 3, 3, 3)
_BASE_NODES = 8  # input, 6 edge ops, output
#: Rows of :func:`help_op_graph`'s matrices (base graph plus HELP's global node).
NUM_GRAPH_NODES = _BASE_NODES + 1


def _base_graph(ops: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Op-on-node graph before HELP's global node: ``adj[src, dst]`` and a 7-type one-hot."""
    adj = np.zeros((_BASE_NODES, _BASE_NODES), dtype=np.float32)
    out_node = _BASE_NODES - 1
    for k in range(6):
        node_k = k + 1
        src_cell, dst_cell = _EDGE_SRC[k], _EDGE_DST[k]
        if src_cell == 0:
            adj[0, node_k] = 1.0
        else:
            for m in range(6):
                if _EDGE_DST[m] == src_cell:
                    adj[m + 1, node_k] = 1.0
        if dst_cell == 3:
            adj[node_k, out_node] = 1.0
    feats = np.zeros((_BASE_NODES, len(HELP_OP_TYPES) - 1), dtype=np.float32)
    feats[0, HELP_OP_TYPES.index("input")] = 1.0
    feats[out_node, HELP_OP_TYPES.index("output")] = 1.0
    for k, op in enumerate(ops):
        feats[k + 1, HELP_OP_TYPES.index(op)] = 1.0
    return adj, feats


def help_op_graph(ops: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """HELP's GCN input for one cell, after its loader's global-node step.

    Args:
        ops: The 6 edge operations in arch-string order.

    Returns:
        ``(adjacency, node_ops)``: float32 ``[9, 9]`` with ``adjacency[dst, src] = 1`` and
        self loops, and float32 ``[9, 8]`` one-hot node features (columns
        :data:`HELP_OP_TYPES`); row 8 is the global node the GCN reads out.
    """
    if len(ops) != 6:
        raise ValueError(f"`ops` must hold 6 operations, got {len(ops)}.")
    adj, feats = _base_graph(ops)
    n = _BASE_NODES + 1
    full_adj = np.zeros((n, n), dtype=np.float32)
    full_adj[:-1, :-1] = adj
    full_adj[:-1, -1] = 1.0
    np.fill_diagonal(full_adj, 1.0)
    full_feats = np.zeros((n, len(HELP_OP_TYPES)), dtype=np.float32)
    full_feats[:-1, :-1] = feats
    full_feats[-1, -1] = 1.0
    return np.ascontiguousarray(full_adj.T), full_feats
