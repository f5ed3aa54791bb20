"""`nas cache` commands: where the on-disk store of traced operator tables is, and clearing it.

A thin layer over :func:`predictors.zeroshot.trace_store_info` and
:func:`predictors.zeroshot.clear_trace_store`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table

from nas._cli._common import console, human_bytes, print_json, print_table

__all__ = ["register"]


def info_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the trace store: folder, size, files (``NAS_TRACE_CACHE`` moves it or turns it off).

    help+ meta-training, zero-shot prediction and zero-shot evaluation keep the operator
    tables they trace there, so later processes skip tracing the same archs again.
    """
    from predictors.zeroshot import trace_store_info

    info = trace_store_info()
    if as_json:
        print_json(dataclasses.asdict(info))
        return
    table = Table(title="Trace store", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("folder", info.root or "off (NAS_TRACE_CACHE)")
    table.add_row("fingerprint", f"{info.fingerprint} (search-space code, tracer, torch)")
    table.add_row("files", f"{info.files:,} ({info.current_files:,} of this fingerprint)")
    table.add_row("size", human_bytes(info.bytes))
    print_table(table)


def clear_command() -> None:
    """Delete every stored operator table (they are traced again when next needed)."""
    from predictors.zeroshot import clear_trace_store

    removed = clear_trace_store()
    console.print(f"removed {removed:,} stored operator tables", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``cache`` group (``info``, ``clear``) to ``app``."""
    group = typer.Typer(
        rich_markup_mode="markdown",
        name="cache",
        help="The on-disk store of traced operator tables.",
        no_args_is_help=True,
    )
    group.command("info")(info_command)
    group.command("clear")(clear_command)
    app.add_typer(group, name="cache")
