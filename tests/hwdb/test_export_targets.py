"""`nas hwdb export` onto paths that are not plain files: refused or written through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nas._cli.main import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0), capsys.readouterr().err


def test_export_refuses_devices_and_writes_through_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipe (or ``/dev/null`` as root) is not replaced by a parquet file; a symbolic link
    keeps pointing at the file it names, which gets the export."""
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert _run(["--db", db, "hwdb", "init"], capsys)[0] == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err = _run(["--db", db, "hwdb", "export", "--out", str(fifo)], capsys)
    assert code == 1 and err.strip() == f"error: cannot write {fifo}: it is not a regular file"
    assert fifo.is_fifo()
    link = tmp_path / "link.parquet"
    link.symlink_to("real.parquet")
    assert _run(["--db", db, "hwdb", "export", "--out", str(link)], capsys)[0] == 0
    assert link.is_symlink() and (tmp_path / "real.parquet").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.parquet",
        "pipe",
        "real.parquet",
        "x.sqlite",
    ]
