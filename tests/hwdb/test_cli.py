"""`nas hwdb ...` through the real entry point: exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas._cli.main import main
from tests.hwdb._helpers import NB201_0


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_init_import_stats_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert _run(["--db", db, "hwdb", "init"], capsys)[0] == 0
    assert _run(["--db", db, "hwdb", "init"], capsys)[0] == 0  # idempotent
    csv = tmp_path / "m.csv"
    csv.write_text(f"space,arch,device,latency_ms,family\nnasbench201,{NB201_0},pi4,12.5,cpu\n")
    assert _run(["--db", db, "hwdb", "import", "csv", str(csv)], capsys)[0] == 0
    pickle = shared_data / "latbench" / "embedded-tpu-edge-tpu-int8.pickle"
    assert _run(["--db", db, "hwdb", "import", "latbench", str(pickle)], capsys)[0] == 0
    code, out, _ = _run(["--db", db, "hwdb", "stats", "--json"], capsys)
    assert code == 0
    stats = json.loads(out)
    assert stats["spaces"]["nasbench201"] == {
        "devices": 2,
        "architectures": 15_284,
        "measurements": 15_285,
        "accuracies": 0,
    }
    assert set(stats["spaces"]) == {"nasbench201", "mnasnet", "mobilevig", "nemotron_flash"}
    code, out, _ = _run(["--db", db, "hwdb", "devices", "--json", "--space", "nasbench201"], capsys)
    assert [d["name"] for d in json.loads(out)] == ["embedded-tpu-edge-tpu-int8", "pi4"]
    code, out, _ = _run(["--db", db, "hwdb", "stats"], capsys)
    assert code == 0 and "nasbench201" in out
    out_file = tmp_path / "pi.parquet"
    assert (
        _run(["--db", db, "hwdb", "export", "--out", str(out_file), "--device", "pi4"], capsys)[0]
        == 0
    )
    db2 = f"sqlite:///{tmp_path / 'cli2.sqlite'}"
    assert _run(["--db", db2, "hwdb", "import", "parquet", str(out_file)], capsys)[0] == 0
    code, out, _ = _run(["--db", db2, "hwdb", "stats", "--json"], capsys)
    assert json.loads(out)["spaces"]["nasbench201"]["measurements"] == 1


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'e.sqlite'}"
    bad = tmp_path / "bad.csv"
    bad.write_text("space,arch,device\nnasbench201,x,d\n")
    code, _, err = _run(["--db", db, "hwdb", "import", "csv", str(bad)], capsys)
    assert code == 1 and err.count("\n") == 1 and "missing column" in err and "Traceback" not in err
    none = f"sqlite:///{tmp_path / 'none.sqlite'}"
    code, _, err = _run(["--db", none, "hwdb", "stats"], capsys)
    assert code == 1 and f"`nas --db {none} hwdb init` to create it" in err
    assert _run(["--db", db, "hwdb", "export"], capsys)[0] == 2  # --out missing: usage error


def test_upgrade_says_when_nothing_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    code, out, _ = _run(["--db", db, "hwdb", "upgrade"], capsys)
    assert code == 0 and "schema: empty -> " in out
    code, out, _ = _run(["--db", db, "hwdb", "upgrade"], capsys)
    assert code == 0 and "(already up to date)" in out and "->" not in out
