"""One latency rule and one accuracy rule for every write path (the row API, the importers,
``bulk_import``'s series), one list of precisions, each priced by the device catalog, and the
row-list check of ``replace_run_measurements``."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from hwdb import AccuracyIn, DeviceSpec, HardwareDB, ImportDataError, MeasurementIn
from hwdb._bulk import AccuracySeries, BulkImport, MeasurementSeries
from hwdb._types import (
    MAX_ACCURACY,
    MAX_LATENCY_MS,
    MIN_ACCURACY,
    MIN_LATENCY_MS,
    PRECISIONS,
    accuracy_problem,
    latency_problem,
)
from hwdb.catalog import CatalogEntry, get_entry, load_catalog
from hwdb.importers._common import check_accuracy, check_latency
from hwdb.importers.nats import COLUMNS, load_nats_accuracy
from tests.hwdb._helpers import NB201_0

SPACE = "nasbench201"


@pytest.fixture
def db(tmp_path: Path) -> HardwareDB:
    database = HardwareDB(f"sqlite:///{tmp_path / 'rules.sqlite'}")
    database.upsert_device(DeviceSpec("d"))
    return database


def _series(value: float) -> BulkImport:
    data = BulkImport(devices=[DeviceSpec("d")], archs={SPACE: {NB201_0: None}})
    data.measurements = [MeasurementSeries("d", SPACE, [NB201_0], [value])]
    return data


def _accuracies(value: float) -> BulkImport:
    data = BulkImport(archs={SPACE: {NB201_0: None}})
    data.accuracies = [AccuracySeries(SPACE, "cifar10", "test_accuracy", [NB201_0], [value])]
    return data


LATENCIES_REFUSED = [1e12, MAX_LATENCY_MS * 1.5, 0.0, -1.0, 5e-324, math.nan, math.inf]
LATENCIES_TAKEN = [MIN_LATENCY_MS, 0.5, MAX_LATENCY_MS]


@pytest.mark.parametrize("value", LATENCIES_REFUSED)
def test_a_latency_the_row_api_refuses_every_path_refuses(db: HardwareDB, value: float) -> None:
    """``MeasurementIn(median=1e12)`` was refused ("at most 1e+08 ms") while a bulk series of
    ``[1e12]`` was stored and ``latency_table`` returned it: the series checked only > 0."""
    problem = latency_problem(value)
    assert problem is not None
    with pytest.raises(ValueError, match=re.escape(f"`median` must be {problem}")):
        MeasurementIn("d", SPACE, NB201_0, median=value)
    with pytest.raises(ImportDataError, match=re.escape(f"value must be {problem}")):
        db.bulk_import(_series(value))
    with pytest.raises(ImportDataError, match=re.escape(f"latency must be {problem}")):
        check_latency(value, "f.csv", "row 1", "latency_ms")
    assert db.count_measurements() == 0


@pytest.mark.parametrize("value", LATENCIES_TAKEN)
def test_a_latency_the_row_api_takes_every_path_takes(db: HardwareDB, value: float) -> None:
    assert latency_problem(value) is None
    assert MeasurementIn("d", SPACE, NB201_0, median=value).median == value
    assert check_latency(value, "f.csv", "row 1", "latency_ms") == value
    assert db.bulk_import(_series(value))["measurements"] == 1
    assert db.latency_table(SPACE)["d"].tolist() == [value]


def test_the_latency_rule_in_seconds_and_for_spreads() -> None:
    # seconds are checked in milliseconds, and a finite number of seconds too large for a
    # float in milliseconds is "too large", not "not finite"
    assert check_latency(1e5, "f", "key 'a'", "latency_s", to_ms=1000.0) == 1e5
    with pytest.raises(ImportDataError, match="at most 1e\\+08 ms, got 1e\\+306 s"):
        check_latency(1e306, "f", "key 'a'", "latency_s", to_ms=1000.0)
    with pytest.raises(ImportDataError, match="latency must be a number, got True"):
        check_latency(True, "f", "row 1", "latency_ms")
    with pytest.raises(ImportDataError, match="at most 1e\\+08 ms"):
        check_latency(10**400, "f", "row 1", "latency_ms")
    # a standard deviation may be 0 or tiny, not negative, infinite or huge
    row = MeasurementIn("d", SPACE, NB201_0, median=1.0, std=0.0)
    assert row.std == 0.0
    assert MeasurementIn("d", SPACE, NB201_0, median=1.0, std=1e-9).std == 1e-9
    for bad in (-0.1, math.inf, 2 * MAX_LATENCY_MS):
        with pytest.raises(ValueError, match="`std` must be (finite and >= 0|at most)"):
            MeasurementIn("d", SPACE, NB201_0, median=1.0, std=bad)
    with pytest.raises(ValueError, match="`median` must be a number a float can hold"):
        MeasurementIn("d", SPACE, NB201_0, median=10**400)


ACCURACIES_REFUSED = [-1.0, -1e-9, MAX_ACCURACY + 0.5, 9000.0, math.nan, math.inf]
ACCURACIES_TAKEN = [MIN_ACCURACY, 0.75, 93.5, MAX_ACCURACY]


@pytest.mark.parametrize("value", ACCURACIES_REFUSED)
def test_an_accuracy_one_path_refuses_every_path_refuses(db: HardwareDB, value: float) -> None:
    """``add_accuracies([AccuracyIn(value=-1.0)])`` stored the row while the bulk path raised
    "value must be at least 0"; neither bounded it above, unlike the NATS-Bench importer."""
    problem = accuracy_problem(value)
    assert problem is not None
    with pytest.raises(ValueError, match=re.escape(f"`value` must be {problem}")):
        AccuracyIn(SPACE, NB201_0, "cifar10", "test_accuracy", value)
    with pytest.raises(ImportDataError, match=re.escape(f"value must be {problem}")):
        db.bulk_import(_accuracies(value))
    with pytest.raises(ImportDataError, match=re.escape(f"accuracy must be {problem}")):
        check_accuracy(value, "f.csv", "row 1", "acc")
    assert db.count_accuracies() == 0


@pytest.mark.parametrize("value", ACCURACIES_TAKEN)
def test_an_accuracy_one_path_takes_every_path_takes(db: HardwareDB, value: float) -> None:
    assert accuracy_problem(value) is None
    row = AccuracyIn(SPACE, NB201_0, "cifar10", "test_accuracy", np.float32(value))
    assert row.value == value and type(row.value) is float
    assert check_accuracy(str(value), "f.csv", "row 1", "acc") == value
    assert db.bulk_import(_accuracies(value))["accuracies"] == 1
    assert db.accuracy_table(SPACE, dataset="cifar10").tolist() == [value]
    assert db.add_accuracies([row]) == 0  # kept: the same record


def test_the_nats_importer_uses_the_accuracy_rule(tmp_path: Path) -> None:
    header = ",".join(["ArchitectureString", *COLUMNS])
    path = tmp_path / "nats.csv"
    path.write_text(f"{header}\n{NB201_0},100,-0.5,50\n")
    with pytest.raises(ImportDataError, match=r"row 1: field 'CIFAR100TestAccuracy200Epochs': "
                       r"accuracy must be in \[0, 100\] \(percent\), got '-0.5'"):  # fmt: skip
        load_nats_accuracy(path)
    path.write_text(f"{header}\n{NB201_0},100,fast,50\n")
    with pytest.raises(ImportDataError, match="accuracy must be a number, got 'fast'"):
        load_nats_accuracy(path)
    path.write_text(f"{header}\n{NB201_0},100,0,50\n")
    assert [s.values for s in load_nats_accuracy(path).accuracies] == [[100.0], [0.0], [50.0]]


def test_parquet_accuracy_rows_use_the_accuracy_rule(db: HardwareDB, tmp_path: Path) -> None:
    """A parquet file's accuracy rows pass ``AccuracyIn``: a value out of range names the row
    and the field (``value_error_field``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hwdb import export_parquet
    from hwdb.importers.parquet import load_parquet

    db.add_accuracies([AccuracyIn(SPACE, NB201_0, "cifar10", "test_accuracy", 90.0)])
    out = tmp_path / "acc.parquet"
    export_parquet(db, out)
    table = pq.read_table(out)
    kinds, values = table["row_kind"].to_pylist(), table["value"].to_pylist()
    values = [101.0 if k == "accuracy" else v for k, v in zip(kinds, values, strict=True)]
    column = table.schema.get_field_index("value")
    pq.write_table(table.set_column(column, "value", pa.array(values, pa.float64())), out)
    with pytest.raises(ImportDataError, match=r"row 1: field 'value': `value` must be in \[0, 1"):
        load_parquet(out)


def test_every_precision_a_device_may_have_has_a_catalog_figure() -> None:
    """``hwdb`` accepted tf32 while ``CatalogEntry.peak_flops`` knew only fp32, fp16 and int8
    (bf16 mapped to fp16), and ``hwdb.catalog.PRECISIONS`` was a third list, used nowhere."""
    import hwdb.catalog

    assert hwdb.catalog.PRECISIONS is PRECISIONS
    for entry in load_catalog():
        for precision in PRECISIONS:
            assert entry.peak_flops(precision) > 0, (entry.name, precision)
        assert entry.peak_flops("tf32") == entry.peak_flops("fp32")  # none states a tf32 figure
        assert entry.peak_flops("bf16") == entry.peak_flops("fp16")
    a100 = get_entry("a100-sxm")
    assert a100.peak_flops("tf32") == pytest.approx(19.5e12)
    # an entry that states a tf32 (or bf16) figure is priced at it
    stated = CatalogEntry.from_dict(
        {**a100.to_dict(), "peak_tflops": {**a100.peak_tflops, "tf32": 156.0, "bf16": 300.0}}
    )
    assert stated.peak_flops("tf32") == pytest.approx(156e12)
    assert stated.peak_flops("bf16") == pytest.approx(300e12)
    with pytest.raises(ValueError, match="`precision` must be one of fp32, tf32, fp16, bf16, int8"):
        a100.peak_flops("fp8")
    partial = CatalogEntry.from_dict({**a100.to_dict(), "peak_tflops": {"fp32": 1.0}})
    assert partial.peak_flops("tf32") == pytest.approx(1e12)
    with pytest.raises(ValueError, match="`precision` 'int8' has no figure in catalog entry"):
        partial.peak_flops("int8")


def test_a_tf32_catalog_device_gets_a_latency_model(db: HardwareDB) -> None:
    """``predictors.latency_model`` of a tf32 device with a catalog entry raised "`precision`
    must be one of fp16, fp32, int8, got 'tf32'", naming an argument its caller never gave."""
    from predictors import latency_model
    from search_spaces import get_space

    db.upsert_device(DeviceSpec("a100", family="gpu", precision="tf32",
                                attributes={"catalog": "a100-sxm"}))  # fmt: skip
    space = get_space(SPACE)
    archs = [space.to_string(space.random(i)) for i in range(2)]
    pred = latency_model(db, space=SPACE, device="a100").predict(archs)
    assert np.all(np.isfinite(pred.mean_ms)) and np.all(pred.mean_ms > 0)


def test_replace_run_measurements_refuses_one_row_as_add_measurements_does(
    db: HardwareDB,
) -> None:
    """One row (not a list of them) was a TypeError "not iterable" here, and a ValueError
    saying "wrap it: [row]" in ``add_measurements``."""
    row = MeasurementIn("d", SPACE, NB201_0, median=1.0)
    for write in (db.add_measurements, lambda rows: db.replace_run_measurements(rows, run_id="r")):
        with pytest.raises(ValueError, match=r"`rows` must be a list of MeasurementIn, not one "
                           r"\(wrap it: \[row\]\)"):  # fmt: skip
            write(row)  # type: ignore[arg-type]
    assert db.replace_run_measurements([row], run_id="r") == [0]  # no row of run "r" stored
