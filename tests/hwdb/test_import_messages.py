"""Regression tests of the importers' messages (QA session 31): ragged CSV rows, the note on
rows at another input for rows an import kept, integer columns that pandas wrote as floats,
and what a signal after an import's commit says."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hwdb import AccuracyIn, HardwareDB, ImportDataError
from hwdb.importers.csvfile import import_csv, load_csv, read_workloads, unused_rows
from hwdb.importers.parquet import export_parquet, load_parquet
from tests._cli import error_line as _error_line
from tests._cli import run_cli as _run
from tests.hwdb._helpers import NB201_0, nb201_archs

_HEADER = "space,arch,device,latency_ms"


# --------------------------------------------------------------------- 1: ragged CSV rows
@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"{_HEADER}\nnasbench201,{NB201_0},d,1.5,extra\n", "row 1 (line 2): 5 fields, but the "
         "header has 4 (space, arch, device, latency_ms): quote a value"),
        (f"{_HEADER}\nnasbench201,{NB201_0},d,1.5\n\nnasbench201,{NB201_0},e,1.5,x\n",
         "row 2 (line 4): 5 fields, but the header has 4"),
        (f"{_HEADER},resolution\nnasbench201,{NB201_0},d,1.5,64\nnasbench201,{NB201_0},e,64\n",
         "row 2 (line 3): 4 fields, but the header has 5 (space, arch, device, latency_ms, "
         "resolution): write an empty cell"),
    ],
    ids=["extra-first-row", "extra-later-row", "short-row"],
)  # fmt: skip
def test_a_csv_row_with_more_or_fewer_fields_than_the_header_is_named(
    tmp_path: Path, text: str, where: str
) -> None:
    """QA: one field more on the first row was read as an index, every value a column to the
    left ("field 'space': unknown search space '|nor_conv_3x3~0|...'"); one more on a later
    row was "not a readable CSV"; a short row was padded, so a forgotten latency read the
    resolution as the latency."""
    path = tmp_path / "ragged.csv"
    path.write_text(text)
    with pytest.raises(ImportDataError) as info:
        load_csv(path)
    assert str(info.value).startswith(f"{path}: {where}"), info.value


def test_a_ragged_csv_row_is_one_error_line_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    path = tmp_path / "ragged.csv"
    path.write_text(f"{_HEADER}\nnasbench201,{NB201_0},d,1.5\nnasbench201,{NB201_0},e,1.5,x\n")
    code, _, err = _run(["--db", url, "hwdb", "import", "csv", str(path)], capsys)
    assert code == 1 and "row 2 (line 3): 5 fields" in _error_line(err)
    assert not (tmp_path / "a.sqlite").exists()  # created for the import, removed again


def test_a_csv_with_consistent_rows_still_imports(tmp_path: Path) -> None:
    """Quoted commas, blank lines and trailing empty cells are no ragged rows."""
    path = tmp_path / "ok.csv"
    path.write_text(
        f"{_HEADER},resolution\n\n"
        f'nasbench201,"{NB201_0}","cam, left",1.5,\n\n'
        f"nasbench201,{nb201_archs(2)[1]},cam2,2.5,64\n"
    )
    rows = load_csv(path).rows
    got = [(r.device, r.workload) for r in rows]
    assert got == [("cam, left", {}), ("cam2", {"resolution": 64})]


# ------------------------------------------------- 2: the note on rows at another input
def _write(path: Path, rows: list[str], extra: str = "") -> Path:
    path.write_text(f"{_HEADER}{extra}\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_rows_an_import_kept_are_not_named_at_the_files_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: re-importing a stored row with a `resolution` (etc.) column printed "0 new" and a
    note that the row is at that input and left out, but it was kept at its stored input."""
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    archs = nb201_archs(3)
    plain = _write(tmp_path / "plain.csv", [f"nasbench201,{a},cam,9" for a in archs])
    at64 = _write(tmp_path / "at64.csv", [f"nasbench201,{archs[0]},cam,1.5,64"], ",resolution")
    assert _run(["--db", url, "hwdb", "import", "csv", str(plain)], capsys)[0] == 0
    code, out, err = _run(["--db", url, "hwdb", "import", "csv", str(at64)], capsys)
    assert code == 0 and "0 new measurements" in out, err
    assert "leave these out" not in err and "1 measurement already in the database kept" in err
    with HardwareDB(url) as db:  # the library function the CLI calls
        rows = load_csv(at64).rows
        assert unused_rows(db, rows, read_workloads(db, rows)) == []
    # replaced, the row is at 64 px, while the device's other two rows stay at the default
    code, out, err = _run(["--db", url, "hwdb", "import", "csv", str(at64), "--replace"], capsys)
    assert code == 0 and "1 new or replaced measurement" in out
    assert "note: 1 row of cam in nasbench201 (latency_ms) is at input resolution=64" in err


def test_kept_rows_count_among_the_earlier_rows_an_import_displaced(tmp_path: Path) -> None:
    """A kept row stays at its stored input: among the earlier rows the import's rows
    outnumber, not among the file's own rows."""
    archs = nb201_archs(5)
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        import_csv(db, _write(tmp_path / "p.csv", [f"nasbench201,{a},cam,9" for a in archs[:2]]))
        at64 = _write(
            tmp_path / "at64.csv",
            [f"nasbench201,{a},cam,1.5,64" for a in archs[:4]],  # archs 0, 1 are kept
            ",resolution",
        )
        rows = load_csv(at64).rows
        before = read_workloads(db, rows)
        assert import_csv(db, at64)["measurements"] == 2  # a tie: the newest input is read
        assert unused_rows(db, rows, before) == [
            {"device": "cam", "space": "nasbench201", "metric": "latency_ms", "rows": 2,
             "workload": {}, "used": {"resolution": 64}, "earlier": True}
        ]  # fmt: skip


# ------------------------------------------------- 3: integer columns written as floats
def _exported(tmp_path: Path) -> Path:
    """An export with measurements, an accuracy and nulls in its integer columns."""
    archs = nb201_archs(4)
    with HardwareDB(f"sqlite:///{tmp_path / 'src.sqlite'}") as db:
        rows = [f"nasbench201,{a},cam,{1 + i}" for i, a in enumerate(archs)]
        import_csv(db, _write(tmp_path / "m.csv", rows))
        db.add_accuracies([AccuracyIn("nasbench201", archs[0], "cifar10", "test_accuracy", 91.5)])
        out = tmp_path / "export.parquet"
        export_parquet(db, out)
    return out


def _through_pandas(src: Path, dest: Path, edit: Any = None) -> Path:
    frame = pd.read_parquet(src)
    if edit is not None:
        frame = edit(frame)
    frame.to_parquet(dest)
    return dest


def test_a_parquet_export_written_back_by_pandas_imports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: pandas reads an int64 column with nulls (an accuracy row's device columns, a
    device without a thread count) as float64 and writes 1.0 back; the import refused
    "`batch_size` must be an integer >= 1, got 1.0"."""
    export = _exported(tmp_path)
    subset = _through_pandas(
        export, tmp_path / "rt3.parquet", lambda f: f[f.row_kind == "measurement"].head(3)
    )
    whole = _through_pandas(export, tmp_path / "all.parquet")
    assert str(pd.read_parquet(whole)["device_batch_size"].dtype) == "float64"
    url = f"sqlite:///{tmp_path / 'dest.sqlite'}"
    code, out, err = _run(["--db", url, "hwdb", "import", "parquet", str(subset)], capsys)
    assert code == 0 and "3 new measurements" in out, err
    data = load_parquet(whole)
    assert data.n_measurements == 4 and data.n_accuracies == 1
    assert {(d.batch_size, d.threads) for d in data.devices} == {(1, None)}
    with HardwareDB(url) as db:
        counts = db.bulk_import(data)
        assert (counts["measurements"], counts["accuracies"]) == (1, 1)
        before = pd.read_parquet(export)
        frame = db.measurement_frame()
        assert sorted(frame["median"]) == sorted(before["median"].dropna())


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("device_batch_size", 1.5, "not an integer: 1.5"),
        ("n_runs", float("inf"), "not an integer: inf"),
        ("warmup", 1e300, "out of range for an integer: 1e+300"),
    ],
)
def test_a_fraction_in_an_integer_column_is_still_refused(
    tmp_path: Path, column: str, value: float, message: str
) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[1, column] = value
        return frame

    path = _through_pandas(_exported(tmp_path), tmp_path / "bad.parquet", edit)
    with pytest.raises(ImportDataError) as info:
        load_parquet(path)
    assert str(info.value) == f"{path}: row 2: field '{column}': {message}"


# ------------------------------------------------------- 4: a signal after the commit
def _sigterm(*_: object) -> list[Any]:
    os.kill(os.getpid(), signal.SIGTERM)  # nas stops on it as on Ctrl-C
    return []


def _ctrl_c(*_: object) -> list[Any]:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("stop", "code", "how"), [(_sigterm, 143, "terminated"), (_ctrl_c, 130, "interrupted")],
    ids=["sigterm", "ctrl-c"],
)  # fmt: skip
def test_a_signal_after_the_commit_says_the_import_completed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stop: Any,
    code: int,
    how: str,
) -> None:
    """QA: `kill` while `nas hwdb import csv` looked for rows a device leaves out (after the
    commit, all rows stored) said "terminated; everything finished so far is saved"."""
    import hwdb.importers.csvfile as csvfile

    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    path = _write(tmp_path / "m.csv", [f"nasbench201,{a},cam,9" for a in nb201_archs(2)])
    monkeypatch.setattr(csvfile, "unused_rows", stop)
    got, _, err = _run(["--db", url, "hwdb", "import", "csv", str(path)], capsys)
    assert got == code
    assert _error_line(err) == (
        f"error: {how}; m.csv was stored: its import had completed (2 new measurements and "
        "0 new accuracies)"
    )
    with HardwareDB(url, create=False) as db:
        assert db.count_measurements() == 2


@pytest.mark.parametrize("tail", [",", ",,"])
def test_trailing_unnamed_header_columns_still_import(tmp_path: Path, tail: str) -> None:
    """A header that ends in empty column names (a spreadsheet's export) on rows without
    them imported before the field-count check and still does: nothing can shift under a
    column without a name (review, session 31)."""
    path = tmp_path / "trailing.csv"
    path.write_text(
        f"{_HEADER}{tail}\nnasbench201,{NB201_0},d,2.0\nnasbench201,{NB201_0},e,3.0{tail}\n"
    )
    assert len(load_csv(path).rows) == 2
    path.write_text(f"{_HEADER}{tail}\nnasbench201,{NB201_0},d\n")
    with pytest.raises(
        ImportDataError, match=r"3 fields, but the header has 4 \(space, arch, device, latency_ms\)"
    ):
        load_csv(path)
