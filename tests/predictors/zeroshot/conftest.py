"""Fixtures of the zero-shot tests: a small hwdb built from the shared HELP data."""

from __future__ import annotations

from pathlib import Path

import pytest

ZS_DEVICES = ["1080ti_1", "silver_4114", "pixel3", "gold_6226"]


@pytest.fixture(scope="session")
def zs_db_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> str:
    """Four NAS-Bench-201 devices: the 900-arch HELP training pool, 40 query archs, references."""
    from hwdb import DeviceSpec, HardwareDB
    from hwdb._bulk import BulkImport, MeasurementSeries
    from predictors import reference_archs
    from predictors._testing import help_latency_table

    table = help_latency_table("nasbench201")
    archs = list(dict.fromkeys([*table.index[:940], *reference_archs(table, "nasbench201")]))
    bidx = table.attrs["benchmark_index"]
    data = BulkImport()
    data.devices = [DeviceSpec(name=d, provenance="imported") for d in ZS_DEVICES]
    data.archs["nasbench201"] = {a: int(bidx[a]) for a in archs}
    for dev in ZS_DEVICES:
        values = [float(v) for v in table.loc[archs, dev]]
        data.measurements.append(MeasurementSeries(dev, "nasbench201", archs, values))
    url = f"sqlite:///{tmp_path_factory.mktemp('zs') / 'hwdb.sqlite'}"
    with HardwareDB(url) as db:
        db.bulk_import(data)
    return url
