"""Workloads (input shapes) and analytic profiles shared by all spaces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Profile", "Workload"]


#: Inclusive bounds of every workload field. The upper ones are far beyond any input a model
#: of these spaces is run on, and keep a typo (or a hostile upload) from reaching the cost
#: models, whose shapes must fit a 64-bit index.
WORKLOAD_LIMITS: dict[str, tuple[int, int]] = {
    "batch_size": (1, 65_536),
    "resolution": (1, 16_384),
    "prompt_len": (1, 1_048_576),
    "meta_tokens": (0, 65_536),
    "decode_len": (1, 1_048_576),
}


@dataclass(frozen=True)
class Workload:
    """The input a latency is measured or predicted for.

    Vision spaces read ``batch_size`` and ``resolution``; language-model spaces read
    ``batch_size``, ``prompt_len``, ``meta_tokens`` and ``decode_len``. Unused fields keep
    their defaults so that one type serves every space (spec section 0.4).

    Args:
        batch_size: Images or sequences per forward pass.
        resolution: Square input side in pixels (vision).
        prompt_len: Prompt tokens (SLM), not counting meta tokens.
        meta_tokens: Learned meta tokens prepended to the prompt (SLM).
        decode_len: Tokens generated after prefill (SLM).
    """

    batch_size: int = 1
    resolution: int = 224
    prompt_len: int = 512
    meta_tokens: int = 256
    decode_len: int = 64

    def __post_init__(self) -> None:
        for name, (low, high) in WORKLOAD_LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                kind = "a positive" if low == 1 else "a non-negative"
                raise ValueError(f"`{name}` must be {kind} integer, got {value!r}.")
            if value > high:
                raise ValueError(f"`{name}` must be at most {high:,}, got {value:,}.")

    def to_dict(self) -> dict[str, int]:
        """JSON-ready dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workload:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown workload field(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class Profile:
    """Hardware-independent cost of one architecture under one workload.

    Attributes:
        params: Trainable parameter count.
        macs: Multiply-accumulates of convolutions and matrix products (spec 0.5).
        flops: Floating-point operations as counted by ``torch.utils.flop_counter``.
        memory_bytes: Peak activation bytes (CNNs) or decode cache bytes (SLMs).
        extra: Space-specific extras (e.g. ``prefill_macs``, ``decode_macs_per_token``).
    """

    params: int
    macs: int
    flops: int
    memory_bytes: int
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)
