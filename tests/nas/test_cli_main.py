"""The `nas` entry point: Ctrl-C is reported, not silent; usage errors exit 2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nas._cli.main import app, main


@pytest.fixture
def interrupted_command() -> Iterator[None]:
    """A temporary `nas boom` command interrupted by Ctrl-C, removed afterwards."""

    def boom() -> None:
        raise KeyboardInterrupt

    app.command("boom")(boom)
    try:
        yield
    finally:
        app.registered_commands.pop()


def test_ctrl_c_exits_130_with_one_line(
    interrupted_command: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["boom"])
    assert exc.value.code == 130
    assert capsys.readouterr().err.strip() == (
        "error: interrupted; everything finished so far is saved"
    )


def _import_failing_with(
    exc: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    """Exit code of `nas hwdb import csv` (one valid row) when the import raises ``exc``."""
    from hwdb import HardwareDB
    from tests.hwdb._helpers import NB201_0

    def failing(*_: Any, **__: Any) -> None:
        raise exc

    monkeypatch.setattr(HardwareDB, "bulk_import", failing)
    csv = tmp_path / "m.csv"
    csv.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201_0},pi4,1.5\n")
    with pytest.raises(SystemExit) as info:
        main(["--db", f"sqlite:///{tmp_path / 'i.sqlite'}", "hwdb", "import", "csv", str(csv)])
    return int(info.value.code or 0)


def test_ctrl_c_during_an_import_says_nothing_of_it_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An import is one transaction: "everything finished so far is saved" would be wrong."""
    assert _import_failing_with(KeyboardInterrupt(), tmp_path, monkeypatch) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1] == "error: interrupted; nothing of m.csv was stored (an import is one transaction)"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["spaces", "show", "bogus"],
        ["hwdb", "devices", "--space", "bogus"],
        ["predictor", "train", "--space", "bogus"],
        ["predictor", "adapt", "--space", "bogus", "--device", "x"],
        ["predictor", "predict", "--space", "bogus", "--device", "x", "--arch", "a"],
        ["predictor", "evaluate", "--space", "bogus", "--device", "x"],
        ["predictor", "evaluate", "--space", "bogus", "--device", "x", "--shots", "0"],
        ["search", "--space", "bogus", "--device", "jetson"],
        ["measure", "--space", "bogus", "--device-name", "x", "--n", "1"],
        ["device", "onboard", "x", "--space", "bogus"],
        ["export", "a", "--space", "bogus", "--format", "torch", "-o", "a.pt"],
    ],
)
def test_an_unknown_space_is_a_usage_error_everywhere(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Every command exits 2 (usage) with the same line for a --space that names no space."""
    from hwdb import HardwareDB

    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    HardwareDB(url).close()  # the predictor commands need an existing database
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["--db", url, *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: unknown search space 'bogus' (known: ")


def test_a_failed_import_does_not_leave_its_interrupt_note(
    interrupted_command: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The import's note is for Ctrl-C during that import only (in-process commands, as in
    tests, share it)."""
    from hwdb import StorageError

    assert _import_failing_with(StorageError("disk full"), tmp_path, monkeypatch) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["boom"])
    assert capsys.readouterr().err.strip() == (
        "error: interrupted; everything finished so far is saved"
    )


def _help_pages(width: int) -> Iterator[tuple[str, str]]:
    import typer.main
    from typer.testing import CliRunner

    runner = CliRunner()

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    for path in walk(typer.main.get_command(app), []):
        result = runner.invoke(
            app, [*path, "--help"], terminal_width=width, env={"COLUMNS": str(width)}
        )
        assert result.exit_code == 0, path
        yield " ".join(path), result.output


def test_help_paragraphs_are_reflowed_to_the_terminal() -> None:
    """Docstrings' line breaks used to be kept, so an 80-column terminal showed ragged text
    ("... several processes on" / "one PostgreSQL ..."): no paragraph line may end where the
    next line's first word would still have fit."""
    pages = list(_help_pages(80))
    assert len(pages) > 30
    for name, text in pages:
        lines = [ln.rstrip() for ln in text.splitlines()]
        for line, nxt in zip(lines, lines[1:], strict=False):
            if (
                not line.strip()
                or not nxt.strip()
                or line.lstrip()[:1] in "│╭╰"
                or nxt.lstrip()[:1] in "│╭╰"
            ):
                continue
            if line.lstrip().startswith("Usage:"):
                continue
            first = nxt.split()[0]
            assert len(line) + 1 + len(first) > 79, f"nas {name}: ragged help line {line!r}"
