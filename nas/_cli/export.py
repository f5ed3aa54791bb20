"""`nas export ARCH --space S --format torch|onnx -o FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nas._cli._common import cli_arch, console, err_console

__all__ = ["register"]


def export(
    arch: Annotated[str, typer.Argument(help="Architecture string or reference-model name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file.")],
    space: Annotated[str, typer.Option(help="Search space.")] = "mnasnet",
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="torch | onnx (default: onnx for a .onnx file, else torch)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 1, help="Seed of the weight initialisation.")
    ] = 0,
) -> None:
    """Write the (freshly initialised) model of ARCH as a PyTorch checkpoint or ONNX file.

    The file is written beside OUTPUT and renamed into place: a failed or interrupted export
    leaves an existing OUTPUT as it was. A torch file holds the space, the architecture and
    the weights: `nas.load_exported(FILE)` rebuilds the module.
    """
    from nas import CLIUsageError
    from nas._cli._common import set_interrupt_note
    from nas.search import EXPORT_FORMATS, export_model

    suffix = output.suffix.lower()
    if format is None:
        format = "onnx" if suffix == ".onnx" else "torch"
    format = format.strip().lower()
    if format not in EXPORT_FORMATS:
        raise CLIUsageError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    arch = cli_arch(space, arch)
    named = _SUFFIX_FORMATS.get(suffix)
    if named is not None and named != format:  # e.g. -f torch -o model.onnx
        err_console.print(
            f"note: writing a {format} file to {output}, whose suffix says {named}", markup=False
        )
    existed = output.is_file()
    set_interrupt_note(f"nothing was written ({output} is as it was)")
    path = export_model(arch, space=space, format=format, path=output, seed=seed)
    set_interrupt_note(None)
    console.print(f"{'replaced' if existed else 'wrote'} {path}", markup=False)


#: The format a file name's suffix says.
_SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torch", ".pth": "torch"}


def register(app: typer.Typer) -> None:
    """Add `nas export` to ``app``."""
    app.command("export")(export)
