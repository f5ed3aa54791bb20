"""Device-class constants of the roofline and the mapping from a catalog entry to a
:class:`~predictors.zeroshot._roofline.DeviceModel`.

Only *classes* carry constants; everything device-specific comes from the datasheet. The
constants and their justification:

* ``compute_eff``: achievable share of peak FLOP/s of convolution / matmul kernels at batch 1.
  Library convolutions (cuDNN, oneDNN, XNNPACK/Ruy) reach 30-60% of peak on mid-sized layers
  (roofline papers and vendor library benchmarks); tiny layers are further limited by the
  occupancy term of the roofline, not by this constant.
* ``memory_eff``: achievable share of DRAM bandwidth (STREAM-like copy kernels reach 60-80% on
  GPUs, 40-60% on mobile LPDDR systems).
* ``launch_us``: per-operator accelerator cost (CUDA kernel launch + completion, ~5 us on
  desktop drivers, ~10 us on Tegra); 0 for CPUs.
* ``dispatch_cycles``: per-operator framework bookkeeping on the host CPU, in thousands of
  cycles (TensorFlow / PyTorch executors spend ~10-30k cycles per op; TFLite's interpreter a
  few thousand). Divided by the entry's ``host_cpu_ghz``, so a 1.43 GHz Cortex-A57 pays
  ~2.5x what a 3.6 GHz desktop core pays.
* ``fixed_us``: per-inference cost (session call, input/output copies, synchronisation).
* ``window``: how pooling / element-wise arithmetic runs: ``"peak"`` (a share of the
  accelerator's peak: GPUs run them as bandwidth-bound kernels) or ``"scalar"`` (CPU runtimes
  run pooling as scalar loops on one core: ``host_cpu_ghz`` x 1 FLOP/cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from predictors.zeroshot._roofline import DeviceModel, bytes_per_element, runtime_mode

if TYPE_CHECKING:
    from hwdb.catalog import CatalogEntry

__all__ = ["DEVICE_CLASSES", "DeviceClass", "device_model"]


@dataclass(frozen=True)
class DeviceClass:
    """Roofline constants shared by every device of one class (see the module docstring)."""

    name: str
    compute_eff: float
    memory_eff: float
    launch_us: float
    dispatch_kcycles: float
    fixed_us: float
    window: str  # "peak" | "scalar"


DEVICE_CLASSES: dict[str, DeviceClass] = {
    "gpu": DeviceClass("gpu", 0.5, 0.7, 5.0, 30.0, 50.0, "peak"),
    "jetson": DeviceClass("jetson", 0.5, 0.6, 10.0, 30.0, 500.0, "peak"),
    "cpu": DeviceClass("cpu", 0.3, 0.5, 0.0, 10.0, 20.0, "scalar"),
    "sbc": DeviceClass("sbc", 0.3, 0.5, 0.0, 5.0, 100.0, "scalar"),
    "phone": DeviceClass("phone", 0.3, 0.5, 0.0, 5.0, 100.0, "scalar"),
    "npu": DeviceClass("npu", 0.3, 0.5, 5.0, 10.0, 200.0, "peak"),
}


def device_model(
    entry: CatalogEntry,
    *,
    precision: str = "fp32",
    device_class: DeviceClass | str | None = None,
    name: str | None = None,
    runtime: str | None = "unknown",
) -> DeviceModel:
    """The roofline :class:`DeviceModel` of a catalog entry at ``precision``.

    Args:
        entry: The catalog entry (datasheet numbers).
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        device_class: Class constants (default: the entry's ``device_class``).
        name: Label of the model (default: ``"<entry>-<precision>"``).
        runtime: The device's runtime as the hardware database names it (``torch``: eager;
            ``tensorflow``: the pruned graph; ``unknown``: the eager and pruned estimates
            averaged; any other: the fused graph; see
            :func:`~predictors.zeroshot._roofline.runtime_mode`).

    Raises:
        ValueError: for an unknown precision or device class.
    """
    cls = device_class if device_class is not None else entry.device_class
    if isinstance(cls, str):
        if cls not in DEVICE_CLASSES:
            raise ValueError(
                f"`device_class` must be one of {', '.join(DEVICE_CLASSES)}, got {cls!r}."
            )
        cls = DEVICE_CLASSES[cls]
    peak = entry.peak_flops(precision)
    ghz = max(float(entry.host_cpu_ghz), 0.1)
    window = ghz * 1e9 if cls.window == "scalar" else peak * cls.compute_eff
    return DeviceModel(
        name=name or f"{entry.name}-{precision}",
        peak_flops=peak,
        bandwidth=float(entry.memory_bandwidth_gbs) * 1e9,
        lanes=float(max(entry.compute_lanes, 1)),
        bytes_per_element=bytes_per_element(precision),
        compute_eff=cls.compute_eff,
        window_flops=window,
        memory_eff=cls.memory_eff,
        op_overhead_s=(cls.launch_us + cls.dispatch_kcycles / ghz) * 1e-6,
        fixed_overhead_s=cls.fixed_us * 1e-6,
        runtime=runtime_mode(runtime),
    )
