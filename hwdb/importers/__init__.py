"""Importers of public latency/accuracy datasets, one module per format.

Each ``load_*`` reads and validates a file without touching the database; each ``import_*``
writes it in ONE transaction (a bad file imports nothing; re-importing changes nothing).
"""

from __future__ import annotations

from hwdb.importers._common import known_metrics
from hwdb.importers.csvfile import import_csv, load_csv
from hwdb.importers.help import import_help, load_help
from hwdb.importers.latbench import import_latbench, load_latbench
from hwdb.importers.nats import import_nats_accuracy, load_nats_accuracy
from hwdb.importers.parquet import import_parquet, load_parquet

__all__ = [
    "import_csv",
    "import_help",
    "import_latbench",
    "import_nats_accuracy",
    "import_parquet",
    "known_metrics",
    "load_csv",
    "load_help",
    "load_latbench",
    "load_nats_accuracy",
    "load_parquet",
]
