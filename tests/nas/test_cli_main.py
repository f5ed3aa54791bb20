"""The `nas` entry point: Ctrl-C is reported, not silent."""

from __future__ import annotations

from collections.abc import Iterator

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
