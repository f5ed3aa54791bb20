"""Writing a searched architecture as a model file (PyTorch checkpoint or ONNX)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nas.search._errors import SearchError

__all__ = ["EXPORT_FORMATS", "export_model", "load_exported"]

EXPORT_FORMATS = ("torch", "onnx")


def export_model(
    arch: str, *, space: str, format: str, path: str | os.PathLike[str], seed: int = 0
) -> Path:
    """Build ``arch`` of ``space`` (freshly initialised) and write it to ``path``.

    ``torch`` writes ``{"space", "arch", "state_dict", "format_version"}`` with
    ``torch.save`` (rebuild with :func:`load_exported`); ``onnx`` exports the eval-mode model
    on the space's default workload with ``torch.onnx.export`` and checks it with ``onnx``.
    The file is written next to ``path`` and renamed into place, so a failed or interrupted
    export leaves whatever was at ``path`` untouched; a symbolic link is written through.

    Args:
        arch: Canonical string or reference-model name.
        space: Search-space name.
        format: ``"torch"`` or ``"onnx"``.
        path: Output file (missing parent folders are created).
        seed: Seed of the weight initialisation, so the checkpoint and the ONNX file of one
            arch hold the same weights.

    Raises:
        ValueError: If ``format`` is unknown.
        search_spaces.InvalidArchError: If ``arch`` is not in the space.
        SearchError: If ``path`` is not a regular file (a folder, a device), it cannot be
            written, or the exporter fails (nemotron_flash's mixers use operators that ONNX
            export does not support).
    """
    import torch

    from search_spaces import get_space

    if isinstance(format, str):
        format = format.strip().lower()  # "ONNX" is onnx
    if format not in EXPORT_FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an integer, got {seed!r}.")
    sp = get_space(space)
    obj = sp.resolve(arch)
    out = _target(Path(path))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = sp.build(obj).eval()
    with _staged(out, Path(path)) as tmp:
        if format == "torch":
            payload = {
                "space": sp.name,
                "arch": sp.to_string(obj),
                "state_dict": model.state_dict(),
                "format_version": 1,
            }
            try:
                torch.save(payload, tmp)
            except RuntimeError as exc:  # torch's writer reports OS errors as RuntimeError
                raise SearchError(f"cannot write {path}: {_first_line(exc)}") from exc
        else:
            _export_onnx(model, sp.example_inputs(sp.default_workload()), tmp, sp.name)
    return Path(path)


def _target(path: Path) -> Path:
    """The file an export replaces: ``path`` with symbolic links resolved, checked to be a
    regular file or nothing, under a folder (or a missing one) rather than a file."""
    out = Path(os.path.realpath(path))
    if out.is_dir():
        raise SearchError(f"cannot write {path}: it is a folder")
    if out.exists() and not out.is_file():
        raise SearchError(f"cannot write {path}: it is not a regular file")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SearchError(f"cannot write {path}: {parent} is not a folder")
            break
    return out


@contextlib.contextmanager
def _staged(out: Path, shown: Path) -> Iterator[Path]:
    """A temporary file next to ``out``, renamed onto it when the block succeeds and removed
    otherwise (Ctrl-C included). OS errors name ``shown``, the path the user gave."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise SearchError(f"cannot write {shown}: {exc.strerror or _first_line(exc)}") from exc
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make the model private
        yield tmp
        os.replace(tmp, out)
    except OSError as exc:
        raise SearchError(f"cannot write {shown}: {exc.strerror or _first_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``os.devnull`` (the TorchScript exporter prints whole
    graphs from C++ when it fails, which ``contextlib.redirect_stdout`` cannot catch)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _export_onnx(model: Any, inputs: Any, out: Path, space: str) -> None:
    """``torch.onnx.export`` + ``onnx.checker`` into ``out`` (a temporary file); any failure is
    one :class:`SearchError` (the exporters raise many unrelated types, with graph dumps)."""
    import onnx
    import torch

    try:
        with _quiet_fds(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's notices and tracer warnings
            torch.onnx.export(
                model, inputs, str(out), input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False,
            )  # fmt: skip
        onnx.checker.check_model(str(out))
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise SearchError(
            f"ONNX export of this {space} architecture failed ({_first_line(exc)}); "
            "`--format torch` writes a checkpoint"
        ) from exc


def load_exported(path: str | os.PathLike[str]) -> Any:
    """Rebuild the module written by ``export_model(..., format="torch")``."""
    import torch

    from search_spaces import get_space

    payload = torch.load(Path(path), weights_only=True)
    sp = get_space(payload["space"])
    model = sp.build(sp.from_string(payload["arch"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
