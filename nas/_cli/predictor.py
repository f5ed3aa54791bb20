"""``nas predictor`` commands: meta-train, adapt, predict and evaluate latency predictors.

Thin layer over :mod:`predictors`; the database comes from ``--db`` / ``NAS_DATABASE_URL``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from nas._cli._common import check_space, cli_arch, console, err_console, open_db, print_json

if TYPE_CHECKING:
    from hwdb import HardwareDB

__all__ = ["register"]

predictor_app = typer.Typer(
    rich_markup_mode="markdown",
    name="predictor",
    help="Latency predictors: meta-train, adapt to a device, predict, evaluate.",
    no_args_is_help=True,
    add_completion=False,
)

SpaceOpt = Annotated[str, typer.Option("--space", help="Search space, e.g. nasbench201.")]
_MATCH_HELP = (
    "Device name or pattern, matched as `nas search --device` matches it: exact name, else "
    "substring of names, else family, among the devices measured in the space (the choice is "
    "printed)"
)


def _device_query(value: str) -> str:
    """Refuse an empty ``--device`` as ``nas search`` does (a usage error, exit 2)."""
    if not value.strip():
        _usage("--device must be a device name, pattern or catalog entry, got ''")
    return value


DeviceOpt = Annotated[str, typer.Option("--device", help=f"{_MATCH_HELP}.", callback=_device_query)]
PredictDeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help=f"{_MATCH_HELP}; no measured match -> zero-shot from a catalog device (`nas device "
        "add`) or a datasheet catalog entry such as jetson (`nas device catalog`).",
        callback=_device_query,
    ),
]
PredOpt = Annotated[
    str | None, typer.Option("--predictor", help="Predictor name (default: help+).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def _open(space: str) -> Iterator[HardwareDB]:
    """The database, which must exist (every predictor command reads measurements), and in
    which ``space`` must be registered or stored (else a usage error, exit 2)."""
    with open_db(create=False) as db:
        check_space(db, space)
        yield db


def _usage(message: str) -> NoReturn:
    from nas import CLIUsageError

    raise CLIUsageError(message)


def _predictor_name(predictor: str | None) -> str:
    """``--predictor`` (default: the default predictor), which must be registered."""
    from predictors import DEFAULT_PREDICTOR, list_predictors

    name = predictor or DEFAULT_PREDICTOR
    if name not in list_predictors():
        _usage(f"--predictor must be one of {', '.join(list_predictors())}, got {name!r}")
    return name


def _measured_device(db: HardwareDB, device: str, space: str) -> str:
    """``--device`` matched among the devices measured in ``space`` as ``nas search`` matches
    it (exact name, then substring, then family), saying what a pattern matched; a query
    that matches no measured device is returned as given (the command's error names it)."""
    from nas.search import DeviceResolutionError, resolve_device

    try:
        match = resolve_device(db, device, space=space)
    except DeviceResolutionError:
        return device
    if match.catalog is not None or match.n_measurements == 0:
        return device  # zero-shot: nothing to adapt to or evaluate on
    if match.device != device:
        err_console.print(match.describe(), markup=False)
    return match.device


@predictor_app.command("train")
def train(
    space: SpaceOpt,
    protocol: Annotated[
        str | None, typer.Option("--protocol", help="'help': HELP's source/validation devices.")
    ] = None,
    devices: Annotated[
        str | None, typer.Option("--devices", help="Comma-separated source devices.")
    ] = None,
    predictor: PredOpt = None,
    episodes: Annotated[
        int | None, typer.Option("--episodes", min=1, help="Episodes (help/maml).")
    ] = None,
) -> None:
    """Meta-train a predictor and store it in the database as an artifact.

    `adapt`, `predict` and `nas search` use the predictor meta-trained on every measured
    device other than the target: without --protocol or --devices this command stores that
    one for a device not yet measured. --protocol and --devices store other artifacts
    (experiments; `evaluate` meta-trains its own on the devices other than the one it scores).
    """
    from predictors import HELP_DEVICES, latency_metric

    if protocol is not None and protocol != "help":
        _usage(f"--protocol must be 'help', got {protocol!r}")
    if protocol and devices:
        _usage("give either --protocol or --devices, not both")
    name = _predictor_name(predictor)
    params: dict[str, Any] = {"episodes": episodes} if episodes and name in ("help", "maml") else {}
    named = [d.strip() for d in devices.split(",") if d.strip()] if devices is not None else None
    if named == []:
        _usage(f"--devices must name at least one device, got {devices!r}")
    with _open(space) as db:
        table = db.latency_table(space, metric=latency_metric(space))
        if protocol == "help":
            if space not in HELP_DEVICES:
                _usage(f"--protocol help is defined for {', '.join(HELP_DEVICES)}, not {space!r}")
            train_devs, valid = HELP_DEVICES[space]["train"], HELP_DEVICES[space]["valid"]
        elif named:
            train_devs, valid = named, []
        else:
            from predictors._service import usable_sources

            train_devs, valid = usable_sources(table, space, None), []
        from predictors._service import stored_or_trained

        _, version, trained = stored_or_trained(
            db, space=space, predictor=name, sources=train_devs, valid=valid, params=params,
            progress=True, table=table,
        )  # fmt: skip
    if not trained:  # the same predictor, sources and settings give the same model
        console.print(f"{name} for {space} is already stored as artifact {version}")
        return
    console.print(f"stored {name} for {space} as artifact {version}")


@predictor_app.command("adapt")
def adapt(
    space: SpaceOpt, device: DeviceOpt, predictor: PredOpt = None, json_: JsonOpt = False
) -> None:
    """Adapt the default predictor to a device's measurements (trains it on first need)."""
    from predictors import get_adapted_predictor
    from search_spaces import get_space

    predictor = _predictor_name(predictor)
    with _open(space) as db:
        device = _measured_device(db, device, space)
        model = get_adapted_predictor(
            db, space=space, device=device, predictor=predictor, progress=not json_
        )
    workload = get_space(space).workload_dict(model.workload)
    outliers: list[str] = list(getattr(model.model, "outliers_", []))
    info = {
        "space": space,
        "device": device,
        "predictor": model.model.name,
        "version": model.version,
        "n_measurements": model.n_measurements,
        "workload": workload,
        "outliers": outliers,
    }
    if json_:
        print_json(info)
        return
    shapes = ", ".join(f"{k}={v}" for k, v in workload.items())
    console.print(
        f"{info['predictor']} adapted to {device} on {info['n_measurements']} measurements "
        f"({info['version']}); predictions are for {shapes}",
        markup=False,
    )
    if outliers:
        err_console.print(
            f"note: {len(outliers)} measurements left out of the fit, each missed more than "
            f"tenfold by every model (e.g. a network the runtime folds to a constant): "
            f"{', '.join(outliers[:3])}" + (" ..." if len(outliers) > 3 else ""),
            markup=False,
        )


@predictor_app.command("predict")
def predict(
    space: SpaceOpt,
    device: PredictDeviceOpt,
    arch: Annotated[
        list[str] | None,
        typer.Option(
            "--arch",
            help="An arch string or reference-model name (mnasnet-a1); repeat for several.",
        ),
    ] = None,
    archs: Annotated[
        Path | None, typer.Option("--archs", help="File with one arch string per line.")
    ] = None,
    predictor: PredOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Predict the latency of architectures on a device.

    --device is matched as ``nas search --device`` matches it (exact name, substring, family,
    then the datasheet catalog). A catalog device not measured in the space (``nas device add
    NAME --catalog ENTRY``, or an entry such as ``jetson``) is predicted zero-shot from its
    datasheet, and says so.
    """
    from nas.search import resolve_device
    from predictors import PredictorError, predict_latency
    from search_spaces import get_space

    if (not arch) == (archs is None):
        _usage("give either --arch (repeatable) or --archs")
    if predictor is not None:
        _predictor_name(predictor)
    items = _canonical(list(arch), space) if arch else _read_archs(archs, space)  # type: ignore[arg-type]
    with _open(space) as db:
        match = resolve_device(db, device, space=space)
        renamed = match.device != device
        if renamed:  # a pattern or a catalog alias: say what it matched
            err_console.print(match.describe(), markup=False)
        device = match.device
        pred = predict_latency(db, space=space, device=device, archs=items, predictor=predictor)
    rows = [
        {"arch": a, "mean_ms": float(m), "std_ms": float(s)}
        for a, m, s in zip(pred.archs, pred.mean_ms, pred.std_ms, strict=True)
    ]
    bad = [
        a for a, m in zip(pred.archs, pred.mean_ms, strict=True) if not (math.isfinite(m) and m > 0)
    ]
    if bad:  # never print NaN (not JSON) with a success code
        raise PredictorError(
            f"the {pred.predictor} predictor returned a non-finite or non-positive latency for "
            f"{len(bad)} of {len(rows)} archs (e.g. {bad[0]}); check the device's measurements"
        )
    sp = get_space(space)
    workload = sp.workload_dict(pred.workload)
    if json_:
        print_json(
            {"predictor": pred.predictor, "version": pred.version, "source": pred.source,
             "n_measurements": int(pred.n_measurements), "workload": workload,
             "predictions": rows}
        )  # fmt: skip
        return
    if workload != sp.workload_dict(None):  # milliseconds at another input than the default
        shapes = ", ".join(f"{k}={v}" for k, v in workload.items())
        err_console.print(
            f"note: milliseconds for the input {shapes}, {device}'s (not the space's default)",
            markup=False,
        )
    if pred.n_measurements == 0 and not renamed:  # the match's line already said how
        err_console.print(
            f"note: {pred.source} prediction ({pred.predictor} {pred.version}); measure the "
            f"device to calibrate (`nas device onboard {device} --space {space}`)",
            markup=False,
        )
    for r in rows:
        console.print(
            f"{r['mean_ms']:.3f} ms ± {r['std_ms']:.3f}  {r['arch']}", markup=False, soft_wrap=True
        )


def _read_archs(path: Path, space: str) -> list[str]:
    """The architectures of an ``--archs`` file as ``nas measure --archs`` reads them
    (:func:`nas.measure.read_archs_file`), canonical in a registered space; a file or line
    it cannot read is a usage error naming it."""
    from nas.measure import read_archs_file
    from search_spaces import get_space, list_spaces

    sp = get_space(space) if space in list_spaces() else None
    try:
        return read_archs_file(path, sp)
    except OSError as exc:  # missing, a folder, unreadable
        _usage(f"--archs {str(path)!r}: {exc.strerror or exc}")
    except ValueError as exc:  # not text, not an architecture, no line
        _usage(str(exc).replace("`archs_file` ", "--archs ", 1))


def _canonical(archs: list[str], space: str) -> list[str]:
    """Canonical strings of command-line ``archs`` (reference-model names resolved; one not
    in the space is a usage error) in a registered space; other spaces' strings as given."""
    from search_spaces import list_spaces

    if space not in list_spaces():
        return archs
    return [cli_arch(space, a) for a in archs]


@predictor_app.command("evaluate")
def evaluate(
    space: SpaceOpt,
    device: DeviceOpt,
    shots: Annotated[
        int,
        typer.Option("--shots", min=0, help="Training-pool samples; 0 = zero-shot (datasheet)."),
    ] = 10,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Support draws.")] = 5,
    predictor: PredOpt = None,
    episodes: Annotated[
        int | None, typer.Option("--episodes", min=1, help="Episodes (help/maml).")
    ] = None,
    json_: JsonOpt = False,
    catalog: Annotated[
        str | None,
        typer.Option(
            "--catalog",
            help="Catalog entry (default: the device's): the device itself for --shots 0, "
            "a datasheet prior of the adaptation otherwise.",
        ),
    ] = None,
) -> None:
    """Few-shot evaluation on the HELP protocol (seeded random split without indices).

    With ``--shots 0`` none of the device's measurements are used for prediction: the device
    is described only by its datasheet catalog entry (``nas device add --catalog``).
    """
    from predictors import (
        device_datasheet,
        device_split,
        evaluate_adapted,
        latency_metric,
        meta_train_for,
        source_devices,
    )

    name = _predictor_name(predictor)
    if catalog is not None:
        _check_catalog(catalog)
    if shots == 0:
        _evaluate_zero_shot(space, device, catalog, seeds, predictor, json_)
        return

    params: dict[str, Any] = {"episodes": episodes} if episodes and name in ("help", "maml") else {}
    with _open(space) as db:
        device = _measured_device(db, device, space)
        table = db.latency_table(space, metric=latency_metric(space))
        datasheet = device_datasheet(db, device, catalog=catalog)
    if device not in table.columns:
        from predictors import NotEnoughDataError

        raise NotEnoughDataError(f"device {device!r} has no measurements in space {space!r}")
    pool = device_split(table, space, device).train_pool  # its data errors before training
    if shots > len(pool):
        _usage(f"--shots {shots} exceeds the training pool of {device!r} ({len(pool)} archs)")
    train_devs, valid = source_devices(table, space, device)
    model = meta_train_for(name, table, space, train_devs, valid, params=params, progress=not json_)
    result = evaluate_adapted(
        model, table, space, device, shots=shots, seeds=range(seeds), datasheet=datasheet
    )
    if json_:
        print_json(result)
        return
    prior = f", datasheet {datasheet.name}" if datasheet is not None else ""
    console.print(
        f"{name} on {device} ({shots} shots + 10 reference{prior}, {seeds} seeds): "
        f"Spearman {result['spearman']:.3f}, Kendall {result['kendall']:.3f}, "
        f"MAPE {_percent(result['mape'])}, within ±10% {result['within_10pct']:.2f}, "
        f"90% interval holds {_percent(result['coverage_90'])}"
    )


def _percent(fraction: float) -> str:
    """A mean absolute percentage error (a fraction, as ``--json`` gives it) in percent, as
    ``nas measure --retest`` and ``nas device onboard`` print it."""
    return f"{100 * fraction:.1f}%"


def _check_catalog(entry: str) -> None:
    """``--catalog`` must name a datasheet catalog entry (usage error, exit 2)."""
    from hwdb import NotFoundError
    from hwdb.catalog import get_entry

    try:
        get_entry(entry)
    except (NotFoundError, ValueError) as exc:
        _usage(f"--catalog: {exc}")


def _evaluate_zero_shot(
    space: str, device: str, catalog: str | None, seeds: int, predictor: str | None, json_: bool
) -> None:
    from predictors import NotEnoughDataError
    from predictors.zeroshot import evaluate_zero_shot

    with _open(space) as db:
        device = _measured_device(db, device, space)
        entry = catalog or db.get_device(device).attributes.get("catalog")
        if not entry:
            raise NotEnoughDataError(
                f"device {device!r} has no catalog entry: pass --catalog ENTRY "
                "(see `nas device catalog`) for a zero-shot evaluation"
            )
        result = evaluate_zero_shot(
            db, space=space, device=device, catalog_entry=str(entry), seeds=range(seeds),
            predictor=predictor, progress=not json_,
        )  # fmt: skip
    if json_:
        print_json(result)
        return
    roof = result["roofline"]
    name = _predictor_name(predictor)
    console.print(
        f"zero-shot ({entry}) on {device}:\n"
        f"  datasheet roofline (what `predict` and `nas search` use): "
        f"Spearman {roof['spearman']:.3f}, Kendall {roof['kendall']:.3f}, "
        f"MAPE {_percent(roof['mape'])}, within ±10% {roof['within_10pct']:.2f}, "
        f"90% interval holds {_percent(roof['coverage_90'])}\n"
        f"  {name} adapted to the datasheet ({seeds} meta-training seeds): "
        f"Spearman {result['spearman']:.3f}, Kendall {result['kendall']:.3f}, "
        f"MAPE {_percent(result['mape'])}, within ±10% {result['within_10pct']:.2f}, "
        f"90% interval holds {_percent(result['coverage_90'])}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``predictor`` group to ``app``."""
    app.add_typer(predictor_app)
