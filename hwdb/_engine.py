"""Engines, SQLite PRAGMAs, and the Alembic schema check / upgrade.

SQLite connections run in WAL mode with foreign keys ON and a busy timeout; write transactions
begin with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout instead of
failing when a read lock cannot be upgraded. Migrations are serialized by the same lock on
SQLite and by a transaction-level advisory lock on PostgreSQL.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from hwdb._errors import SchemaOutdatedError, StorageError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import URL, Connection, Engine

__all__ = [
    "CONNECT_TIMEOUT_S",
    "WRITE_OPTION",
    "check_schema",
    "head_revision",
    "is_known_revision",
    "is_memory_url",
    "make_engine",
    "redact",
    "sqlite_file",
    "upgrade_schema",
]

WRITE_OPTION = "hwdb_write"
_BUSY_TIMEOUT_MS = 60_000
CONNECT_TIMEOUT_S = 10
"""libpq ``connect_timeout`` of PostgreSQL engines unless the URL or ``PGCONNECT_TIMEOUT``
sets one (psycopg's own default is 130 s per attempt)."""
_LIBPQ_DRIVERS = ("psycopg", "psycopg2")
_MIGRATION_LOCK_KEY = 74_656_421  # arbitrary constant for pg_advisory_xact_lock
_PACKAGE_DIR = Path(__file__).resolve().parent


def redact(url: str) -> str:
    """``url`` with its password hidden (for messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only used for messages
        return "<invalid url>"


def hide_userinfo_password(text: str) -> str:
    """``text`` (a URL that may not parse) with the password of ``//user:password@`` hidden."""
    return re.sub(r"(//[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, memory: bool) -> None:
    dbapi_conn.isolation_level = None  # hwdb emits BEGIN itself (see _sqlite_begin)
    cursor = dbapi_conn.cursor()
    try:
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk imports touch big indexes
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite file URL, else ``None`` (memory database, other backend, bad URL)."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - make_engine reports bad URLs
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if str(parsed.database).startswith("file:"):  # URI filenames: let SQLite decide
        return None
    return Path(str(parsed.database)).expanduser()


def parse_url(url: str) -> URL:
    """``url`` parsed by SQLAlchemy.

    Raises:
        ValueError: naming ``url`` (password hidden) and the two forms it takes.
    """
    try:
        return make_url(url)
    except Exception as exc:
        raise ValueError(
            f"`url` is not a valid database URL: {hide_userinfo_password(url)!r} (a SQLite file is "
            "'sqlite:////absolute/path.sqlite', PostgreSQL "
            "'postgresql+psycopg://user:password@host/db')."
        ) from exc


def is_memory_url(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``,
    a ``file:`` URI with ``mode=memory``), which is gone when its last connection closes."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - make_engine reports bad URLs
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    database = str(parsed.database or "")
    if database in ("", ":memory:"):
        return True
    if not database.startswith("file:"):
        return False
    name = database[len("file:") :].split("?")[0]
    return (
        name in ("", ":memory:")
        or "mode=memory" in database
        or (parsed.query.get("mode") == "memory")
    )


def _connect_args(parsed: URL, statement_timeout_ms: int = 0) -> dict[str, Any]:
    """Driver arguments of a non-SQLite engine: a bounded ``connect_timeout`` for libpq, and
    the session's ``statement_timeout`` when one is asked for (appended to any ``options``
    of the URL)."""
    if parsed.get_backend_name() != "postgresql" or parsed.get_driver_name() not in _LIBPQ_DRIVERS:
        return {}
    args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query and not os.environ.get("PGCONNECT_TIMEOUT"):
        args["connect_timeout"] = CONNECT_TIMEOUT_S  # else the user's explicit choice wins
    if statement_timeout_ms > 0:
        given = parsed.query.get("options", "")
        given = " ".join(given) if isinstance(given, tuple) else given
        args["options"] = f"{given} -c statement_timeout={int(statement_timeout_ms)}".strip()
    return args


def make_engine(url: str, *, statement_timeout_ms: int = 0) -> Engine:
    """Create an engine for ``url`` (SQLite file or memory, or PostgreSQL via psycopg 3).

    A PostgreSQL connection attempt gives up after :data:`CONNECT_TIMEOUT_S` (10 s), so a
    server that accepts TCP connections but never answers raises instead of hanging for
    psycopg's 130 s default; a ``connect_timeout`` in the URL's query (e.g.
    ``postgresql+psycopg://u:p@host/db?connect_timeout=30``) or the ``PGCONNECT_TIMEOUT``
    environment variable wins. Waiting for a pooled connection keeps SQLAlchemy's
    ``pool_timeout`` (30 s). ``statement_timeout_ms > 0``: on PostgreSQL every connection
    starts with that ``statement_timeout`` (the server cancels a longer statement, SQLSTATE
    57014); SQLite ignores it.

    Raises:
        ValueError: if ``url`` cannot be parsed.
        StorageError: if the driver is missing.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            args = _connect_args(parsed, statement_timeout_ms)
            return create_engine(parsed, pool_pre_ping=True, connect_args=args)
        except Exception as exc:
            raise StorageError(f"cannot open database {redact(url)}: {exc}") from exc
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {}
    if memory:
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        file = sqlite_file(url)
        if file is not None:  # not for SQLite URI filenames (``file:...``)
            _check_folder(file, url)
        kwargs = {"connect_args": {"timeout": _BUSY_TIMEOUT_MS / 1000}}
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", lambda c, r: _sqlite_pragmas(c, r, memory=memory))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def in_default_folder(file: Path) -> bool:
    """Whether ``file`` lies in the default database's folder (the user data folder, which is
    created on demand; any other folder must exist)."""
    import platformdirs

    return file.parent.resolve() == Path(platformdirs.user_data_dir("nas")).resolve()


def _check_folder(file: Path, url: str) -> None:
    """Create the user data folder of the default database; any other folder must exist, so
    a mistyped ``--db`` path is an error instead of a new tree of folders."""
    if in_default_folder(file):
        file.parent.mkdir(parents=True, exist_ok=True)
    elif not file.parent.is_dir():
        raise StorageError(
            f"cannot open database {redact(url)}: folder {file.parent} does not exist"
        )


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config(str(_PACKAGE_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(_PACKAGE_DIR / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The schema revision this release needs."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships revisions
        raise StorageError("hwdb ships no migrations (broken installation)")
    return head


VERSION_TABLE = "hwdb_alembic_version"
"""Alembic version table of hwdb (not Optuna's ``alembic_version``)."""


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


def _has_tables(conn: Connection) -> bool:
    return bool(set(inspect(conn).get_table_names()) & {"device", "measurement", "architecture"})


def _lock_for_migration(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is a migration this release ships."""
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several types for unknown ids
        return False


def check_schema(engine: Engine, url: str, *, create: bool) -> None:
    """Verify the schema is at head; create it in an empty database when ``create``.

    Raises:
        SchemaOutdatedError: naming the current and the needed revision and what to run.
    """
    head = head_revision()
    where = redact(url)
    with engine.execution_options(**{WRITE_OPTION: create}).begin() as conn:
        if create:
            _lock_for_migration(conn)
        current = _current_revision(conn)
        if current == head:
            return
        if current is None and not _has_tables(conn):
            if not create:
                raise SchemaOutdatedError(
                    f"database at {where} has no hwdb schema: run `nas hwdb init`"
                )
            _upgrade_on(conn)
            return
        if current is None:
            raise SchemaOutdatedError(
                f"database at {where} has tables but no hwdb revision; it was not created by hwdb"
            )
        if not is_known_revision(current):
            raise SchemaOutdatedError(
                f"database at {where} is at revision {current}, newer than this release "
                f"({head}): upgrade the hw-nas package"
            )
        raise SchemaOutdatedError(
            f"database at {where} is at revision {current}, this release needs {head}: "
            "run `nas hwdb upgrade`"
        )


def _upgrade_on(conn: Connection, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_alembic_config(conn), revision)


def upgrade_schema(engine: Engine, *, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema to ``revision`` (default head) in one transaction.

    Returns:
        The revisions before and after.
    """
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        _lock_for_migration(conn)
        before = _current_revision(conn)
        if before is not None and not is_known_revision(before):
            raise SchemaOutdatedError(
                f"database is at revision {before}, newer than this release: "
                "upgrade the hw-nas package"
            )
        _upgrade_on(conn, revision)
        after = _current_revision(conn)
    return before, after
