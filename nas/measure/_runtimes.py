"""Runtimes that time one built model: eager PyTorch and ONNX Runtime.

Each sampler is built once per model and then called many times by the timing protocol
(:mod:`nas.measure._timing`). PyTorch runs under ``torch.inference_mode``; on CUDA every sample
is bracketed by CUDA events and synchronised, on CPU it is timed with ``time.perf_counter``.
Half precision (bf16/fp16) runs under ``torch.autocast``: weights stay fp32 and the ops autocast
lists (convolutions, matrix products) run in the low precision, while ops without low-precision
CPU kernels (e.g. the triangular solve of DeltaNet's chunked prefill) keep running in fp32.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nas._errors import NasError

if TYPE_CHECKING:
    import onnxruntime
    import torch
    from torch import nn

__all__ = [
    "DTYPES",
    "LanguageModelSampler",
    "OnnxSampler",
    "TorchSampler",
    "export_onnx",
]

DeviceType = Literal["cpu", "cuda"]
DTYPES = ("fp32", "bf16", "fp16")


def torch_dtype(precision: str) -> torch.dtype:
    """The ``torch.dtype`` of a precision name (``fp32``, ``bf16``, ``fp16``)."""
    import torch

    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in table:
        raise ValueError(f"`precision` must be one of fp32, bf16, fp16, got {precision!r}.")
    return table[precision]


def prepare(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    device_type: DeviceType,
) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Put ``model`` in eval mode on the device and move ``inputs`` there."""
    return model.eval().to(device_type), tuple(t.to(device_type) for t in inputs)


def precision_context(precision: str, device_type: DeviceType) -> AbstractContextManager[Any]:
    """``torch.autocast`` for bf16/fp16, a no-op for fp32."""
    import torch

    dtype = torch_dtype(precision)
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


class _Clock:
    """Wall clock on CPU, CUDA events + synchronize on GPU (milliseconds)."""

    def __init__(self, device_type: DeviceType) -> None:
        self.cuda = device_type == "cuda"
        if self.cuda:
            import torch

            self._start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            self._end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        self._t0 = 0.0

    def start(self) -> None:
        if self.cuda:
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> float:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            return float(self._start.elapsed_time(self._end))
        return (time.perf_counter() - self._t0) * 1e3


class TorchSampler:
    """Eager PyTorch inference of a vision-style model: metric ``latency_ms``.

    Args:
        model: The built module (train mode is fine; it is switched to eval).
        inputs: Example inputs of one forward pass.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        device_type: ``cpu`` or ``cuda``.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Sequence[torch.Tensor],
        *,
        precision: str = "fp32",
        device_type: DeviceType = "cpu",
    ) -> None:
        torch_dtype(precision)  # validates
        self.model, self.inputs = prepare(model, inputs, device_type=device_type)
        self.precision, self.device_type = precision, device_type
        self._clock = _Clock(device_type)

    def outputs(self) -> list[np.ndarray]:
        """Outputs of one forward pass as float32 numpy arrays (for cross-runtime checks)."""
        import torch

        with torch.inference_mode(), precision_context(self.precision, self.device_type):
            out = self.model(*self.inputs)
        tensors = out if isinstance(out, (tuple, list)) else (out,)
        return [t.detach().float().cpu().numpy() for t in tensors]

    def sample(self) -> dict[str, float]:
        """Time one forward pass."""
        import torch

        with torch.inference_mode(), precision_context(self.precision, self.device_type):
            self._clock.start()
            self.model(*self.inputs)
            ms = self._clock.stop()
        return {"latency_ms": ms}


def export_onnx(
    model: nn.Module, inputs: Sequence[torch.Tensor], *, exporter: str = "dynamo"
) -> bytes:
    """Export an eval-mode model to an in-memory ONNX model with ``torch.onnx.export``.

    Args:
        model: Module in eval mode (fp32, CPU).
        inputs: Example inputs; shapes are static.
        exporter: ``"dynamo"`` (the ``torch.export``-based exporter, default since
            PyTorch 2.9) or ``"torchscript"`` (the legacy tracer, much faster to run).

    Raises:
        NasError: If the export fails.
    """
    import torch

    if exporter not in ("dynamo", "torchscript"):
        raise ValueError(f"`exporter` must be 'dynamo' or 'torchscript', got {exporter!r}.")
    args = tuple(inputs)
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # e.g. "torchvision is not installed" registry notes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                program = torch.onnx.export(model, args, dynamo=True, verbose=False)
                if program is None:  # pragma: no cover - only when f is given
                    raise NasError("torch.onnx.export returned no program")
                return bytes(program.model_proto.SerializeToString())
            buf = io.BytesIO()
            torch.onnx.export(model, args, buf, dynamo=False)  # type: ignore[arg-type]
            return buf.getvalue()
    except NasError:
        raise
    except Exception as exc:  # the exporters raise many unrelated types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NasError(f"ONNX export ({exporter}) failed: {first}") from exc
    finally:
        onnx_log.setLevel(level)


class OnnxSampler:
    """ONNX Runtime inference of an exported model: metric ``latency_ms``.

    Args:
        model: The built module (exported in fp32 eval mode).
        inputs: Example inputs of one forward pass.
        threads: ``intra_op_num_threads`` (inter-op threads: 1, sequential execution).
        device_type: ``cpu`` or ``cuda`` (needs ``CUDAExecutionProvider``).
        exporter: See :func:`export_onnx`.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Sequence[torch.Tensor],
        *,
        threads: int,
        device_type: DeviceType = "cpu",
        exporter: str = "dynamo",
    ) -> None:
        import onnxruntime as ort

        model, inputs = prepare(model, inputs, device_type="cpu")
        payload = export_onnx(model, inputs, exporter=exporter)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        provider = "CUDAExecutionProvider" if device_type == "cuda" else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():
            raise NasError(f"onnxruntime has no {provider} on this machine")
        self.session: onnxruntime.InferenceSession = ort.InferenceSession(
            payload, options, providers=[provider]
        )
        names = [i.name for i in self.session.get_inputs()]
        self.feeds: dict[str, Any] = {
            n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=False)
        }

    def outputs(self) -> list[np.ndarray]:
        """Outputs of one run as float32 numpy arrays."""
        return [np.asarray(o, dtype=np.float32) for o in self.session.run(None, self.feeds)]

    def sample(self) -> dict[str, float]:
        """Time one ``session.run``."""
        t0 = time.perf_counter()
        self.session.run(None, self.feeds)
        return {"latency_ms": (time.perf_counter() - t0) * 1e3}


class LanguageModelSampler:
    """Eager PyTorch prefill + decode of a language model with ``prefill`` / ``decode_step``.

    One sample runs the prefill of the prompt, then ``decode_len`` single-token decode steps
    reusing the cache, and reports ``prefill_ms``, ``decode_ms_per_token`` (decode time divided
    by ``decode_len``) and ``e2e_ms`` (their sum: prefill + ``decode_len`` x per-token time, per
    sample). The decoded token is held fixed, so every sample does identical work.

    Args:
        model: A module with ``prefill(tokens) -> (logits, cache)`` and
            ``decode_step(token, cache) -> (logits, cache)``.
        tokens: Prompt token ids ``(batch, prompt_len)``.
        decode_len: Decode steps per sample (>= 1).
        precision: ``fp32``, ``bf16`` or ``fp16``.
        device_type: ``cpu`` or ``cuda``.
    """

    def __init__(
        self,
        model: nn.Module,
        tokens: torch.Tensor,
        *,
        decode_len: int,
        precision: str = "fp32",
        device_type: DeviceType = "cpu",
    ) -> None:
        if not (
            callable(getattr(model, "prefill", None))
            and callable(getattr(model, "decode_step", None))
        ):
            raise NasError(f"{type(model).__name__} has no prefill/decode_step methods")
        if decode_len < 1:
            raise ValueError(
                f"`decode_len` must be greater than or equal to 1, got {decode_len!r}."
            )
        torch_dtype(precision)  # validates
        self.model, (self.tokens,) = prepare(model, (tokens,), device_type=device_type)
        self.precision, self.device_type = precision, device_type
        self.next_token = self.tokens[:, -1:]
        self.decode_len = decode_len
        self._clock = _Clock(device_type)

    def sample(self) -> dict[str, float]:
        """Time one prefill and ``decode_len`` decode steps."""
        import torch

        model: Any = self.model
        with torch.inference_mode(), precision_context(self.precision, self.device_type):
            self._clock.start()
            _, cache = model.prefill(self.tokens)
            prefill = self._clock.stop()
            self._clock.start()
            for _ in range(self.decode_len):
                _, cache = model.decode_step(self.next_token, cache)
            decode = self._clock.stop()
        return {
            "prefill_ms": prefill,
            "decode_ms_per_token": decode / self.decode_len,
            "e2e_ms": prefill + decode,
        }
