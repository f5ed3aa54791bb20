"""Running the ``nas`` command line in-process in tests."""

from __future__ import annotations

import pytest

from nas._cli.main import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``nas ARGV`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def error_line(err: str) -> str:
    """The one ``error:`` line of ``err`` and nothing else on it but progress, else fail."""
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
