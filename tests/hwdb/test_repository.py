"""HardwareDB repository behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC

import pytest

from hwdb import (
    AccuracyIn,
    DeviceSpec,
    DuplicateError,
    HardwareDB,
    MeasurementIn,
    NotFoundError,
)
from tests.hwdb._helpers import nb201_archs

SPACE = "nasbench201"


def _rows(
    device: str, archs: list[str], scale: float = 1.0, protocol: str = ""
) -> list[MeasurementIn]:
    return [
        MeasurementIn(device, SPACE, a, median=scale * (i + 1), protocol=protocol, n_runs=5)
        for i, a in enumerate(archs)
    ]


def test_devices_upsert_get_list(db_url: str) -> None:
    with HardwareDB(db_url) as db:
        first = db.upsert_device(DeviceSpec("jetson-nano-fp32", family="jetson", threads=4))
        assert first.created_at.tzinfo is not None
        updated = db.upsert_device(
            DeviceSpec("jetson-nano-fp32", family="jetson", hardware="Jetson Nano 4GB")
        )
        assert updated.id == first.id and updated.hardware == "Jetson Nano 4GB"
        assert updated.threads is None
        db.upsert_device(DeviceSpec("local-torch-t1", attributes={"cpu": "x86"}))
        assert db.get_device("local-torch-t1").attributes == {"cpu": "x86"}
        assert [d.name for d in db.list_devices()] == ["jetson-nano-fp32", "local-torch-t1"]
        assert [d.name for d in db.list_devices(family="jetson")] == ["jetson-nano-fp32"]
        assert db.list_devices(space=SPACE) == []
        with pytest.raises(NotFoundError, match="nope"):
            db.get_device("nope")


def test_upsert_of_some_fields_keeps_the_others(db_url: str) -> None:
    """``fields`` limits the update of a stored device (the API passes a request's fields, so
    a concurrent writer's other fields survive); a new device is inserted whole."""
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("d", family="gpu", hardware="A100", threads=8))
        got = db.upsert_device(DeviceSpec("d", runtime="onnxruntime"), fields={"runtime"})
        assert (got.family, got.hardware, got.threads, got.runtime) == (
            "gpu", "A100", 8, "onnxruntime",
        )  # fmt: skip
        same = db.upsert_device(DeviceSpec("d"), fields={"name"})  # nothing to update
        assert (same.family, same.runtime) == ("gpu", "onnxruntime")
        new = db.upsert_device(DeviceSpec("e", family="phone"), fields=set())
        assert new.family == "phone"
        with pytest.raises(ValueError, match="`fields` must be a collection"):
            db.upsert_device(DeviceSpec("d"), fields="runtime")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"must name DeviceSpec fields, got \['hardwrae'\]"):
            db.upsert_device(DeviceSpec("d"), fields={"hardwrae"})
        kept = db.upsert_device(DeviceSpec("d", threads=2), fields=(f for f in ["threads"]))
        assert (kept.threads, kept.family) == (2, "gpu")


def test_measurements_idempotent_and_replace(db_url: str) -> None:
    archs = nb201_archs(20)
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("d1"))
        assert db.add_measurements(_rows("d1", archs)) == 20
        assert db.add_measurements(_rows("d1", archs, scale=2.0)) == 0
        assert db.latency_table(SPACE)["d1"].max() == 20.0
        assert db.add_measurements(_rows("d1", archs[:5], scale=2.0), replace=True) == 5
        table = db.latency_table(SPACE)
        assert table.loc[archs[0], "d1"] == 2.0 and table.loc[archs[10], "d1"] == 11.0
        # another protocol is another row
        assert db.add_measurements(_rows("d1", archs[:3], protocol="rr10")) == 3
        assert db.measured_archs(space=SPACE, device="d1", protocol="rr10") == set(archs[:3])
        assert db.measured_archs(space=SPACE, device="d1") == set(archs)
        assert db.stats()["spaces"][SPACE] == {
            "devices": 1,
            "architectures": 20,
            "measurements": 23,
            "accuracies": 0,
        }


def test_missing_device_writes_nothing(db_url: str) -> None:
    archs = nb201_archs(4)
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("d1"))
        with pytest.raises(NotFoundError, match="ghost"):
            db.add_measurements(_rows("d1", archs) + _rows("ghost", archs))
        assert db.stats() == {"spaces": {}, "devices": 1}


def test_latency_table_and_records(db_url: str) -> None:
    archs = nb201_archs(6)
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("a"))
        db.upsert_device(DeviceSpec("b", family="gpu"))
        db.add_measurements(_rows("a", archs))
        db.add_measurements(
            [MeasurementIn("b", SPACE, archs[0], median=9.5, benchmark_index=123, std=0.1)]
        )
        table = db.latency_table(SPACE)
        assert list(table.columns) == ["a", "b"] and table.index.name == "arch"
        assert table.loc[archs[0], "b"] == 9.5 and math.isnan(table.loc[archs[1], "b"])
        assert table.attrs["benchmark_index"][archs[0]] == 123
        conflicting = [  # one arch, two indices in one batch: refused whole, nothing stored
            MeasurementIn("b", SPACE, archs[1], median=1.0, benchmark_index=7),
            MeasurementIn("b", SPACE, archs[1], median=1.0, metric="e2e_ms", benchmark_index=8),
        ]
        with pytest.raises(DuplicateError, match="benchmark indices 7 and 8"):
            db.add_measurements(conflicting)
        assert db.count_measurements(device="b") == 1
        only_b = db.latency_table(SPACE, devices=["b"])
        assert list(only_b.columns) == ["b"]
        with pytest.raises(NotFoundError):
            db.latency_table(SPACE, devices=["zzz"])
        with pytest.raises(NotFoundError, match="mnasnet"):
            db.latency_table("mnasnet")
        frame = db.architectures(SPACE)
        assert list(frame.columns) == ["arch", "benchmark_index", "hash"] and len(frame) == 6
        assert frame["hash"].str.len().eq(64).all()
        recs = db.measurements(device="b")
        assert recs[0]["std"] == 0.1 and recs[0]["created_at"].tzinfo == UTC
        page = db.measurements(space=SPACE, limit=2, offset=1)
        assert len(page) == 2 and page[0]["id"] > page[1]["id"]
        assert [d.name for d in db.list_devices(space=SPACE)] == ["a", "b"]
        assert db.list_spaces() == [SPACE]


def test_latency_table_keeps_one_workload_per_device(db_url: str) -> None:
    """A column never mixes input shapes: the workload with most rows wins, ties the newest."""
    archs = nb201_archs(8)
    small, large = {"batch_size": 1, "resolution": 160}, {"resolution": 224, "batch_size": 1}

    def rows(chosen: list[str], workload: dict[str, int], median: float) -> list[MeasurementIn]:
        tag = f"@r{workload['resolution']}"
        return [
            MeasurementIn("d", SPACE, a, median=median, protocol=tag, workload=workload)
            for a in chosen
        ]

    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("d"))
        db.upsert_device(DeviceSpec("e"))
        db.add_measurements(rows(archs[:5], small, 1.0))
        db.add_measurements(rows(archs[3:6], large, 2.0))  # newer, but fewer
        db.add_measurements([MeasurementIn("e", SPACE, archs[0], median=3.0)])
        table = db.latency_table(SPACE)
        assert table["d"].dropna().to_dict() == {a: 1.0 for a in archs[:5]}
        assert table.attrs["workload"] == {"d": small, "e": {}}
        db.add_measurements(rows(archs[6:8], large, 2.0))  # 5 against 5: the newest wins
        table = db.latency_table(SPACE, devices=["d"])
        assert table["d"].dropna().to_dict() == {a: 2.0 for a in archs[3:8]}
        assert table.attrs["workload"] == {"d": large}


def test_accuracies(db_url: str) -> None:
    archs = nb201_archs(3)
    with HardwareDB(db_url) as db:
        rows = [
            AccuracyIn(SPACE, a, "cifar10", "test_accuracy", 90.0 + i) for i, a in enumerate(archs)
        ]
        assert db.add_accuracies(rows) == 3
        assert db.add_accuracies(rows) == 0
        series = db.accuracy_table(SPACE, dataset="cifar10")
        assert series[archs[2]] == 92.0 and series.index.name == "arch"
        assert db.accuracy_table(SPACE, dataset="cifar100").empty


def test_artifacts(db_url: str) -> None:
    with HardwareDB(db_url) as db:
        a = db.save_artifact(
            kind="help", space=SPACE, version="1", payload=b"\x00w1", summary={"n": 1}, metrics={}
        )
        b = db.save_artifact(
            kind="help", space=SPACE, version="2", payload=b"w2", summary={}, metrics={"r": 0.9}
        )
        assert b > a
        latest = db.load_artifact(kind="help", space=SPACE)
        assert latest.version == "2" and latest.payload == b"w2" and latest.metrics == {"r": 0.9}
        assert db.load_artifact(kind="help", space=SPACE, version="1").payload == b"\x00w1"
        with pytest.raises(DuplicateError):
            db.save_artifact(
                kind="help", space=SPACE, version="1", payload=b"", summary={}, metrics={}
            )
        with pytest.raises(NotFoundError):
            db.load_artifact(kind="mlp", space=SPACE)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"median": 0.0}, "median"),
        ({"median": -1.0}, "median"),
        ({"median": float("nan")}, "median"),
        ({"median": 1.0, "n_runs": 0}, "n_runs"),
        ({"median": 1.0, "std": -1.0}, "std"),
        ({"median": 1.0, "warmup": -1}, "warmup"),
        ({"median": 1.0, "min": 1.5}, "min"),
        ({"median": 1.0, "p90": 0.9}, "p90"),
        ({"median": 1.0, "min": 0.8, "mean": 0.7}, "mean"),
    ],
)
def test_measurement_in_rejects_bad_values(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=f"^`{name}`"):
        MeasurementIn("d", SPACE, "x", **kwargs)  # type: ignore[arg-type]


def test_statistics_of_equal_samples_are_consistent() -> None:
    """The mean of equal samples can fall an ulp below their minimum; that is not a
    contradiction."""
    import numpy as np

    samples = np.full(7, 0.1)
    mean = float(np.mean(samples))
    MeasurementIn("d", SPACE, "x", median=0.1, mean=mean, min=0.1, p90=0.1)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"family": "quantum"}, "family"),
        ({"batch_size": 0}, "batch_size"),
        ({"provenance": "x"}, "provenance"),
    ],
)
def test_device_spec_rejects_bad_values(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        DeviceSpec("d", **kwargs)  # type: ignore[arg-type]


def test_default_url_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from hwdb import default_database_url

    monkeypatch.setenv("NAS_DATABASE_URL", "sqlite:///x.sqlite")
    assert default_database_url() == "sqlite:///x.sqlite"
    monkeypatch.delenv("NAS_DATABASE_URL")
    assert default_database_url().startswith("sqlite:///") and default_database_url().endswith(
        "hwdb.sqlite"
    )


def test_meta_tokens_do_not_split_a_column(db_url: str) -> None:
    """``meta_tokens`` is no input shape (a language model prepends its own architecture's):
    rows recorded with 32 and with 256 stay in one column."""
    archs = nb201_archs(4)
    old = {"prompt_len": 128, "decode_len": 16, "meta_tokens": 32}
    new = {"prompt_len": 128, "decode_len": 16, "meta_tokens": 256}
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("lm"))
        db.add_measurements(
            [MeasurementIn("lm", SPACE, a, median=1.0, workload=old) for a in archs[:2]]
        )
        db.add_measurements(
            [MeasurementIn("lm", SPACE, a, median=2.0, workload=new) for a in archs[2:]]
        )
        assert db.latency_table(SPACE)["lm"].notna().sum() == 4


def test_a_workload_is_one_however_it_was_written(db_url: str) -> None:
    """`{}` and the space's default written out in full are one workload, and so are a full
    dict and the few fields that differ from the default (a CSV states only those): a column
    counts them together."""
    from search_spaces import get_space

    archs = nb201_archs(9)
    full = get_space(SPACE).default_workload().to_dict()
    other = {**full, "resolution": 64}
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("w"))
        db.add_measurements([MeasurementIn("w", SPACE, a, median=1.0) for a in archs[:3]])
        db.add_measurements(
            [
                MeasurementIn("w", SPACE, a, median=1.0, protocol="f", workload=full)
                for a in archs[3:5]
            ]
        )
        db.add_measurements(
            [
                MeasurementIn("w", SPACE, a, median=2.0, protocol="o", workload=other)
                for a in archs[5:9]
            ]
        )  # 4 rows at 64 px, newest, against 3 + 2 at the default
        table = db.latency_table(SPACE, devices=["w"])
        assert table["w"].dropna().to_dict() == {a: 1.0 for a in archs[:5]}
        assert table.attrs["workload"]["w"] == full  # as its newest kept row stored it
        db.add_measurements(
            [MeasurementIn("w", SPACE, a, median=2.0, protocol="p", workload={"resolution": 64})
             for a in archs[:2]]
        )  # fmt: skip
        table = db.latency_table(SPACE, devices=["w"])  # 6 at 64 px now, however written
        assert table["w"].dropna().to_dict() == {a: 2.0 for a in archs[:2] + archs[5:9]}
