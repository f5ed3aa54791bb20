"""Writing a searched architecture as a model file (PyTorch checkpoint or ONNX)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_FORMATS", "export_model", "load_exported"]

EXPORT_FORMATS = ("torch", "onnx")


def export_model(arch: str, *, space: str, format: str, path: str | os.PathLike[str]) -> Path:
    """Build ``arch`` of ``space`` (freshly initialised) and write it to ``path``.

    ``torch`` writes ``{"space", "arch", "state_dict", "format_version"}`` with
    ``torch.save`` (rebuild with :func:`load_exported`); ``onnx`` exports the eval-mode model
    on the space's default workload with ``torch.onnx.export`` and checks it with ``onnx``.

    Args:
        arch: Canonical string or reference-model name.
        space: Search-space name.
        format: ``"torch"`` or ``"onnx"``.
        path: Output file (parent folders are created).

    Raises:
        ValueError: If ``format`` is unknown.
        search_spaces.InvalidArchError: If ``arch`` is not in the space.
    """
    import torch

    from search_spaces import get_space

    if format not in EXPORT_FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}.")
    sp = get_space(space)
    obj = sp.resolve(arch)
    model = sp.build(obj).eval()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "torch":
        payload = {
            "space": sp.name,
            "arch": sp.to_string(obj),
            "state_dict": model.state_dict(),
            "format_version": 1,
        }
        torch.save(payload, out)
        return out
    import onnx

    inputs = sp.example_inputs(sp.default_workload())
    torch.onnx.export(
        model, inputs, str(out), input_names=["input"], output_names=["output"], dynamo=False
    )
    onnx.checker.check_model(str(out))
    return out


def load_exported(path: str | os.PathLike[str]) -> Any:
    """Rebuild the module written by ``export_model(..., format="torch")``."""
    import torch

    from search_spaces import get_space

    payload = torch.load(Path(path), weights_only=True)
    sp = get_space(payload["space"])
    model = sp.build(sp.from_string(payload["arch"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
