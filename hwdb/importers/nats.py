"""Importer of the NATS-Bench topology-space accuracy CSV (Dong et al., "NATS-Bench", TPAMI
2021; NAS-Bench-201, ICLR 2020).

Columns ``CIFAR10TestAccuracy200Epochs``, ``CIFAR100TestAccuracy200Epochs``,
``ImageNetTestAccuracy200Epochs`` (percent) and ``ArchitectureString``; row *i* is NB201 index
*i*. Stored as datasets ``cifar10``, ``cifar100``, ``ImageNet16-120`` with metric
``test_accuracy``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hwdb._bulk import AccuracySeries, BulkImport
from hwdb.importers._common import bad, check_accuracy, check_input_file, check_nb201

if TYPE_CHECKING:
    from hwdb._storage import HardwareDB

__all__ = ["COLUMNS", "import_nats_accuracy", "load_nats_accuracy"]

SOURCE = "NATS-Bench tss 200 epochs (via v-tao/nats-bench-landscape)"
COLUMNS = {
    "CIFAR10TestAccuracy200Epochs": "cifar10",
    "CIFAR100TestAccuracy200Epochs": "cifar100",
    "ImageNetTestAccuracy200Epochs": "ImageNet16-120",
}
ARCH_COLUMN = "ArchitectureString"


def load_nats_accuracy(path: str | Path) -> BulkImport:
    """Read and validate the accuracy CSV (nothing is written).

    Raises:
        ImportDataError: naming the file, the row and the column.
    """
    import pandas as pd

    file = Path(path)
    check_input_file(file, "CSV")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types
        raise bad(file, "file", "content", f"not a readable CSV ({exc})") from None
    missing = [c for c in (ARCH_COLUMN, *COLUMNS) if c not in frame.columns]
    if missing:
        raise bad(file, "header", missing[0], "missing column")
    archs = frame[ARCH_COLUMN].str.strip().tolist()
    for row, arch in enumerate(archs):
        if not check_nb201(arch):
            raise bad(file, f"row {row + 1}", ARCH_COLUMN, f"malformed NB201 string {arch!r}")
    if len(set(archs)) != len(archs):
        raise bad(file, "file", ARCH_COLUMN, "architectures are not distinct")
    data = BulkImport(archs={"nasbench201": {a: i for i, a in enumerate(archs)}})
    for column, dataset in COLUMNS.items():
        values = [
            check_accuracy(text, file, f"row {row + 1}", column)
            for row, text in enumerate(frame[column].tolist())
        ]
        data.accuracies.append(
            AccuracySeries("nasbench201", dataset, "test_accuracy", archs, values, SOURCE)
        )
    return data


def import_nats_accuracy(
    db: HardwareDB, path: str | Path, *, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Import the accuracy CSV in one transaction; re-importing changes nothing."""
    return db.bulk_import(load_nats_accuracy(path), progress=progress)
