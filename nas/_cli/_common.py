"""Helpers shared by CLI modules: consoles, error exit, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

__all__ = ["console", "err_console", "fail", "print_json"]

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (1 failure, 2 usage)."""
    err_console.print(f"error: {message}", markup=False)
    sys.exit(code)


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON to stdout (no rich markup, no wrapping)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()
