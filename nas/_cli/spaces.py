"""`nas spaces` commands: list the registered search spaces and inspect one space or architecture.

A thin layer over :mod:`search_spaces` (``list_spaces``, ``get_space``, ``SearchSpace.resolve``,
``SearchSpace.profile``); an unknown space or an invalid architecture string is one line on
stderr with exit code 2 (a usage error), as everywhere in ``nas``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nas._cli._common import cli_arch, console, human_bytes, print_json, print_table

if TYPE_CHECKING:
    from search_spaces import SearchSpace

__all__ = ["register"]


def _human(value: float, unit: str = "") -> str:
    """``3887038 -> '3.89M'``, ``311579072 -> '312M'`` (three significant digits)."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            scaled = value / factor
            digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
            return f"{scaled:.{digits}f}{suffix}{unit}"
    return f"{value:g}{unit}"


def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every registered search space."""
    from search_spaces import get_space, list_spaces

    rows = [
        {
            "name": name,
            "description": (space := get_space(name)).description,
            "n_parameters": len(space.search_parameters()),
            "encoding_length": int(space.encoding_length),
        }
        for name in list_spaces()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Search spaces")
    for column in ("name", "description", "#parameters", "encoding length"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(str(row[k]) for k in ("name", "description", "n_parameters", "encoding_length"))
        )
    print_table(table)


def _arch_report(space: SearchSpace[Any], arch_text: str) -> dict[str, Any]:
    arch = space.from_string(cli_arch(space.name, arch_text))
    profile = space.profile(arch)
    return {
        "space": space.name,
        "arch": space.to_string(arch),
        "params": int(profile.params),
        "macs": int(profile.macs),
        "flops": int(profile.flops),
        "memory_bytes": int(profile.memory_bytes),
        "encoding_length": int(space.encoding_length),
    }


def _print_arch(report: dict[str, Any], workload: str) -> None:
    table = Table(title=f"{report['space']} architecture (standard workload)", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("arch", report["arch"])
    table.add_row("workload", workload)
    table.add_row("params", _human(report["params"]))
    table.add_row("MACs", _human(report["macs"]))
    table.add_row("FLOPs", _human(report["flops"]))
    # what the space's profile counts: a language model's decode cache, a CNN's activations
    what = "decode cache" if _is_language_model(report["space"]) else "peak activations"
    table.add_row("memory", f"{human_bytes(report['memory_bytes'])} ({what})")
    table.add_row("encoding length", str(report["encoding_length"]))
    print_table(table)


def _is_language_model(space: str) -> bool:
    from nas.search._objectives import is_language_model_space
    from search_spaces import get_space

    return is_language_model_space(get_space(space))


def _print_space(space: SearchSpace[Any]) -> None:
    console.print(f"[bold]{escape(space.name)}[/bold]: {escape(space.description)}")
    params = Table(title=f"Parameters ({len(space.search_parameters())})")
    params.add_column("name")
    params.add_column("choices", overflow="fold")
    for name, choices in space.search_parameters().items():
        params.add_row(name, ", ".join(str(c) for c in choices))
    print_table(params)
    refs = Table(title="Reference architectures")
    refs.add_column("name")
    refs.add_column("architecture", overflow="fold")
    for name, arch in space.reference_archs().items():
        refs.add_row(name, space.to_string(arch))
    print_table(refs)


def _space_summary(space: SearchSpace[Any]) -> dict[str, Any]:
    return {
        "space": space.name,
        "description": space.description,
        "parameters": {k: list(v) for k, v in space.search_parameters().items()},
        "reference_archs": {k: space.to_string(a) for k, a in space.reference_archs().items()},
        "encoding_length": int(space.encoding_length),
    }


def show_command(
    space_name: Annotated[str, typer.Argument(metavar="SPACE", help="Registered space name.")],
    arch: Annotated[
        str | None,
        typer.Option("--arch", help="Reference name (e.g. mnasnet-a1) or architecture string."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show a space's parameters and reference models, or one architecture's cost profile.

    The profile uses the space's standard workload (for example batch 1, 224x224).
    """
    from search_spaces import get_space

    space = get_space(space_name)
    if arch is None:
        if as_json:
            print_json(_space_summary(space))
        else:
            _print_space(space)
        return
    report = _arch_report(space, arch)
    if as_json:
        print_json(report)
    else:
        workload = ", ".join(f"{k}={v}" for k, v in space.workload_dict().items())
        _print_arch(report, workload)


def register(app: typer.Typer) -> None:
    """Add the ``spaces`` group (``list``, ``show``) to ``app``."""
    group = typer.Typer(
        rich_markup_mode="markdown",
        name="spaces",
        help="Inspect the registered search spaces.",
        no_args_is_help=True,
    )
    group.command("list")(list_command)
    group.command("show")(show_command)
    app.add_typer(group, name="spaces")
