"""The project's own measured dataset ships with the package and `nas hwdb init` loads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwdb.importers.parquet import bundled_datasets
from nas._cli.main import main


def test_bundled_parquet_files_are_found() -> None:
    names = {p.name for p in bundled_datasets()}
    assert {"mnasnet.parquet", "mobilevig.parquet", "nemotron_flash.parquet"} <= names


def test_init_on_empty_db_loads_three_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["hwdb", "init"])
    assert exc.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["hwdb", "stats", "--json"])
    stats = json.loads(capsys.readouterr().out)
    for space in ("mnasnet", "mobilevig", "nemotron_flash"):
        assert stats["spaces"][space]["devices"] >= 4
        assert stats["spaces"][space]["measurements"] > 0
    # idempotent: a second init adds nothing
    with pytest.raises(SystemExit):
        main(["hwdb", "init"])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["hwdb", "stats", "--json"])
    assert json.loads(capsys.readouterr().out) == stats


def test_import_counts_the_architectures_it_names(tmp_path: Path) -> None:
    from hwdb import HardwareDB
    from hwdb.importers.parquet import load_parquet

    path = next(p for p in bundled_datasets() if p.name == "mnasnet.parquet")
    with HardwareDB(f"sqlite:///{tmp_path / 'db.sqlite'}") as db:
        counts = db.bulk_import(load_parquet(path))
        assert counts["architectures"] == db.stats()["spaces"]["mnasnet"]["architectures"] == 409


def test_latency_table_defaults_to_the_spaces_latency_metric(tmp_path: Path) -> None:
    """Language models store prefill/decode/e2e, not latency_ms: the default table of
    nemotron_flash used to be empty (0 x 0)."""
    from hwdb import DeviceSpec, HardwareDB, space_latency_metric
    from hwdb.importers.parquet import load_parquet

    path = next(p for p in bundled_datasets() if p.name.startswith("nemotron_flash"))
    with HardwareDB(f"sqlite:///{tmp_path / 'db.sqlite'}") as db:
        db.bulk_import(load_parquet(path))
        default = db.latency_table("nemotron_flash")
        e2e = db.latency_table("nemotron_flash", metric="e2e_ms")
        device = str(default.columns[0])
        measured = db.measured_archs(space="nemotron_flash", device=device)
    assert space_latency_metric("nemotron_flash") == "e2e_ms"
    assert space_latency_metric("ofa") == space_latency_metric("mnasnet") == "latency_ms"
    assert default.shape[0] > 0 and default.equals(e2e)
    assert measured == set(default[device].dropna().index)
    with pytest.raises(ValueError, match="`name` must not start or end with whitespace"):
        DeviceSpec(name=" pi4 ")
