"""Hardware-measurement database: devices, architectures, measurements, accuracies, artifacts.

SQLite by default (WAL, foreign keys ON), PostgreSQL via psycopg 3 when a team shares one;
Alembic migrations ship inside the package (``nas hwdb upgrade``).
"""

from __future__ import annotations

from hwdb._apikeys import ApiKey
from hwdb._engine import redact as redact_url
from hwdb._errors import (
    ChangedError,
    DuplicateError,
    HwdbError,
    ImportDataError,
    NotFoundError,
    SchemaOutdatedError,
    StorageError,
)
from hwdb._frozen import FrozenMap
from hwdb._schema import head_revision, upgrade_database
from hwdb._storage import HardwareDB, space_latency_metric
from hwdb._types import (
    DEVICE_BATCH_MAX,
    DEVICE_SETTINGS,
    DEVICE_THREADS_MAX,
    LM_METRICS,
    AccuracyIn,
    Artifact,
    Device,
    DeviceSpec,
    MeasurementIn,
    default_database_url,
    new_name_problem,
    settings_conflict,
)
from hwdb.importers.parquet import export_parquet, import_parquet

__all__ = [
    "DEVICE_BATCH_MAX",
    "DEVICE_SETTINGS",
    "DEVICE_THREADS_MAX",
    "LM_METRICS",
    "AccuracyIn",
    "ApiKey",
    "Artifact",
    "Device",
    "DeviceSpec",
    "ChangedError",
    "DuplicateError",
    "FrozenMap",
    "HardwareDB",
    "HwdbError",
    "ImportDataError",
    "MeasurementIn",
    "NotFoundError",
    "SchemaOutdatedError",
    "StorageError",
    "default_database_url",
    "new_name_problem",
    "settings_conflict",
    "export_parquet",
    "head_revision",
    "import_parquet",
    "redact_url",
    "space_latency_metric",
    "upgrade_database",
]
