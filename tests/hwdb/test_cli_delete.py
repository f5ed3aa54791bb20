"""`nas hwdb delete`: filters, confirmation, dry runs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwdb import DeviceSpec, HardwareDB, MeasurementIn
from nas._cli.main import main
from tests.hwdb._helpers import nb201_archs

ARCHS = nb201_archs(4)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'del.sqlite'}"
    with HardwareDB(url) as db:
        db.upsert_device(DeviceSpec(name="pi4", family="cpu"))
        db.add_measurements([
            MeasurementIn(device="pi4", space="nasbench201", arch=a, median=2.0 + i,
                          protocol="p", uploaded_by="lab" if i % 2 else None)
            for i, a in enumerate(ARCHS)
        ])  # fmt: skip
    return url


def _count(url: str) -> int:
    with HardwareDB(url, create=False) as db:
        return db.count_measurements(device="pi4")


def test_dry_run_then_delete_by_uploader(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--db", db_url, "hwdb", "delete", "pi4", "--uploaded-by", "lab",
                         "--dry-run"], capsys)  # fmt: skip
    assert code == 0 and "would delete 2 measurements of pi4" in out
    assert _count(db_url) == 4
    code, out, _ = _run(["--db", db_url, "hwdb", "delete", "pi4", "--uploaded-by", "lab", "-y"],
                        capsys)  # fmt: skip
    assert code == 0 and "deleted 2 measurements of pi4" in out
    assert _count(db_url) == 2
    code, out, _ = _run(["--db", db_url, "hwdb", "delete", "pi4", "--uploaded-by", "lab", "-y"],
                        capsys)  # fmt: skip
    assert code == 0 and "no measurement of pi4 matches" in out
    assert f"`nas --db {db_url} hwdb show pi4`" in " ".join(out.split())  # runs as printed


def test_one_arch(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--db", db_url, "hwdb", "delete", "pi4", "--space", "nasbench201", "--arch", ARCHS[0]]
    code, out, _ = _run([*argv, "--yes"], capsys)
    assert code == 0 and "deleted 1 measurement of pi4" in out
    assert _count(db_url) == 3


def test_without_yes_off_a_terminal_nothing_is_deleted(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["--db", db_url, "hwdb", "delete", "pi4"], capsys)
    assert code == 2
    assert err.strip() == (
        "error: refusing to delete 4 measurements of pi4 without --yes (not a terminal)"
    )
    assert _count(db_url) == 4


def test_declining_on_a_terminal_is_one_error_line(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: declining printed a bare "nothing deleted" (exit 1), unlike every other error."""
    import sys

    import typer

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: False)
    code, out, err = _run(["--db", db_url, "hwdb", "delete", "pi4"], capsys)
    assert code == 1 and out == "" and err.strip() == "error: not confirmed; nothing deleted"
    assert _count(db_url) == 4


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope", "-y"], 1, "error: device 'nope' not found"),
        (["pi4", "--arch", "x", "-y"], 2, "error: --arch needs --space"),
        (["pi4", "--space", "bogus", "-y"], 2, "error: unknown search space 'bogus'"),
        (["pi4", "--space", "nasbench201", "--arch", "bogus", "-y"], 2, "error: --arch: "),
    ],
)
def test_bad_input_is_one_line(
    db_url: str, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, _, err = _run(["--db", db_url, "hwdb", "delete", *args], capsys)
    assert got == code
    assert err.startswith(message) and err.count("\n") == 1
    assert _count(db_url) == 4


def test_show_groups_what_delete_selects(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--db", db_url, "hwdb", "show", "pi4", "--json"], capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["device"]["name"] == "pi4"
    assert sorted((g["uploaded_by"] or "", g["rows"]) for g in shown["groups"]) == [
        ("", 2), ("lab", 2)
    ]  # fmt: skip
    code, out, _ = _run(["--db", db_url, "hwdb", "show", "pi4"], capsys)
    assert code == 0 and "4 measurements" in out and "lab" in out
    code, _, err = _run(["--db", db_url, "hwdb", "show", "nope"], capsys)
    assert code == 1 and err.strip() == "error: device 'nope' not found"
