"""The NAS-Bench-201 architecture value and its canonical string.

A cell has 4 nodes; each of the 6 edges ``(j -> i)``, ``j < i``, carries one of 5 ops. The
canonical string is NAS-Bench-201's ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` where group
``i`` lists the edges entering node ``i`` and ``op~j`` is the edge from node ``j``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_spaces._errors import InvalidArchError

__all__ = ["EDGE_NAMES", "NB201Arch", "OPS", "output_reaching_edges", "parse_arch_string"]

#: Candidate operations, in LatBench / BRP-NAS op-code order (code = position).
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edge ``(src, dst)`` pairs in arch-string order.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: Optuna parameter names, one per edge, in arch-string order.
EDGE_NAMES = tuple(f"edge_{src}_{dst}" for src, dst in EDGES)


@dataclass(frozen=True)
class NB201Arch:
    """One NAS-Bench-201 cell: the 6 edge operations in arch-string order.

    Attributes:
        ops: Operation names (:data:`OPS`) of edges (0->1), (0->2), (1->2), (0->3), (1->3),
            (2->3).

    Raises:
        InvalidArchError: naming the bad edge or operation.
    """

    ops: tuple[str, str, str, str, str, str]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or len(self.ops) != 6:
            raise InvalidArchError(f"NAS-Bench-201 `ops` must be a tuple of 6, got {self.ops!r}")
        for name, op in zip(EDGE_NAMES, self.ops, strict=True):
            if op not in OPS:
                raise InvalidArchError(
                    f"unknown NAS-Bench-201 operation {op!r} on {name} (choices: {', '.join(OPS)})"
                )

    @property
    def op_codes(self) -> tuple[int, ...]:
        """LatBench op codes (0 none, 1 skip, 2 conv1x1, 3 conv3x3, 4 avg_pool)."""
        return tuple(OPS.index(op) for op in self.ops)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``{"ops": [...]}``)."""
        return {"ops": list(self.ops)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NB201Arch:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ``InvalidArchError``."""
        if set(data) != {"ops"}:
            raise InvalidArchError(
                f"NAS-Bench-201 arch dict needs exactly 'ops', got {sorted(data)}"
            )
        return cls(_six(data["ops"]))

    @classmethod
    def from_op_codes(cls, codes: Sequence[int]) -> NB201Arch:
        """Build from LatBench's 6-int key (0 none, 1 skip, 2 conv1x1, 3 conv3x3, 4 avg_pool).

        Raises:
            InvalidArchError: naming the bad code.
        """
        if isinstance(codes, str | bytes) or len(codes) != 6:
            raise InvalidArchError(f"NAS-Bench-201 op codes must be 6 integers, got {codes!r}")
        ops: list[str] = []
        for name, code in zip(EDGE_NAMES, codes, strict=True):
            if (
                isinstance(code, bool)
                or not isinstance(code, numbers.Integral)
                or not 0 <= int(code) < len(OPS)
            ):
                raise InvalidArchError(f"bad op code {code!r} on {name} (expected 0..4)")
            ops.append(OPS[int(code)])
        return cls(_six(ops))

    def to_string(self) -> str:
        """The canonical NAS-Bench-201 string."""
        groups = []
        for dst in (1, 2, 3):
            tokens = [
                f"{op}~{src}" for (src, d), op in zip(EDGES, self.ops, strict=True) if d == dst
            ]
            groups.append("|" + "|".join(tokens) + "|")
        return "+".join(groups)


def output_reaching_edges(ops: Sequence[str]) -> list[bool]:
    """Which of the six edges (arch-string order) feed the cell output through edges that are
    not ``none``. The others are dead: their result is never used, so setting them to ``none``
    leaves the network's function unchanged."""
    reach = {3}
    alive = [False] * len(EDGES)
    for i in reversed(range(len(EDGES))):  # edges into later nodes come later
        src, dst = EDGES[i]
        if ops[i] != "none" and dst in reach:
            alive[i] = True
            reach.add(src)
    return alive


def _six(values: Any) -> tuple[str, str, str, str, str, str]:
    items = tuple(values) if isinstance(values, list | tuple) else ()
    if len(items) != 6:
        raise InvalidArchError(f"NAS-Bench-201 needs 6 edge operations, got {values!r}")
    return (items[0], items[1], items[2], items[3], items[4], items[5])


def parse_arch_string(text: str) -> NB201Arch:
    """Strictly parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

    Raises:
        InvalidArchError: naming the bad node group or token.
    """
    if not isinstance(text, str):
        raise InvalidArchError(
            f"NAS-Bench-201 arch string must be a str, got {type(text).__name__}"
        )
    groups = text.strip().split("+")
    if len(groups) != 3:
        raise InvalidArchError(
            f"NAS-Bench-201 arch string needs 3 '+'-separated node groups, got {len(groups)} "
            f"in {text!r}"
        )
    ops: list[str] = []
    for dst, group in enumerate(groups, start=1):
        if len(group) < 2 or group[0] != "|" or group[-1] != "|":
            raise InvalidArchError(f"node group {group!r} (node {dst}) must be '|'-delimited")
        tokens = group[1:-1].split("|")
        if len(tokens) != dst:
            raise InvalidArchError(
                f"node group {group!r} must list {dst} edge(s) into node {dst}, got {len(tokens)}"
            )
        for src, token in enumerate(tokens):
            op, sep, origin = token.partition("~")
            if sep != "~" or origin != str(src):
                raise InvalidArchError(
                    f"bad token {token!r} in node group {group!r}: expected '<op>~{src}'"
                )
            if op not in OPS:
                raise InvalidArchError(
                    f"unknown operation {op!r} in token {token!r} (choices: {', '.join(OPS)})"
                )
            ops.append(op)
    return NB201Arch(_six(ops))
