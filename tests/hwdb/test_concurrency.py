"""8 processes write overlapping measurements into one database: every row exactly once."""

from __future__ import annotations

import multiprocessing as mp

from hwdb import DeviceSpec, HardwareDB, MeasurementIn
from tests.hwdb._helpers import nb201_archs

N_PROCS = 8
N_ARCHS = 60
SPACE = "nasbench201"


def _worker(url: str, rank: int) -> int:
    archs = nb201_archs(N_ARCHS)
    inserted = 0
    with HardwareDB(url) as db:
        for name in ("shared-a", "shared-b", f"own-{rank}"):
            db.upsert_device(DeviceSpec(name, family="cpu"))
        # every process writes every shared row (in small transactions) plus its own rows
        for start in range(0, N_ARCHS, 15):
            part = archs[start : start + 15]
            rows = [
                MeasurementIn(dev, SPACE, a, median=1.0 + i, protocol="p")
                for dev in ("shared-a", "shared-b", f"own-{rank}")
                for i, a in enumerate(part)
            ]
            inserted += db.add_measurements(rows)
    return inserted


def test_eight_processes_every_row_once(db_url: str) -> None:
    HardwareDB(db_url).close()  # schema first; workers race on everything else
    ctx = mp.get_context("fork")
    with ctx.Pool(N_PROCS) as pool:
        counts = pool.starmap(_worker, [(db_url, r) for r in range(N_PROCS)])
    expected = (2 + N_PROCS) * N_ARCHS
    assert sum(counts) == expected
    with HardwareDB(db_url) as db:
        stats = db.stats()
        assert stats["devices"] == 2 + N_PROCS
        assert stats["spaces"][SPACE] == {
            "devices": 2 + N_PROCS,
            "architectures": N_ARCHS,
            "measurements": expected,
            "accuracies": 0,
        }
        table = db.latency_table(SPACE)
        assert table.notna().all().all() and table.shape == (N_ARCHS, 2 + N_PROCS)
