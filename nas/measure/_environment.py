"""The machine and software a measurement was taken on (stored as the measurement's environment)."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from typing import Any

from nas.measure._allocator import allocator_setting

__all__ = ["cpu_model", "environment"]


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _gpu_driver() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def _gpu(device_type: str) -> dict[str, Any]:
    if device_type != "cuda":
        return {}
    import torch

    index = torch.cuda.current_device()
    return {
        "gpu": torch.cuda.get_device_name(index),
        "gpu_capability": ".".join(map(str, torch.cuda.get_device_capability(index))),
        "gpu_driver": _gpu_driver(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),  # type: ignore[no-untyped-call]
    }


def environment(
    *, threads: int, runtime: str, device_type: str = "cpu", retain_heap: bool = True
) -> dict[str, Any]:
    """JSON-ready description of the measuring machine.

    Args:
        threads: Threads the runtime was set to use.
        runtime: ``torch`` or ``onnxruntime``.
        device_type: ``cpu`` or ``cuda``.
        retain_heap: Whether timing ran with :func:`nas.measure._allocator.retain_freed_memory`.

    Returns:
        CPU model, logical/usable cores, threads, load average, OS, Python, torch /
        onnxruntime / numpy versions, GPU name/driver (CUDA only), and a hash of the host
        name (never the name itself).
    """
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not available
        load = []
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]
    env: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "threads": threads,
        "allocator": allocator_setting() if retain_heap else "system default",
        "torch_threads": torch.get_num_threads(),
        "runtime": runtime,
        "device_type": device_type,
        "loadavg": load,
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "hostname_sha256": host,
    }
    if runtime == "onnxruntime":
        env["onnxruntime"] = _version("onnxruntime") or _version("onnxruntime-gpu")
        env["onnx"] = _version("onnx")
    env.update(_gpu(device_type))
    return env
