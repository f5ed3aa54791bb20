"""Entry point of the ``nas`` console script.

Each command group lives in its own module exposing ``register(app)``; this module only
wires them together, sets the global options and turns library errors into one line on
stderr with exit code 1 (usage errors: 2), never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import Annotated, Any

import typer

from nas import __version__
from nas._cli._common import (
    err_console,
    interrupt_note,
    record_stop_signal,
    set_db_option,
    set_interrupt_note,
    stop_signal,
    with_measure_settings,
)

__all__ = ["app", "main"]

# Command modules, each with ``register(app: typer.Typer) -> None``.
_COMMAND_MODULES = (
    "hwdb",
    "spaces",
    "measure",
    "predictor",
    "search",
    "export",
    "device",
    "serve",
    "cache",
)

_INTERRUPTED = 130  # exit code of a command stopped by Ctrl-C (128 + SIGINT)

app = typer.Typer(
    rich_markup_mode="markdown",
    name="nas",
    help="Hardware-aware NAS: measure devices, predict latency, search Pareto-optimal models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: NAS_DATABASE_URL or the user file)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Global options."""
    set_db_option(db)  # commands that messages suggest then name it too
    if db is not None:
        os.environ["NAS_DATABASE_URL"] = db


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"nas._cli.{name}")
        module.register(app)


_register_all()


def _library_errors() -> tuple[type[BaseException], ...]:
    from hwdb import HwdbError
    from nas import NasError
    from predictors import PredictorError
    from search_spaces import SearchSpaceError

    return (HwdbError, NasError, PredictorError, SearchSpaceError, ValueError, OSError)


def _unknown_space_error() -> type[BaseException]:
    from search_spaces import UnknownSpaceError

    return UnknownSpaceError


def _click_exceptions() -> Any:
    """Typer >= 0.25 vendors click as ``typer._click``; older releases use ``click``."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover - depends on the installed typer
        return importlib.import_module("click.exceptions")


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    """Print a warning as one ``warning: ...`` line on stderr (no source file and line)."""
    text = str(message).strip()
    err_console.print(f"warning: {text.splitlines()[0] if text else 'warning'}", markup=False)


def _say_interrupted() -> None:
    """The one line after Ctrl-C or ``kill`` (what the command kept), then the default note
    again."""
    how = "terminated" if stop_signal() == signal.SIGTERM else "interrupted"
    err_console.print(f"error: {how}; {interrupt_note()}", markup=False)
    set_interrupt_note(None)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    record_stop_signal(signum)
    raise KeyboardInterrupt


def _interrupted_code() -> int:
    """128 + the signal that stopped the command: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + stop_signal()


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (``kill``, a container stopping) stops a command as Ctrl-C does: the same
    cleanup, the same one line saying what was kept, and exit code 143 (128 + SIGTERM).
    Commands that say more install their own handler inside this one (``nas measure``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 0 on success, 1 on failure, 2 on usage errors."""
    try:
        _main(argv)
    finally:
        set_db_option(None)  # a --db holds for one command (callers in one process: tests)


def _main(argv: list[str] | None) -> None:
    from nas import CLIUsageError

    exc_mod = _click_exceptions()
    set_interrupt_note(None)  # a note left by a command that failed earlier in this process
    set_db_option(None)
    record_stop_signal(None)
    try:
        with warnings.catch_warnings(), _sigterm_as_ctrl_c():
            warnings.showwarning = _show_warning
            rc = app(args=argv, prog_name="nas", standalone_mode=False)
    except typer.Abort:
        err_console.print("error: aborted", markup=False)
        sys.exit(_interrupted_code())
    except KeyboardInterrupt:
        _say_interrupted()
        sys.exit(_interrupted_code())
    except exc_mod.NoArgsIsHelpError:
        sys.exit(0)  # the help text was already printed
    except exc_mod.UsageError as exc:
        message = exc.format_message()
        missing = isinstance(exc, exc_mod.NoSuchOption)  # not "--db needs a value"
        if missing and getattr(exc, "option_name", None) == "--db":  # after the command
            message = (
                "--db goes before the command: it is an option of nas itself "
                "(nas --db URL COMMAND ...)"
            )
        err_console.print(f"error: {message}", markup=False)
        sys.exit(2)
    except exc_mod.ClickException as exc:
        err_console.print(f"error: {exc.format_message()}", markup=False)
        sys.exit(exc.exit_code)
    except CLIUsageError as exc:
        err_console.print(f"error: {exc}", markup=False)
        sys.exit(2)
    except _unknown_space_error() as exc:  # a --space that names no space: a usage error
        message = str(exc.args[0]) if exc.args else str(exc)  # a KeyError's str() quotes it
        err_console.print(f"error: {message}", markup=False)
        sys.exit(2)
    except _library_errors() as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err_console.print(f"error: {with_measure_settings(message)}", markup=False)
        sys.exit(1)
    if rc == _INTERRUPTED:  # typer turns KeyboardInterrupt into this exit code, silently
        _say_interrupted()
        rc = _interrupted_code()
    sys.exit(rc if isinstance(rc, int) else 0)
