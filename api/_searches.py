"""Background searches: a bounded thread pool running :func:`nas.search.run_search`.

Jobs live in memory (their outputs optionally under ``search_out_dir/<id>``). Cancelling sets
an event that the accuracy objective polls before every model it builds (each proxy of each
architecture, the proxy vote's calibration set included) and every short-training step, and
that the search checks after every generation; shutting the server down cancels every job.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdb._models import utcnow

if TYPE_CHECKING:
    from api._predictors import PredictorCache
    from api.schemas import SearchCreate
    from hwdb import HardwareDB
    from nas.search import AccuracyObjective, SearchResult

__all__ = ["SearchJob", "SearchManager", "with_defaults"]

_log = logging.getLogger("api.searches")
_ACTIVE = ("queued", "running")


class _Cancelled(Exception):
    """Raised from the progress callback to stop a cancelled search."""


def with_defaults(request: SearchCreate, *, db: HardwareDB, max_trials: int) -> SearchCreate:
    """``request`` with what it leaves to the defaults filled in as ``nas search`` fills them.

    ``accuracy="auto"`` becomes ``table`` when ``db`` holds accuracies of the space on
    ``dataset`` (otherwise it stays ``auto``: SynFlow at a reduced resolution and batch, see
    :func:`nas.search.make_accuracy_objective`); ``trials`` and ``population`` left out are
    :func:`nas.search.default_budget` of that objective (trials at most ``max_trials``).
    """
    from nas.search import default_budget, has_accuracy_table

    accuracy = request.accuracy
    if accuracy == "auto" and has_accuracy_table(db, space=request.space, dataset=request.dataset):
        accuracy = "table"
    trials, population = default_budget(accuracy)
    return request.model_copy(
        update={
            "accuracy": accuracy,
            "trials": request.trials if request.trials is not None else min(trials, max_trials),
            "population": request.population if request.population is not None else population,
        }
    )


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
            out["contenders"] = list(res.contenders) if res is not None else None
        return out


class SearchManager:
    """Queue, run, report and cancel searches.

    Args:
        workers: Threads running searches.
        max_active: Most searches queued or running at once.
        out_dir: Where each search writes its files (``None``: nowhere).
        keep: Finished jobs remembered (oldest forgotten first).
        max_per_owner: Most of the active searches one owner (API key) may hold (``None``:
            ``max_active``), so one key cannot take every slot.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        max_active: int = 4,
        out_dir: str | None = None,
        keep: int = 1000,
        max_per_owner: int | None = None,
    ) -> None:
        self.max_active = max_active
        self.max_per_owner = max_per_owner
        self.out_dir = out_dir
        self.keep = keep
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nas-search")
        self._jobs: dict[str, SearchJob] = {}
        self._lock = threading.Lock()

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

    def active(self, owner: str | None = None) -> int:
        """Searches queued or running (of ``owner`` only, when given)."""
        with self._lock:
            return self._active(owner)

    def _active(self, owner: str | None) -> int:
        return sum(
            j.status in _ACTIVE and (owner is None or j.owner == owner) for j in self._jobs.values()
        )

    def submit(
        self,
        request: SearchCreate,
        *,
        db: HardwareDB,
        cache: PredictorCache,
        owner: str | None = None,
    ) -> SearchJob | None:
        """Queue a search submitted with the API key named ``owner``; ``None`` when
        ``max_active`` searches are already active, or ``owner`` holds ``max_per_owner``
        (:meth:`active` tells which).

        Args:
            request: The search; what it leaves out is filled in by :func:`with_defaults`
                (the route has done so already, with the server's trial limit).
            db: Database of the latency models and accuracy tables.
            cache: Adapted predictors.
            owner: Name of the submitting API key.
        """
        if request.trials is None or request.population is None:
            request = with_defaults(request, db=db, max_trials=1_000_000)
        with self._lock:
            if self._active(None) >= self.max_active:
                return None
            quota = self.max_per_owner
            if quota is not None and owner is not None and self._active(owner) >= quota:
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
        """Cancel every queued or running search and wait for the workers.

        A running search stops before the next model its objective builds (or training step),
        so this waits for about one proxy computation once scoring has begun (a predictor
        still meta-training for the search finishes that first); its finished trials stay in
        its study (under ``out_dir``) and the job reads ``cancelled``.
        """
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.status in _ACTIVE]
        for job in jobs:
            self.cancel(job.id)
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
        from api.errors import public_message, status_of

        with self._lock:
            if job.status != "queued" or job.cancel_event.is_set():
                job.status = "cancelled"
                job.finished_at = job.finished_at or utcnow()
                return
            job.status, job.started_at = "running", utcnow()
        from nas.search._objectives import EvaluationCancelled
        from predictors import TrainingCancelled

        try:
            job.result = self._search(job, db, cache)
        except (_Cancelled, EvaluationCancelled, TrainingCancelled):
            self._finish(job, "cancelled")
        except Exception as exc:  # noqa: BLE001 - a failed job reports its error
            if status_of(exc) is None:
                _log.exception("search %s failed", job.id)
            self._finish(job, "failed", public_message(exc))
        else:
            self._finish(job, "completed")

    def _search(self, job: SearchJob, db: HardwareDB, cache: PredictorCache) -> SearchResult:
        from nas.search import make_accuracy_objective, measured_first, run_search
        from predictors import stop_when
        from search_spaces import get_space, restrict_space

        req = job.request
        assert req.trials is not None and req.population is not None  # filled by submit
        space = get_space(req.space)
        if req.choices:
            space = restrict_space(space, req.choices)
        with stop_when(job.cancel_event.is_set):  # a cancel stops a meta-training too
            models = {
                d: measured_first(
                    db, space=space, device=d,
                    model=_model_when_free(cache, db, space.name, d, req.predictor, job),
                )
                for d in req.devices
            }  # fmt: skip
        # "auto" left by with_defaults is the reduced SynFlow: built without a database, so a
        # table imported meanwhile does not change the objective the request names
        objective: AccuracyObjective = make_accuracy_objective(
            req.accuracy, space=space, db=None if req.accuracy == "auto" else db,
            dataset=req.dataset, seed=req.seed or 0, should_stop=job.cancel_event.is_set,
        )  # fmt: skip

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


def _model_when_free(
    cache: PredictorCache, db: HardwareDB, space: str, device: str, predictor: str | None,
    job: SearchJob,
) -> Any:  # fmt: skip
    """``cache.get(...)``; while too many requests wait for meta-trainings (``TrainingBusy``)
    a search waits its turn instead of failing (its worker threads are few)."""
    from predictors import TrainingBusy

    while True:
        try:
            return cache.get(db, space=space, device=device, predictor=predictor)
        except TrainingBusy:
            if job.cancel_event.wait(1.0):
                raise _Cancelled from None
