"""Background searches: a bounded thread pool running :func:`nas.search.run_search`.

Each job's public record (what ``GET /v1/searches/{id}`` returns) lives in memory and, when the
manager has an ``out_dir``, in ``out_dir/<id>/job.json`` beside the search's study journal and
outputs: written atomically whenever the job changes state (and at most every
:data:`PROGRESS_SAVE_S` while it runs), read back when a manager starts, so searches survive a
restart. One that was queued or running when its server died reads ``cancelled`` then, with an
``error`` saying so; a server that shuts down cleanly cancels its searches first, and those
keep the front of their finished trials, as any cancelled search does.

Cancelling sets an event that the accuracy objective polls before every model it builds (each
proxy of each architecture, the proxy vote's calibration set included) and every short-training
step, and that the search checks after every generation; shutting the server down cancels
every job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from hwdb._models import utcnow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from api._predictors import PredictorCache, ServedModel
    from api.schemas import SearchCreate
    from hwdb import HardwareDB
    from nas.search import AccuracyObjective, LatencyModel, SearchResult
    from search_spaces import SearchSpace

__all__ = [
    "INTERRUPTED",
    "PROGRESS_SAVE_S",
    "RECORD",
    "STOPPED",
    "SearchJob",
    "SearchManager",
    "with_defaults",
]

_log = logging.getLogger("api.searches")
_ACTIVE = ("queued", "running")
#: A job's record, in its folder ``out_dir/<id>``.
RECORD = "job.json"
#: Least time between two records of a running job's progress.
PROGRESS_SAVE_S = 10.0
#: Job ids (``uuid4().hex``): the only folders of ``out_dir`` read back as jobs.
_JOB_ID = re.compile(r"[0-9a-f]{32}")
#: ``error`` of the searches a clean shutdown cancels.
STOPPED = (
    "the server stopped before the search finished; the front is that of the trials it had finished"
)
#: ``error`` of a search read back as queued or running: its server died without cancelling it.
INTERRUPTED = (
    "the server stopped before the search finished (it was {status} when the server last "
    "recorded it, at {when}); the trials it finished stay in its study on the server, but no "
    "front was collected: submit it again to search anew"
)


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
    #: The result fields of a job read back from its record (it has no ``result`` then).
    stored: dict[str, Any] | None = None
    #: Why the server, not the owner, cancelled it (its ``error`` once it stops).
    cancel_reason: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None
    #: ``time.monotonic()`` of its last record (see :data:`PROGRESS_SAVE_S`).
    saved_at: float = field(default=0.0, repr=False)
    #: What its latency models are, when the user should know it (a device priced zero-shot
    #: from its datasheet); shown first among the finished search's ``warnings``.
    latency_warnings: list[str] = field(default_factory=list)

    def public(self, *, front: bool = True) -> dict[str, Any]:
        """Fields of :class:`api.schemas.SearchPublic` (``front=False``: of
        :class:`api.schemas.SearchSummaryPublic`, without the Pareto front)."""
        res = _outcome(self.result) if self.result is not None else self.stored or {}
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "owner": self.owner,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": {"done": self.done, "total": self.request.trials},
            "request": self.request,
            "n_trials": res.get("n_trials"),
            "hypervolume": res.get("hypervolume"),
            "error": self.error,
            "front_size": res.get("front_size"),
            "warnings": [*self.latency_warnings, *(res.get("warnings") or [])],
        }
        if front:
            out["front"] = _copy(res.get("front"))
            out["contenders"] = _copy(res.get("contenders"))
        return out


def _copy(points: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    return None if points is None else list(points)


def _outcome(result: SearchResult) -> dict[str, Any]:
    """What :meth:`SearchJob.public` shows of ``result`` (and a record stores)."""
    hv = result.history[-1]["hypervolume"] if result.history else None
    return {
        "n_trials": result.n_trials,
        "hypervolume": float(hv) if hv is not None else None,
        "front_size": len(result.front),
        "warnings": list(result.warnings),
        "front": list(result.front),
        "contenders": list(result.contenders),
    }


def _read_record(path: Path) -> SearchJob:
    """The job whose record is ``path`` (``<out_dir>/<id>/job.json``), as it was stored.

    Raises:
        OSError: If the file cannot be read.
        ValueError: If it is not a record of this job (bad JSON or fields, another id).
    """
    from api.schemas import SearchPublic

    rec = SearchPublic.model_validate_json(path.read_bytes())
    if rec.id != path.parent.name:
        raise ValueError(f"it is the record of search {rec.id!r}, not of its folder's")
    stored: dict[str, Any] = {
        "n_trials": rec.n_trials,
        "hypervolume": rec.hypervolume,
        "front_size": rec.front_size,
        "warnings": list(rec.warnings),
        "front": None if rec.front is None else [p.model_dump() for p in rec.front],
        "contenders": (
            None if rec.contenders is None else [p.model_dump() for p in rec.contenders]
        ),
    }
    created = _utc(rec.created_at)
    assert created is not None  # a required field
    return SearchJob(
        id=rec.id, request=rec.request, created_at=created, owner=rec.owner,
        status=rec.status, started_at=_utc(rec.started_at), finished_at=_utc(rec.finished_at),
        done=rec.progress.done, error=rec.error, stored=stored,
    )  # fmt: skip


def _utc(when: datetime | None) -> datetime | None:
    """``when`` as an aware UTC time (a record edited by hand may hold a naive one: UTC)."""
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _hold_folder(root: Path) -> IO[str] | None:
    """An exclusive lock on the searches folder ``root`` (created if missing), held while the
    returned file is open; ``None`` (logged) when another process holds it or the folder
    cannot be written, so two services never read, cancel or forget each other's searches."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock to take
        fcntl = None  # type: ignore[assignment]
    try:
        root.mkdir(parents=True, exist_ok=True)
        fh = (root / ".lock").open("a")
    except OSError as exc:
        _log.warning("searches are kept in memory only: cannot use %s (%s)", root, exc)
        return None
    if fcntl is not None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            _log.warning(
                "searches are kept in memory only: another running service keeps its searches "
                "in %s (set NAS_API_SEARCH_OUT_DIR to give this one its own folder)",
                root,
            )
            return None
    return fh


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its folder and ``os.replace``,
    so a reader (or a restart after a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class SearchManager:
    """Queue, run, report and cancel searches; keep their records under ``out_dir``.

    Args:
        workers: Threads running searches.
        max_active: Most searches queued or running at once.
        out_dir: Where each search writes its record (``<id>/job.json``), study journal and
            outputs (``None``: nowhere; jobs live in memory only). The records found there
            are read back at once: finished searches as they were, queued or running ones as
            ``cancelled`` (their server died before they finished); an unreadable record is
            skipped with a warning.
        keep: Finished jobs remembered (oldest forgotten first, their records removed).
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
        #: Orders the writes (and removals) of records; taken before ``_lock``, never inside it.
        self._save_lock = threading.Lock()
        self._folder_lock: IO[str] | None = None
        if out_dir is not None:
            self._folder_lock = _hold_folder(Path(out_dir))
            if self._folder_lock is None:  # another service's, or not writable: memory only
                self.out_dir = None
            else:
                self._load(Path(out_dir))

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
            forgotten = self._forget_old()
        self._remove_records(forgotten)
        self._save(job)
        job.future = self._pool.submit(self._run, job, db, cache)
        return job

    def cancel(self, job_id: str, *, reason: str | None = None) -> SearchJob | None:
        """Ask ``job_id`` to stop (a queued job never starts); finished jobs are unchanged.

        Args:
            job_id: The job.
            reason: Why, when not on its owner's request: its ``error`` once it stops.
        """
        job = self.get(job_id)
        if job is None:
            return None
        with self._lock:
            if job.status in _ACTIVE and not job.cancel_event.is_set():
                job.cancel_reason = reason
            job.cancel_event.set()
            stopped = job.status == "queued"
            if stopped:
                job.status, job.finished_at = "cancelled", utcnow()
                job.error = job.cancel_reason
        if stopped:
            self._save(job)
        return job

    def shutdown(self) -> None:
        """Cancel every queued or running search and wait for the workers.

        A running search stops before the next model its objective builds (or training step),
        so this waits for about one proxy computation once scoring has begun (a predictor
        still meta-training for the search finishes that first); its finished trials stay in
        its study (under ``out_dir``), and the job reads ``cancelled`` with the front of those
        trials and :data:`STOPPED` as its ``error``.
        """
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.status in _ACTIVE]
        for job in jobs:
            self.cancel(job.id, reason=STOPPED)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.release_folder()

    def release_folder(self) -> None:
        """Let another service use ``out_dir`` (a process that exits releases it anyway)."""
        if self._folder_lock is not None:
            self._folder_lock.close()
            self._folder_lock = None

    def _forget_old(self) -> list[str]:
        """Forget the oldest finished jobs beyond ``keep`` (call with ``_lock`` held).

        Returns:
            Their ids, whose records :meth:`_remove_records` removes (outside ``_lock``).
        """
        finished = [j for j in self._jobs.values() if j.status not in _ACTIVE]
        old = sorted(finished, key=lambda j: j.created_at)[: max(0, len(finished) - self.keep)]
        for job in old:
            self._jobs.pop(job.id, None)
        return [job.id for job in old]

    def _remove_records(self, job_ids: list[str]) -> None:
        """Remove the folders of forgotten jobs: record, study and outputs."""
        if self.out_dir is None or not job_ids:
            return
        with self._save_lock:
            for job_id in job_ids:
                if not _JOB_ID.fullmatch(job_id):  # pragma: no cover - ids are uuid4 hex
                    continue
                folder = Path(self.out_dir) / job_id
                try:
                    shutil.rmtree(folder)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    _log.warning(
                        "cannot remove the folder %s of a forgotten search: %s", folder, exc
                    )

    def _save(self, job: SearchJob) -> None:
        """Write ``job``'s public record to ``out_dir/<id>/job.json`` (atomically); a failure is
        logged, never raised: the job goes on, in memory only."""
        if self.out_dir is None:
            return
        path = Path(self.out_dir) / job.id / RECORD
        with self._save_lock:  # a snapshot and its write in one go: the last write is the newest
            with self._lock:
                if self._jobs.get(job.id) is not job:  # forgotten meanwhile
                    return
                record = job.public(front=True)
            job.saved_at = time.monotonic()
            try:
                text = json.dumps(to_jsonable_python(record), indent=1, allow_nan=False)
                _write_atomically(path, text + "\n")
            except (OSError, ValueError) as exc:
                _log.warning("search %s: cannot write its record %s: %s", job.id, path, exc)

    def _load(self, root: Path) -> None:
        """Read back the records under ``root`` (see the class docstring)."""
        try:
            folders = sorted(p for p in root.iterdir() if _JOB_ID.fullmatch(p.name))
        except FileNotFoundError:
            return
        except OSError as exc:
            _log.warning("cannot read the search records in %s: %s", root, exc)
            return
        jobs: list[SearchJob] = []
        interrupted: list[SearchJob] = []
        for folder in folders:
            path = folder / RECORD
            if not path.is_file():  # a folder whose record was removed (forgotten search)
                continue
            try:
                job = _read_record(path)
                mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except (OSError, ValueError) as exc:
                _log.warning("skipping the unreadable search record %s: %s", path, exc)
                continue
            if job.status in _ACTIVE:
                when = max(mtime, job.started_at or job.created_at)
                job.error = INTERRUPTED.format(
                    status=job.status, when=when.isoformat(timespec="seconds")
                )
                job.status, job.finished_at = "cancelled", when
                interrupted.append(job)
            jobs.append(job)
        jobs.sort(key=lambda j: j.created_at)
        with self._lock:
            self._jobs = {j.id: j for j in jobs}
            forgotten = self._forget_old()
        self._remove_records(forgotten)
        for job in interrupted:  # the record says what the job now reads
            self._save(job)
        if jobs:
            _log.info("read back %d searches from %s", len(self._jobs), root)

    def _finish(self, job: SearchJob, status: str, error: str | None = None) -> None:
        with self._lock:
            job.status, job.error, job.finished_at = status, error, utcnow()
        self._save(job)

    def _progress(self, job: SearchJob, done: int) -> None:
        """The search's progress callback: count, record now and then, stop when cancelled."""
        job.done = done
        if job.cancel_event.is_set():
            raise _Cancelled
        if time.monotonic() - job.saved_at >= PROGRESS_SAVE_S:
            self._save(job)

    def _run(self, job: SearchJob, db: HardwareDB, cache: PredictorCache) -> None:
        from api.errors import public_message, status_of

        with self._lock:
            start = job.status == "queued" and not job.cancel_event.is_set()
            if start:
                job.status, job.started_at = "running", utcnow()
            else:
                job.status = "cancelled"
                job.finished_at = job.finished_at or utcnow()
                job.error = job.error or job.cancel_reason
        self._save(job)
        if not start:
            return
        from nas.search import EvaluationCancelled
        from predictors import TrainingCancelled

        try:
            job.result = self._search(job, db, cache)
        except (_Cancelled, EvaluationCancelled, TrainingCancelled):
            self._finish(job, "cancelled", job.cancel_reason)
        except Exception as exc:  # noqa: BLE001 - a failed job reports its error
            if status_of(exc) is None:
                _log.exception("search %s failed", job.id)
            self._finish(job, "failed", public_message(exc))
        else:
            self._finish(job, "completed")

    def _search(self, job: SearchJob, db: HardwareDB, cache: PredictorCache) -> SearchResult:
        """Run ``job``'s search; cancelled, it raises after setting ``job.result`` to the
        result of the trials it finished (:func:`_partial_result`)."""
        from nas.search import (
            EvaluationCancelled,
            load_latency_models,
            make_accuracy_objective,
            run_search,
        )
        from predictors import TrainingCancelled, stop_when
        from search_spaces import get_space, restrict_space

        req = job.request
        assert req.trials is not None and req.population is not None  # filled by submit
        space = get_space(req.space)
        if req.choices:
            space = restrict_space(space, req.choices)

        def get_model(
            db: HardwareDB, *, space: str, device: str, predictor: str | None
        ) -> ServedModel:
            return _model_when_free(cache, db, space, device, predictor, job)

        zero_shot = _zero_shot(db, space.name, req.devices)
        with stop_when(job.cancel_event.is_set):  # a cancel stops a meta-training too
            # the models `nas search` builds (measured medians first, a catalog device with
            # fewer than three measured archs zero-shot), each from the service's cache
            models, note = load_latency_models(
                db, space=space, devices=list(req.devices), predictor=req.predictor,
                zero_shot=zero_shot, get_model=get_model,
            )  # fmt: skip
        _log.info("search %s: %s", job.id, note)
        job.latency_warnings = [_zero_shot_warning(d, e) for d, e in zero_shot.items()]
        # "auto" left by with_defaults is the reduced SynFlow: built without a database, so a
        # table imported meanwhile does not change the objective the request names
        objective: AccuracyObjective = make_accuracy_objective(
            req.accuracy, space=space, db=None if req.accuracy == "auto" else db,
            dataset=req.dataset, seed=req.seed or 0, should_stop=job.cancel_event.is_set,
        )  # fmt: skip

        if job.cancel_event.is_set():
            raise _Cancelled
        out_dir = Path(self.out_dir) / job.id if self.out_dir else None
        study_name = f"api-{job.id}"
        t0 = time.perf_counter()
        try:
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
                study_name=study_name,
                seed=req.seed,
                out_dir=out_dir,
                progress=lambda done, _total: self._progress(job, done),
            )
        except (_Cancelled, EvaluationCancelled, TrainingCancelled):
            if out_dir is not None:
                job.result = _partial_result(
                    job.request, out_dir, study_name, space=space, accuracy=objective,
                    models=models, elapsed_s=time.perf_counter() - t0,
                )  # fmt: skip
            raise


def _partial_result(
    req: SearchCreate,
    out_dir: Path,
    study_name: str,
    *,
    space: SearchSpace[Any],
    accuracy: AccuracyObjective,
    models: dict[str, LatencyModel],
    elapsed_s: float,
) -> SearchResult | None:
    """The result of the trials a cancelled search finished (:func:`nas.search.collect_study`:
    as :func:`nas.search.run_search` builds a result, and the CLI its partial front on Ctrl-C,
    output files included).

    Returns:
        ``None`` when no trial finished (no front to show) or the study cannot be read (a
        warning is logged; the job is cancelled all the same).
    """
    from nas.search import collect_study

    assert req.trials is not None and req.population is not None  # filled by submit
    try:
        return collect_study(
            space=space, devices=list(req.devices), accuracy=accuracy, latency_models=models,
            study_name=study_name, trials=req.trials, population=req.population,
            budget_ms=req.budget_ms, budget_quantile_z=req.budget_z, out_dir=out_dir,
            elapsed_s=elapsed_s,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - the job is cancelled whether or not this works
        _log.warning(
            "%s: cannot collect the front of its finished trials", study_name, exc_info=True
        )
        return None


def _zero_shot_warning(device: str, entry: str) -> str:
    """What a search's user should know of a device priced from its datasheet (as ``nas
    search`` says it on the command line)."""
    return (
        f"latencies of {device!r} are zero-shot, from catalog entry {entry!r} (datasheet "
        "roofline; expect about 1.5x error, and no p_front): upload measurements of its front "
        "architectures to adapt a predictor to it"
    )


def _zero_shot(db: HardwareDB, space: str, devices: Sequence[str]) -> dict[str, str]:
    """The catalog entry of each of ``devices`` predicted zero-shot in ``space``
    (``predictors.catalog_only``: registered with one, fewer than three measured archs there),
    as :func:`nas.search.load_latency_models` takes them."""
    from predictors import catalog_only

    return {
        d: str(db.get_device(d).attributes["catalog"])
        for d in devices
        if catalog_only(db, space=space, device=d)
    }


def _model_when_free(
    cache: PredictorCache, db: HardwareDB, space: str, device: str, predictor: str | None,
    job: SearchJob,
) -> ServedModel:  # fmt: skip
    """``cache.get(...)``; while too many requests wait for meta-trainings (``TrainingBusy``)
    a search waits its turn instead of failing (its worker threads are few)."""
    from predictors import TrainingBusy

    while True:
        try:
            return cache.get(db, space=space, device=device, predictor=predictor)
        except TrainingBusy:
            if job.cancel_event.wait(1.0):
                raise _Cancelled from None
