"""Typed configs of the MobileViG-style space: block config, architecture and its ID string.

The architecture (:class:`MobileViGArch`) stores the 18 concrete decision values of spec 2.4; it
expands into byobnet-style per-stage block configs (:class:`MobileViGBlockCfg`) that the builder
instantiates through the block registry (Munir et al., *MobileViG*, CVPRW 2023, arXiv:2307.00395).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from search_spaces._errors import InvalidArchError

__all__ = [
    "ARCH_BOUNDS",
    "MobileViGArch",
    "MobileViGBlockCfg",
    "MobileViGModelCfg",
    "format_arch",
    "parse_arch",
]

# Inclusive bounds of every architecture field (spec 2.4). The sampler only produces on-grid
# values; anything inside these bounds can be built and encoded (spec 0.1).
ARCH_BOUNDS: dict[str, tuple[int, int]] = {
    "c1": (32, 64),
    "c2": (64, 128),
    "c3": (128, 320),
    "c4": (192, 512),
    "n1": (1, 6),
    "n2": (1, 6),
    "n3_ir": (2, 16),
    "n3_svga": (0, 4),
    "n4_ir": (0, 2),
    "n4_svga": (1, 6),
    "e1": (2, 6),
    "e2": (2, 6),
    "e3": (2, 6),
    "e4": (2, 6),
    # Hop distances may be repaired down to 1 for inputs smaller than 224 (spec 2.4).
    "k3": (1, 4),
    "k4": (1, 3),
    "ffn_ratio": (2, 4),
    "emb": (512, 1024),
}


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArchError(f"`{name}` must be an integer, got {value!r}.")
    if not low <= value <= high:
        raise InvalidArchError(f"`{name}` must be in [{low}, {high}], got {value}.")


@dataclass(frozen=True)
class MobileViGBlockCfg:
    """One run of identical blocks inside a stage (the analogue of timm's ``ByoBlockCfg``).

    Attributes:
        type: Registered block type, e.g. ``"ir"`` or ``"svga"``.
        d: Number of repeated blocks.
        c: Channel width.
        expansion: Hidden-width multiplier of an inverted-residual block.
        k: Hop distance of the SVGA graph (spec 2.2).
        ffn_ratio: Hidden-width multiplier of the SVGA block's FFN.
    """

    type: str
    d: int
    c: int
    expansion: int = 4
    k: int = 2
    ffn_ratio: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise InvalidArchError(f"`type` must be a non-empty string, got {self.type!r}.")
        for name, low in (("d", 0), ("c", 1), ("expansion", 1), ("k", 1), ("ffn_ratio", 1)):
            _check_int(name, getattr(self, name), low, 1 << 20)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MobileViGBlockCfg:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArchError: naming unknown fields or a bad value.
        """
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidArchError(f"unknown block config field(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class MobileViGModelCfg:
    """Builder input: stage widths, per-stage block runs and head (timm's ``ByoModelCfg``).

    A stem reaches ``channels[0]`` at 1/4 resolution; every later stage starts with a stride-2
    downsample to its width; blocks keep their stage's width.

    Attributes:
        channels: Width of each stage.
        stages: Block runs of each stage, in order.
        emb: Width of the head embedding.
        num_classes: Classifier outputs.
        distillation: Whether a distillation classifier is added (averaged in eval mode).
    """

    channels: tuple[int, ...]
    stages: tuple[tuple[MobileViGBlockCfg, ...], ...]
    emb: int
    num_classes: int = 1000
    distillation: bool = True

    def __post_init__(self) -> None:
        if not self.channels or len(self.channels) != len(self.stages):
            raise InvalidArchError(
                f"`channels` ({len(self.channels)}) and `stages` ({len(self.stages)}) must be "
                "non-empty and of equal length."
            )
        for i, (c, blocks) in enumerate(zip(self.channels, self.stages, strict=True)):
            _check_int(f"channels[{i}]", c, 2, 1 << 20)
            for cfg in blocks:
                if cfg.c != c:
                    raise InvalidArchError(
                        f"block {cfg.type!r} of stage {i + 1} has `c` = {cfg.c}, "
                        f"but the stage width is {c}."
                    )
        _check_int("emb", self.emb, 1, 1 << 20)
        _check_int("num_classes", self.num_classes, 1, 1 << 24)
        if not isinstance(self.distillation, bool):
            raise InvalidArchError(f"`distillation` must be a bool, got {self.distillation!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (block configs as dicts)."""
        return {
            "channels": list(self.channels),
            "stages": [[cfg.to_dict() for cfg in blocks] for blocks in self.stages],
            "emb": self.emb,
            "num_classes": self.num_classes,
            "distillation": self.distillation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MobileViGModelCfg:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArchError: naming unknown or missing fields, or a bad value.
        """
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidArchError(f"unknown model config field(s): {', '.join(unknown)}")
        missing = [n for n in ("channels", "stages", "emb") if n not in data]
        if missing:
            raise InvalidArchError(f"missing model config field(s): {', '.join(missing)}")
        stages = tuple(
            tuple(MobileViGBlockCfg.from_dict(cfg) for cfg in blocks) for blocks in data["stages"]
        )
        rest = {k: data[k] for k in ("num_classes", "distillation") if k in data}
        return cls(channels=tuple(data["channels"]), stages=stages, emb=data["emb"], **rest)


@dataclass(frozen=True)
class MobileViGArch:
    """A concrete MobileViG-style architecture (spec 2.4), hashable and JSON round-trippable.

    Stage ``s`` holds ``n_ir`` inverted-residual blocks followed by ``n_svga`` SVGA blocks at
    width ``c_s``; stages 1 and 2 hold IR blocks only. ``k3`` is canonicalised to 0 when stage 3
    has no SVGA block (the hop is then unused, matching the encoding of spec 2.5), so that
    equal networks have equal IDs.

    Attributes:
        c1: Width of stage 1 (the stem output).
        c2: Width of stage 2.
        c3: Width of stage 3.
        c4: Width of stage 4.
        n1: IR blocks in stage 1.
        n2: IR blocks in stage 2.
        n3_ir: IR blocks in stage 3.
        n3_svga: SVGA blocks in stage 3.
        n4_ir: IR blocks in stage 4.
        n4_svga: SVGA blocks in stage 4.
        e1: IR expansion of stage 1.
        e2: IR expansion of stage 2.
        e3: IR expansion of stage 3.
        e4: IR expansion of stage 4.
        k3: Graph hop distance of stage 3 (0 when ``n3_svga == 0``).
        k4: Graph hop distance of stage 4.
        ffn_ratio: Hidden-width multiplier of every SVGA FFN.
        emb: Width of the head embedding.
    """

    c1: int
    c2: int
    c3: int
    c4: int
    n1: int
    n2: int
    n3_ir: int
    n3_svga: int
    n4_ir: int
    n4_svga: int
    e1: int
    e2: int
    e3: int
    e4: int
    k3: int
    k4: int
    ffn_ratio: int
    emb: int

    def __post_init__(self) -> None:
        if self.n3_svga == 0 and self.k3 != 0:
            object.__setattr__(self, "k3", 0)
        for name, (low, high) in ARCH_BOUNDS.items():
            value = getattr(self, name)
            if name == "k3" and self.n3_svga == 0:
                continue
            _check_int(name, value, low, high)

    @property
    def channels(self) -> tuple[int, int, int, int]:
        """Stage widths ``(c1, c2, c3, c4)``."""
        return (self.c1, self.c2, self.c3, self.c4)

    def stages(self) -> tuple[tuple[MobileViGBlockCfg, ...], ...]:
        """Per-stage block configs: IR blocks first, then SVGA blocks (spec 2.4)."""
        n_ir = (self.n1, self.n2, self.n3_ir, self.n4_ir)
        n_svga = (0, 0, self.n3_svga, self.n4_svga)
        exps = (self.e1, self.e2, self.e3, self.e4)
        hops = (0, 0, self.k3, self.k4)  # only read where the stage has SVGA blocks
        out: list[tuple[MobileViGBlockCfg, ...]] = []
        for c, ni, ns, e, k in zip(self.channels, n_ir, n_svga, exps, hops, strict=True):
            blocks = []
            if ni:
                blocks.append(MobileViGBlockCfg("ir", d=ni, c=c, expansion=e))
            if ns:
                blocks.append(MobileViGBlockCfg("svga", d=ns, c=c, k=k, ffn_ratio=self.ffn_ratio))
            out.append(tuple(blocks))
        return tuple(out)

    def model_cfg(self, *, num_classes: int = 1000, distillation: bool = True) -> MobileViGModelCfg:
        """The builder config of this architecture (distillation head included by default)."""
        return MobileViGModelCfg(
            channels=self.channels,
            stages=self.stages(),
            emb=self.emb,
            num_classes=num_classes,
            distillation=distillation,
        )

    def to_dict(self) -> dict[str, int]:
        """JSON-ready dict of the 18 fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MobileViGArch:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArchError: naming missing or unknown fields, or the field out of range.
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InvalidArchError(f"unknown MobileViG field(s): {', '.join(unknown)}")
        missing = [n for n in names if n not in data]
        if missing:
            raise InvalidArchError(f"missing MobileViG field(s): {', '.join(missing)}")
        return cls(**{n: data[n] for n in names})


# ---------------------------------------------------------------------------- ID string
# vig_c{c1}-{c2}-{c3}-{c4}_d{n1}-{n2}-{n3_ir}+{n3_svga}-{n4_ir}+{n4_svga}
#    _e{e1}{e2}{e3}{e4}_k{k3}{k4}_f{ffn_ratio}_E{emb}            (spec 2.4)
_TOKENS: tuple[tuple[str, re.Pattern[str], tuple[str, ...], str], ...] = (
    ("vig", re.compile(r"vig"), (), "vig"),
    (
        "c",
        re.compile(r"c(\d+)-(\d+)-(\d+)-(\d+)"),
        ("c1", "c2", "c3", "c4"),
        "c{c1}-{c2}-{c3}-{c4}",
    ),
    (
        "d",
        re.compile(r"d(\d+)-(\d+)-(\d+)\+(\d+)-(\d+)\+(\d+)"),
        ("n1", "n2", "n3_ir", "n3_svga", "n4_ir", "n4_svga"),
        "d{n1}-{n2}-{n3_ir}+{n3_svga}-{n4_ir}+{n4_svga}",
    ),
    ("e", re.compile(r"e(\d)(\d)(\d)(\d)"), ("e1", "e2", "e3", "e4"), "e{e1}{e2}{e3}{e4}"),
    ("k", re.compile(r"k(\d)(\d)"), ("k3", "k4"), "k{k3}{k4}"),
    ("f", re.compile(r"f(\d+)"), ("ffn_ratio",), "f{ffn_ratio}"),
    ("E", re.compile(r"E(\d+)"), ("emb",), "E{emb}"),
)


def format_arch(arch: MobileViGArch) -> str:
    """Canonical ID string of ``arch`` (spec 2.4)."""
    values = arch.to_dict()
    return "_".join(template.format(**values) for _, _, _, template in _TOKENS)


def parse_arch(text: str) -> MobileViGArch:
    """Parse an ID string written by :func:`format_arch`.

    Raises:
        InvalidArchError: naming the first bad token (or the out-of-range field and its token).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArchError("MobileViG architecture string is empty")
    tokens = text.strip().split("_")
    values: dict[str, int] = {}
    owner: dict[str, str] = {}
    for i, (_, pattern, names, template) in enumerate(_TOKENS):
        if i >= len(tokens):
            raise InvalidArchError(
                f"MobileViG architecture string {text!r} ends early: missing token {template!r}"
            )
        match = pattern.fullmatch(tokens[i])
        if match is None:
            raise InvalidArchError(
                f"bad token {tokens[i]!r} in MobileViG architecture string {text!r}: "
                f"expected {template!r}"
            )
        for name, group in zip(names, match.groups(), strict=True):
            values[name] = int(group)
            owner[name] = tokens[i]
    if len(tokens) > len(_TOKENS):
        raise InvalidArchError(
            f"unexpected token {tokens[len(_TOKENS)]!r} in MobileViG architecture string {text!r}"
        )
    for name, (low, high) in ARCH_BOUNDS.items():
        if name == "k3" and values["n3_svga"] == 0:
            continue
        if not low <= values[name] <= high:
            raise InvalidArchError(
                f"bad token {owner[name]!r} in MobileViG architecture string {text!r}: "
                f"`{name}` must be in [{low}, {high}], got {values[name]}."
            )
    return MobileViGArch.from_dict(values)
