"""Architecture config, canonical string and template flattening of the Nemotron-Flash space.

The configuration follows spec section 3.4 of ``docs/search-spaces.md`` (three stages, each a
block of 1-4 mixer slots with 0-2 FFNs after each slot, repeated 0-8 times), after Fu et al.,
*Nemotron-Flash: Towards Latency-Optimal Hybrid Small Language Models*, NeurIPS 2025,
arXiv:2511.18890 (App. C.1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from search_spaces._errors import InvalidArchError

__all__ = [
    "MAX_OPS",
    "MIXER_KINDS",
    "NemotronFlashArch",
    "StageSummary",
    "infer_stages",
    "op_kind",
    "parse_arch_string",
]

MAX_OPS = 48
HEAD_DIM = 128
MAMBA_HEAD_DIM = 64
MIXER_KINDS = ("attn", "swa", "mamba2", "deltanet", "gdn")
_FIXED_TOKENS = {"a": "attn", "m2": "mamba2", "d": "deltanet", "gdn": "gdn", "f": "ffn"}
_SWA_RE = re.compile(r"swa([1-9][0-9]*)")
_HEADER_RE = re.compile(r"d([0-9]+)_r([0-9]+)_n([0-9]+)_mt([0-9]+)")


def op_kind(token: str) -> tuple[str, int]:
    """Kind (``attn``, ``swa``, ``mamba2``, ``deltanet``, ``gdn``, ``ffn``) and window of a token.

    Raises:
        InvalidArchError: naming the token when it is not an operator token.
    """
    if token in _FIXED_TOKENS:
        return _FIXED_TOKENS[token], 0
    match = _SWA_RE.fullmatch(token)
    if match is None:
        raise InvalidArchError(
            f"unknown operator token {token!r} (expected a, swa<w>, m2, d, gdn, f)"
        )
    window = int(match.group(1))
    if window > 1 << 20:
        raise InvalidArchError(f"operator token {token!r}: window must be at most {1 << 20}")
    return "swa", window


def _check_range(name: str, value: object, low: int, high: int, multiple: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArchError(f"`{name}` must be an integer, got {value!r}")
    if not low <= value <= high or value % multiple:
        extra = f" and a multiple of {multiple}" if multiple > 1 else ""
        raise InvalidArchError(f"`{name}` must be in [{low}, {high}]{extra}, got {value}")
    return value


@dataclass(frozen=True)
class NemotronFlashArch:
    """One concrete hybrid SLM: global widths plus the flat operator list (spec 3.4).

    Args:
        hidden: Model width ``d`` (a multiple of 128; heads have dimension 128).
        ffn_ratio: SwiGLU inner size ratio; ``ffn_dim = floor(ratio * d / 128) * 128``.
        d_state: Mamba2 state size ``N``.
        meta_tokens: Learned meta tokens prepended to every prompt (0 or 256 on the grid).
        ops: Flat operator tokens (``a``, ``swa<w>``, ``m2``, ``d``, ``gdn``, ``f``).
    """

    hidden: int
    ffn_ratio: int
    d_state: int
    meta_tokens: int
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_range("hidden", self.hidden, 128, 8192, HEAD_DIM)
        _check_range("ffn_ratio", self.ffn_ratio, 1, 8)
        _check_range("d_state", self.d_state, 1, 1024)
        _check_range("meta_tokens", self.meta_tokens, 0, 4096)
        if not isinstance(self.ops, tuple) or not self.ops:
            raise InvalidArchError("`ops` must be a non-empty tuple of operator tokens")
        if len(self.ops) > MAX_OPS:
            raise InvalidArchError(f"`ops` has {len(self.ops)} operators, more than {MAX_OPS}")
        kinds = [op_kind(tok)[0] for tok in self.ops]
        if kinds[0] == "ffn":
            raise InvalidArchError(f"operator list must start with a mixer, got {self.ops[0]!r}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def n_heads(self) -> int:
        """Attention / DeltaNet heads (head dim 128)."""
        return self.hidden // HEAD_DIM

    @property
    def kv_heads(self) -> int:
        """GQA key/value heads: ``n_heads / 4`` (the spec), rounded down to a divisor of
        ``n_heads``, since each KV head serves a whole group of query heads (hidden 1792: 14
        query heads, 2 KV heads; hidden 2304: 18 and 3)."""
        target = max(1, self.n_heads // 4)
        return max(k for k in range(1, target + 1) if self.n_heads % k == 0)

    @property
    def ffn_dim(self) -> int:
        """SwiGLU inner size."""
        return (self.ffn_ratio * self.hidden // HEAD_DIM) * HEAD_DIM

    @property
    def d_inner(self) -> int:
        """Mamba2 inner width (expand 2)."""
        return 2 * self.hidden

    @property
    def mamba_heads(self) -> int:
        """Mamba2 heads (head dim 64)."""
        return self.d_inner // MAMBA_HEAD_DIM

    @property
    def kinds(self) -> tuple[str, ...]:
        """Operator kinds, one per flat position."""
        return tuple(op_kind(tok)[0] for tok in self.ops)

    def count(self, kind: str) -> int:
        """Number of operators of ``kind``."""
        return sum(1 for k in self.kinds if k == kind)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``ops`` as a list)."""
        data = asdict(self)
        data["ops"] = list(self.ops)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NemotronFlashArch:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArchError: on missing or unknown keys or bad values.
        """
        expected = {"hidden", "ffn_ratio", "d_state", "meta_tokens", "ops"}
        if set(data) != expected:
            raise InvalidArchError(f"arch dict keys must be {sorted(expected)}, got {sorted(data)}")
        ops = data["ops"]
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise InvalidArchError("`ops` must be a list of operator tokens")
        return cls(**{**data, "ops": tuple(str(t) for t in ops)})

    def to_string(self) -> str:
        """Canonical ID, e.g. ``d2048_r3_n128_mt256:d-f-m2-f-a-f-m2-f``."""
        head = f"d{self.hidden}_r{self.ffn_ratio}_n{self.d_state}_mt{self.meta_tokens}"
        return head + ":" + "-".join(self.ops)


def parse_arch_string(text: str) -> NemotronFlashArch:
    """Parse :meth:`NemotronFlashArch.to_string` output.

    Raises:
        InvalidArchError: naming the bad token.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArchError("architecture string is empty")
    head, sep, body = text.strip().partition(":")
    match = _HEADER_RE.fullmatch(head)
    if not sep or match is None:
        raise InvalidArchError(
            f"bad header token {head!r} (expected d<hidden>_r<ratio>_n<state>_mt<meta>:<ops>)"
        )
    tokens = tuple(body.split("-"))
    for tok in tokens:
        op_kind(tok)
    hidden, ratio, state, meta = (int(g) for g in match.groups())
    return NemotronFlashArch(hidden, ratio, state, meta, tokens)


@dataclass(frozen=True)
class StageSummary:
    """One inferred stage: block length in slots, repeats and mean FFNs per slot."""

    slots: int
    repeats: int
    mean_ffn: float


def _slots(arch: NemotronFlashArch) -> list[tuple[str, int]]:
    """Group the flat list into (mixer token, FFNs after it) slots."""
    slots: list[tuple[str, int]] = []
    for tok, kind in zip(arch.ops, arch.kinds, strict=True):
        if kind == "ffn":
            mixer, n = slots[-1]
            slots[-1] = (mixer, n + 1)
        else:
            slots.append((tok, 0))
    return slots


def _best_block(slots: list[tuple[str, int]], start: int) -> tuple[int, int]:
    """Block length (1-4 slots) and repeats covering the most slots from ``start``."""
    best = (1, 1)
    for length in range(1, 5):
        block = slots[start : start + length]
        if len(block) < length:
            break
        reps = 1
        while slots[start + reps * length : start + (reps + 1) * length] == block:
            reps += 1
        if length * reps > best[0] * best[1]:
            best = (length, reps)
    return best


def infer_stages(arch: NemotronFlashArch) -> list[StageSummary]:
    """Deterministic three-stage decomposition of the flat list (for the encoding, spec 3.9).

    Greedy: each stage takes the block of 1-4 slots whose repetition covers the most slots (ties
    go to the shorter block); the third stage absorbs whatever remains as one block. Equal
    operator lists therefore always get equal summaries, however they were sampled.
    """
    slots = _slots(arch)
    stages: list[StageSummary] = []
    pos = 0
    while pos < len(slots) and len(stages) < 3:
        if len(stages) == 2:
            length, reps = len(slots) - pos, 1
        else:
            length, reps = _best_block(slots, pos)
        block = slots[pos : pos + length]
        stages.append(StageSummary(length, reps, sum(n for _, n in block) / length))
        pos += length * reps
    while len(stages) < 3:
        stages.append(StageSummary(0, 0, 0.0))
    return stages
