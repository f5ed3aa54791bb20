"""Rows of one measurement run: reading them by run id, rewriting only them."""

from __future__ import annotations

import pytest

from hwdb import DeviceSpec, HardwareDB, MeasurementIn, NotFoundError
from tests.hwdb._helpers import nb201_archs


def _row(arch: str, median: float, run: str, metric: str = "latency_ms") -> MeasurementIn:
    return MeasurementIn("d", "nasbench201", arch, metric=metric, median=median,
                         environment={"run_id": run})  # fmt: skip


def test_only_the_runs_rows_are_read_and_rewritten(db_url: str) -> None:
    a, b, c, d = nb201_archs(4)
    with HardwareDB(db_url) as db:
        db.upsert_device(DeviceSpec("d"))
        db.add_measurements([_row(a, 1.0, "A"), _row(b, 1.0, "A"), _row(c, 1.0, "B"),
                             _row(a, 5.0, "A", metric="energy_mj")])  # fmt: skip
        got = db.run_metrics(space="nasbench201", device="d", protocol="", run_id="A",
                             archs=[a, b, c, d])  # fmt: skip
        assert got == {a: {"latency_ms", "energy_mj"}, b: {"latency_ms"}}
        assert db.run_metrics(space="nasbench201", device="d", protocol="other", run_id="A",
                              archs=[a]) == {}  # fmt: skip
        assert db.run_metrics(space="nasbench201", device="nope", protocol="", run_id="A",
                              archs=[a]) == {}  # fmt: skip
        new = [_row(a, 2.0, "A"), _row(b, 2.0, "A"), _row(c, 2.0, "A"), _row(d, 2.0, "A")]
        assert db.replace_run_measurements(new, run_id="A") == [2, 3]  # B's row, none stored
        table = db.latency_table("nasbench201")["d"]
        assert table[[a, b, c]].tolist() == [2.0, 2.0, 1.0] and d not in table.index
        rows = {(r["arch"], r["metric"]): r for r in db.measurements(device="d")}
        assert rows[(a, "energy_mj")]["median"] == 5.0  # other metrics untouched
        assert db.replace_run_measurements([], run_id="A") == []
        with pytest.raises(ValueError, match="`run_id` must be a non-empty string"):
            db.replace_run_measurements(new, run_id="")
        with pytest.raises(NotFoundError, match="device 'x' not found"):
            db.replace_run_measurements(
                [MeasurementIn("x", "nasbench201", a, median=1.0)], run_id="A"
            )
