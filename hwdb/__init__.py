"""Hardware-measurement database: devices, architectures, measurements, accuracies, artifacts."""

from __future__ import annotations

from hwdb._errors import (
    DuplicateError,
    HwdbError,
    ImportDataError,
    NotFoundError,
    SchemaOutdatedError,
    StorageError,
)

__all__ = [
    "DuplicateError",
    "HwdbError",
    "ImportDataError",
    "NotFoundError",
    "SchemaOutdatedError",
    "StorageError",
]
