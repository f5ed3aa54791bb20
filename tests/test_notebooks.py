"""Execute every notebook top to bottom in fast mode (``NAS_NOTEBOOK_FAST=1``).

A failing cell fails the test. The notebooks on disk are not modified (outputs are kept in
memory only), so the committed, fully-run versions with their figures stay as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_exist() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {
        "01_hardware_database.ipynb",
        "02_latency_predictor.ipynb",
        "03_pareto_search.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(
    path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every cell runs, a figure is drawn, and the kernel leaves no temporary folder behind
    (each notebook's database is 50-130 MB)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    kernel_tmp = tmp_path / "tmp"
    kernel_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(kernel_tmp))
    monkeypatch.setenv("NAS_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("NAS_SHARED_DATA", str(shared_data))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [
        out
        for cell in book.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    images = sum(
        "image/png" in out.get("data", {})
        for cell in book.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert images >= 1, f"{path.name} drew no figure"
    left = [p.name for p in kernel_tmp.iterdir() if p.name.startswith("nas-notebook-")]
    assert not left, f"{path.name} left {left} in the temporary folder"
