"""Public schema maintenance: ``upgrade_database`` (``nas hwdb upgrade``)."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from hwdb._engine import head_revision, is_known_revision, make_engine, redact, upgrade_schema
from hwdb._errors import StorageError
from hwdb._types import default_database_url

__all__ = ["head_revision", "upgrade_database"]


def upgrade_database(url: str | None = None, *, revision: str = "head") -> tuple[str | None, str]:
    """Create or upgrade the schema of the database at ``url`` in one transaction.

    Args:
        url: SQLAlchemy URL; ``None`` -> :func:`hwdb.default_database_url`.
        revision: Target revision (default: this release's head).

    Returns:
        The revision before (None for an empty database) and after.

    Raises:
        SchemaOutdatedError: if the database is newer than this release.
        ValueError: if ``revision`` is neither ``"head"`` nor a revision of this release.
    """
    if not isinstance(revision, str) or (revision != "head" and not is_known_revision(revision)):
        raise ValueError(f"`revision` must be 'head' or a revision of hwdb, got {revision!r}.")
    target = url if url is not None else default_database_url()
    engine = make_engine(target)
    try:
        before, after = upgrade_schema(engine, revision=revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot upgrade database {redact(target)}: {exc}") from exc
    finally:
        engine.dispose()
    return before, after or ""
