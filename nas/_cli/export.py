"""`nas export ARCH --space S --format torch|onnx -o FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nas._cli._common import console

__all__ = ["register"]


def export(
    arch: Annotated[str, typer.Argument(help="Architecture string or reference-model name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file.")],
    space: Annotated[str, typer.Option(help="Search space.")] = "mnasnet",
    format: Annotated[str, typer.Option("--format", "-f", help="torch | onnx.")] = "torch",
) -> None:
    """Write the (freshly initialised) model of ARCH as a PyTorch checkpoint or ONNX file."""
    from nas import CLIUsageError
    from nas.search import EXPORT_FORMATS, export_model

    if format not in EXPORT_FORMATS:
        raise CLIUsageError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    path = export_model(arch, space=space, format=format, path=output)
    console.print(f"wrote {path}", markup=False)


def register(app: typer.Typer) -> None:
    """Add `nas export` to ``app``."""
    app.command("export")(export)
