"""Service settings read from the environment (``NAS_API_*``), one frozen dataclass.

pydantic-settings is not a declared dependency, so this is a plain dataclass; like the
template's ``Settings`` it is provided through the cached :func:`api.deps.get_settings`
dependency, which tests override.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["MAX_STATEMENT_TIMEOUT_S", "SEARCHES_IN_MEMORY", "Settings", "search_dir"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"`{name}` must be a boolean (1/0, true/false), got {raw!r}.")


#: A web origin: scheme, host and optional port, nothing after them (browsers send exactly
#: that in ``Origin``, so ``https://a.example/`` would never match).
_ORIGIN = re.compile(r"https?://[^/\s:]+(:\d{1,5})?")

#: Longest statement timeout PostgreSQL accepts (``statement_timeout`` is an int of
#: milliseconds).
MAX_STATEMENT_TIMEOUT_S = 2_147_483.647

#: Text settings that an empty variable leaves unset.
_OPTIONAL_TEXT = ("database_url", "search_out_dir", "cors_origins")


#: ``search_out_dir`` value that keeps searches in memory only.
SEARCHES_IN_MEMORY = "off"


def search_dir(search_out_dir: str | None, database_url: str | None) -> str | None:
    """The folder a service of ``database_url`` keeps its searches in.

    Args:
        search_out_dir: The setting: a folder, :data:`SEARCHES_IN_MEMORY` (``off``: none, the
            searches live in memory only), or ``None``: one folder per database, ``<name>
            .searches`` beside a SQLite file (the default database lives in the user data
            folder), else (PostgreSQL) ``searches/<host>-<database>-<hash>`` in the user data
            folder (``platformdirs.user_data_dir("nas")``); none for an in-memory SQLite.
        database_url: The service's database (``None``: :func:`hwdb.default_database_url`).

    Returns:
        An absolute path, or ``None`` (in memory only).
    """
    import hashlib

    import platformdirs
    from sqlalchemy.engine import make_url

    from hwdb import default_database_url
    from hwdb._engine import is_memory_url, sqlite_file

    if search_out_dir is not None:
        if search_out_dir.strip().lower() == SEARCHES_IN_MEMORY:
            return None
        return os.path.abspath(search_out_dir)
    url = database_url if database_url is not None else default_database_url()
    file = sqlite_file(url)
    if file is not None:
        return os.path.abspath(file.parent / f"{file.name}.searches")
    if is_memory_url(url):  # nothing outlives the process anyway
        return None
    try:  # where the database is, never its credentials (query included): a rotated
        # password keeps the folder, and no secret reaches a path
        parsed = make_url(url)
        parts = (parsed.host or "local", parsed.port, parsed.database)
        where = "-".join(str(x) for x in parts if x)
        ident = f"{parsed.get_backend_name()}://{where}"
    except Exception:  # noqa: BLE001 - a URL the engine will refuse anyway: a stable name
        where, ident = "database", "unparsed"
    tail = re.sub(r"[^A-Za-z0-9_.-]+", "-", where).strip("-")[:60]
    digest = hashlib.sha1(ident.encode()).hexdigest()[:10]
    root = Path(platformdirs.user_data_dir("nas")) / "searches"
    return os.path.abspath(root / f"{tail}-{digest}")


@dataclass(frozen=True)
class Settings:
    """Configuration of the REST service.

    Attributes:
        database_url: hwdb URL (``None``: ``NAS_DATABASE_URL`` or the user file).
        require_key_for_reads: Also require an API key for GET and ``/v1/predict``.
        max_body_bytes: Largest accepted request body.
        max_batch: Most measurements in one upload (at most ``api.schemas.MAX_LIST_ITEMS``,
            100,000, as are the two limits below).
        max_predict_archs: Most architectures in one ``/v1/predict`` request.
        max_zero_shot_archs: Most architectures in one ``/v1/predict`` request for a device
            predicted zero-shot (its datasheet roofline traces every architecture's model).
        max_search_trials: Most trials one search may ask for.
        max_active_searches: Most searches queued or running at once (more: 429).
        max_searches_per_key: Most of those one API key may hold (more: 429); below
            ``max_active_searches`` (the defaults: 3 of 4), one key leaves a slot to others.
        search_workers: Worker threads running searches.
        predictor_revalidate_s: How long a cached adapted predictor is used before the
            device's measurement count is checked again.
        idempotency_capacity: Upload responses remembered for ``Idempotency-Key`` replays,
            per API key (and four times that in all, the least recently used forgotten
            first).
        search_out_dir: Folder of the searches: each one's record (``<id>/job.json``, read back
            when the service starts, so searches survive a restart) and its study and outputs
            (``<id>/``). ``None``: one folder per database (:func:`search_dir`); ``off``: in
            memory only. A folder another running service holds is not shared: the second
            service keeps its searches in memory and says so.
        cors_origins: Comma-separated origins whose browser pages may call the service
            (``*``: any; ``None``: no CORS headers, same-origin only).
        statement_timeout_s: On PostgreSQL, longest a statement of the service's database
            connections may run before the server cancels it (a 503 ``query_timeout``); each
            connection the service opens sets ``statement_timeout``, so a slow read or a lock
            wait cannot hold a worker and a connection without bound. ``0``: no limit.
            SQLite, and the command line's connections, are never limited.
    """

    database_url: str | None = None
    require_key_for_reads: bool = False
    max_body_bytes: int = 32 * 1024 * 1024
    max_batch: int = 10_000
    max_predict_archs: int = 10_000
    max_zero_shot_archs: int = 500
    max_search_trials: int = 20_000
    max_active_searches: int = 4
    max_searches_per_key: int = 3
    search_workers: int = 1
    predictor_revalidate_s: float = 2.0
    idempotency_capacity: int = 10_000
    search_out_dir: str | None = None
    cors_origins: str | None = None
    statement_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_batch",
            "max_predict_archs",
            "max_zero_shot_archs",
            "max_search_trials",
            "max_active_searches",
            "max_searches_per_key",
            "search_workers",
            "idempotency_capacity",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be greater than or equal to 1, got {value!r}.")
        from api.schemas import MAX_LIST_ITEMS

        for name in ("max_batch", "max_predict_archs", "max_zero_shot_archs"):
            if getattr(self, name) > MAX_LIST_ITEMS:
                raise ValueError(
                    f"`{name}` must be at most {MAX_LIST_ITEMS} (longer lists are refused before "
                    f"they are read), got {getattr(self, name)!r}."
                )
        for origin in (self.cors_origins or "").split(","):
            origin = origin.strip()
            if origin and origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"`cors_origins` must list origins such as https://dash.example or "
                    f"http://localhost:3000 (scheme, host, optional port; no path), got "
                    f"{origin!r}."
                )
        if not self.predictor_revalidate_s >= 0:
            raise ValueError(
                "`predictor_revalidate_s` must be greater than or equal to 0, "
                f"got {self.predictor_revalidate_s!r}."
            )
        timeout = self.statement_timeout_s
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 <= timeout <= MAX_STATEMENT_TIMEOUT_S
        ):
            raise ValueError(
                "`statement_timeout_s` must be a number of seconds from 0 (no limit) to "
                f"{MAX_STATEMENT_TIMEOUT_S}, got {timeout!r}."
            )

    def statement_timeout_ms(self) -> int:
        """``statement_timeout_s`` in PostgreSQL's milliseconds (``0``: no limit); a positive
        timeout under half a millisecond is 1 ms, not 0, which would turn the limit off."""
        if self.statement_timeout_s == 0:
            return 0
        return max(1, round(self.statement_timeout_s * 1000))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``NAS_API_<FIELD>`` variables (and ``NAS_DATABASE_URL``).

        Raises:
            ValueError: naming the variable whose value cannot be parsed or is out of range.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        read: dict[str, tuple[str, str]] = {}  # field -> (variable, raw value)
        for f in fields(cls):
            var = "NAS_DATABASE_URL" if f.name == "database_url" else f"NAS_API_{f.name.upper()}"
            raw = env.get(var)
            if raw is None or (raw.strip() == "" and f.name in _OPTIONAL_TEXT):
                continue
            default = f.default
            read[f.name] = (var, raw)
            try:
                if isinstance(default, bool):
                    values[f.name] = _bool(var, raw)
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ValueError(f"`{var}` has an invalid value {raw!r}: {exc}") from exc
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:  # __post_init__'s range checks name the field, not the variable
            for name, (var, raw) in read.items():
                if str(exc).startswith(f"`{name}` "):
                    raise ValueError(f"`{var}` has an invalid value {raw!r}: {exc}") from exc
            raise
