"""Measurement configuration, device description and per-model sampler construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nas._errors import NasError
from nas.measure._runtimes import (
    DTYPES,
    DeviceType,
    LanguageModelSampler,
    OnnxSampler,
    TorchSampler,
)
from nas.measure._timing import Sampler, TimingProtocol
from search_spaces import Workload

if TYPE_CHECKING:
    from hwdb import DeviceSpec
    from search_spaces import SearchSpace

__all__ = [
    "LM_MEASURE_WORKLOAD",
    "MeasureConfig",
    "ResolvedConfig",
    "is_language_model",
    "lm_metrics",
]

RUNTIMES = ("torch", "onnxruntime")
DEVICE_TYPES = ("auto", "cpu", "cuda")
VISION_METRICS = ("latency_ms",)
#: The metrics of a language model's rows: ``hwdb.LM_METRICS``, spelled out because measuring
#: must not import the database layer (SQLAlchemy) until it stores rows (GPU scripts run
#: without it).
LM_METRICS = ("prefill_ms", "decode_ms_per_token", "e2e_ms")

#: CPU-sized language-model workload: 128 prompt tokens and 16 decoded tokens instead of the
#: space default's 512 and 64 (seconds per sample on one core). ``meta_tokens`` keeps the space
#: default (256): it is not an input shape the harness chooses, since every model prepends its
#: own architecture's meta tokens (``mt256``: 256, ``mt0``: none), and 256 is what the space and
#: the bundled rows record.
LM_MEASURE_WORKLOAD: dict[str, int] = {"prompt_len": 128, "decode_len": 16}


def lm_metrics() -> tuple[str, ...]:
    """Metrics of language-model spaces, in storage order."""
    return LM_METRICS


def is_language_model(space: SearchSpace[Any]) -> bool:
    """Whether ``space`` builds language models (its example inputs are integer token ids)."""
    inputs = space.example_inputs(space.smoke_workload())
    return bool(inputs) and not inputs[0].is_floating_point()


@dataclass(frozen=True)
class MeasureConfig:
    """What to measure and how; shared by ``nas measure``, the API and the benchmarks.

    Args:
        runtime: ``"torch"`` (eager) or ``"onnxruntime"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (onnxruntime: fp32 only).
        batch_size: Batch size of the workload.
        threads: Intra-op CPU threads; ``None`` keeps torch's current setting.
        device_type: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        protocol: The timing protocol.
        workload: Input shapes; ``None`` uses the space default (vision) or
            :data:`LM_MEASURE_WORKLOAD` (language models), with ``batch_size`` applied.
        chunk_size: Models built, timed together and committed as one group.
        prime: The first ``prime`` architectures to measure are built and run, untimed,
            before the first group (0: none), warming the process's caches and the machine;
            skipped when the process was timing models within the last 30 s.
        prime_seconds: Keep running the priming archs round-robin for this long. On this
            project's shared 2-core VM a process's first timed pass otherwise ran 3-8 %
            slower than its second (retest MAPE 3-8 %); after 20 s of load the passes agree
            within 1.5-2 %.
        seed: Seed of the per-round order.
        onnx_exporter: ``"dynamo"`` or ``"torchscript"`` (see ``export_onnx``).
    """

    runtime: str = "torch"
    precision: str = "fp32"
    batch_size: int = 1
    threads: int | None = None
    device_type: str = "auto"
    protocol: TimingProtocol = field(default_factory=TimingProtocol)
    workload: Workload | None = None
    chunk_size: int = 10
    prime: int = 30
    prime_seconds: float = 20.0
    seed: int | None = 0
    onnx_exporter: str = "dynamo"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(
                f"`runtime` must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}."
            )
        if self.precision not in DTYPES:
            raise ValueError(
                f"`precision` must be one of {', '.join(DTYPES)}, got {self.precision!r}."
            )
        if self.runtime == "onnxruntime" and self.precision != "fp32":
            raise ValueError("`precision` must be fp32 with the onnxruntime runtime.")
        if self.device_type not in DEVICE_TYPES:
            raise ValueError(
                f"`device_type` must be one of {', '.join(DEVICE_TYPES)}, got {self.device_type!r}."
            )
        for name in ("batch_size", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be greater than or equal to 1, got {value!r}.")
        if not isinstance(self.prime, int) or isinstance(self.prime, bool) or self.prime < 0:
            raise ValueError(f"`prime` must be greater than or equal to 0, got {self.prime!r}.")
        if not 0 <= self.prime_seconds < math.inf:
            raise ValueError(
                f"`prime_seconds` must be a finite number >= 0, got {self.prime_seconds!r}."
            )
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"`threads` must be greater than or equal to 1, got {self.threads!r}.")
        if self.onnx_exporter not in ("dynamo", "torchscript"):
            raise ValueError(
                f"`onnx_exporter` must be 'dynamo' or 'torchscript', got {self.onnx_exporter!r}."
            )

    def resolve(self, space: SearchSpace[Any]) -> ResolvedConfig:
        """Fix threads, device type and workload for ``space`` on this machine."""
        import torch

        device_type = self.device_type
        if device_type == "auto":
            device_type = "cuda" if torch.cuda.is_available() else "cpu"
        elif device_type == "cuda" and not torch.cuda.is_available():
            raise NasError("`--device-type cuda` requested but torch sees no CUDA device")
        lm = is_language_model(space)
        workload = self.workload
        if workload is None:
            workload = space.default_workload()
            if lm:
                workload = replace(workload, **LM_MEASURE_WORKLOAD)
        workload = replace(workload, batch_size=self.batch_size)
        return ResolvedConfig(
            base=self,
            threads=self.threads or torch.get_num_threads(),
            device_type=device_type,
            workload=workload,
            language_model=lm,
        )


@dataclass(frozen=True)
class ResolvedConfig:
    """A :class:`MeasureConfig` with everything machine- and space-dependent fixed."""

    base: MeasureConfig
    threads: int
    device_type: str
    workload: Workload
    language_model: bool

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics stored per architecture."""
        return LM_METRICS if self.language_model else VISION_METRICS

    @property
    def primary_metric(self) -> str:
        """The metric a retest compares (``latency_ms`` or ``e2e_ms``)."""
        return "e2e_ms" if self.language_model else "latency_ms"

    @property
    def protocol(self) -> str:
        """Protocol string stored with each row: timing protocol plus input shape.

        E.g. ``"interleaved-rr10x3-w5-rh-an@r224"`` (vision, resolution 224) or
        ``"interleaved-rr10x3-w5-rh-an@p128d16"`` (language model: prompt 128, decode 16). The batch
        size belongs to the device, not to the protocol.
        """
        wl = self.workload
        tag = f"p{wl.prompt_len}d{wl.decode_len}" if self.language_model else f"r{wl.resolution}"
        return f"{self.base.protocol.name}@{tag}"

    def device_spec(self, name: str, *, hardware: str, source: str = "nas measure") -> DeviceSpec:
        """The :class:`hwdb.DeviceSpec` of this configuration under the user's device name."""
        from hwdb import DeviceSpec

        attributes: dict[str, Any] = {"device_type": self.device_type}
        if self.base.runtime == "onnxruntime":
            attributes["onnx_exporter"] = self.base.onnx_exporter
        if self.base.precision != "fp32":
            attributes["precision_mode"] = "autocast"
        return DeviceSpec(
            name=name,
            family="gpu" if self.device_type == "cuda" else "cpu",
            hardware=hardware,
            runtime=self.base.runtime,
            precision=self.base.precision,
            batch_size=self.base.batch_size,
            threads=self.threads,
            provenance="measured",
            source=source,
            attributes=attributes,
        )

    def build_sampler(self, space: SearchSpace[Any], arch: Any) -> Sampler:
        """Build ``arch`` and wrap it in the sampler of this runtime.

        Weights are initialised from a seed derived from the architecture string, so every
        build of one architecture is the same model: random weights otherwise differ between
        passes, and with them how many activations become denormal floats, which changes CPU
        latency from build to build.
        """
        import hashlib

        import torch

        digest = hashlib.sha256(space.to_string(arch).encode()).digest()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int.from_bytes(digest[:4], "little"))
            model = space.build(arch)
        inputs = space.example_inputs(self.workload)
        device_type: DeviceType = "cuda" if self.device_type == "cuda" else "cpu"
        if self.language_model:
            if self.base.runtime != "torch":
                raise NasError("language-model spaces can only be measured with runtime torch")
            return LanguageModelSampler(
                model,
                inputs[0],
                decode_len=self.workload.decode_len,
                precision=self.base.precision,
                device_type=device_type,
            )
        if self.base.runtime == "onnxruntime":
            return OnnxSampler(
                model,
                inputs,
                threads=self.threads,
                device_type=device_type,
                exporter=self.base.onnx_exporter,
            )
        return TorchSampler(model, inputs, precision=self.base.precision, device_type=device_type)
