"""Latency-model cache and architecture-string validation for the service.

An adapted model is cached per (database, space, device, predictor) together with the
device's measurement count; after ``revalidate_s`` the count is read again and the model
re-adapted when it changed (uploads through the API invalidate at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from api.errors import ApiError

if TYPE_CHECKING:
    from hwdb import HardwareDB
    from predictors import AdaptedLatencyModel
    from predictors._progress import WaitLine
    from predictors.zeroshot import RooflineLatencyModel

    #: What the service predicts with: a model adapted to the device's measurements, or the
    #: datasheet roofline of a catalog device not measured in the space yet.
    ServedModel = AdaptedLatencyModel | RooflineLatencyModel

__all__ = ["PredictorCache", "canonical_arch", "canonical_archs", "check_space"]

Key = tuple[str, str, str, str]


@lru_cache(maxsize=131_072)
def canonical_arch(space: str, text: str) -> str:
    """Canonical form of ``text`` in the registered space ``space``; a reference-model name
    (``mnasnet-a1``, as ``nas spaces show`` and ``nas export`` take) is its canonical string
    (``SearchSpace.resolve``, as the CLI reads an architecture).

    Raises:
        InvalidArchError: if ``text`` is neither an architecture nor a reference model (a
            name close to a reference model's, ``mnasnet-a2``, is told which one it may mean).
    """
    from search_spaces import get_space

    sp = get_space(space)
    if not isinstance(text, str) or not text.strip():  # its message: the string is empty
        return sp.canonicalize(text)
    return sp.to_string(sp.resolve(text))


def canonical_archs(space: str, archs: Sequence[str], loc: Sequence[str | int]) -> list[str]:
    """Canonicalize every string; the first bad one is a 422 naming ``loc + [index]``."""
    out = []
    for i, text in enumerate(archs):
        try:
            out.append(canonical_arch(space, text))
        except Exception as exc:  # noqa: BLE001 - any parse failure is bad user input
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ApiError(
                422, [*loc, i], f"invalid architecture: {msg}", type="invalid_arch"
            ) from exc
    return out


def check_space(space: str, loc: Sequence[str | int]) -> None:
    """A 422 ``unknown_space`` at ``loc`` for a space that is not registered."""
    from search_spaces import list_spaces

    known = list_spaces()
    if space not in known:
        raise ApiError(
            422, list(loc), f"unknown search space {space!r} (known: {', '.join(sorted(known))})",
            type="unknown_space",
        )  # fmt: skip


@dataclass
class _Entry:
    model: ServedModel
    stamp: tuple[Any, ...]  # ``HardwareDB.measurement_stamp`` of the rows it was adapted to
    checked: float


class PredictorCache:
    """Thread-safe cache of adapted latency models.

    Args:
        revalidate_s: Seconds a cached model is served without re-reading the stamp of its
            device's rows (:meth:`hwdb.HardwareDB.measurement_stamp`).
    """

    def __init__(self, revalidate_s: float = 2.0) -> None:
        self.revalidate_s = revalidate_s
        self._entries: dict[Key, _Entry] = {}
        self._locks: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self._line: WaitLine | None = None  # made on first need: predictors imports torch

    @staticmethod
    def key(db: HardwareDB, space: str, device: str, predictor: str | None) -> Key:
        """Cache key of a model."""
        from predictors import DEFAULT_PREDICTOR

        return (db.url, space, device, predictor or DEFAULT_PREDICTOR)

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, key: Key) -> ServedModel | None:
        """The cached model if it needs no revalidation now (no I/O; safe in the event loop)."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.checked < self.revalidate_s:
            return entry.model
        return None

    def get(
        self,
        db: HardwareDB,
        *,
        space: str,
        device: str,
        predictor: str | None = None,
        train: bool = True,
    ) -> ServedModel:
        """The model of ``device`` (``predictors.latency_model``: adapting, or meta-training,
        on first need unless ``train`` is False; the datasheet roofline of a catalog device
        without measurements).

        Blocking: call it from a worker thread.
        """
        from predictors import latency_metric, latency_model

        key = self.key(db, space, device, predictor)
        model = self.fresh(key)
        if model is not None:
            return model
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        # requests for one model wait for the one that builds it (a meta-training may take
        # minutes): in a bounded line, stopped by their ``predictors.stop_when`` callback
        self._wait_line().acquire(lock, "this model to be built")
        try:
            # changes with any row added, deleted or replaced, by this server or another
            # process (``nas hwdb delete``, a board writing to the database directly)
            stamp = db.measurement_stamp(space=space, device=device, metric=latency_metric(space))
            entry = self._entries.get(key)
            if entry is not None and entry.stamp == stamp:
                entry.checked = time.monotonic()
                return entry.model
            model = latency_model(db, space=space, device=device, predictor=predictor, train=train)
            self._entries[key] = _Entry(model, stamp, time.monotonic())
            return model
        finally:
            lock.release()

    def _wait_line(self) -> WaitLine:
        """The line requests wait in for another request's model build (bounded, stoppable;
        :class:`predictors._progress.WaitLine`)."""
        with self._lock:
            if self._line is None:
                from predictors._progress import WaitLine
                from predictors._service import MAX_TRAINING_WAITERS

                self._line = WaitLine(MAX_TRAINING_WAITERS)
            return self._line

    def invalidate(self, db_url: str, device: str) -> None:
        """Forget every model of ``device`` in the database at ``db_url``."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == db_url and k[2] == device]:
                self._entries.pop(key, None)
