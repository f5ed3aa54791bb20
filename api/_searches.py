"""Background searches: a bounded thread pool running :func:`nas.search.run_search`.

Jobs live in memory (their outputs optionally under ``search_out_dir/<id>``). Cancelling sets
an event that the search checks before every architecture it scores (a proxy or short-train
generation can take minutes) and after every generation.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwdb._models import utcnow

if TYPE_CHECKING:
    from api._predictors import PredictorCache
    from api.schemas import SearchCreate
    from hwdb import HardwareDB
    from nas.search import AccuracyObjective, SearchResult

__all__ = ["SearchJob", "SearchManager"]

_log = logging.getLogger("api.searches")
_ACTIVE = ("queued", "running")


class _Cancelled(Exception):
    """Raised from the progress callback or the objective to stop a cancelled search."""


class _CancellableAccuracy:
    """An accuracy objective scored one architecture at a time, checking ``event`` before
    each, so a cancelled search stops within one architecture's evaluation."""

    def __init__(self, inner: Any, event: threading.Event) -> None:
        self.inner = inner
        self.name = inner.name
        self.event = event

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        out = []
        for arch in archs:
            if self.event.is_set():
                raise _Cancelled
            out.append(np.asarray(self.inner.evaluate([arch]), dtype=float).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0)


@dataclass
class SearchJob:
    """State of one search (read by ``GET /v1/searches/{id}``)."""

    id: str
    request: SearchCreate
    created_at: datetime
    owner: str | None = None
    status: str = "queued"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    done: int = 0
    result: SearchResult | None = None
    error: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None

    def public(self, *, front: bool = True) -> dict[str, Any]:
        """Fields of :class:`api.schemas.SearchPublic` (``front=False``: of
        :class:`api.schemas.SearchSummaryPublic`, without the Pareto front)."""
        res = self.result
        hv = res.history[-1]["hypervolume"] if res is not None and res.history else None
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "owner": self.owner,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": {"done": self.done, "total": self.request.trials},
            "request": self.request,
            "n_trials": res.n_trials if res is not None else None,
            "hypervolume": float(hv) if hv is not None else None,
            "error": self.error,
            "front_size": len(res.front) if res is not None else None,
            "warnings": res.warnings if res is not None else [],
        }
        if front:
            out["front"] = list(res.front) if res is not None else None
        return out


class SearchManager:
    """Queue, run, report and cancel searches.

    Args:
        workers: Threads running searches.
        max_active: Most searches queued or running at once.
        out_dir: Where each search writes its files (``None``: nowhere).
        keep: Finished jobs remembered (oldest forgotten first).
    """

    def __init__(
        self, *, workers: int = 1, max_active: int = 4, out_dir: str | None = None, keep: int = 1000
    ) -> None:
        self.max_active = max_active
        self.out_dir = out_dir
        self.keep = keep
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nas-search")
        self._jobs: dict[str, SearchJob] = {}
        self._lock = threading.Lock()

    def active(self) -> int:
        """Searches queued or running."""
        with self._lock:
            return sum(j.status in _ACTIVE for j in self._jobs.values())

    def get(self, job_id: str) -> SearchJob | None:
        """The job ``job_id``, if known (ids are hex: ``ABC...`` is ``abc...``)."""
        with self._lock:
            return self._jobs.get(job_id.strip().lower())

    def recent(
        self, *, limit: int, status: str | None = None, owner: str | None = None
    ) -> tuple[list[SearchJob], int]:
        """The ``limit`` most recent jobs (newest first), optionally only those in ``status``
        and only those submitted with the API key named ``owner``.

        Returns:
            The jobs and how many match in all.
        """
        with self._lock:
            jobs = [
                j for j in reversed(self._jobs.values())
                if status in (None, j.status) and owner in (None, j.owner)
            ]  # fmt: skip
        jobs.sort(key=lambda j: j.created_at, reverse=True)  # stable: ties stay newest first
        return jobs[:limit], len(jobs)

    def submit(
        self,
        request: SearchCreate,
        *,
        db: HardwareDB,
        cache: PredictorCache,
        owner: str | None = None,
    ) -> SearchJob | None:
        """Queue a search submitted with the API key named ``owner``; ``None`` when
        ``max_active`` searches are already active."""
        with self._lock:
            if sum(j.status in _ACTIVE for j in self._jobs.values()) >= self.max_active:
                return None
            job = SearchJob(id=uuid.uuid4().hex, request=request, created_at=utcnow(), owner=owner)
            self._jobs[job.id] = job
            self._forget_old()
        job.future = self._pool.submit(self._run, job, db, cache)
        return job

    def cancel(self, job_id: str) -> SearchJob | None:
        """Ask ``job_id`` to stop (a queued job never starts); finished jobs are unchanged."""
        job = self.get(job_id)
        if job is None:
            return None
        job.cancel_event.set()
        with self._lock:
            if job.status == "queued":
                job.status, job.finished_at = "cancelled", utcnow()
        return job

    def shutdown(self) -> None:
        """Cancel everything and wait for the workers."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status not in _ACTIVE]
        for job in sorted(finished, key=lambda j: j.created_at)[
            : max(0, len(finished) - self.keep)
        ]:
            self._jobs.pop(job.id, None)

    def _finish(self, job: SearchJob, status: str, error: str | None = None) -> None:
        with self._lock:
            job.status, job.error, job.finished_at = status, error, utcnow()

    def _run(self, job: SearchJob, db: HardwareDB, cache: PredictorCache) -> None:
        from api.errors import status_of

        with self._lock:
            if job.status != "queued" or job.cancel_event.is_set():
                job.status = "cancelled"
                job.finished_at = job.finished_at or utcnow()
                return
            job.status, job.started_at = "running", utcnow()
        try:
            job.result = self._search(job, db, cache)
        except _Cancelled:
            self._finish(job, "cancelled")
        except Exception as exc:  # noqa: BLE001 - a failed job reports its error
            if status_of(exc) is None:
                _log.exception("search %s failed", job.id)
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._finish(job, "failed", text)
        else:
            self._finish(job, "completed")

    def _search(self, job: SearchJob, db: HardwareDB, cache: PredictorCache) -> SearchResult:
        from nas.search import TableAccuracy, make_accuracy_objective, measured_first, run_search
        from search_spaces import get_space, restrict_space

        req = job.request
        space = get_space(req.space)
        if req.choices:
            space = restrict_space(space, req.choices)
        models = {
            d: measured_first(
                db, space=space, device=d,
                model=cache.get(db, space=space.name, device=d, predictor=req.predictor),
            )
            for d in req.devices
        }  # fmt: skip
        objective: AccuracyObjective = make_accuracy_objective(
            req.accuracy, space=space, db=db, dataset=req.dataset, seed=req.seed or 0
        )
        if not isinstance(objective, TableAccuracy):  # a table lookup is instant
            objective = _CancellableAccuracy(objective, job.cancel_event)

        def progress(done: int, _total: int) -> None:
            job.done = done
            if job.cancel_event.is_set():
                raise _Cancelled

        if job.cancel_event.is_set():
            raise _Cancelled
        out_dir = Path(self.out_dir) / job.id if self.out_dir else None
        return run_search(
            space=space,
            devices=list(req.devices),
            accuracy=objective,
            latency_models=models,
            trials=req.trials,
            population=req.population,
            local_search=req.local_search,
            budget_ms=req.budget_ms,
            budget_quantile_z=req.budget_z,
            study_name=f"api-{job.id}",
            seed=req.seed,
            out_dir=out_dir,
            progress=progress,
        )
