"""Regression tests of `nas hwdb` / `nas api-key`: export after init, unknown names, no new DBs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwdb import HardwareDB
from tests._cli import run_cli as _run


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def test_export_after_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert _run(["--db", db, "hwdb", "init"], capsys)[0] == 0
    for extra in ([], ["--space", "mnasnet"]):
        out = tmp_path / f"out{len(extra)}.parquet"
        code, _, err = _run(["--db", db, "hwdb", "export", "--out", str(out), *extra], capsys)
        assert code == 0, err
        assert out.is_file()

    code, _, err = _run(["--db", db, "hwdb", "export", "--out", str(tmp_path)], capsys)
    assert code == 1 and _one_line(err) and "directory" in err
    missing = tmp_path / "no" / "x.parquet"
    code, _, err = _run(["--db", db, "hwdb", "export", "--out", str(missing)], capsys)
    assert code == 1 and _one_line(err) and "does not exist" in err
    assert not missing.parent.exists()

    out = tmp_path / "none.parquet"
    code, _, err = _run(["--db", db, "hwdb", "export", "--out", str(out), "--space", "nosuch"],
                        capsys)  # fmt: skip
    assert code == 2 and _one_line(err) and "nosuch" in err and not out.exists()
    code, _, err = _run(["--db", db, "hwdb", "export", "--out", str(out), "--device", "nosuch"],
                        capsys)  # fmt: skip
    assert code == 1 and _one_line(err) and "nosuch" in err and not out.exists()
    code, _, err = _run(["--db", db, "hwdb", "devices", "--space", "nosuch"], capsys)
    assert code == 2 and _one_line(err) and "nosuch" in err


@pytest.mark.parametrize(
    "argv",
    [["api-key", "list"], ["api-key", "revoke", "k"], ["hwdb", "stats"], ["hwdb", "devices"],
     ["hwdb", "export", "--out", "x.parquet"]],
)  # fmt: skip
def test_read_commands_do_not_create_a_database(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo" / "hwdb.sqlite"
    if argv[0] == "hwdb" and argv[1] == "export":
        argv = [*argv[:-1], str(tmp_path / "x.parquet")]
    code, _, err = _run(["--db", f"sqlite:///{path}", *argv], capsys)
    # the folder is missing too, so `nas hwdb init` would fail as well: the --db is named
    assert code == 1 and _one_line(err) and "nor does its folder" in err and "--db" in err
    assert not path.parent.exists()


def test_api_key_list_on_initialised_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'k.sqlite'}"
    assert _run(["--db", url, "hwdb", "upgrade"], capsys)[0] == 0
    with HardwareDB(url, create=False) as db:
        db.create_api_key("ci")
    code, out, _ = _run(["--db", url, "api-key", "list", "--json"], capsys)
    assert code == 0 and '"ci"' in out


def test_a_mistyped_db_path_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a missing folder is an error for every command; predictor commands also need the file
    deep = tmp_path / "typo" / "dir" / "x.sqlite"
    argv = ["--db", f"sqlite:///{deep}", "search", "--device", "jetson-nano", "--trials", "4"]
    code, _, err = _run(argv, capsys)
    assert code == 1 and _one_line(err) and "folder" in err and "does not exist" in err
    assert not (tmp_path / "typo").exists()
    typo = tmp_path / "typo.sqlite"
    argv = ["--db", f"sqlite:///{typo}", "predictor", "predict", "--space", "mnasnet"]
    code, _, err = _run([*argv, "--device", "d", "--arch", "mnasnet-a1"], capsys)
    assert code == 1 and _one_line(err) and f"`nas --db sqlite:///{typo} hwdb init`" in err
    assert not typo.exists()


def test_reimport_keeps_stored_values_says_so_and_replace_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV that corrects a stored value used to be a silent no-op; now the import says how
    many rows it kept, and ``--replace`` writes the new values (parquet the same)."""
    from tests.hwdb._helpers import NB201_0

    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    csv = tmp_path / "m.csv"
    csv.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201_0},pi4,12.5\n")
    code, out, err = _run(["--db", db, "hwdb", "import", "csv", str(csv)], capsys)
    assert code == 0 and "1 new measurement," in out
    assert err.strip().splitlines()[-1] == f"note: created a new database {tmp_path / 'r.sqlite'}"
    assert "kept the stored values" not in err
    csv.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201_0},pi4,20.0\n")
    code, out, err = _run(["--db", db, "hwdb", "import", "csv", str(csv)], capsys)
    assert code == 0 and "0 new measurements" in out
    assert "note: 1 measurement already in the database kept the stored values" in err
    with HardwareDB(db) as hw:
        assert hw.latency_table("nasbench201")["pi4"].tolist() == [12.5]
    code, out, err = _run(["--db", db, "hwdb", "import", "csv", str(csv), "--replace"], capsys)
    assert code == 0 and "1 new or replaced measurement," in out and "note:" not in err
    with HardwareDB(db) as hw:
        assert hw.latency_table("nasbench201")["pi4"].tolist() == [20.0]
    parquet = tmp_path / "m.parquet"
    assert _run(["--db", db, "hwdb", "export", "--out", str(parquet)], capsys)[0] == 0
    csv.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201_0},pi4,30.0\n")
    assert _run(["--db", db, "hwdb", "import", "csv", str(csv), "--replace"], capsys)[0] == 0
    code, _, err = _run(["--db", db, "hwdb", "import", "parquet", str(parquet)], capsys)
    assert code == 0 and "note: 1 measurement already in the database kept" in err
    assert (
        _run(["--db", db, "hwdb", "import", "parquet", str(parquet), "--replace"], capsys)[0] == 0
    )
    with HardwareDB(db) as hw:
        assert hw.latency_table("nasbench201")["pi4"].tolist() == [20.0]


def test_import_csv_says_which_rows_a_device_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: CSV rows at the default input for a device measured at another were imported as
    "new measurements" and then silently ignored by predictions and searches."""
    from tests.hwdb._helpers import nb201_archs

    db = f"sqlite:///{tmp_path / 'c.sqlite'}"
    archs = nb201_archs(5)
    at64 = tmp_path / "at64.csv"
    at64.write_text(
        "space,arch,device,latency_ms,resolution\n"
        + "".join(f"nasbench201,{a},cam,1.5,64\n" for a in archs[:3])
    )
    code, _, err = _run(["--db", db, "hwdb", "import", "csv", str(at64)], capsys)
    assert code == 0 and "leave these out" not in err
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "space,arch,device,latency_ms\n" + "".join(f"nasbench201,{a},cam,9\n" for a in archs[3:])
    )
    code, _, err = _run(["--db", db, "hwdb", "import", "csv", str(plain)], capsys)
    (note,) = [line for line in err.splitlines() if line.startswith("note:")]
    assert code == 0 and note.startswith("note: 2 rows of cam in nasbench201 (latency_ms) are at")
    assert "input default" in note and "resolution=64" in note and "resolution" in note


def test_import_csv_says_when_it_moves_a_device_to_another_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left open by session 28: a CSV whose rows at another input tie with a device's stored
    rows takes the device's column over (ties go to the newest) and its earlier rows were
    left out without a word. The import now names them, and a file that does not move the
    column says nothing."""
    from tests.hwdb._helpers import nb201_archs

    db = f"sqlite:///{tmp_path / 't.sqlite'}"
    archs = nb201_archs(6)
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "space,arch,device,latency_ms\n" + "".join(f"nasbench201,{a},cam,9\n" for a in archs[:3])
    )
    code, _, err = _run(["--db", db, "hwdb", "import", "csv", str(plain)], capsys)
    assert code == 0 and "note: cam" not in err
    at64 = tmp_path / "at64.csv"
    at64.write_text(
        "space,arch,device,latency_ms,resolution\n"
        + "".join(f"nasbench201,{a},cam,1.5,64\n" for a in archs[3:])
    )
    code, _, err = _run(["--db", db, "hwdb", "import", "csv", str(at64)], capsys)
    (note,) = [line for line in err.splitlines() if line.startswith("note:")]
    assert code == 0 and note.startswith(
        "note: cam's latencies in nasbench201 (latency_ms) are now read at input resolution=64"
    )
    assert "its 3 rows at default, stored earlier, are left out" in note
    with HardwareDB(db) as hw:
        column = hw.latency_table("nasbench201", devices=["cam"])["cam"]
        assert column.dropna().tolist() == [1.5] * 3
    code, _, err = _run(["--db", db, "hwdb", "import", "csv", str(at64)], capsys)
    assert code == 0 and "now read at" not in err  # the column stays where it is
