"""Replay of upload responses for ``Idempotency-Key`` / ``client_key``.

The same key with the same body returns the first successful response (concurrent retries
wait for it); the same key with another body is a 422. A request that fails (a 4xx, say)
leaves no record, so the key can be reused with a corrected body. Records live in memory
(bounded, oldest evicted); hwdb's own idempotency on (device, space, arch, metric, protocol)
guarantees that a retry after a restart still stores nothing twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.errors import ApiError

__all__ = ["IdempotencyStore"]


@dataclass
class _Record:
    fingerprint: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    response: dict[str, Any] | None = None
    #: Set when the call holding the claim failed and the record left the map.
    released: bool = False


class IdempotencyStore:
    """Bounded map: (scope, key) -> (body fingerprint, first successful response).

    Each scope (the API key that uploads) has its own ``capacity``, oldest evicted first, so
    one key's uploads cannot push another key's records out; and all scopes together hold at
    most ``total_capacity``, the least recently used evicted first, so memory stays bounded
    however many keys upload (a revoked key's records age out).

    Args:
        capacity: Most keys remembered per scope.
        total_capacity: Most keys remembered in all (default: ``TOTAL_SCOPES * capacity``).
    """

    #: Scopes' worth of records the whole store keeps by default.
    TOTAL_SCOPES = 4

    def __init__(self, capacity: int = 10_000, total_capacity: int | None = None) -> None:
        self.capacity = capacity
        self.total_capacity = (
            self.TOTAL_SCOPES * capacity if total_capacity is None else total_capacity
        )
        self._scopes: dict[str, OrderedDict[str, _Record]] = {}
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()  # all, oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(records) for records in self._scopes.values())

    def _claim(self, scope: str, key: str, fingerprint: str) -> _Record:
        with self._lock:
            records = self._scopes.setdefault(scope, OrderedDict())
            record = records.get(key)
            if record is None:
                record = records[key] = _Record(fingerprint)
                self._order[(scope, key)] = None
                while len(records) > self.capacity:
                    old, _ = records.popitem(last=False)
                    self._order.pop((scope, old), None)
                while len(self._order) > self.total_capacity:
                    (s, k), _ = self._order.popitem(last=False)
                    self._forget(s, k)
            else:
                records.move_to_end(key)
                self._order.move_to_end((scope, key))
            return record

    def _forget(self, scope: str, key: str) -> None:
        """Drop one record from its scope (and the scope once empty); hold ``_lock``."""
        records = self._scopes.get(scope)
        if records is None:
            return
        records.pop(key, None)
        if not records:
            del self._scopes[scope]

    def run(
        self,
        key: str,
        fingerprint: str,
        fn: Callable[[], dict[str, Any]],
        *,
        loc: Sequence[str | int],
        scope: str = "",
    ) -> tuple[dict[str, Any], bool]:
        """Return (response, replayed): the stored response, or ``fn()`` stored under ``key``.

        A failing ``fn`` stores nothing and releases the key, so the client may retry with
        the same key (and a corrected body).

        Raises:
            ApiError: 422 at ``loc`` if ``key`` was used with another body.
        """
        while True:
            record = self._claim(scope, key, fingerprint)
            if record.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    loc,
                    "this idempotency key was already used with a different request body",
                    type="idempotency_key_reused",
                )
            with record.lock:
                if record.response is not None:
                    return record.response, True
                if record.released:  # a concurrent first try failed: claim the key afresh
                    continue
                try:
                    response = fn()
                except BaseException:
                    self._release(scope, key, record)
                    raise
                record.response = response
                return response, False

    def _release(self, scope: str, key: str, record: _Record) -> None:
        """Forget ``record`` (its call failed), so the key may be used again, with any body."""
        record.released = True
        with self._lock:
            records = self._scopes.get(scope)
            if records is not None and records.get(key) is record:
                self._order.pop((scope, key), None)
                self._forget(scope, key)
