"""`nas serve` refuses, in one line, what would make the server fail at start-up."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hwdb import HardwareDB
from nas._cli.main import main


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test instead of serving forever when a check lets the command through."""

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("uvicorn.run was reached")

    monkeypatch.setattr("uvicorn.run", refuse)


def _error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_missing_or_unreadable_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    missing = tmp_path / "nope" / "x.sqlite"
    assert "does not exist" in _error_line(["--db", f"sqlite:///{missing}", "serve"], capsys)
    assert not missing.parent.exists()
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    _error_line(["--db", f"sqlite:///{text}", "serve"], capsys)
    assert text.read_text() == "not a database"


def test_an_address_in_use_or_unknown_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    HardwareDB(db).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _error_line(["--db", db, "serve", "--port", str(port)], capsys)
    assert f"127.0.0.1:{port}" in line
    assert "cannot serve" in _error_line(
        ["--db", db, "serve", "--host", "no-such-host.invalid"], capsys
    )
