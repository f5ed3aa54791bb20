"""Fixtures of the predictor tests: small latency tables read from the shared HELP data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

NB201_DEVICES = ["1080ti_1", "silver_4114", "pixel3", "titanx_1", "gold_6226"]


@pytest.fixture(scope="session")
def nb201_table(shared_data: Path) -> pd.DataFrame:
    """NAS-Bench-201 latencies of five devices (index: arch strings, attrs: benchmark index)."""
    from predictors._testing import help_latency_table

    return help_latency_table("nasbench201", NB201_DEVICES)


@pytest.fixture(scope="session")
def fbnet_table(shared_data: Path) -> pd.DataFrame:
    """FBNet latencies of four devices."""
    from predictors._testing import help_latency_table

    return help_latency_table("fbnet", ["1080ti_1", "silver_4114", "titanx_1", "raspi4"])


DB_DEVICES = ["1080ti_1", "silver_4114", "pixel3", "gold_6226"]


def _build_db(url: str, table: pd.DataFrame, n_archs: int = 2000) -> None:
    """Devices of ``DEVICES`` with the first ``n_archs`` archs plus the reference archs."""
    from hwdb import DeviceSpec, HardwareDB
    from hwdb._bulk import BulkImport, MeasurementSeries
    from predictors import reference_archs

    archs = list(dict.fromkeys([*table.index[:n_archs], *reference_archs(table, "nasbench201")]))
    bidx = table.attrs["benchmark_index"]
    data = BulkImport()
    data.devices = [DeviceSpec(name=d, provenance="imported") for d in DB_DEVICES]
    data.archs["nasbench201"] = {a: int(bidx[a]) for a in archs}
    for dev in DB_DEVICES:
        values = [float(v) for v in table.loc[archs, dev]]
        data.measurements.append(MeasurementSeries(dev, "nasbench201", archs, values))
    with HardwareDB(url) as db:
        db.bulk_import(data)


@pytest.fixture(scope="session")
def nb201_db_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> str:
    """A SQLite hwdb with four NAS-Bench-201 devices (2,010 archs each, references included)."""
    from predictors._testing import help_latency_table

    url = f"sqlite:///{tmp_path_factory.mktemp('hwdb') / 'hwdb.sqlite'}"
    _build_db(url, help_latency_table("nasbench201"))
    return url
