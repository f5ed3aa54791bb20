"""Helpers shared by CLI modules: consoles, error exit, JSON output."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

from rich.console import Console, RenderableType

__all__ = ["console", "err_console", "fail", "human_bytes", "print_json", "print_table"]

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (1 failure, 2 usage)."""
    err_console.print(f"error: {message}", markup=False)
    sys.exit(code)


def human_bytes(value: int) -> str:
    """``1536 -> '1.50 KiB'`` (binary units)."""
    for factor, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= factor:
            return f"{value / factor:.2f} {suffix}"
    return f"{value} B"


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON to stdout (no rich markup, no wrapping)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


_MAX_LOG_WIDTH = 400  # a table wider than this still wraps in a log


def print_table(table: RenderableType) -> None:
    """Print a rich table on stdout, at its natural width when stdout is not a terminal.

    rich lays out for 80 columns when stdout is a pipe or a file (a CI log, ``| tee``), which
    folds long cells such as MnasNet architecture strings over a dozen lines; a log has no
    width limit, so the table gets the width it needs there. ``COLUMNS`` still wins.
    """
    if console.is_terminal or "COLUMNS" in os.environ:
        console.print(table)
        return
    natural = console.measure(table, options=console.options.update_width(_MAX_LOG_WIDTH))
    wide = Console(file=console.file, width=max(console.width, natural.maximum))
    wide.print(table)  # Console.print(width=...) cannot exceed the console's own width
