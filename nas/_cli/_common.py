"""Helpers shared by CLI modules: consoles, error exit, JSON output."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console, RenderableType

if TYPE_CHECKING:
    from pathlib import Path

    from hwdb import HardwareDB

__all__ = [
    "cli_arch",
    "check_space",
    "console",
    "count_noun",
    "err_console",
    "open_db",
    "fail",
    "human_bytes",
    "interrupt_note",
    "nas_prefix",
    "note_created",
    "print_json",
    "print_table",
    "set_db_option",
    "set_interrupt_note",
    "with_db",
    "with_measure_settings",
]

#: The ``--db`` the running command was given (empty: none; the environment or the default).
_DB_OPTION: list[str] = []
#: A ``nas`` command quoted with its arguments in a message, e.g. "`nas measure --space S`"
#: (not the bare words "nas search" of a sentence).
_COMMAND = re.compile(
    r"`nas (?=(?:measure|device|hwdb|predictor|search|export|spaces|cache|serve|api-key) "
    r"[^`])"
)


def set_db_option(url: str | None) -> None:
    """Remember the ``--db`` given to ``nas`` (None: none), for :func:`with_db`."""
    _DB_OPTION[:] = [url] if url is not None else []


def nas_prefix() -> str:
    """``nas``, with the ``--db`` this command was given (its passwords hidden, as in every
    message): how a suggested command starts so that, run as printed, it reaches the same
    database. Without ``--db`` the environment (``NAS_DATABASE_URL``) or the default does."""
    if not _DB_OPTION:
        return "nas"
    return f"nas --db {shlex.quote(_shown_url(_DB_OPTION[0]))}"


def _shown_url(url: str) -> str:
    """``url`` with its password hidden, also one given as a query parameter
    (``?password=...``, ``sslpassword``); a plain path as given."""
    from sqlalchemy.engine import make_url

    from hwdb._engine import hide_userinfo_password

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a plain path, or a URL --db refuses later anyway
        return hide_userinfo_password(url)
    secret = {k: "HIDDEN" for k in parsed.query if "password" in k.lower()}
    shown = parsed.update_query_dict(secret).render_as_string(hide_password=True)
    return shown.replace("=HIDDEN", "=***")


def with_db(text: str) -> str:
    """``text`` with :func:`nas_prefix` for every ``nas`` command it quotes with arguments
    (between backticks)."""
    if not _DB_OPTION:
        return text
    return _COMMAND.sub(lambda _: f"`{nas_prefix()} ", text)


#: A suggested ``nas measure`` of one stored device, as library messages write it.
_MEASURE = re.compile(r"nas measure --space (\S+) --device-name ([^\s`]+)")


def with_measure_settings(text: str) -> str:
    """``text`` with the stored device's settings (runtime, threads, input, ...) added to each
    ``nas measure --space S --device-name D`` it suggests, since ``nas measure`` refuses a
    device's name under other settings (library messages cannot know them). A placeholder
    name (``NAME``) or a device not stored is left as written."""

    def fill(match: re.Match[str]) -> str:
        space, device = match.group(1), match.group(2)
        if device in ("NAME", "DEVICE"):  # a placeholder, not a stored device
            return match.group(0)
        from nas._cli.device import measure_options

        return match.group(0) + measure_options(space, device).options

    return _MEASURE.sub(fill, text)


class _Stderr(Console):
    """The console of errors, warnings and notes: commands they name carry ``--db``."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(with_db(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = Console()
err_console = _Stderr(stderr=True, highlight=False, soft_wrap=True)
_SIDE_FILES = ("-journal", "-wal", "-shm")  # SQLite's files beside a database


_DEFAULT_INTERRUPT_NOTE = "everything finished so far is saved"
_interrupt_note = [_DEFAULT_INTERRUPT_NOTE]


def set_interrupt_note(note: str | None) -> None:
    """What ``nas`` says after ``error: interrupted;`` if Ctrl-C stops the running command
    (None: the default, that finished work is saved; true of searches and measurements)."""
    _interrupt_note[0] = note or _DEFAULT_INTERRUPT_NOTE


def interrupt_note() -> str:
    """The note :func:`set_interrupt_note` set (the default if none)."""
    return _interrupt_note[0]


#: Signals that stopped the running command, in order (its exit code is 128 + the last).
_stop_signals: list[int] = []


def record_stop_signal(signum: int | None) -> None:
    """Note that ``signum`` stops the running command (``None``: clear, as a command
    starts); a handler calls it before it raises ``KeyboardInterrupt``."""
    if signum is None:
        _stop_signals.clear()
    else:
        _stop_signals.append(signum)


def stop_signal() -> int:
    """The signal that stopped the command: the last one recorded, else SIGINT (Ctrl-C
    reaches a command as a plain ``KeyboardInterrupt``)."""
    return _stop_signals[-1] if _stop_signals else signal.SIGINT


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (1 failure, 2 usage)."""
    err_console.print(f"error: {message}", markup=False)
    sys.exit(code)


def check_database_option() -> None:
    """Refuse a ``--db`` / ``NAS_DATABASE_URL`` that is not a database URL, or names an
    in-memory database (``--db sqlite://``): what a command writes to it would be gone when
    the command ends, and one that reads it would find nothing.

    Raises:
        CLIUsageError: If the command's database URL does not parse or is in memory.
    """
    from hwdb import default_database_url
    from hwdb._engine import is_memory_url, parse_url
    from nas import CLIUsageError

    url = default_database_url()
    try:
        parse_url(url)
    except ValueError as exc:
        raise CLIUsageError(str(exc).replace("`url`", "--db / NAS_DATABASE_URL")) from exc
    if is_memory_url(url):
        raise CLIUsageError(
            "--db / NAS_DATABASE_URL names an in-memory SQLite database, which is gone when "
            "the command ends: give a file (sqlite:////path/hwdb.sqlite) or PostgreSQL"
        )


@contextmanager
def open_db(*, create: bool = True) -> Iterator[HardwareDB]:
    """The command's database (``--db`` / ``NAS_DATABASE_URL`` / the default), created when
    missing (unless not ``create``: then a missing one is an error). A SQLite file it creates
    is named on stderr once the command is done with the database, so a mistyped ``--db`` does
    not go unnoticed; if the command fails before writing to it, and no other process has it
    open, the file is removed again instead. A "not found" error on a database that holds
    nothing names the database and how to fill it.
    """
    from hwdb import HardwareDB

    check_database_option()
    db = HardwareDB(create=create)
    created = db.created_file
    try:
        yield db
    except BaseException as exc:
        hint = _empty_database_hint(db, exc)
        if created is not None and not _remove_if_unused(db, created):
            note_created(created)
        if hint is not None:
            raise type(exc)(f"{exc}; {hint}") from exc
        raise
    finally:
        db.close()
    if created is not None:
        note_created(created)


def _empty_database_hint(db: HardwareDB, exc: BaseException) -> str | None:
    """For a "not found" error on a database that holds nothing at all, which database that
    is and how to fill it (a mistyped ``--db`` or a never-initialised default looks like
    this); ``None`` otherwise. Never raises: the command's own error is what to report."""
    from hwdb import NotFoundError
    from hwdb._engine import redact
    from hwdb._errors import FILL_HINT
    from nas.search import DeviceResolutionError

    if type(exc) is not NotFoundError and not isinstance(exc, DeviceResolutionError):
        return None  # not a "not found" (a --device that matches nothing is one too)
    try:
        if not db.is_empty():
            return None
    except Exception:  # noqa: BLE001 - only a hint
        return None
    fill = "" if FILL_HINT in str(exc) else f"; {FILL_HINT}"
    return f"the database {redact(db.url)} is empty (check --db / NAS_DATABASE_URL){fill}"


def note_created(file: Path) -> None:
    """Say on stderr that this command created the database ``file``."""
    err_console.print(f"note: created a new database {file}", markup=False)


def _remove_if_unused(db: HardwareDB, file: Path) -> bool:
    """Remove a database file this command created, if nothing was written to it and no other
    connection has it open; whether it was removed. Never raises: the command's own error is
    what to report."""
    import sqlite3

    try:
        if not db.is_empty():
            return False
        db.close()
        con = sqlite3.connect(file, timeout=0)
        try:  # leaving WAL mode fails ("database is locked") while others have the file open
            alone = con.execute("PRAGMA journal_mode=DELETE").fetchone()[0].lower() == "delete"
        finally:
            con.close()
        if not alone:
            return False
        for path in (*(file.with_name(file.name + x) for x in _SIDE_FILES), file):
            path.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a failed cleanup must not hide the command's error
        return False
    return True


def check_space(db: HardwareDB, space: str | None) -> None:
    """Usage error (exit 2) for a ``--space`` that is neither registered nor in the database
    (e.g. HELP's ``ofa``, imported but not a registered space)."""
    if space is None:
        return
    from nas import CLIUsageError
    from search_spaces import list_spaces

    known = set(list_spaces()) | set(db.list_spaces())
    if space not in known:
        raise CLIUsageError(f"unknown search space {space!r} (known: {', '.join(sorted(known))})")


def check_device_name(name: str, what: str, db: HardwareDB | None = None) -> None:
    """Usage error (exit 2) for a device name the database would refuse (``what`` names the
    argument or option), checked before the command writes or trains anything; given ``db``,
    also a name only a device stored already may have (``hwdb.new_name_problem``)."""
    from hwdb import DeviceSpec, NotFoundError, new_name_problem
    from nas import CLIUsageError

    if not name.strip():
        raise CLIUsageError(f"{what} must not be empty")
    try:
        DeviceSpec(name=name)
    except ValueError as exc:
        raise CLIUsageError(str(exc).replace("`name`", what).rstrip(".")) from exc
    problem = new_name_problem(name)
    if db is None or problem is None:
        return
    try:
        db.get_device(name)
    except NotFoundError:
        raise CLIUsageError(problem.replace("`name`", what).rstrip(".")) from None


def check_at_most(what: str, value: int | None, high: int) -> None:
    """Usage error (exit 2) for an option ``value`` above ``high`` (None: not given)."""
    from nas import CLIUsageError

    if value is not None and value > high:
        raise CLIUsageError(f"{what} must be at most {high:,}, got {value:,}")


def cli_arch(space: str, text: str) -> str:
    """The canonical string of an architecture given on the command line (a string or a
    reference name); one that is not in ``space`` is a usage error (exit 2). Architectures
    read from files or the database keep their own errors (exit 1)."""
    from nas import CLIUsageError
    from search_spaces import InvalidArchError, get_space

    sp = get_space(space)
    try:
        return sp.to_string(sp.resolve(text))
    except InvalidArchError as exc:
        raise CLIUsageError(str(exc)) from exc


def count_noun(count: int, noun: str, plural: str | None = None) -> str:
    """``count noun`` with the noun's plural unless the count is one (``1 device``)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


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
