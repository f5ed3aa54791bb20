"""Deleting measurements (``HardwareDB.delete_measurements``) and who uploaded them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hwdb import ChangedError, DeviceSpec, HardwareDB, MeasurementIn, NotFoundError
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


def test_export_and_import_keep_the_uploader(db: HardwareDB, tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    export_parquet(db, path)
    with HardwareDB(f"sqlite:///{tmp_path / 'copy.sqlite'}") as copy:
        import_parquet(copy, path)
        assert copy.delete_measurements(device="board", uploaded_by="edge-lab", dry_run=True) == 3
        assert copy.delete_measurements(device="board", protocol="a", dry_run=True) == 3
        local = [r for r in copy.measurements(device="board") if r["protocol"] == "a"]
        assert {r["uploaded_by"] for r in local} == {None}


def test_export_and_import_keep_who_registered_each_device(db: HardwareDB, tmp_path: Path) -> None:
    """Left open by session 28: exports did not carry `registered_by`, so a device a key had
    registered through the service came out of a move (laptop SQLite to a team's database)
    owned by the database only. Now the export names the key for devices with and without
    measurements, an import sets it on the devices it inserts when the database has a key of
    that name (names are per database), and a stored device keeps its own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hwdb import ImportDataError

    db.upsert_device(DeviceSpec(name="lab-pi", runtime="torch"), registered_by="edge-lab")
    db.upsert_device(DeviceSpec(name="idle", runtime="torch"), registered_by="edge-lab")
    db.add_measurements(_rows("lab-pi", "a", "edge-lab", ARCHS[:2]))
    path = tmp_path / "out.parquet"
    export_parquet(db, path)
    with HardwareDB(f"sqlite:///{tmp_path / 'copy.sqlite'}") as copy:
        copy.create_api_key("edge-lab")  # the team's key, on the database moved to
        copy.upsert_device(DeviceSpec(name="idle", runtime="torch"), registered_by="ops")
        import_parquet(copy, path)
        owners = {d.name: d.registered_by for d in copy.list_devices()}
    assert owners == {"board": None, "other": None, "lab-pi": "edge-lab", "idle": "ops"}
    with HardwareDB(f"sqlite:///{tmp_path / 'stranger.sqlite'}") as other:
        import_parquet(other, path)  # no key of that name here: nobody's key takes it
        assert {d.registered_by for d in other.list_devices()} == {None}
    table = pq.read_table(path).to_pylist()
    for rec in table:
        if rec["device"] == "lab-pi":
            rec["device_registered_by"] = "mallory" if rec["arch"] == ARCHS[1] else "edge-lab"
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(path)), bad)
    with HardwareDB(f"sqlite:///{tmp_path / 'copy2.sqlite'}") as copy:
        with pytest.raises(ImportDataError, match="device_registered_by.*contradicts"):
            import_parquet(copy, bad)
        assert copy.list_devices() == []


def test_measurement_groups(db: HardwareDB) -> None:
    db.add_measurements([MeasurementIn(device="board", space="nasbench201", arch=ARCHS[0],
                                       median=7.0, protocol="a", metric="energy_mj",
                                       workload={"resolution": 64})])  # fmt: skip
    groups = db.measurement_groups("board")
    assert [(g["metric"], g["protocol"], g["uploaded_by"], g["rows"]) for g in groups] == [
        ("energy_mj", "a", None, 1), ("latency_ms", "a", None, 3),
        ("latency_ms", "b", "edge-lab", 3),
    ]  # fmt: skip
    assert groups[0]["workload"] == {"resolution": 64} and groups[1]["workload"] == {}
    assert (groups[2]["median_min"], groups[2]["median_max"]) == (1.0, 3.0)
    assert groups[2]["first_stored"].tzinfo is not None
    assert db.measurement_groups("board", space="fbnet") == []
    with pytest.raises(NotFoundError):
        db.measurement_groups("nope")


def test_a_key_replaces_only_its_own_rows(db: HardwareDB) -> None:
    """``replace`` with an uploader overwrites only rows that key uploaded (a key must not take
    over, and then delete, rows of another key or of the database's owner); a local replace
    (no uploader) overwrites any row."""
    mine = _rows("board", "b", "edge-lab", ARCHS[3:4])[0]
    theirs = _rows("board", "a", None, ARCHS[:1])[0]
    bump = {"median": 50.0}
    assert db.add_measurements([replace(theirs, uploaded_by="edge-lab", **bump)], replace=True) == 0
    assert db.add_measurements([replace(mine, uploaded_by="intruder", **bump)], replace=True) == 0
    assert db.add_measurements([replace(mine, **bump)], replace=True) == 1
    rows = {(r["arch"], r["protocol"]): r for r in db.measurements(device="board")}
    assert rows[(ARCHS[0], "a")]["median"] == 1.0 and rows[(ARCHS[0], "a")]["uploaded_by"] is None
    assert rows[(ARCHS[3], "b")]["median"] == 50.0
    assert rows[(ARCHS[3], "b")]["uploaded_by"] == "edge-lab"
    local = replace(mine, uploaded_by=None, median=60.0)
    assert db.add_measurements([local], replace=True) == 1
    after = {r["arch"]: r for r in db.measurements(device="board", uploaded_by="edge-lab")}
    assert ARCHS[3] not in after and len(after) == 2  # the owner's write took the row over


def test_empty_protocol_selects_rows_stored_without_one(db: HardwareDB) -> None:
    db.add_measurements(_rows("board", "", None, ARCHS[:2]))
    assert db.delete_measurements(device="board", protocol="", dry_run=True) == 2
    assert db.delete_measurements(device="board", protocol="") == 2
    assert db.count_measurements(device="board") == 6


def test_expected_count_guards_against_rows_stored_meanwhile(db: HardwareDB) -> None:
    n = db.delete_measurements(device="board", protocol="a", dry_run=True)
    db.add_measurements(_rows("board", "a", None, ARCHS[3:4]))  # arrives after the question
    with pytest.raises(ChangedError, match="4 measurements of 'board' match now, not the 3"):
        db.delete_measurements(device="board", protocol="a", expected=n)
    assert db.count_measurements(device="board") == 7
    assert db.delete_measurements(device="board", protocol="a", expected=4) == 4


def test_groups_merge_one_workload_written_two_ways(db: HardwareDB) -> None:
    lm = {"prompt_len": 32, "decode_len": 8, "batch_size": 1}
    rows = [MeasurementIn(device="board", space="nasbench201", arch=a, median=2.0, protocol="w",
                          workload=lm, environment={"run_id": "r"}) for a in ARCHS[:2]]  # fmt: skip
    db.add_measurements(rows)
    # a run re-levelling its rows writes the workload's JSON with its keys in their own order
    assert db.replace_run_measurements(rows[:1], run_id="r") == []
    groups = [g for g in db.measurement_groups("board") if g["protocol"] == "w"]
    assert len(groups) == 1 and groups[0]["rows"] == 2
    plain = [g for g in db.measurement_groups("board") if g["protocol"] == "a"]
    assert plain[0]["workload"] == {}


def test_stamp_changes_on_add_delete_and_replace(db: HardwareDB) -> None:
    def stamp() -> tuple[object, ...]:
        return db.measurement_stamp(space="nasbench201", device="board", metric="latency_ms")

    first = stamp()
    assert first[0] == 6 and stamp() == first
    db.add_measurements([replace(_rows("board", "a", None, ARCHS[:1])[0], median=9.0)],
                        replace=True)  # fmt: skip
    second = stamp()
    assert second != first and second[0] == 6
    db.delete_measurements(device="board", archs=ARCHS[:1], space="nasbench201", protocol="a")
    assert stamp()[0] == 5
