"""Deleting measurements (``HardwareDB.delete_measurements``) and who uploaded them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwdb import DeviceSpec, HardwareDB, MeasurementIn, NotFoundError
from hwdb.importers.parquet import export_parquet, import_parquet
from tests.hwdb._helpers import nb201_archs

ARCHS = nb201_archs(6)


def _rows(
    device: str, protocol: str, uploaded_by: str | None, archs: list[str]
) -> list[MeasurementIn]:
    return [
        MeasurementIn(device=device, space="nasbench201", arch=a, median=1.0 + i,
                      protocol=protocol, uploaded_by=uploaded_by)
        for i, a in enumerate(archs)
    ]  # fmt: skip


@pytest.fixture
def db(db_url: str) -> HardwareDB:
    db = HardwareDB(db_url)
    for name in ("board", "other"):
        db.upsert_device(DeviceSpec(name=name, family="cpu", runtime="torch"))
    db.add_measurements(_rows("board", "a", None, ARCHS[:3]))
    db.add_measurements(_rows("board", "b", "edge-lab", ARCHS[3:]))
    db.add_measurements(_rows("other", "b", "edge-lab", ARCHS))
    return db


def test_uploaded_by_is_stored_and_read_back(db: HardwareDB) -> None:
    by = {r["arch"]: r["uploaded_by"] for r in db.measurements(device="board")}
    assert by == {**dict.fromkeys(ARCHS[:3]), **dict.fromkeys(ARCHS[3:], "edge-lab")}


def test_dry_run_counts_and_deletes_nothing(db: HardwareDB) -> None:
    assert db.delete_measurements(device="board", uploaded_by="edge-lab", dry_run=True) == 3
    assert db.count_measurements(device="board") == 6


def test_delete_by_uploader_touches_only_that_device(db: HardwareDB) -> None:
    assert db.delete_measurements(device="board", uploaded_by="edge-lab") == 3
    left = db.measurements(device="board")
    assert sorted(r["arch"] for r in left) == sorted(ARCHS[:3])
    assert db.count_measurements(device="other") == 6
    assert db.get_device("board").name == "board"  # the device stays


def test_filters_combine(db: HardwareDB) -> None:
    assert db.delete_measurements(device="board", protocol="a", archs=ARCHS[:2],
                                  space="nasbench201") == 2  # fmt: skip
    assert db.delete_measurements(device="board", protocol="zzz") == 0
    assert db.delete_measurements(device="board", space="fbnet") == 0
    assert db.delete_measurements(device="board", metric="e2e_ms") == 0
    assert db.count_measurements(device="board") == 4
    assert db.delete_measurements(device="board") == 4
    assert db.count_measurements(device="board") == 0
    assert db.latency_table("nasbench201")["other"].notna().sum() == 6


def test_archs_are_canonicalised(db: HardwareDB) -> None:
    padded = "  " + ARCHS[0] + " "
    assert db.delete_measurements(device="board", space="nasbench201", archs=[padded]) == 1


def test_bad_filters_are_refused_before_anything_is_deleted(db: HardwareDB) -> None:
    with pytest.raises(NotFoundError, match="device 'nope' not found"):
        db.delete_measurements(device="nope")
    with pytest.raises(ValueError, match="`archs` needs `space`"):
        db.delete_measurements(device="board", archs=ARCHS[:1])
    with pytest.raises(ValueError, match="`archs` must be a list"):
        db.delete_measurements(device="board", space="nasbench201", archs=ARCHS[0])
    with pytest.raises(ValueError, match="`archs`"):
        db.delete_measurements(device="board", space="nasbench201", archs=[ARCHS[0], "bogus"])
    with pytest.raises(ValueError, match="`uploaded_by` must be a non-empty string"):
        db.delete_measurements(device="board", uploaded_by="")
    assert db.count_measurements(device="board") == 6


def test_uploaded_by_is_checked() -> None:
    with pytest.raises(ValueError, match="`uploaded_by` must be a non-empty string"):
        MeasurementIn(device="d", space="nasbench201", arch=ARCHS[0], median=1.0, uploaded_by=" ")
    with pytest.raises(ValueError, match="`uploaded_by` must be at most 200 characters"):
        MeasurementIn(device="d", space="nasbench201", arch=ARCHS[0], median=1.0,
                      uploaded_by="k" * 201)  # fmt: skip


def test_replace_records_the_new_uploader(db: HardwareDB) -> None:
    db.add_measurements(_rows("board", "b", "other-key", ARCHS[3:4]), replace=True)
    by = {r["arch"]: r["uploaded_by"] for r in db.measurements(device="board")}
    assert by[ARCHS[3]] == "other-key" and by[ARCHS[4]] == "edge-lab"


def test_export_and_import_keep_the_uploader(db: HardwareDB, tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    export_parquet(db, path)
    with HardwareDB(f"sqlite:///{tmp_path / 'copy.sqlite'}") as copy:
        import_parquet(copy, path)
        assert copy.delete_measurements(device="board", uploaded_by="edge-lab", dry_run=True) == 3
        assert copy.delete_measurements(device="board", protocol="a", dry_run=True) == 3
        local = [r for r in copy.measurements(device="board") if r["protocol"] == "a"]
        assert {r["uploaded_by"] for r in local} == {None}


def test_measurement_groups(db: HardwareDB) -> None:
    db.add_measurements([MeasurementIn(device="board", space="nasbench201", arch=ARCHS[0],
                                       median=7.0, protocol="a", metric="energy_mj",
                                       workload={"resolution": 32})])  # fmt: skip
    groups = db.measurement_groups("board")
    assert [(g["metric"], g["protocol"], g["uploaded_by"], g["rows"]) for g in groups] == [
        ("energy_mj", "a", None, 1), ("latency_ms", "a", None, 3),
        ("latency_ms", "b", "edge-lab", 3),
    ]  # fmt: skip
    assert groups[0]["workload"] == {"resolution": 32} and groups[1]["workload"] == {}
    assert (groups[2]["median_min"], groups[2]["median_max"]) == (1.0, 3.0)
    assert groups[2]["first_stored"].tzinfo is not None
    assert db.measurement_groups("board", space="fbnet") == []
    with pytest.raises(NotFoundError):
        db.measurement_groups("nope")
