"""MnasNet architecture dataclasses, the channel grid and the block-string codec.

The skeleton is MobileNetV2's (Sandler et al., CVPR 2018, Table 2); the per-block choices are
those of MnasNet's factorized hierarchical space (Tan et al., CVPR 2019, arXiv:1807.11626,
Sec. 4.1). Block strings follow timm's ``decode_arch_def`` tokens, extended with an inverse
(:func:`encode_block_string`) so that a string is the canonical architecture ID (spec 1.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from search_spaces._blocks import make_divisible
from search_spaces._errors import InvalidArchError

__all__ = [
    "BASE_CHANNELS",
    "BASE_LAYERS",
    "CHANNEL_BOUNDS",
    "HEAD_CH",
    "LAYER_BOUNDS",
    "NUM_BLOCKS",
    "OPS",
    "SE_RATIOS",
    "SKIPS",
    "STEM_CH",
    "STRIDES",
    "MnasNetArch",
    "MnasNetBlock",
    "channel_grid",
    "decode_block_string",
    "encode_block_string",
]

OPS = ("conv", "dwconv", "mbconv3", "mbconv6")
KERNELS = (3, 5)
SE_RATIOS = (0.0, 0.25)
SKIPS = ("none", "identity", "pool")
WIDTHS = (0.75, 1.0, 1.25)
DLAYERS = (-1, 0, 1)

STEM_CH = 32
HEAD_CH = 1280
NUM_BLOCKS = 7
# MobileNetV2 Table 2, blocks 1..7.
BASE_CHANNELS = (16, 24, 32, 64, 96, 160, 320)
BASE_LAYERS = (1, 2, 3, 4, 3, 3, 1)
STRIDES = (1, 2, 2, 2, 1, 2, 1)


def channel_grid(block: int) -> tuple[int, ...]:
    """Output channels a block can take on the grid, one per width multiplier.

    Args:
        block: Block index, 1..7.
    """
    if not 1 <= block <= NUM_BLOCKS:
        raise ValueError(f"`block` must be between 1 and {NUM_BLOCKS}, got {block!r}.")
    return tuple(make_divisible(w * BASE_CHANNELS[block - 1]) for w in WIDTHS)


# Bounds inside which off-grid reference models (A1: 112, B1: 192) remain valid.
CHANNEL_BOUNDS = tuple((min(channel_grid(i)), max(channel_grid(i))) for i in range(1, 8))
LAYER_BOUNDS = tuple((max(1, n - 1), n + 1) for n in BASE_LAYERS)

_OP_TO_TOKEN = {"conv": ("cn", None), "dwconv": ("ds", None), "mbconv3": ("ir", 3)}
_OP_TO_TOKEN["mbconv6"] = ("ir", 6)
_SKIP_TO_TOKEN = {"none": "noskip", "identity": None, "pool": "poolskip"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class MnasNetBlock:
    """One searchable block: ``layers`` repeats of one layer design.

    Attributes:
        op: ``conv``, ``dwconv``, ``mbconv3`` or ``mbconv6``.
        kernel: Spatial kernel, 3 or 5.
        se: Squeeze-and-excitation ratio, 0.0 (none) or 0.25.
        skip: ``none``, ``identity`` or ``pool`` (spec 1.4).
        out_ch: Output channels of every layer of the block.
        layers: Number of layers (the first one carries the block stride).
    """

    op: str
    kernel: int
    se: float
    skip: str
    out_ch: int
    layers: int

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise InvalidArchError(f"`op` must be one of {', '.join(OPS)}, got {self.op!r}.")
        if not _is_int(self.kernel) or self.kernel not in KERNELS:
            raise InvalidArchError(f"`kernel` must be 3 or 5, got {self.kernel!r}.")
        if isinstance(self.se, bool) or not isinstance(self.se, int | float):
            raise InvalidArchError(f"`se` must be 0.0 or 0.25, got {self.se!r}.")
        if float(self.se) not in SE_RATIOS:
            raise InvalidArchError(f"`se` must be 0.0 or 0.25, got {self.se!r}.")
        object.__setattr__(self, "se", float(self.se))
        if self.skip not in SKIPS:
            raise InvalidArchError(f"`skip` must be one of {', '.join(SKIPS)}, got {self.skip!r}.")
        for name in ("out_ch", "layers"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InvalidArchError(f"`{name}` must be a positive integer, got {value!r}.")

    @property
    def expansion(self) -> int:
        """Expansion ratio of the inverted bottleneck (1 for ``dwconv``, 0 for ``conv``)."""
        return {"conv": 0, "dwconv": 1, "mbconv3": 3, "mbconv6": 6}[self.op]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return {
            "op": self.op,
            "kernel": self.kernel,
            "se": self.se,
            "skip": self.skip,
            "out_ch": self.out_ch,
            "layers": self.layers,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MnasNetBlock:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArchError: On missing or unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise InvalidArchError(f"a block must be a dict, got {type(data).__name__}.")
        expected = {"op", "kernel", "se", "skip", "out_ch", "layers"}
        if set(data) != expected:
            missing = sorted(expected - set(data))
            unknown = sorted(set(data) - expected)
            raise InvalidArchError(f"block keys: missing {missing}, unknown {unknown}.")
        return cls(**data)


def _check_bounds(index: int, block: MnasNetBlock, where: str) -> None:
    lo, hi = CHANNEL_BOUNDS[index]
    if not lo <= block.out_ch <= hi:
        raise InvalidArchError(
            f"{where}: `out_ch` must be between {lo} and {hi}, got {block.out_ch}."
        )
    lo, hi = LAYER_BOUNDS[index]
    if not lo <= block.layers <= hi:
        raise InvalidArchError(
            f"{where}: `layers` must be between {lo} and {hi}, got {block.layers}."
        )


@dataclass(frozen=True)
class MnasNetArch:
    """A concrete MnasNet-space architecture: seven blocks over the MobileNetV2 skeleton.

    The stem (32 channels, stride 2), the block strides and the 1280-channel head are fixed.

    Attributes:
        blocks: The seven blocks, in order.
    """

    blocks: tuple[MnasNetBlock, ...]

    def __post_init__(self) -> None:
        if isinstance(self.blocks, list):
            object.__setattr__(self, "blocks", tuple(self.blocks))
        if not isinstance(self.blocks, tuple) or len(self.blocks) != NUM_BLOCKS:
            raise InvalidArchError(f"`blocks` must hold exactly {NUM_BLOCKS} blocks.")
        for i, block in enumerate(self.blocks):
            if not isinstance(block, MnasNetBlock):
                raise InvalidArchError(f"block {i + 1} must be a MnasNetBlock.")
            _check_bounds(i, block, f"block {i + 1}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"blocks": [block dict, ...]}``."""
        return {"blocks": [b.to_dict() for b in self.blocks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MnasNetArch:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArchError: On a malformed dict.
        """
        if not isinstance(data, dict) or set(data) != {"blocks"}:
            raise InvalidArchError("an architecture dict must have exactly the key 'blocks'.")
        if not isinstance(data["blocks"], list | tuple):
            raise InvalidArchError("'blocks' must be a list of block dicts.")
        return cls(tuple(MnasNetBlock.from_dict(b) for b in data["blocks"]))


# ------------------------------------------------------------------ block strings
def encode_block_string(arch: MnasNetArch) -> str:
    """Canonical block string of ``arch`` (spec 1.4).

    Format per block: ``{ds|ir|cn}_r{layers}_k{k}_s{s}[_e{E}]_c{out}[_se0.25][_noskip|_poolskip]``;
    blocks are joined by ``-``.
    """
    parts = []
    for i, b in enumerate(arch.blocks):
        kind, exp = _OP_TO_TOKEN[b.op]
        tokens = [kind, f"r{b.layers}", f"k{b.kernel}", f"s{STRIDES[i]}"]
        if exp is not None:
            tokens.append(f"e{exp}")
        tokens.append(f"c{b.out_ch}")
        if b.se > 0:
            tokens.append(f"se{b.se:g}")
        skip = _SKIP_TO_TOKEN[b.skip]
        if skip is not None:
            tokens.append(skip)
        parts.append("_".join(tokens))
    return "-".join(parts)


_TOKEN_RE = re.compile(r"^(r|k|s|e|c)(\d+)$")


def _parse_tokens(where: str, kind: str, tokens: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for tok in tokens:
        val: int | float | str
        match = _TOKEN_RE.match(tok)
        if match:
            key, val = match.group(1), int(match.group(2))
        elif tok == "se0.25":
            key, val = "se", 0.25
        elif tok in ("noskip", "poolskip"):
            key, val = "skip", "none" if tok == "noskip" else "pool"
        else:
            raise InvalidArchError(f"{where}: unknown token {tok!r}.")
        if key in values:
            raise InvalidArchError(f"{where}: duplicate token {tok!r}.")
        values[key] = val
    missing = [k for k in ("r", "k", "s", "c") if k not in values]
    if missing:
        raise InvalidArchError(f"{where}: missing token(s) {', '.join(missing)}.")
    if kind == "ir" and values.get("e") not in (3, 6):
        raise InvalidArchError(f"{where}: 'ir' blocks need token e3 or e6.")
    if kind != "ir" and "e" in values:
        raise InvalidArchError(f"{where}: token 'e{values['e']}' is only allowed on 'ir' blocks.")
    values.setdefault("se", 0.0)
    values.setdefault("skip", "identity")
    return values


def _decode_block(index: int, text: str) -> MnasNetBlock:
    where = f"block {index + 1} {text!r}"
    kind, *tokens = text.split("_")
    if kind not in ("ds", "ir", "cn"):
        raise InvalidArchError(f"{where}: unknown block type {kind!r} (expected ds, ir or cn).")
    values = _parse_tokens(where, kind, tokens)
    if index < NUM_BLOCKS and values["s"] != STRIDES[index]:
        raise InvalidArchError(
            f"{where}: token 's{values['s']}' must be s{STRIDES[index]} (the stride is fixed)."
        )
    op = {"ds": "dwconv", "cn": "conv"}.get(kind, f"mbconv{values.get('e')}")
    try:
        block = MnasNetBlock(
            op=op,
            kernel=values["k"],
            se=values["se"],
            skip=values["skip"],
            out_ch=values["c"],
            layers=values["r"],
        )
    except InvalidArchError as exc:
        raise InvalidArchError(f"{where}: {exc}") from None
    if index < NUM_BLOCKS:
        _check_bounds(index, block, where)
    return block


def decode_block_string(text: str) -> MnasNetArch:
    """Parse a block string produced by :func:`encode_block_string`.

    Raises:
        InvalidArchError: Naming the offending block and token.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArchError("mnasnet architecture string is empty.")
    parts = text.strip().split("-")
    blocks = [_decode_block(i, part) for i, part in enumerate(parts)]
    if len(blocks) != NUM_BLOCKS:
        raise InvalidArchError(
            f"mnasnet architecture strings have {NUM_BLOCKS} blocks joined by '-', got "
            f"{len(blocks)}."
        )
    return MnasNetArch(tuple(blocks))
