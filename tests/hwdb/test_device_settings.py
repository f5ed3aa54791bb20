"""Regression tests: imports that contradict a stored device, device-name rules, file and
value messages of the importers (QA findings 2, 3 and 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from hwdb import DeviceSpec, HardwareDB, ImportDataError, MeasurementIn
from hwdb._bulk import BulkImport
from hwdb.importers.csvfile import load_csv
from hwdb.importers.latbench import load_latbench
from hwdb.importers.nats import load_nats_accuracy
from hwdb.importers.parquet import export_parquet, load_parquet
from tests.hwdb._helpers import NB201_0, nb201_archs

REF = DeviceSpec("qa-ref", runtime="torch", precision="fp32", batch_size=1, threads=1)
_HEAD = "space,arch,device,latency_ms,batch_size,precision,runtime\n"


def _csv(tmp_path: Path, *rows: str, head: str = _HEAD) -> Path:
    path = tmp_path / "m.csv"
    path.write_text(head + "\n".join(rows) + "\n")
    return path


def _n(db: HardwareDB) -> int:
    return db.count_measurements()


def test_csv_row_contradicting_the_stored_device_is_refused(db_url: str, tmp_path: Path) -> None:
    a, b = nb201_archs(2)
    with HardwareDB(db_url) as db:
        db.upsert_device(REF)
        db.add_measurements([MeasurementIn("qa-ref", "nasbench201", a, median=5.0)])
        new_device = f"nasbench201,{a},other-dev,3.0,,,"
        for cells, field in (("8,int8,tensorrt", "batch_size"), (",int8,", "precision"),
                             (",,tensorrt", "runtime")):  # fmt: skip
            path = _csv(tmp_path, new_device, f"nasbench201,{b},qa-ref,99.0,{cells}")
            with pytest.raises(ImportDataError, match=rf"row 2: field '{field}'.*'qa-ref'"):
                db.bulk_import(load_csv(path))
            assert _n(db) == 1 and [d.name for d in db.list_devices()] == ["qa-ref"]
        # empty cells and an unknown runtime state nothing: no conflict
        path = _csv(
            tmp_path, f"nasbench201,{b},qa-ref,7.0,,,", f"nasbench201,{a},qa-ref,5.0,1,fp32,"
        )
        assert db.bulk_import(load_csv(path))["measurements"] == 1
        assert db.get_device("qa-ref").runtime == "torch"


def test_parquet_contradicting_the_stored_device_is_refused(db_url: str, tmp_path: Path) -> None:
    a = nb201_archs(1)[0]
    out = tmp_path / "x.parquet"
    with HardwareDB(f"sqlite:///{tmp_path / 'src.sqlite'}") as src:
        src.upsert_device(DeviceSpec("dev", threads=1, precision="fp32"))
        src.add_measurements([MeasurementIn("dev", "nasbench201", a, median=5.0)])
        export_parquet(src, out)
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("dev", threads=2, precision="fp32"))
        with pytest.raises(ImportDataError, match=r"row 1: field 'device_threads'.*2, not 1"):
            db.bulk_import(load_parquet(out))
        assert _n(db) == 0
        db.upsert_device(DeviceSpec("dev", threads=None, precision="fp32"))  # states nothing
        assert db.bulk_import(load_parquet(out))["measurements"] == 1
        assert db.get_device("dev").threads is None  # existing devices are kept as they are


def test_latbench_precision_in_the_file_name_contradicting_the_device(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "desktop-cpu-core-i7-int8.pickle"
    path.write_bytes(pickle.dumps({(0, 1, 2, 3, 4, 0): 0.01}))
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        db.upsert_device(DeviceSpec(path.stem, precision="fp32", runtime="unknown"))
        with pytest.raises(ImportDataError, match=r"field 'file name'.*precision 'fp32'"):
            db.bulk_import(load_latbench([path]))
        assert _n(db) == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [("x" * 201, "at most 200 characters"), ("a\tb", "control characters"),
     ("a\x01b", "control characters"), ("a\x7fb", "control characters")],
)  # fmt: skip
def test_device_names_within_the_column_and_printable(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^`name` must .*{message}"):
        DeviceSpec(name)
    DeviceSpec("x" * 200)  # the column size itself is fine


def test_every_device_write_checks_the_name(db_url: str) -> None:
    """PostgreSQL's varchar(200) refused a long name with a raw driver message; SQLite kept it."""
    from dataclasses import replace

    with HardwareDB(db_url) as db:
        stored = db.upsert_device(DeviceSpec("y" * 200))
        assert stored.name == "y" * 200
        # a Device (read back, not re-checked) passed in is checked on the way in
        too_long = replace(stored, name="z" * 500)
        with pytest.raises(ValueError, match="`name` must be at most 200"):
            db.upsert_device(too_long)
        with pytest.raises(ValueError, match="`runtime` must be at most 64"):
            db.upsert_device(replace(stored, runtime="r" * 65))
        assert [d.name for d in db.list_devices()] == ["y" * 200]


def test_a_stored_name_from_before_the_rule_stays_readable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    with HardwareDB(url) as db:
        db.upsert_device(DeviceSpec("ok"))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE device SET name = 'a' || char(9) || 'b'"))
    engine.dispose()
    with HardwareDB(url) as db:
        assert [d.name for d in db.list_devices()] == ["a\tb"]


def test_csv_device_name_error_names_the_device_field(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"nasbench201,{NB201_0},{'d' * 201},1.0,,,")
    with pytest.raises(ImportDataError, match=r"row 1: field 'device': `name` must be at most"):
        load_csv(path)
    path = _csv(tmp_path, f"nasbench201,{NB201_0},dev,1.0,,,{'r' * 65}")
    with pytest.raises(ImportDataError, match=r"row 1: field 'runtime'"):
        load_csv(path)


def test_csv_metric_and_precision_are_checked(tmp_path: Path) -> None:
    head = "space,arch,device,latency_ms,metric,precision\n"
    bad = _csv(tmp_path, f"nasbench201,{NB201_0},d,1.0,bogus_metric,", head=head)
    with pytest.raises(ImportDataError, match=r"row 1: field 'metric':.*latency_ms.*'bogus"):
        load_csv(bad)
    bad = _csv(tmp_path, f"nasbench201,{NB201_0},d,1.0,,int3", head=head)
    with pytest.raises(ImportDataError, match=r"row 1: field 'precision':.*bf16.*'int3'"):
        load_csv(bad)
    bad = _csv(tmp_path, f"nasbench201,{NB201_0},d,1.0,e2e_ms,", head=head)
    with pytest.raises(ImportDataError, match="field 'metric'"):
        load_csv(bad)  # a language-model metric in a vision space
    lm = "d2048_r3_n128_mt256:d-f-m2-f-d-f-m2-f-d-f-m2-f"
    ok = _csv(tmp_path, f"nasbench201,{NB201_0},d,1.0,latency_ms,int8",
              f"nemotron_flash,{lm},e,1.0,prefill_ms,bf16", head=head)  # fmt: skip
    data = load_csv(ok)
    assert [r.metric for r in data.rows] == ["latency_ms", "prefill_ms"]


@pytest.mark.parametrize("kind", ["csv", "parquet", "nats", "latbench"])
def test_missing_file_and_directory_are_named_as_such(kind: str, tmp_path: Path) -> None:
    load: Callable[[Path], BulkImport] = {
        "csv": load_csv,
        "parquet": load_parquet,
        "nats": load_nats_accuracy,
        "latbench": lambda p: load_latbench([p]),
    }[kind]  # fmt: skip
    with pytest.raises(ImportDataError, match="field 'path': no such file"):
        load(tmp_path / "missing.x")
    (tmp_path / "fbnet.onnx").write_bytes(b"not parquet")  # a reader must not open it
    with pytest.raises(ImportDataError, match="field 'path': is a directory") as exc:
        load(tmp_path)
    assert "fbnet.onnx" not in str(exc.value)


def test_a_median_stored_as_text_must_be_a_number(tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        db.upsert_device(DeviceSpec("dev"))
        db.add_measurements([MeasurementIn("dev", "nasbench201", NB201_0, median=5.52)])
        export_parquet(db, out)
    table = pq.read_table(out)
    i = table.schema.get_field_index("median")
    table = table.set_column(i, "median", pa.array(["5.52"]))
    pq.write_table(table, out)
    with pytest.raises(ImportDataError, match=r"field 'median': `median` must be a number"):
        load_parquet(out)
    with pytest.raises(ValueError, match=r"^`mean` must be a number, got '1'"):
        MeasurementIn("d", "nasbench201", NB201_0, median=1.0, mean="1")  # type: ignore[arg-type]
