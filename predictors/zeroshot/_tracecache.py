"""On-disk store of traced operator tables, for the fixed sets of archs that every process
traces again.

Tracing one architecture (building it on the ``meta`` device and recording its aten calls)
costs 50-500 ms on a laptop-class CPU. Some sets are traced by every process that needs them:
help+ meta-training traces the same ~230 training archs for its roofline prior (about 25 s of
a 40 s NAS-Bench-201 fit), zero-shot prediction traces the space's reference archs, and
``nas predictor evaluate --shots 0`` a device's whole query pool. Callers that trace such a
set do it inside :func:`persistent_traces`; those tables are then kept on disk, one ``.npz``
file per (space, arch, workload), and later processes load them in about a millisecond.
Search candidates are not persisted (new archs every run: the store would only grow).

Staleness: a trace depends on the search spaces' module code, on the tracer and on torch. The
files live under a folder named by a fingerprint of the source of every module of the
:mod:`search_spaces` package, of the tracer modules, and of torch's version, so editing any
of them (or upgrading torch) starts an empty folder. Only the built-in spaces are stored: a
space registered by a user's own package is not in the fingerprint.

Location: ``NAS_TRACE_CACHE`` (a folder, or ``off`` / ``0`` / ``false`` to disable), else
``platformdirs.user_cache_dir("nas")/traces``. Writes go to a temporary file that is renamed
into place, so concurrent processes (pytest-xdist workers, search workers) never read a
partial file; a file that cannot be read counts as a miss and is rewritten. ``nas cache
info`` and ``nas cache clear`` show and delete it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from predictors.zeroshot._trace import TRACE_MODES, OpTable, TraceTables

__all__ = [
    "TraceStore",
    "TraceStoreInfo",
    "clear_trace_store",
    "persistent_traces",
    "trace_store",
    "trace_store_info",
]

#: Bumped when the file layout changes (part of the fingerprint).
_FORMAT = 2
_OFF = {"off", "0", "false", "no", "none"}
_COLUMNS = ("kind", "flops", "act_elems", "weight_elems", "out_elems")
_PERSIST: contextvars.ContextVar[bool] = contextvars.ContextVar("nas_persist_traces", default=False)


@contextlib.contextmanager
def persistent_traces() -> Iterator[None]:
    """Within this block, tables that :func:`~predictors.zeroshot.op_table` traces for
    built-in spaces are also read from and written to the on-disk store."""
    token = _PERSIST.set(True)
    try:
        yield
    finally:
        _PERSIST.reset(token)


def persisting() -> bool:
    """Whether the caller is inside :func:`persistent_traces`."""
    return _PERSIST.get()


def store_root() -> Path | None:
    """The store's base folder (``NAS_TRACE_CACHE`` or the user cache folder), None when off."""
    value = os.environ.get("NAS_TRACE_CACHE", "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nas")) / "traces"


def _package_sources(package: str) -> list[Path]:
    import importlib

    module = importlib.import_module(package)
    return sorted(Path(module.__file__ or "").parent.glob("*.py"))


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """Hash of what a trace depends on: the search spaces' and the tracer's source, torch's
    version and the file format (16 hex digits)."""
    import torch

    digest = hashlib.sha256(f"format {_FORMAT}\ntorch {torch.__version__}\n".encode())
    here = Path(__file__).parent
    for path in [*_package_sources("search_spaces"), here / "_trace.py", here / "_roofline.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _pack(tables: TraceTables, key: str) -> bytes:
    arrays: dict[str, np.ndarray] = {"key": np.array(key)}
    for label, table in zip(TRACE_MODES, tables, strict=True):
        if table is None:
            continue
        for col in _COLUMNS:
            arrays[f"{label}.{col}"] = getattr(table, col)
        names, index = np.unique(np.array(table.ops, dtype=str), return_inverse=True)
        arrays[f"{label}.op_names"] = names  # a few distinct names, one index per record
        arrays[f"{label}.op_index"] = index.astype(np.int32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _unpack(data: np.lib.npyio.NpzFile, label: str) -> OpTable | None:
    if f"{label}.kind" not in data.files:
        return None
    cols = {c: data[f"{label}.{c}"] for c in _COLUMNS}
    names = data[f"{label}.op_names"].tolist()
    ops = tuple(str(names[i]) for i in data[f"{label}.op_index"].tolist())
    if any(len(v) != len(ops) for v in cols.values()):
        raise ValueError("columns of different lengths")
    return OpTable(ops=ops, **cols)


class TraceStore:
    """Operator tables on disk, under ``root/<fingerprint>/<space>/``.

    Args:
        root: Base folder (created on the first write).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folder = self.root / fingerprint()

    @staticmethod
    def _key(space: str, arch: str, workload_json: str) -> str:
        return f"{space}\n{arch}\n{workload_json}"

    def _path(self, space: str, key: str) -> Path:
        return self.folder / space / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"

    def get(self, space: str, arch: str, workload_json: str) -> TraceTables | None:
        """The stored tables (see :data:`~predictors.zeroshot._trace.TraceTables`), or None on
        a miss or a bad file."""
        key = self._key(space, arch, workload_json)
        try:
            with np.load(self._path(space, key), allow_pickle=False) as data:
                if str(data["key"]) != key:
                    return None  # a hash collision: not this arch
                graph, eager, pruned = (_unpack(data, mode) for mode in TRACE_MODES)
                if graph is None and eager is None and pruned is None:
                    return None
                return graph, eager, pruned
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return None  # missing, unreadable or truncated: trace again

    def put(self, space: str, arch: str, workload_json: str, tables: TraceTables) -> None:
        """Store ``tables`` atomically; a store that cannot be written is silently skipped."""
        key = self._key(space, arch, workload_json)
        path = self._path(space, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(_pack(tables, key))
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return  # read-only or full disk: tracing still works, only slower


_WARNED: set[Path] = set()


def trace_store() -> TraceStore | None:
    """The store the environment selects (None when ``NAS_TRACE_CACHE`` turns it off).

    A root that exists but is no folder (``NAS_TRACE_CACHE`` naming a file) cannot hold the
    store: that is said once per process, and tracing goes on without it.
    """
    root = store_root()
    if root is None:
        return None
    if root.exists() and not root.is_dir():
        if root not in _WARNED:
            _WARNED.add(root)
            warnings.warn(
                f"the trace store {root} is a file, not a folder: traced operator tables are "
                "not kept (set NAS_TRACE_CACHE to a folder, or to 'off')",
                RuntimeWarning,
                stacklevel=2,
            )
        return None
    return TraceStore(root)


@dataclass(frozen=True)
class TraceStoreInfo:
    """What :func:`trace_store_info` reports."""

    root: str | None
    fingerprint: str
    files: int
    bytes: int
    current_files: int


def _fingerprint_folders(root: Path) -> list[Path]:
    """The store's own subfolders of ``root`` (16-hex-digit names); nothing else is touched,
    whatever folder ``NAS_TRACE_CACHE`` names."""
    if not root.is_dir():
        return []
    hexdigits = set("0123456789abcdef")
    return [
        p for p in root.iterdir() if p.is_dir() and len(p.name) == 16 and set(p.name) <= hexdigits
    ]


def trace_store_info() -> TraceStoreInfo:
    """Location, size and file counts of the store (all fingerprints, and the current one)."""
    root = store_root()
    fp = fingerprint()
    if root is None:
        return TraceStoreInfo(None, fp, 0, 0, 0)
    files = [f for d in _fingerprint_folders(root) for f in d.rglob("*.npz") if f.is_file()]
    current = sum(1 for f in files if f.is_relative_to(root / fp))
    return TraceStoreInfo(str(root), fp, len(files), sum(f.stat().st_size for f in files), current)


def clear_trace_store() -> int:
    """Delete the stored tables of every fingerprint; returns how many files were removed.

    Raises:
        OSError: when a folder of the store cannot be deleted (a read-only file system,
            another user's files); what could be deleted is.
    """
    root = store_root()
    if root is None:
        return 0
    removed, failed = 0, []
    for folder in _fingerprint_folders(root):
        before = sum(1 for f in folder.rglob("*.npz") if f.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        left = sum(1 for f in folder.rglob("*.npz") if f.is_file()) if folder.exists() else 0
        removed += before - left
        if folder.exists():
            failed.append(folder)
    if failed:
        raise OSError(
            f"could not delete {len(failed)} folder(s) of the trace store, e.g. {failed[0]} "
            f"({removed} tables removed)"
        )
    return removed
