"""Regression tests from a QA pass of the library API: values JSON cannot hold, numpy
numbers, wrong types that used to surface as database errors, unknown revisions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hwdb import AccuracyIn, DeviceSpec, HardwareDB, MeasurementIn, upgrade_database
from tests.hwdb._helpers import NB201_0


@pytest.fixture
def db(tmp_path: Path) -> HardwareDB:
    database = HardwareDB(f"sqlite:///{tmp_path / 't.sqlite'}")
    database.upsert_device(DeviceSpec("d"))
    return database


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, object(), {"deeper": b"bytes"}])
def test_values_json_cannot_hold_are_refused_naming_the_field(db: HardwareDB, bad: object) -> None:
    """A NaN in a device's attributes used to be stored, and then every GET /v1/devices was a
    500 (PostgreSQL's JSON refuses NaN outright); an object became a StorageError or a repr."""
    nested = {"k": [1, {"x": bad}]}
    with pytest.raises(ValueError, match=r"`attributes\['k'\]\[1\]\['x'\]"):
        DeviceSpec("e", attributes=nested)
    with pytest.raises(ValueError, match=r"`environment\['k'\]"):
        MeasurementIn("d", "nasbench201", NB201_0, median=1.0, environment=nested)
    for field in ("summary", "metrics"):
        with pytest.raises(ValueError, match=f"`{field}"):
            db.save_artifact(kind="k", space="nasbench201", version="v", payload=b"",
                             **{"summary": {}, "metrics": {}, field: nested})  # fmt: skip
    assert [d.name for d in db.list_devices()] == ["d"] and not db.stats()["spaces"]


def test_numpy_numbers_are_taken_and_stored_as_python_numbers(db: HardwareDB) -> None:
    row = MeasurementIn(
        "d", "nasbench201", NB201_0, median=np.float32(1.5), mean=np.float32(1.5),
        n_runs=np.int64(5), warmup=np.int32(0), benchmark_index=np.int64(3),
        environment={"n": np.int64(2), "x": np.float32(0.5), "flag": np.bool_(True)},
    )  # fmt: skip
    assert type(row.median) is float and type(row.n_runs) is int and row.median == 1.5
    assert row.environment == {"n": 2, "x": 0.5, "flag": True}
    assert type(row.environment["n"]) is int
    spec = DeviceSpec("f", threads=np.int64(4), batch_size=np.int16(8))
    assert (spec.threads, spec.batch_size) == (4, 8) and type(spec.threads) is int
    assert AccuracyIn("nasbench201", NB201_0, "c", "t", np.float32(50)).value == 50.0
    assert db.add_measurements([row]) == 1
    assert db.measurements(device="d")[0]["environment"] == {"n": 2, "x": 0.5, "flag": True}
    with pytest.raises(ValueError, match="`n_runs` must be an integer >= 1, got 0"):
        MeasurementIn("d", "nasbench201", NB201_0, median=1.0, n_runs=0)
    with pytest.raises(ValueError, match="`n_runs` must be an integer >= 1, got 2.5"):
        MeasurementIn("d", "nasbench201", NB201_0, median=1.0, n_runs=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`benchmark_index` must be None or an integer >= 0"):
        MeasurementIn("d", "nasbench201", NB201_0, median=1.0, benchmark_index="3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`median` must be a number, got True"):
        MeasurementIn("d", "nasbench201", NB201_0, median=True)


@pytest.mark.parametrize("field", ["protocol", "source"])
def test_a_text_field_given_none_is_a_value_error_not_a_duplicate(
    db: HardwareDB, field: str
) -> None:
    with pytest.raises(ValueError, match=f"`{field}` must be a string, got None"):
        MeasurementIn("d", "nasbench201", NB201_0, median=1.0, **{field: None})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`hardware` must be a string"):
        DeviceSpec("e", hardware=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ({"foo": 1}, "unknown workload field"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "8"}, "batch_size"),
        ("big", "`workload` must be a dict"),
        (None, "`workload` must be a dict"),
    ],
)
def test_a_workload_search_spaces_refuses_is_refused_before_it_is_stored(
    db: HardwareDB, workload: object, message: str
) -> None:
    """Such rows used to be stored, and adapting a predictor to the device failed later."""
    with pytest.raises(ValueError, match=message):
        MeasurementIn("d", "nasbench201", NB201_0, median=1.0, workload=workload)  # type: ignore[arg-type]
    ok = MeasurementIn("d", "nasbench201", NB201_0, median=1.0, workload={"batch_size": 8})
    assert db.add_measurements([ok]) == 1


def test_an_unknown_revision_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`revision` must be 'head' or a revision of hwdb"):
        upgrade_database(f"sqlite:///{tmp_path / 'u.sqlite'}", revision="bogus")
    assert not (tmp_path / "u.sqlite").exists()
    assert upgrade_database(f"sqlite:///{tmp_path / 'u.sqlite'}")[0] is None


def test_one_batch_refuses_two_different_rows_of_one_key_and_stores_repeats_once(
    db: HardwareDB,
) -> None:
    """The database kept the first of two conflicting rows silently (the last with
    ``replace``), and one row instead of a list was a TypeError."""
    row = MeasurementIn("d", "nasbench201", NB201_0, median=1.0)
    other = MeasurementIn("d", "nasbench201", NB201_0, median=2.0)
    with pytest.raises(ValueError, match=r"`rows\[1\]` and `rows\[0\]` are the same record"):
        db.add_measurements([row, other], replace=True)
    with pytest.raises(ValueError, match="not one"):
        db.add_measurements(row)  # type: ignore[arg-type]
    assert db.count_measurements() == 0
    assert db.add_measurements([row, row]) == 1


def test_export_of_an_unknown_space_or_device_is_refused(db: HardwareDB, tmp_path: Path) -> None:
    """It wrote an empty file."""
    from hwdb import NotFoundError
    from hwdb.importers.parquet import export_parquet

    with pytest.raises(ValueError, match="`space` must be a search space, got 'nope'"):
        export_parquet(db, tmp_path / "x.parquet", space="nope")
    with pytest.raises(NotFoundError, match="device 'nope' not found"):
        export_parquet(db, tmp_path / "x.parquet", device="nope")
    assert not (tmp_path / "x.parquet").exists()
    assert export_parquet(db, tmp_path / "x.parquet", space="fbnet")["measurements"] == 0


def test_a_device_stored_before_the_checks_still_reads_back(db: HardwareDB) -> None:
    """The write checks ran on read-back too: one device stored with a NaN attribute by an
    older release made every device listing fail."""
    from sqlalchemy import text

    db.upsert_device(DeviceSpec("old", attributes={"x": 1.0}))
    with db._engine.begin() as con:  # as an older release could have written it
        con.execute(text("UPDATE device SET attributes = '{\"x\": NaN}' WHERE name = 'old'"))
    assert math.isnan(db.get_device("old").attributes["x"])
    assert sorted(d.name for d in db.list_devices()) == ["d", "old"]


def test_a_self_containing_dict_is_a_value_error() -> None:
    loop: dict[str, object] = {"a": 1}
    loop["self"] = loop
    with pytest.raises(ValueError, match="`attributes` must not contain itself"):
        DeviceSpec("e", attributes=loop)


def test_a_naive_created_at_in_a_parquet_file_is_read_as_utc(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from hwdb.importers.parquet import export_parquet, load_parquet

    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as src:
        src.upsert_device(DeviceSpec("d"))
        src.add_measurements([MeasurementIn("d", "nasbench201", NB201_0, median=1.0)])
        export_parquet(src, tmp_path / "x.parquet")
    table = pq.read_table(tmp_path / "x.parquet")
    naive = pa.array([datetime(2025, 3, 4, 5, 6, 7)], type=pa.timestamp("us"))
    table = table.set_column(table.schema.get_field_index("created_at"), "created_at", naive)
    pq.write_table(table, tmp_path / "naive.parquet")
    row = load_parquet(tmp_path / "naive.parquet").rows[0]
    assert row.created_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_accuracy_batches_get_the_same_guards(db: HardwareDB) -> None:
    one = AccuracyIn("nasbench201", NB201_0, "cifar10", "test_accuracy", 90.0)
    other = AccuracyIn("nasbench201", NB201_0, "cifar10", "test_accuracy", 91.0)
    with pytest.raises(ValueError, match=r"`rows\[1\]` and `rows\[0\]` are the same record"):
        db.add_accuracies([one, other])
    with pytest.raises(ValueError, match="not one"):
        db.add_accuracies(one)  # type: ignore[arg-type]
    assert db.count_accuracies() == 0
    assert db.add_accuracies([one, one]) == 1
