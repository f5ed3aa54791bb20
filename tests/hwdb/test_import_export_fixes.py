"""Regression tests: nullable export, conflicting duplicates, non-finite LatBench, devices count."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from hwdb import HardwareDB, ImportDataError
from hwdb._bulk import BulkImport, MeasurementSeries
from hwdb._types import DeviceSpec
from hwdb.importers.csvfile import load_csv
from hwdb.importers.latbench import load_latbench
from hwdb.importers.parquet import bundled_datasets, export_parquet, load_parquet
from tests.hwdb._helpers import NB201_0, nb201_archs

_KEY = ["device", "space", "arch", "metric", "protocol"]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(_KEY).reset_index(drop=True)


def test_export_with_missing_threads_round_trips(tmp_path: Path) -> None:
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        for path in bundled_datasets():
            db.bulk_import(load_parquet(path))
        before = db.measurement_frame()
        assert before["device_threads"].isna().any() and before["device_threads"].notna().any()
        out = tmp_path / "all.parquet"
        assert export_parquet(db, out) == {
            "measurements": len(before), "accuracies": 0, "devices": 0
        }  # fmt: skip
    schema = pq.read_schema(out)
    assert str(schema.field("device_threads").type) == "int64"
    assert str(schema.field("benchmark_index").type) == "int64"
    with HardwareDB(f"sqlite:///{tmp_path / 'b.sqlite'}") as db2:
        counts = db2.bulk_import(load_parquet(out))
        after = db2.measurement_frame()
    assert counts["measurements"] == len(before)
    pd.testing.assert_frame_equal(_sorted(before), _sorted(after))


def test_export_refuses_directory_and_missing_folder(tmp_path: Path) -> None:
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        with pytest.raises(ValueError, match="is a directory"):
            export_parquet(db, tmp_path)
        with pytest.raises(ValueError, match="does not exist"):
            export_parquet(db, tmp_path / "nope" / "x.parquet")
    assert not (tmp_path / "nope").exists()


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "m.csv"
    path.write_text("space,arch,device,latency_ms,batch_size\n" + "\n".join(rows) + "\n")
    return path


def test_csv_conflicting_duplicate_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"nasbench201,{NB201_0},d1,1.5,1", f"nasbench201,{NB201_0},d1,9.5,1")
    with pytest.raises(ImportDataError, match=r"row 2.*row 1"):
        load_csv(path)


def test_csv_exact_duplicate_is_kept_once(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"nasbench201,{NB201_0},d1,1.5,1", f"nasbench201,{NB201_0},d1,1.5,1")
    assert len(load_csv(path).rows) == 1


def _parquet_with(tmp_path: Path, edit: dict[str, object]) -> Path:
    src = tmp_path / "one.parquet"
    with HardwareDB(f"sqlite:///{tmp_path / 'src.sqlite'}") as db:
        csv = _csv(tmp_path, f"nasbench201,{NB201_0},d1,1.5,1")
        db.bulk_import(load_csv(csv))
        export_parquet(db, src)
    frame = pq.read_table(src).to_pandas()
    second = frame.iloc[[0]].copy()
    for col, value in edit.items():
        second[col] = value
    out = tmp_path / "two.parquet"
    import pyarrow as pa

    pq.write_table(pa.Table.from_pandas(pd.concat([frame, second]), preserve_index=False), out)
    return out


def test_parquet_conflicting_duplicate_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ImportDataError, match=r"row 2.*conflicts with row 1"):
        load_parquet(_parquet_with(tmp_path, {"median": 9.5}))


def test_parquet_device_described_differently_is_an_error(tmp_path: Path) -> None:
    path = _parquet_with(tmp_path, {"device_batch_size": 7, "arch": nb201_archs(1)[0]})
    with pytest.raises(ImportDataError, match=r"row 2.*described differently on row 1"):
        load_parquet(path)


def test_parquet_exact_duplicate_is_kept_once(tmp_path: Path) -> None:
    assert len(load_parquet(_parquet_with(tmp_path, {})).rows) == 1


def _pickle(path: Path, table: dict[tuple[int, ...], float]) -> Path:
    path.write_bytes(pickle.dumps(table))
    return path


def test_latbench_overflowing_latency_is_refused(tmp_path: Path) -> None:
    path = _pickle(tmp_path / "desktop-cpu-x-fp32.pickle", {(0, 1, 2, 3, 4, 0): 1e306})
    with pytest.raises(ImportDataError, match="not finite|at most"):
        load_latbench([path])


def test_latbench_same_file_twice_counts_one_device(tmp_path: Path) -> None:
    path = _pickle(tmp_path / "desktop-cpu-x-fp32.pickle", {(0, 1, 2, 3, 4, 0): 0.01})
    data = load_latbench([path, tmp_path / "." / path.name])
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        counts = db.bulk_import(data)
    assert counts["devices"] == 1 and counts["measurements"] == 1


def test_bulk_insert_rejects_non_finite_values(tmp_path: Path) -> None:
    archs = nb201_archs(2)
    data = BulkImport(
        devices=[DeviceSpec(name="d1", provenance="imported")],
        archs={"nasbench201": dict.fromkeys(archs)},
        measurements=[
            MeasurementSeries(
                device="d1", space="nasbench201", archs=archs, values=[1.0, float("inf")]
            )
        ],
    )
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        with pytest.raises(ImportDataError, match="finite"):
            db.bulk_import(data)
        assert db.stats() == {"spaces": {}, "devices": 0}  # nothing written


def test_help_import_of_the_release_root_points_to_its_data_folder(tmp_path: Path) -> None:
    from hwdb import ImportDataError
    from hwdb.importers.help import load_help

    (tmp_path / "data" / "nasbench201" / "latency").mkdir(parents=True)
    (tmp_path / "data" / "nasbench201" / "latency" / "pixel3.pt").write_bytes(b"")
    with pytest.raises(ImportDataError, match="import that folder") as exc:
        load_help(tmp_path)
    assert str(tmp_path / "data") in str(exc.value)


def test_parquet_contradictory_statistics_name_the_column(tmp_path: Path) -> None:
    path = _parquet_with(tmp_path, {"min": 3.0, "arch": nb201_archs(1)[0]})  # median 1.5
    with pytest.raises(ImportDataError, match=r"row 2.*'min'.*must not exceed `median`"):
        load_parquet(path)


def test_export_respects_the_umask(tmp_path: Path) -> None:
    """An export is meant to be shared: not mkstemp's 0600."""
    import os

    old = os.umask(0o022)
    try:
        with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
            db.bulk_import(load_parquet(bundled_datasets()[0]))
            out = tmp_path / "shared.parquet"
            export_parquet(db, out)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_implausible_latencies_are_refused(tmp_path: Path) -> None:
    """1e308 ms passed "finite and > 0", then overflowed a predictor's least squares."""
    from hwdb import MeasurementIn

    with pytest.raises(ValueError, match="`median` must be at most"):
        MeasurementIn(device="d", space="nasbench201", arch=NB201_0, median=1e9)
    with pytest.raises(ValueError, match="`p90` must be at most"):
        MeasurementIn(device="d", space="nasbench201", arch=NB201_0, median=5.0, p90=1e300)
    csv = tmp_path / "huge.csv"
    csv.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201_0},d,1e308\n")
    with pytest.raises(ImportDataError, match="at most"):
        load_csv(csv)
    # LatBench stores seconds: the limits apply to them in milliseconds
    from hwdb.importers._common import check_latency

    assert check_latency(5e-7, "f", "key 'a'", "latency_s", to_ms=1000.0) == 5e-7  # 0.5 us
    with pytest.raises(ImportDataError, match="at most 1e\\+08 ms, got 200000.0 s"):
        check_latency(2e5, "f", "key 'a'", "latency_s", to_ms=1000.0)
    # and below 1 ns (5e-324 broke two baselines): the row API, files and bulk series alike
    with pytest.raises(ValueError, match="`median` must be at least 1e-06 ms"):
        MeasurementIn(device="d", space="nasbench201", arch=NB201_0, median=5e-324)
    csv.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201_0},d,5e-324\n")
    with pytest.raises(ImportDataError, match="at least 1e-06 ms"):
        load_csv(csv)
    data = BulkImport()
    data.devices = [DeviceSpec(name="d")]
    data.archs["nasbench201"] = {NB201_0: None}
    data.measurements = [MeasurementSeries("d", "nasbench201", [NB201_0], [5e-324])]
    with HardwareDB(f"sqlite:///{tmp_path / 'tiny.sqlite'}") as db:
        with pytest.raises(ImportDataError, match="at least 1e-06"):
            db.bulk_import(data)
        assert db.count_measurements() == 0


def test_library_writes_check_and_canonicalise_architectures(tmp_path: Path) -> None:
    """``add_measurements`` / ``add_accuracies`` used to store any string under any space
    name; one bad row then broke the device's predictor and every export of the space. They
    now refuse it (naming the row and field, writing nothing) and store canonical strings."""
    from hwdb import AccuracyIn, MeasurementIn
    from search_spaces import get_space

    mnas = get_space("mnasnet")
    a1 = mnas.to_string(mnas.resolve("mnasnet-a1"))
    with HardwareDB(f"sqlite:///{tmp_path / 'c.sqlite'}") as db:
        db.upsert_device(DeviceSpec(name="d"))
        good = MeasurementIn("d", "nasbench201", NB201_0, median=1.0)
        for bad, field in [
            (MeasurementIn("d", "mnasnet", "garbage-arch", median=1.0), "arch"),
            (MeasurementIn("d", "bogus", NB201_0, median=1.0), "space"),
        ]:
            with pytest.raises(ValueError, match=rf"^`rows\[1\]\.{field}`: "):
                db.add_measurements([good, bad])
        assert db.count_measurements() == 0 and db.list_spaces() == []
        rows = [
            MeasurementIn("d", "mnasnet", "mnasnet-a1", median=2.0),
            MeasurementIn("d", "nasbench201", f"  {NB201_0} ", median=1.0),
        ]
        assert db.add_measurements(rows) == 2
        assert db.measured_archs(space="mnasnet", device="d") == {a1}
        assert db.measured_archs(space="nasbench201", device="d") == {NB201_0}
        acc = AccuracyIn("mnasnet", " mnasnet-a1", "imagenet", "top1", 75.2)
        assert db.add_accuracies([acc]) == 1
        assert db.accuracy_table("mnasnet", dataset="imagenet", metric="top1").to_dict() == {
            a1: 75.2
        }
        with pytest.raises(ValueError, match=r"^`rows\[0\]\.arch`: malformed nasbench201"):
            db.add_accuracies([AccuracyIn("nasbench201", "|x~0|", "c", "top1", 1.0)])


def _kinds_file(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    """A parquet file of the export's schema holding ``rows`` (other columns null)."""
    import pyarrow as pa

    from hwdb.importers.parquet import _schema

    out = tmp_path / "kinds.parquet"
    names = _schema().names
    pq.write_table(
        pa.Table.from_pylist([{c: r.get(c) for c in names} for r in rows], schema=_schema()), out
    )
    return out


def _acc(arch: str = NB201_0, value: float = 90.0, **kw: object) -> dict[str, object]:
    return {"row_kind": "accuracy", "space": "nasbench201", "arch": arch, "dataset": "cifar10",
            "metric": "test_accuracy", "value": value, "source": "s", **kw}  # fmt: skip


def test_accuracy_and_device_rows_round_trip_and_are_checked(tmp_path: Path) -> None:
    from hwdb import AccuracyIn

    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        archs = nb201_archs(3)
        db.add_accuracies([AccuracyIn("nasbench201", a, "cifar10", "test_accuracy", 80.0 + i,
                                      "NATS") for i, a in enumerate(archs)])  # fmt: skip
        db.add_accuracies([AccuracyIn("nasbench201", archs[0], "cifar100", "test_accuracy", 60.0)])
        db.upsert_device(DeviceSpec("pi", threads=4, attributes={"catalog": "raspberry-pi-4"}))
        before = db.accuracy_frame()
        counts = export_parquet(db, tmp_path / "x.parquet")
    assert counts == {"measurements": 0, "accuracies": 4, "devices": 1}
    data = load_parquet(tmp_path / "x.parquet")
    assert [d.name for d in data.devices] == ["pi"] and data.devices[0].threads == 4
    with HardwareDB(f"sqlite:///{tmp_path / 'b.sqlite'}") as db2:
        got = db2.bulk_import(data)
        assert got["accuracies"] == 4
        after = db2.accuracy_frame()
        assert db2.get_device("pi").attributes == {"catalog": "raspberry-pi-4"}
    key = ["arch", "dataset"]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True),
        after.sort_values(key).reset_index(drop=True),
    )
    assert len(load_parquet(_kinds_file(tmp_path, [_acc(), _acc()])).accuracies[0].archs) == 1
    with pytest.raises(ImportDataError, match=r"row 2.*value.*conflicts with row 1"):
        load_parquet(_kinds_file(tmp_path, [_acc(), _acc(value=91.0)]))
    with pytest.raises(ImportDataError, match=r"row 1.*value"):
        load_parquet(_kinds_file(tmp_path, [_acc(value=float("nan"))]))
    with pytest.raises(ImportDataError, match=r"row 1.*arch"):
        load_parquet(_kinds_file(tmp_path, [_acc(arch="|conv_9x9~0|")]))
    other = _acc(dataset="cifar100", benchmark_index=2)
    with pytest.raises(ImportDataError, match=r"row 2.*benchmark_index.*2 conflicts with row 1"):
        load_parquet(_kinds_file(tmp_path, [_acc(benchmark_index=1), other]))
    with pytest.raises(ImportDataError, match=r"row 1.*benchmark_index.*integer >= 0"):
        load_parquet(_kinds_file(tmp_path, [_acc(benchmark_index=-3)]))
    both = load_parquet(_kinds_file(tmp_path, [_acc(), {**other, "benchmark_index": 7}]))
    assert both.archs == {"nasbench201": {NB201_0: 7}}  # an index given once is kept
    with pytest.raises(ImportDataError, match=r"row 1.*row_kind.*must be one of"):
        load_parquet(_kinds_file(tmp_path, [{"row_kind": "artifact"}]))
    spec = DeviceSpec("pi", threads=4)
    device = {f"device_{f}": getattr(spec, f) for f in ("family", "hardware", "runtime",
              "precision", "batch_size", "threads", "provenance", "source")}  # fmt: skip
    device.update(row_kind="device", device="pi", device_attributes="{}")
    with pytest.raises(ImportDataError, match=r"row 2.*'pi' described differently on row 1"):
        load_parquet(_kinds_file(tmp_path, [device, {**device, "device_threads": 2}]))


def test_a_move_keeps_when_rows_were_stored_so_the_newer_protocol_wins(tmp_path: Path) -> None:
    """Before, every imported row was stamped at import time, so after a late import of an
    older export the table showed whichever protocol's row was imported last."""
    from datetime import UTC, datetime

    from hwdb import MeasurementIn

    old, new = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 6, 7, 8, 9, 10, tzinfo=UTC)
    rows = [
        MeasurementIn("pi", "nasbench201", NB201_0, median=m, protocol=p, created_at=t)
        for m, p, t in ((10.0, "old-protocol", old), (12.0, "new-protocol", new))
    ]
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        db.upsert_device(DeviceSpec("pi"))
        db.add_measurements(rows)
        assert db.latency_table("nasbench201")["pi"].tolist() == [12.0]
        export_parquet(db, tmp_path / "all.parquet")
        export_parquet(db, tmp_path / "new.parquet")  # then drop the old row from this one
    table = pq.read_table(tmp_path / "new.parquet").to_pandas()
    assert set(table["created_at"]) == {pd.Timestamp(old), pd.Timestamp(new)}
    table = table[table["protocol"] == "new-protocol"]
    pq.write_table(pq.read_table(tmp_path / "all.parquet").from_pandas(
        table, schema=pq.read_schema(tmp_path / "all.parquet"), preserve_index=False
    ), tmp_path / "new.parquet")  # fmt: skip
    with HardwareDB(f"sqlite:///{tmp_path / 'b.sqlite'}") as db2:
        db2.bulk_import(load_parquet(tmp_path / "new.parquet"))
        db2.bulk_import(load_parquet(tmp_path / "all.parquet"))  # the older row arrives last
        assert db2.latency_table("nasbench201")["pi"].tolist() == [12.0]
        frame = db2.measurement_frame().set_index("protocol")["created_at"]
    assert frame.to_dict() == {"old-protocol": pd.Timestamp(old), "new-protocol": pd.Timestamp(new)}
    with pytest.raises(ValueError, match="`created_at` must be a timezone-aware datetime"):
        MeasurementIn("pi", "nasbench201", NB201_0, median=1.0, created_at=datetime(2025, 1, 1))
