"""Persistence of the search study.

Optuna's NSGA-II runs ~850 trials/s in memory but only ~70/s on a journal file and ~12/s on an
RDB, because those storages write (and fsync) every single operation. A search evaluates a whole
generation at once, so :class:`BatchedJournalFileBackend` keeps the journal in memory and appends
one generation's log lines with a single write + fsync. The file is a standard Optuna journal
(``optuna.storages.journal.JournalFileBackend`` and optuna-dashboard read it); a process killed
mid-generation loses at most that generation, and a torn last line is cut off on reopen.

RDB URLs (``sqlite:///...``, ``postgresql://...``) use Optuna's ``RDBStorage`` unchanged, so that
several ``nas search`` processes can share one study.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import BaseJournalBackend, JournalStorage

from hwdb import redact_url
from nas.search._errors import SearchError

__all__ = ["BatchedJournalFileBackend", "StudyStorage", "check_storage", "open_storage"]

_RDB_PREFIXES = ("sqlite:", "postgresql", "postgres:", "mysql", "mariadb", "oracle", "mssql")


class _StorageURLError(SearchError, ValueError):
    """A ``storage`` URL of a scheme no storage has (bad input: also a ``ValueError``)."""


class BatchedJournalFileBackend(BaseJournalBackend):
    """An Optuna journal file written in batches by one process.

    Logs live in memory and reach the file on :meth:`flush`. The process holds an exclusive
    ``flock`` on ``<path>.nas-lock`` while the backend is open, so a second writer fails fast
    instead of corrupting the file (use an RDB storage for several workers). Not
    ``<path>.lock``: Optuna's own journal backend takes that name as a lock *file*, which it
    deletes after waiting 30 s for it, so a script writing with Optuna would both stall and
    remove this lock.

    Args:
        path: Journal file (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _check_journal(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh: IO[str] | None = open(_lock_path(self.path), "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            self._lock_fh = None
            raise SearchError(
                f"journal {self.path} is in use by another process; give several workers "
                "a shared RDB storage instead (--storage postgresql://...)"
            ) from None
        self._logs: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            self.path.touch()
            return
        good = 0
        with self.path.open("rb") as fh:
            data = fh.read()
        for line in data.splitlines(keepends=True):
            log = _journal_log(line) if line.endswith(b"\n") else None
            if log is None:
                break
            self._logs.append(log)
            good += len(line)
        if good != len(data):
            if b"\n" in data[good:]:  # a bad complete line: not a tail a killed writer tore
                self.close()
                where = f"bad line after byte {good}"
                raise SearchError(f"{self.path} is not a study journal ({where})")
            with self.path.open("r+b") as fh:  # torn tail from a killed writer
                fh.truncate(good)

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        """Logs from ``log_number_from`` on (in memory, including unflushed ones)."""
        return self._logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Queue ``logs`` for the next :meth:`flush`."""
        self._logs.extend(logs)
        self._pending.extend(logs)

    def flush(self) -> None:
        """Append the queued logs with one write and fsync."""
        if not self._pending:
            return
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in self._pending)
        with self.path.open("ab") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self._pending.clear()

    def close(self) -> None:
        """Flush and release the lock."""
        self.flush()
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None


def _journal_log(line: bytes) -> dict[str, Any] | None:
    """The journal record on ``line`` (a JSON object with an ``op_code``), else None."""
    try:
        log = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return log if isinstance(log, dict) and "op_code" in log else None


def _check_journal(path: Path) -> None:
    """Refuse a path that is not a study journal before anything is written next to it.

    A file whose first line is not a journal record (a database, a CSV, an RDB URL given
    without its ``sqlite:///`` prefix) would otherwise be cut to nothing as a torn tail.

    Raises:
        SearchError: for a folder, or a non-empty file that does not start with a record.
    """
    if path.is_dir():
        raise SearchError(f"--storage {path} is a folder; give a journal file or an RDB URL")
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    if first.endswith(b"\n") and _journal_log(first) is None:
        raise SearchError(
            f"--storage {path} exists and is not a study journal; give a new file, a journal "
            "of an earlier search or an RDB URL (sqlite:///FILE, postgresql://...)"
        )
    if not first.endswith(b"\n") and not first.startswith(b"{"):
        raise SearchError(f"--storage {path} exists and is not a study journal")


@dataclass
class StudyStorage:
    """An Optuna storage plus how to checkpoint and close it.

    Attributes:
        storage: The Optuna storage (``None`` for an in-memory study).
        description: URL or journal path, for messages and results.
        backend: The batched journal backend, if any.
    """

    storage: BaseStorage | None
    description: str | None
    backend: BatchedJournalFileBackend | None = None

    @property
    def is_rdb(self) -> bool:
        """Whether this is a shared RDB storage."""
        return isinstance(self.storage, optuna.storages.RDBStorage)

    def checkpoint(self) -> None:
        """Make everything told so far durable (one write per generation)."""
        if self.backend is not None:
            self.backend.flush()

    def close(self) -> None:
        """Checkpoint and release files/connections."""
        if self.backend is not None:
            self.backend.close()
        if isinstance(self.storage, optuna.storages.RDBStorage):
            self.storage.remove_session()
            self.storage.engine.dispose()


def open_storage(storage: str | None, *, out_dir: str | os.PathLike[str] | None) -> StudyStorage:
    """Open the storage named by ``storage``.

    Args:
        storage: An RDB URL (``sqlite:///f.db``, ``postgresql://...``), a journal file path
            (optionally ``journal:PATH``), or ``None``: ``OUT/study.journal`` when ``out_dir``
            is given, else an in-memory study (nothing persisted).
        out_dir: The search's output folder.

    Raises:
        ValueError: If ``storage`` is an empty string.
    """
    kind, text = _parse(storage, out_dir)
    if kind == "memory":
        return StudyStorage(None, None)
    if kind == "rdb":
        return StudyStorage(_open_rdb(text), redact_url(text))
    path = Path(text)
    backend = BatchedJournalFileBackend(path)
    return StudyStorage(JournalStorage(backend), str(path), backend)


def _parse(storage: str | None, out_dir: str | os.PathLike[str] | None) -> tuple[str, str]:
    """``("memory" | "rdb" | "journal", URL or path)`` of a ``storage`` argument.

    Raises:
        ValueError: If ``storage`` is empty or an URL of an unknown scheme (then also a
            :class:`SearchError`).
    """
    if storage is not None and not storage.strip():
        raise ValueError("`storage` must be a URL or a file path, got an empty string.")
    if storage is None:
        if out_dir is None:
            return "memory", ""
        storage = str(Path(out_dir) / "study.journal")
    text = storage.strip()
    if text.lower().startswith(_RDB_PREFIXES):
        return "rdb", text
    scheme = text.split("://", 1)[0] if "://" in text else None
    if scheme is not None and "/" not in scheme:
        raise _StorageURLError(
            f"`storage` {redact_url(text)!r} has an unknown URL scheme {scheme!r} (use "
            "sqlite:///FILE, postgresql://..., mysql://... or a journal file path)."
        )
    return "journal", str(Path(text.removeprefix("journal:")).expanduser())


def storage_file(storage: str | None, *, out_dir: str | os.PathLike[str] | None) -> Path | None:
    """The file ``storage`` keeps its studies in (a journal, or a SQLite URL's file), else
    ``None`` (memory, a database server)."""
    kind, text = _parse(storage, out_dir)
    if kind == "journal":
        return Path(text)
    if kind == "rdb" and text.lower().startswith("sqlite:///"):
        from hwdb._engine import sqlite_file

        return sqlite_file(text)
    return None


def check_storage(storage: str | None, *, out_dir: str | os.PathLike[str] | None) -> None:
    """Check ``storage`` before anything expensive runs (it is opened later by the search):
    its form, and for a journal that it is one and that no other process holds it.

    Raises:
        ValueError: If ``storage`` is empty or an URL of an unknown scheme.
        SearchError: If the journal is not a study journal or is in use.
    """
    kind, text = _parse(storage, out_dir)
    if kind != "journal":
        return
    path = Path(text)
    _check_journal(path)
    lock = _lock_path(path)
    if not lock.is_file():
        return  # nobody has opened this journal
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SearchError(
                f"journal {path} is in use by another process; give several workers "
                "a shared RDB storage instead (--storage postgresql://...)"
            ) from None
        fcntl.flock(fh, fcntl.LOCK_UN)


def _lock_path(journal: Path) -> Path:
    """The file whose ``flock`` marks ``journal`` open (:class:`BatchedJournalFileBackend`)."""
    return journal.with_name(f"{journal.name}.nas-lock")


def _open_rdb(url: str, *, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Open Optuna's RDB storage, retrying while another worker creates the schema.

    Two workers starting at once on an empty PostgreSQL database race to create Optuna's
    tables and enum types; the loser sees a duplicate-object error and succeeds on retry.
    """
    import time

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, skip_compatibility_check=False)
        except Exception as exc:  # noqa: BLE001 - any driver/connect error becomes one line
            if attempt == attempts - 1:
                shown = redact_url(url)
                reason = str(exc).replace(url, shown)
                raise SearchError(f"cannot open storage {shown!r}: {reason}") from exc
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover
