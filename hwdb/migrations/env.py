"""Alembic environment: runs on the connection hwdb passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from hwdb._engine import VERSION_TABLE
from hwdb._models import Base


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite ALTER TABLE support for future revisions
        compare_type=True,
        # Own version table: a database shared with Optuna's RDB storage (which has its own
        # Alembic history in `alembic_version`) must not mix the two.
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    if context.is_offline_mode():
        raise RuntimeError("hwdb migrations run online only (use `nas hwdb upgrade`)")
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
