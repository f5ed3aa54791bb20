"""Migrations, the startup schema check and SQLite connection settings."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from hwdb import HardwareDB, SchemaOutdatedError, head_revision, upgrade_database
from hwdb._engine import VERSION_TABLE, make_engine, upgrade_schema
from hwdb._models import Base


def test_models_match_migrations(db_url: str) -> None:
    HardwareDB(db_url).close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_old_revision_needs_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert upgrade_schema(engine, revision="v0.1.0.a") == (None, "v0.1.0.a")
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutdatedError) as info:
        HardwareDB(db_url)
    message = str(info.value)
    assert "is at revision v0.1.0.a" in message and head_revision() in message
    assert "run `nas hwdb upgrade`" in message
    assert upgrade_database(db_url) == ("v0.1.0.a", head_revision())
    with HardwareDB(db_url, create=False) as db:
        assert db.stats() == {"spaces": {}, "devices": 0}


def test_empty_db_without_create(db_url: str) -> None:
    with pytest.raises(SchemaOutdatedError, match="nas hwdb init"):
        HardwareDB(db_url, create=False)


def test_newer_revision_is_refused(db_url: str) -> None:
    HardwareDB(db_url).close()
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE hwdb_alembic_version SET version_num = 'v9.9.9.z'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutdatedError, match="newer than this release"):
        HardwareDB(db_url)


def test_sqlite_pragmas(sqlite_url: str) -> None:
    HardwareDB(sqlite_url).close()
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000
    finally:
        engine.dispose()


def test_in_memory_sqlite() -> None:
    with HardwareDB("sqlite://") as db:
        assert db.stats() == {"spaces": {}, "devices": 0}
