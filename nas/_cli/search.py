"""`nas search`: hardware-aware NSGA-II search emitting Pareto-optimal architectures."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas._cli._common import (
    console,
    count_noun,
    err_console,
    nas_prefix,
    open_db,
    print_json,
    print_table,
    set_interrupt_note,
    with_db,
)
from nas.search import LOCAL_SEARCH_DEFAULT

if TYPE_CHECKING:
    from nas.search import SearchResult
    from search_spaces import SearchSpace

__all__ = ["register"]

_DEVICE_HELP = (
    "Device name or pattern (repeatable). Exact name, else substring of names, else family; "
    "several matches -> most measurements in the space, then name (the choice is printed); "
    "no measured match -> zero-shot from the datasheet catalog (`nas device catalog`)."
)


def _budgets(values: list[float], devices: list[str]) -> dict[str, float] | None:
    from nas import CLIUsageError

    if not values:
        return None
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise CLIUsageError(f"--latency-budget must be positive milliseconds, got {values}")
    if len(values) == 1:
        return dict.fromkeys(devices, values[0])
    if len(values) != len(devices):
        raise CLIUsageError("give one --latency-budget for all devices or one per --device")
    return dict(zip(devices, values, strict=True))


def _choices(values: list[str]) -> dict[str, list[str]]:
    """``--choices NAME=V1,V2`` options as ``{NAME: [V1, V2]}``."""
    from nas import CLIUsageError

    out: dict[str, list[str]] = {}
    for text in values:
        name, sep, rest = text.partition("=")
        items = [v.strip() for v in rest.split(",") if v.strip()]
        if not sep or not name.strip() or not items:
            raise CLIUsageError(f"--choices must look like NAME=V1,V2, got {text!r}")
        out.setdefault(name.strip(), []).extend(items)
    return out


def search(
    device: Annotated[list[str], typer.Option("--device", "-d", help=_DEVICE_HELP)],
    space: Annotated[str, typer.Option(help="Search space.")] = "mnasnet",
    choices: Annotated[
        list[str] | None,
        typer.Option(
            "--choices",
            help="Restrict a decision variable, NAME=V1,V2 (repeatable), e.g. hidden=512,768.",
        ),
    ] = None,
    latency_budget: Annotated[
        list[float] | None,
        typer.Option("--latency-budget", help="Budget in ms (one, or per device)."),
    ] = None,
    budget_z: Annotated[
        float,
        typer.Option(
            "--budget-z",
            min=0.0,
            help="Constrain the latency's upper quantile, z std out (log-normal; 1.645: 95%).",
        ),
    ] = 0.0,
    trials: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Total trials in the study (default: 1000 with table, else 200), shared by "
            "the workers of one --storage study.",
        ),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option(min=2, help="NSGA-II population size (default: 50 with table, else 20)."),
    ] = None,
    local_search: Annotated[
        float,
        typer.Option(
            "--local-search",
            min=0.0,
            max=1.0,
            help="Share of each generation given to unexplored single-choice neighbours of the "
            "front (Pareto local search); 0 = plain NSGA-II.",
        ),
    ] = LOCAL_SEARCH_DEFAULT,
    accuracy: Annotated[
        str,
        typer.Option(
            help="auto | table | proxy[:NAME] | short-train | MODULE:FUNC. auto: table when the "
            "DB has accuracies of the space/dataset, else synflow at reduced resolution. "
            "short-train: language-model spaces (nemotron_flash). MODULE:FUNC: your own "
            "`FUNC(model, arch) -> float` in MODULE.py (here or importable), called with a "
            "freshly built torch model and its canonical arch string; higher is better."
        ),
    ] = "auto",
    dataset: Annotated[
        str, typer.Option(help="Accuracy dataset for --accuracy table.")
    ] = "cifar10",
    predictor: Annotated[
        str | None,
        typer.Option(
            help="Latency predictor name (default help+); a study keeps the one it began with."
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="RDB URL (sqlite:///FILE, postgresql://...: several workers may share it) or "
            "journal file (default OUT/study.journal)."
        ),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name.")] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Random seed (>= 0; default: a fresh one each run). With a seed, the same "
            "command on a fresh study repeats the search, on any --storage; workers sharing an "
            "RDB study each explore differently.",
        ),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="Torch threads of proxies / short training (1: robust on a shared machine; "
            "more can help on an idle one).",
        ),
    ] = 1,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the front as JSON.")] = False,
) -> None:
    """Search Pareto-optimal architectures (accuracy vs latency per device).

    Rerunning the same command resumes the study (also after a crash); several processes on
    one PostgreSQL --storage and --study cooperate.
    """
    from nas import CLIUsageError
    from nas.search import (
        default_budget,
        front_table,
        load_latency_models,
        make_accuracy_objective,
        resolve_devices,
        run_search,
    )
    from nas.search._pareto import check_output_dir
    from nas.search._storage import check_storage
    from search_spaces import SearchSpaceError, get_space, restrict_space

    try:
        sp = get_space(space)
    except SearchSpaceError as exc:  # an unknown --space
        raise CLIUsageError(str(exc)) from exc
    if any(not d.strip() for d in device):
        raise CLIUsageError("--device must be a device name, pattern or catalog entry, got ''")
    if out is not None and out.exists() and not out.is_dir():
        raise CLIUsageError(f"--out {out} is a file, not a folder")
    if study is not None and not study.strip():
        raise CLIUsageError("--study must be a study name, got ''")
    _check_predictor(predictor)
    if not math.isfinite(budget_z):  # run_search refuses it too, but after the models load
        raise CLIUsageError(f"--budget-z must be a finite number >= 0, got {budget_z}")
    budgets = _budgets(list(latency_budget or []), list(device))  # before any loading
    restricted = _choices(list(choices or []))
    if restricted:
        try:
            sp = restrict_space(sp, restricted)
        except ValueError as exc:  # a name or value the space does not have: a usage error
            raise CLIUsageError(str(exc).replace("`choices`", "--choices")) from exc
    if storage is not None:  # its form, before any loading (the journal: below)
        _check_storage_form(storage)
    with open_db() as db:
        try:  # before the devices: a bad --accuracy or --dataset is the only line printed
            objective = make_accuracy_objective(
                accuracy, space=sp, db=db, dataset=dataset, seed=seed or 0, threads=threads
            )
        except ValueError as exc:  # an unknown objective or proxy name
            text = str(exc).replace("`accuracy`", "--accuracy")
            text = text.replace("`proxy`", "the proxy of --accuracy proxy:NAME")
            raise CLIUsageError(text) from exc
        try:
            matches = resolve_devices(db, list(device), space=sp.name)
        except ValueError as exc:  # two queries naming one device
            raise CLIUsageError(str(exc).replace("`device` queries", "--device queries")) from exc
        for m in matches:
            err_console.print(m.describe(), markup=False)
        names = [m.device for m in matches]
        if budgets is not None:  # one match per --device, in order: key them by device name
            budgets = dict(zip(names, budgets.values(), strict=True))
        zero_shot = {m.device: m.catalog for m in matches if m.catalog is not None}
        study_name, out_dir = _study_and_out(study, sp, names, objective.name, restricted, out)
        check_storage(storage, out_dir=out_dir)  # a journal in use: before the models load
        check_output_dir(out_dir, study=study_name)  # another study's results: likewise
        _note_new_storage(storage, out_dir)
        models, note = load_latency_models(
            db, space=sp, devices=names, predictor=predictor, zero_shot=zero_shot
        )
        err_console.print(note, markup=False)
    default_trials, default_population = default_budget(objective)
    trials = default_trials if trials is None else trials
    population = default_population if population is None else population
    if accuracy.strip() == "auto":
        err_console.print(
            f"accuracy: {objective.name} (auto); {trials} trials, population {population}",
            markup=False,
        )
    set_interrupt_note(
        "the finished trials are saved in the study; rerun the same command to resume"
    )
    try:
        result = run_search(
            space=sp,
            devices=names,
            accuracy=objective,
            latency_models=models,
            trials=trials,
            population=population,
            local_search=local_search,
            budget_ms=budgets,
            budget_quantile_z=budget_z,
            storage=storage,
            study_name=study_name,
            seed=seed,
            out_dir=out_dir,
            progress=not as_json,
        )
    except KeyboardInterrupt as exc:
        written = [n for n in getattr(exc, "__notes__", ()) if n.startswith("the front of")]
        set_interrupt_note(
            "the finished trials are saved in the study"
            + (f" ({written[0]})" if written else "")
            + "; rerun the same command to resume"
        )
        raise
    set_interrupt_note(None)
    if result.n_new_trials == 0 and result.n_trials >= trials:
        err_console.print(
            f"note: study {result.study_name!r} already holds {result.n_trials} finished "
            f"trials (--trials {trials}): nothing new was searched; pass a larger --trials "
            "to continue it",
            markup=False,
        )
    if as_json:
        print_json(result.front)
        return
    print_table(front_table(result))
    hv = f", hypervolume {result.history[-1]['hypervolume']:.4f}" if result.history else ""
    failed = result.n_trials - len(result.trials)  # no accuracy: undefined proxy, too large
    new = f"{result.n_new_trials} new" + (f", {failed} failed" if failed else "")
    console.print(
        f"{count_noun(result.n_trials, 'trial')} ({new}, {result.trials_per_s:.3g}/s){hv}; "
        f"study {result.study_name!r} in {result.storage}; outputs in {out_dir}",
        markup=False,
    )
    _suggest_measuring(result, out_dir)


def _suggest_measuring(result: SearchResult, out_dir: Path) -> None:
    """Say which architectures to measure before trusting the front (``to_measure.txt``)."""
    from nas._cli.device import measure_options
    from nas.search import CONTENDER_P, to_measure

    pending = to_measure(result)
    if not pending:
        return
    on_front = {e["arch"] for e in result.front}
    n_front = sum(a in on_front for a in pending)
    what = [count_noun(n_front, "unmeasured front architecture")] if n_front else []
    if len(pending) > n_front:  # the contenders not measured yet, as to_measure.txt lists them
        n = count_noun(len(pending) - n_front, "contender")
        what.append(f"{n} (p_front >= {CONTENDER_P:g})")
    one = len(result.devices) == 1
    device = result.devices[0] if one else "DEVICE"
    hint = measure_options(result.space, device) if one else None
    listed = out_dir / "to_measure.txt"
    if hint is not None and hint.conflict:  # `nas measure` would refuse it: say how else
        console.print(
            with_db(
                f"to confirm the front, measure its {' and '.join(what)} on {device} as its "
                f"rows were measured ({', '.join(hint.conflict)}, which `nas measure` does not "
                f"reproduce), listed in {listed}, and import them with `nas hwdb import csv "
                "FILE` (columns space,arch,device,latency_ms); rerunning this command then "
                "uses the measurements"
            ),
            markup=False,
            soft_wrap=True,
        )
        return
    where = (
        " on each device (with its settings)" if hint is None
        else f" on a machine with the CPU its rows were timed on ({hint.cpu})" if hint.cpu
        else " on the device itself"
    )  # fmt: skip
    console.print(
        f"to confirm the front, measure its {' and '.join(what)}{where}: {nas_prefix()} measure "
        f"--space {result.space} --device-name {device}{hint.options if hint else ''} --archs "
        f"{listed}; rerunning this command then uses the measurements",
        markup=False,
        soft_wrap=True,
    )


def _study_and_out(
    study: str | None,
    sp: SearchSpace[Any],
    names: list[str],
    objective: str,
    restricted: dict[str, list[str]],
    out: Path | None,
) -> tuple[str, Path]:
    """The study name (given, or derived from the settings) and the output folder."""
    study_name = study or f"{sp.name}-{'+'.join(names)}-{objective}".replace(":", "-")
    if restricted and not study:  # another grid is another study
        grid = sorted(getattr(sp, "restricted_choices", {}).items())
        study_name += "-" + hashlib.sha1(repr(grid).encode()).hexdigest()[:8]
    return study_name, out or Path("nas-search") / study_name


def _check_predictor(predictor: str | None) -> None:
    """Refuse a --predictor no predictor is registered as (before any model loads): the exact
    name, as `nas predictor` and the API take it (``' flops'`` is refused, not trained and
    stored as a second predictor)."""
    from nas import CLIUsageError

    if predictor is None:
        return
    from predictors import list_predictors

    known = list_predictors()
    if predictor not in known:
        raise CLIUsageError(f"--predictor must be one of {', '.join(known)}, got {predictor!r}")


def _note_new_storage(storage: str | None, out_dir: Path) -> None:
    """Say when an explicit --storage names a file that does not exist yet: a mistyped path
    would otherwise start a new study silently instead of resuming one."""
    from nas.search._storage import storage_file

    if storage is None:
        return
    file = storage_file(storage, out_dir=out_dir)
    if file is not None and not file.exists():
        err_console.print(
            f"note: --storage {file} does not exist yet: a new study starts there", markup=False
        )


def _check_storage_form(storage: str) -> None:
    """Refuse an empty --storage or one with an unknown URL scheme (a usage error)."""
    from nas import CLIUsageError
    from nas.search._storage import check_storage

    try:
        check_storage(storage, out_dir=None)
    except ValueError as exc:
        raise CLIUsageError(str(exc).replace("`storage`", "--storage")) from exc


def register(app: typer.Typer) -> None:
    """Add `nas search` to ``app``."""
    app.command("search")(search)
