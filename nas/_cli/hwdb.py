"""``nas hwdb`` commands: create/upgrade the database, import datasets, inspect, export,
delete measurements."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas._cli._common import (
    check_database_option,
    check_space,
    console,
    count_noun,
    err_console,
    note_created,
    open_db,
    print_json,
    print_table,
    record_stop_signal,
    set_interrupt_note,
    with_db,
)

if TYPE_CHECKING:
    from hwdb import HardwareDB
    from hwdb._bulk import BulkImport

__all__ = ["register"]

hwdb_app = typer.Typer(
    rich_markup_mode="markdown",
    name="hwdb",
    help="Hardware-measurement database.",
    no_args_is_help=True,
    add_completion=False,
)
import_app = typer.Typer(
    rich_markup_mode="markdown",
    name="import",
    help="Import a public dataset (one transaction per command).",
    no_args_is_help=True,
)
hwdb_app.add_typer(import_app)

SpaceOpt = Annotated[str | None, typer.Option("--space", help="Only this search space.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@hwdb_app.callback()
def _check_database() -> None:
    """Refuse an in-memory database before any option is read (every command that opens
    the database refuses it too, in :func:`nas._cli._common.open_db`)."""
    check_database_option()


def _open(*, create: bool = True) -> AbstractContextManager[HardwareDB]:
    return open_db(create=create)


class _CommitGuard:
    """Holds Ctrl-C (and SIGTERM, which ``nas`` treats alike) back from just before an import
    commits until the CLI has said that it is stored, so the note ``nas`` prints after an
    interruption is true at every moment; a second signal while held stops at once."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, unsure: str) -> None:
        self.pending = False
        self._unsure = unsure  # the note when a second signal stops the commit itself
        self._previous: dict[int, Any] = {}

    def hold(self) -> None:
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        for sig in self._SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:  # an ignored one stays ignored
                self._previous[sig] = signal.signal(sig, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        record_stop_signal(signum)  # the exit code and line follow the signal (143 for kill)
        if self.pending:
            set_interrupt_note(self._unsure)
            raise KeyboardInterrupt
        self.pending = True

    def release(self) -> None:
        """Restore the handlers; raise the ``KeyboardInterrupt`` held back, if any."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


@contextmanager
def _bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress("[progress.description]{task.description}", *columns, console=err_console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _apply(
    label: str,
    load: Callable[[], BulkImport],
    replace: bool | None = None,
    *,
    done: str = "",
    inspect: Callable[[HardwareDB, BulkImport], None] | None = None,
) -> None:
    """Import what ``load`` reads; ``replace`` None: the command has no ``--replace``;
    ``done``: what earlier imports of the same command stored (for the Ctrl-C note);
    ``inspect``: called with the database and the data just before they are written.

    Once the import has committed, the note a Ctrl-C or SIGTERM prints says so, with what it
    stored, and stays set when this returns: what the command does next (the notes of
    ``nas hwdb import csv``, the next file of ``nas hwdb init``) is after the import."""
    set_interrupt_note(f"{done}nothing of {label} was stored (it was being read)")
    with console.status(f"reading {label} ..."):
        data = load()
    set_interrupt_note(f"{done}nothing of {label} was stored (an import is one transaction)")
    guard = _CommitGuard(
        f"{done}{label} may or may not have been stored (stopped while committing); "
        "import it again: what is stored already is kept"
    )
    try:
        with _open() as db, _bar(f"importing {label}", data.n_rows) as advance:
            if inspect is not None:
                inspect(db, data)
            try:
                counts = db.bulk_import(
                    data, progress=advance, replace=bool(replace), before_commit=guard.hold
                )
                set_interrupt_note(f"{done}{label} was stored: {_imported(counts, replace)}")
            finally:
                guard.release()  # a Ctrl-C held back during the commit is raised here
    except BaseException as exc:  # Ctrl-C keeps the note for the entry point to print
        if not isinstance(exc, KeyboardInterrupt):
            set_interrupt_note(None)
        raise
    console.print(
        f"{label}: {count_noun(counts['devices'], 'device')}, "
        f"{count_noun(counts['architectures'], 'architecture')}, {_stored(counts, replace, ', ')}"
    )
    kept = [
        count_noun(counts[f"{kind}_kept"], noun, plural)
        for kind, noun, plural in (
            ("measurements", "measurement", None),
            ("accuracies", "accuracy", "accuracies"),
        )  # fmt: skip
        if counts.get(f"{kind}_kept")
    ]
    if kept and replace is False:  # a user's own data, which may correct stored values
        err_console.print(
            f"note: {' and '.join(kept)} already in the database kept the stored values "
            "(the same, if this file was imported before); --replace writes this file's instead",
            markup=False,
        )


def _stored(counts: dict[str, int], replace: bool | None, sep: str = " and ") -> str:
    """The measurements and accuracies an import wrote (``N new measurements{sep}M new
    accuracies``; ``new or replaced`` with ``--replace``)."""
    new = "new or replaced" if replace else "new"
    return (
        f"{count_noun(counts['measurements'], f'{new} measurement')}{sep}"
        f"{count_noun(counts['accuracies'], f'{new} accuracy', f'{new} accuracies')}"
    )


def _imported(counts: dict[str, int], replace: bool | None) -> str:
    """What a committed import stored, for the note after Ctrl-C or SIGTERM."""
    return f"its import had completed ({_stored(counts, replace)})"


@hwdb_app.command("init")
def init() -> None:
    """Create or upgrade the database and import the bundled datasets (idempotent)."""
    from hwdb.importers.parquet import bundled_datasets, load_parquet

    _upgrade()
    stored: list[str] = []
    for path in bundled_datasets():
        done = f"{', '.join(stored)} stored; " if stored else ""
        _apply(path.name, lambda p=path: load_parquet(p), done=done)  # type: ignore[misc]
        stored.append(path.name)


@hwdb_app.command("upgrade")
def upgrade() -> None:
    """Upgrade the database schema to this release."""
    _upgrade()


def _upgrade() -> None:
    """Create or migrate the schema; a SQLite file this creates is named on stderr (a
    mistyped `--db` would otherwise become a new, empty database without a word)."""
    from hwdb import default_database_url, upgrade_database
    from hwdb._engine import sqlite_file

    file = sqlite_file(default_database_url())
    new_file = file is not None and not file.exists()
    before, after = upgrade_database()
    if before == after:
        console.print(f"schema: {after} (already up to date)")
    else:
        console.print(f"schema: {before or 'empty'} -> {after}")
    if new_file:
        assert file is not None
        note_created(file)


@import_app.command("help")
def import_help(
    directory: Annotated[Path, typer.Argument(help="HELP `data` directory.")],
) -> None:
    """Import the HELP latency release (nasbench201, fbnet, ofa)."""
    from hwdb.importers.help import load_help

    _apply("HELP", lambda: load_help(directory))


@import_app.command("latbench")
def import_latbench(
    files: Annotated[list[Path], typer.Argument(help="LatBench *.pickle files.")],
) -> None:
    """Import LatBench pickles (NB201 latencies; device = file stem)."""
    from hwdb.importers.latbench import load_latbench

    _apply("LatBench", lambda: load_latbench(files))


@import_app.command("nats-accuracy")
def import_nats(file: Annotated[Path, typer.Argument(help="NATS-Bench accuracy CSV.")]) -> None:
    """Import NATS-Bench test accuracies (cifar10, cifar100, ImageNet16-120)."""
    from hwdb.importers.nats import load_nats_accuracy

    _apply("NATS-Bench accuracy", lambda: load_nats_accuracy(file))


ReplaceOpt = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Overwrite measurements already stored (same device, space, arch, metric and "
        "protocol) instead of keeping them, e.g. to correct wrong values.",
    ),
]


@import_app.command("csv")
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV: space,arch,device,latency_ms.")],
    replace: ReplaceOpt = False,
) -> None:
    """Import a hand-written measurement CSV (optional columns: metric, batch_size, precision,
    runtime, family, and the input it was measured at: resolution, prompt_len, decode_len)."""
    from hwdb.importers.csvfile import load_csv, read_workloads, unused_rows

    read: list[BulkImport] = []
    before: dict[tuple[str, str, str], dict[str, Any] | None] = {}

    def load() -> BulkImport:
        read.append(load_csv(file))  # kept: the notes below look at its rows
        return read[0]

    def inspect(db: HardwareDB, data: BulkImport) -> None:
        before.update(read_workloads(db, data.rows))  # what each column is read at now

    _apply(file.name, load, replace, inspect=inspect)
    with _open() as db:
        for group in unused_rows(db, read[0].rows, before):
            err_console.print(_unused_note(group), markup=False)


def _unused_note(group: dict[str, Any]) -> str:
    """Why rows of one device, space and input were stored but are not used."""
    space, rows = group["space"], count_noun(group["rows"], "row")
    are = "is" if group["rows"] == 1 else "are"
    if group["earlier"]:
        was, used = (_workload_text(space, group[k]) for k in ("workload", "used"))
        return (
            f"note: {group['device']}'s latencies in {space} ({group['metric']}) are now read "
            f"at input {used}, where it now has as many rows as at {was} or more (ties go to the "
            f"newest), so its {rows} at {was}, stored earlier, {are} left out by predictions and "
            f"searches (`nas hwdb show {group['device']}` lists both). To keep reading {was}, "
            "import this file under another device name and delete its rows here "
            f"(`nas hwdb delete {group['device']} --space {space} --arch ...`)"
        )
    return (
        f"note: {rows} of {group['device']} in {space} ({group['metric']}) {are} at input "
        f"{_workload_text(space, group['workload'])}, but most of the device's rows, which its "
        f"latencies are read from, are at {(used := _workload_text(space, group['used']))}: "
        f"predictions and searches leave these out. If they were measured at {used}, give "
        "that input in the CSV (columns resolution, prompt_len, decode_len, batch_size) and "
        "import it again with --replace; else import them under another device name"
    )


@import_app.command("parquet")
def import_parquet(
    file: Annotated[Path, typer.Argument(help="Parquet dataset file.")],
    replace: ReplaceOpt = False,
) -> None:
    """Import a parquet dataset written by `nas hwdb export`."""
    from hwdb.importers.parquet import load_parquet

    _apply(file.name, lambda: load_parquet(file), replace)


@hwdb_app.command("stats")
def stats(as_json: JsonOpt = False) -> None:
    """Devices, architectures, measurements and accuracies per search space."""
    from rich.table import Table

    with _open(create=False) as db:
        result = db.stats()
    if as_json:
        print_json(result)
        return
    table = Table(title=f"hwdb: {result['devices']} devices")
    counted = ("devices", "architectures", "measurements", "accuracies")
    for col in ("space", *counted):
        table.add_column(col, justify="left" if col == "space" else "right")
    for space, row in result["spaces"].items():
        table.add_row(space, *(f"{row[k]:,}" for k in counted))
    print_table(table)


@hwdb_app.command("devices")
def devices(space: SpaceOpt = None, as_json: JsonOpt = False) -> None:
    """List devices (optionally those with measurements in one space)."""
    from dataclasses import asdict

    from rich.table import Table

    with _open(create=False) as db:
        check_space(db, space)
        rows = db.list_devices(space=space)
    if as_json:
        print_json([asdict(d) for d in rows])
        return
    table = Table(title=f"{len(rows)} devices")
    for col in ("name", "family", "hardware", "runtime", "precision", "batch", "provenance"):
        table.add_column(col)
    for d in rows:
        table.add_row(
            d.name, d.family, d.hardware, d.runtime, d.precision, str(d.batch_size), d.provenance
        )
    print_table(table)


@hwdb_app.command("show")
def show(
    device: Annotated[str, typer.Argument(help="Device name.")],
    space: SpaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A device's settings and its measurements, counted per space, metric, protocol, API
    key that uploaded them and workload (what `nas hwdb delete` selects by)."""
    from dataclasses import asdict

    from rich.table import Table

    with _open(create=False) as db:
        check_space(db, space)
        dev = db.get_device(device)
        groups = db.measurement_groups(device, space=space)
    if as_json:
        print_json({"device": asdict(dev), "groups": groups})
        return
    threads = "" if dev.threads is None else f", {count_noun(dev.threads, 'thread')}"
    by = f"; registered by API key {dev.registered_by}" if dev.registered_by else ""
    console.print(
        f"{dev.name}: {dev.family}, {dev.hardware or 'hardware not given'}, {dev.runtime} "
        f"{dev.precision}, batch {dev.batch_size}{threads} ({dev.provenance}{by})",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    table = Table(title=f"{count_noun(sum(g['rows'] for g in groups), 'measurement')}")
    for col in ("space", "metric", "protocol", "uploaded by", "workload", "rows", "median ms",
                "stored (UTC)"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("rows", "median ms") else "left")
    for g in groups:
        work = _workload_text(g["space"], g["workload"])
        lo, hi = _ms(g["median_min"]), _ms(g["median_max"])
        span = lo if lo == hi else f"{lo}–{hi}"
        days = sorted({f"{t:%Y-%m-%d}" for t in (g["first_stored"], g["last_stored"])})
        table.add_row(g["space"], g["metric"], g["protocol"] or "''", g["uploaded_by"] or "-",
                      work, f"{g['rows']:,}", span, " – ".join(days))  # fmt: skip
    print_table(table)


def _workload_text(space: str, workload: dict[str, Any]) -> str:
    """The fields of ``workload`` that differ from ``space``'s default (``default``: none)."""
    from hwdb._queries import workload_changes

    diff = workload_changes(space, workload)
    return " ".join(f"{k}={v}" for k, v in diff.items()) or "default"


def _ms(value: float) -> str:
    """Milliseconds with three significant digits, never in exponent notation."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.{2 if value < 10 else 1}f}"


_EXPORT_EPILOG = (
    "Without --space the export also carries the devices without measurements (with "
    "--device, that device if it has none); --space keeps that space's accuracies; --device "
    "leaves accuracies out. Never exported: predictor artifacts (retrained on first need) and "
    "API keys."
)


@hwdb_app.command("export", epilog=_EXPORT_EPILOG)
def export(
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    space: SpaceOpt = None,
    device: Annotated[str | None, typer.Option("--device", help="Only this device.")] = None,
) -> None:
    """Export measurements (each with its device), accuracies and devices to the parquet
    dataset format (what `nas hwdb import parquet` reads)."""
    from hwdb import export_parquet

    with _open(create=False) as db:
        check_space(db, space)
        with console.status("exporting ..."):  # an unknown --device: NotFoundError, exit 1
            n = export_parquet(db, out, space=space, device=device)
    parts = [count_noun(n["measurements"], "measurement")]
    if device is None:  # accuracies are not per device: --device leaves them out
        parts.append(count_noun(n["accuracies"], "accuracy", "accuracies"))
    if n["devices"]:
        parts.append(f"{count_noun(n['devices'], 'device')} without measurements")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    console.print(f"wrote {listed} to {out}")


_DELETE_EPILOG = (
    "Every filter given must match; without any, every measurement of the device goes. The "
    "device, its architectures and accuracies stay. Deleted rows are gone: `nas hwdb export "
    "--device D --out backup.parquet` first keeps a copy that `nas hwdb import parquet` "
    "restores. Meta-trained predictors stored before keep what they learned from them; "
    "searches and predictions adapt to the rows that are left."
)


@hwdb_app.command("delete", epilog=_DELETE_EPILOG)
def delete(
    device: Annotated[str, typer.Argument(help="Device whose measurements to delete.")],
    space: SpaceOpt = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Only this metric.")] = None,
    protocol: Annotated[
        str | None, typer.Option("--protocol", help="Only rows under this protocol tag.")
    ] = None,
    uploaded_by: Annotated[
        str | None,
        typer.Option("--uploaded-by", help="Only rows uploaded with the API key of this name."),
    ] = None,
    archs: Annotated[
        list[str] | None,
        typer.Option("--arch", help="Only this architecture (repeatable; needs --space)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say how many rows would be deleted.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete measurements of one device (all, or those matching the filters) in one
    transaction, e.g. a run measured under load or what one API key uploaded."""
    from nas import CLIUsageError

    if archs and space is None:
        raise CLIUsageError("--arch needs --space: architecture strings belong to a space")
    with _open(create=False) as db:
        check_space(db, space)

        def run(dry: bool, expected: int | None = None) -> int:
            return db.delete_measurements(
                device=device, space=space, metric=metric, protocol=protocol,
                uploaded_by=uploaded_by, archs=archs or None, dry_run=dry, expected=expected,
            )  # fmt: skip

        try:
            n = run(True)
        except ValueError as exc:  # a malformed --arch, an empty filter: name the option
            raise CLIUsageError(_flag_names(str(exc))) from None
        what = f"{count_noun(n, 'measurement')} of {device}"
        if n == 0:
            console.print(
                with_db(f"no measurement of {device} matches (`nas hwdb show {device}` lists "
                        "what is stored)"), markup=False, soft_wrap=True,
            )  # fmt: skip
            return
        if dry_run:
            console.print(f"would delete {what}")
            return
        if not yes:
            _confirm_delete(what)
        deleted = run(False, expected=n)  # rows stored since the question: ChangedError
    console.print(f"deleted {count_noun(deleted, 'measurement')} of {device}")


#: ``delete_measurements`` arguments as ``nas hwdb delete`` spells them.
_FLAGS = {"archs": "--arch", "uploaded_by": "--uploaded-by", "protocol": "--protocol",
          "metric": "--metric", "space": "--space"}  # fmt: skip


def _flag_names(message: str) -> str:
    """``message`` with the library's argument names replaced by the command's options."""
    for name, flag in _FLAGS.items():
        message = message.replace(f"`{name}`", flag)
    return message


def _confirm_delete(what: str) -> None:
    """Ask on a terminal; refuse without ``--yes`` anywhere else (a script or a pipe)."""
    import sys

    from nas import CLIUsageError

    if not sys.stdin.isatty():
        raise CLIUsageError(f"refusing to delete {what} without --yes (not a terminal)")
    if not typer.confirm(f"delete {what}?", default=False):
        err_console.print("error: not confirmed; nothing deleted", markup=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``hwdb`` command group to ``app``."""
    app.add_typer(hwdb_app)
