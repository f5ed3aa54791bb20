"""Nemotron-Flash-style hybrid small-language-model search space (spec section 3).

Fu et al., *Nemotron-Flash: Towards Latency-Optimal Hybrid Small Language Models*, NeurIPS 2025,
arXiv:2511.18890. Operators: full and sliding-window GQA attention, Mamba2 (arXiv:2405.21060),
DeltaNet (arXiv:2406.06484), Gated DeltaNet (arXiv:2412.06464) and SwiGLU FFNs, arranged as three
stages that each repeat one block of 1-4 mixer slots (spec 3.4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces._base import ParamValue, SearchSpace
from search_spaces._errors import InvalidArchError
from search_spaces._registry import register_space
from search_spaces._slm_arch import MAX_OPS, NemotronFlashArch, infer_stages, parse_arch_string
from search_spaces._slm_cost import SLMCost, slm_cost, slm_dispatched_ops
from search_spaces._workload import Profile, Workload

if TYPE_CHECKING:
    import torch

    from search_spaces._slm_model import NemotronFlashLM

__all__ = ["NemotronFlashArch", "NemotronFlashSpace"]

HIDDEN_CHOICES = (512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 2560, 3072)
OP_CHOICES = ("attn", "swa", "mamba2", "deltanet", "gdn")
_OP_TOKEN = {"attn": "a", "mamba2": "m2", "deltanet": "d", "gdn": "gdn"}
_GLOBAL_CHOICES: dict[str, tuple[int, ...]] = {
    "hidden": HIDDEN_CHOICES,
    "ffn_ratio": (2, 3, 4),
    "swa_window": (512, 1024, 2048, 4096, 8192),
    "mamba_d_state": (64, 128),
    "meta_tokens": (0, 256),
}
_ENCODING_KINDS = ("attn", "swa", "mamba2", "deltanet", "gdn", "ffn")
_B1 = ("d", "f", "m2", "f", "a", "f", "m2", "f")
_B2 = ("d", "f", "m2", "f")
_PATTERN_1B = _B1 * 2 + _B2 * 2
_PATTERN_3B = _B1 * 3 + _B2 * 3
_PATTERN_T2_PARAMS = ("m2", "f", "a", "f", "a", "f", "d") * 3 + ("m2", "f", "a", "f", "d", "f", "f")


def _arch(hidden: int, ops: Sequence[str]) -> NemotronFlashArch:
    return NemotronFlashArch(hidden, 3, 128, 256, tuple(ops))


def _stage_choices() -> dict[str, tuple[ParamValue, ...]]:
    params: dict[str, tuple[ParamValue, ...]] = {}
    for t in (1, 2, 3):
        params[f"st{t}_slots"] = (1, 2, 3, 4)
        for j in (1, 2, 3, 4):
            params[f"st{t}_op{j}"] = OP_CHOICES
        for j in (1, 2, 3, 4):
            params[f"st{t}_ffn{j}"] = (0, 1, 2)
        params[f"st{t}_repeats"] = tuple(range(9))
    return params


@register_space("nemotron_flash")
class NemotronFlashSpace(SearchSpace[NemotronFlashArch]):
    """Hybrid SLM space of Nemotron-Flash (Fu et al., NeurIPS 2025, arXiv:2511.18890).

    Args:
        vocab_size: Vocabulary of built models and of the analytic costs. The default 131,072
            follows the spec; smaller values only serve fast CPU tests.
        chunk_size: Chunk length of the Mamba2 / DeltaNet chunked prefill (64 on CPU).
        hidden_choices: The ``hidden`` grid; ``None`` is the spec grid (512-3072). Tests use
            narrow grids (multiples of 128) so that sampled models build in milliseconds.
    """

    name = "nemotron_flash"
    #: End to end: the prefill plus every decoded token of the workload, what a user waits for
    #: (``nas measure`` also stores ``prefill_ms`` and ``decode_ms_per_token``).
    latency_metric = "e2e_ms"
    #: The meta tokens are a choice of the architecture (``mt``), not of the workload.
    workload_fields = ("batch_size", "prompt_len", "decode_len")
    description = "Nemotron-Flash hybrid SLM: attn/SWA/Mamba2/DeltaNet/GDN + FFN in 3 stages"

    def __init__(
        self,
        *,
        vocab_size: int = 131072,
        chunk_size: int = 64,
        hidden_choices: Sequence[int] | None = None,
    ) -> None:
        hidden = HIDDEN_CHOICES if hidden_choices is None else tuple(hidden_choices)
        if not hidden or any(not isinstance(h, int) or h < 128 or h % 128 for h in hidden):
            raise ValueError(
                f"`hidden_choices` must be non-empty multiples of 128, got {hidden_choices}."
            )
        if not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"`vocab_size` must be greater than or equal to 2, got {vocab_size}.")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"`chunk_size` must be greater than or equal to 1, got {chunk_size}.")
        self.vocab_size = vocab_size
        self.chunk_size = chunk_size
        self.hidden_choices = hidden

    # ----------------------------------------------------------------- sampling grid
    def search_parameters(self) -> dict[str, Sequence[ParamValue]]:
        """The 35 Optuna parameters of spec 3.4, each with its fixed choice list."""
        return {**_GLOBAL_CHOICES, "hidden": self.hidden_choices, **_stage_choices()}

    def from_params(self, params: Mapping[str, Any]) -> NemotronFlashArch:
        """Flatten the three stages and repair (spec 3.4).

        Repairs: ``st1_repeats == 0`` becomes 1; above 48 operators the last stage with nonzero
        repeats loses one repeat at a time. When no ``mamba2`` is used, ``mamba_d_state`` is
        normalised to 128 so that equal models get equal IDs.

        Raises:
            InvalidArchError: naming a missing parameter or a value off its choice list.
        """
        grid = self.search_parameters()
        for key, choices in grid.items():
            if key not in params:
                raise InvalidArchError(f"missing parameter {key!r}")
            if params[key] not in choices:
                raise InvalidArchError(f"parameter {key!r} has value {params[key]!r} off its grid")
        window = int(params["swa_window"])
        blocks, repeats = [], []
        for t in (1, 2, 3):
            block: list[str] = []
            for j in range(1, int(params[f"st{t}_slots"]) + 1):
                op = str(params[f"st{t}_op{j}"])
                block.append(f"swa{window}" if op == "swa" else _OP_TOKEN[op])
                block += ["f"] * int(params[f"st{t}_ffn{j}"])
            blocks.append(block)
            repeats.append(int(params[f"st{t}_repeats"]))
        repeats[0] = max(repeats[0], 1)
        while sum(len(b) * r for b, r in zip(blocks, repeats, strict=True)) > MAX_OPS:
            last = max(i for i, r in enumerate(repeats) if r > 0)
            repeats[last] -= 1
        ops = tuple(tok for b, r in zip(blocks, repeats, strict=True) for tok in b * r)
        d_state = int(params["mamba_d_state"]) if "m2" in ops else 128
        return NemotronFlashArch(
            int(params["hidden"]),
            int(params["ffn_ratio"]),
            d_state,
            int(params["meta_tokens"]),
            ops,
        )

    def smoke_variant(self) -> NemotronFlashSpace:
        """The same space with a 512-token vocabulary and ``hidden`` in {128, 256}.

        Every other parameter keeps its spec grid, so sampled operator lists are those of the
        real space; only widths shrink, making sample-build-forward tests take well under a
        second on a CPU (a full-width sample has about 1B parameters).
        """
        return NemotronFlashSpace(
            vocab_size=512, chunk_size=self.chunk_size, hidden_choices=(128, 256)
        )

    # ----------------------------------------------------------------- identity
    def to_string(self, arch: NemotronFlashArch) -> str:
        """Flat ID, e.g. ``d2048_r3_n128_mt256:d-f-m2-f-a-f-m2-f-...`` (spec 3.4)."""
        return arch.to_string()

    def from_string(self, text: str) -> NemotronFlashArch:
        """Parse a flat ID.

        Raises:
            InvalidArchError: naming the bad token.
        """
        return parse_arch_string(text)

    # ----------------------------------------------------------------- models
    def default_workload(self) -> Workload:
        """Batch 1, 512 prompt tokens (+256 meta), 64 decoded tokens (spec 0.4)."""
        return Workload(batch_size=1, prompt_len=512, meta_tokens=256, decode_len=64)

    def smoke_workload(self) -> Workload:
        """A tiny workload for tests: 16 prompt tokens, 4 meta tokens, 2 decoded tokens."""
        return Workload(batch_size=1, prompt_len=16, meta_tokens=4, decode_len=2)

    def build(self, arch: NemotronFlashArch) -> NemotronFlashLM:
        """Build the model (``prefill``, ``decode_step``, ``generate``; forward = last logits)."""
        from search_spaces._slm_model import NemotronFlashLM

        return NemotronFlashLM(arch, vocab_size=self.vocab_size, chunk=self.chunk_size)

    def example_inputs(self, workload: Workload | None = None) -> tuple[torch.Tensor, ...]:
        """Prompt token ids ``(batch, prompt_len)``, seeded; the model prepends its meta tokens."""
        import torch

        wl = workload or self.default_workload()
        gen = torch.Generator().manual_seed(0)
        shape = (wl.batch_size, wl.prompt_len)
        return (torch.randint(0, self.vocab_size, shape, generator=gen),)

    # ----------------------------------------------------------------- costs and encoding
    def _cost(self, arch: NemotronFlashArch, workload: Workload | None) -> SLMCost:
        wl = workload or self.default_workload()
        return slm_cost(
            arch,
            prompt_len=wl.prompt_len,
            decode_len=wl.decode_len,
            batch=wl.batch_size,
            vocab=self.vocab_size,
        )

    def profile(self, arch: NemotronFlashArch, workload: Workload | None = None) -> Profile:
        """Analytic params, end-to-end MACs (prefill + all decode steps) and cache bytes.

        ``extra`` holds ``prefill_macs``, ``decode_macs_per_token`` (at the end of the workload),
        ``decode_macs_total``, ``prefill_len`` (meta + prompt positions) and
        ``dispatched_ops``, the operators eager PyTorch dispatches one by one in one measured
        run (the prefill and every decode step; see
        :func:`~search_spaces._slm_cost.slm_dispatched_ops`).
        """
        wl = workload or self.default_workload()
        cost = self._cost(arch, wl)
        ops = slm_dispatched_ops(
            arch, prompt_len=wl.prompt_len, decode_len=wl.decode_len, chunk=self.chunk_size
        )
        macs = cost.prefill_macs + cost.decode_macs_total
        return Profile(
            params=cost.params,
            macs=macs,
            flops=2 * macs,
            memory_bytes=cost.cache_bytes,
            extra={
                "prefill_macs": float(cost.prefill_macs),
                "decode_macs_per_token": float(cost.decode_macs_per_token),
                "decode_macs_total": float(cost.decode_macs_total),
                "prefill_len": float(cost.prefill_len),
                "dispatched_ops": float(ops),
            },
        )

    def encode(self, arch: NemotronFlashArch, workload: Workload | None = None) -> np.ndarray:
        """The 30-value encoding of spec 3.9 (22 architecture, 4 workload, 4 analytic).

        The meta-token entry of the workload part uses the architecture's own meta tokens,
        which are what the built model prepends.
        """
        wl = workload or self.default_workload()
        windows = [int(t[3:]) for t in arch.ops if t.startswith("swa")]
        vec = [
            arch.hidden / 3072,
            arch.ffn_dim / 12288,
            arch.n_heads / 24,
            arch.kv_heads / 6,
            (max(windows) if windows else 0) / 8192,
            arch.d_state / 128 if "m2" in arch.ops else 0.0,
        ]
        vec += [arch.count(kind) / MAX_OPS for kind in _ENCODING_KINDS]
        vec.append(len(arch.ops) / MAX_OPS)
        for stage in infer_stages(arch):
            vec += [stage.slots / 4, stage.repeats / 8, stage.mean_ffn / 2]
        vec += [
            math.log2(wl.prompt_len) / 15,
            math.log2(arch.meta_tokens + 1) / 15,
            math.log2(wl.decode_len) / 15,
            math.log2(wl.batch_size) / 8,
        ]
        cost = self._cost(arch, wl)
        for value in (cost.params, cost.prefill_macs, cost.decode_macs_per_token, cost.cache_bytes):
            vec.append(math.log10(max(value, 1)))
        return np.asarray(vec, dtype=np.float64)

    # ----------------------------------------------------------------- reference sets
    def reference_archs(self) -> dict[str, NemotronFlashArch]:
        """Released models, Table-2 search results and the hardware-embedding set by name.

        ``nemotron-flash-3b-tp`` turns the last two of the three attention layers into 8k SWA
        (the paper does not say which two; spec 3.4 item 4).
        """
        tp = list(_PATTERN_3B)
        for i in [i for i, t in enumerate(tp) if t == "a"][1:]:
            tp[i] = "swa8192"
        refs = {
            "nemotron-flash-1b": _arch(2048, _PATTERN_1B),
            "nemotron-flash-3b": _arch(3072, _PATTERN_3B),
            "nemotron-flash-3b-tp": _arch(3072, tp),
            "table2-latency-searched": _arch(2048, _PATTERN_1B),
            "table2-param-searched-d1024": _arch(1024, _PATTERN_T2_PARAMS),
        }
        names = (
            "ref-llama-attn-d1024",
            "ref-mamba2-d1024",
            "ref-deltanet-d1024",
            "ref-swa512-d1024",
            "ref-gdn-mamba2-d1024",
            "ref-1b-pattern-d1024",
            "ref-1b-pattern-d2048",
            "ref-3b-pattern-d1536",
            "ref-table2-params-d1024",
            "ref-1b-pattern-d512",
        )
        refs.update(zip(names, self.hardware_embedding_archs(), strict=True))
        return refs

    def hardware_embedding_archs(self) -> list[NemotronFlashArch]:
        """The 10 HELP reference architectures of spec 3.10."""
        return [
            _arch(1024, ("a", "f") * 12),
            _arch(1024, ("m2",) * 24),
            _arch(1024, ("d", "f") * 12),
            _arch(1024, ("swa512", "f") * 12),
            _arch(1024, ("gdn", "f", "m2", "f") * 6),
            _arch(1024, _PATTERN_1B),
            _arch(2048, _PATTERN_1B),
            _arch(1536, _PATTERN_3B),
            _arch(1024, _PATTERN_T2_PARAMS),
            _arch(512, _PATTERN_1B),
        ]
