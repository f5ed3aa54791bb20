"""Exceptions of the :mod:`hwdb` package (mapped to HTTP codes only in :mod:`api`)."""

from __future__ import annotations

__all__ = [
    "ChangedError",
    "DuplicateError",
    "HwdbError",
    "ImportDataError",
    "NotFoundError",
    "SchemaOutdatedError",
    "StorageError",
]

#: How to fill an empty database (ends messages about missing data).
FILL_HINT = "`nas hwdb init` loads the bundled dataset, `nas hwdb import ...` public benchmarks"


class HwdbError(Exception):
    """Root of every error raised by :mod:`hwdb`."""


class NotFoundError(HwdbError, LookupError):
    """A device, architecture, space or artifact that is not in the database."""


class DuplicateError(HwdbError):
    """A unique key that already exists with different content."""


class ImportDataError(HwdbError, ValueError):
    """A data file that cannot be imported; the message names file, row/key and field."""


class SchemaOutdatedError(HwdbError):
    """The database schema is older or newer than this release; the message says what to run."""


class ChangedError(HwdbError):
    """The rows an operation was confirmed for changed before it ran; nothing was written."""


class StorageError(HwdbError):
    """Any other database failure (wraps ``SQLAlchemyError``)."""
