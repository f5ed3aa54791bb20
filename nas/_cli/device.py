"""`nas device`: the datasheet catalog, catalog-backed devices and device onboarding."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from nas._cli._common import (
    check_at_most,
    check_device_name,
    console,
    open_db,
    print_json,
    print_table,
)
from nas._errors import CLIUsageError, NasError

if TYPE_CHECKING:
    from hwdb import Device, HardwareDB
    from hwdb.catalog import CatalogEntry
    from nas.measure import MeasureConfig
    from search_spaces import SearchSpace

__all__ = ["register"]


def _catalog(as_json: bool) -> None:
    from rich.table import Table

    from hwdb.catalog import load_catalog

    entries = load_catalog()
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    table = Table(title="Device catalog (datasheet numbers; `nas device add NAME --catalog ENTRY`)")
    for col in ("entry", "device", "family", "FP32 TF", "FP16 TF", "INT8 TOPS", "GB/s", "GiB"):
        left = col in ("entry", "device", "family")
        table.add_column(col, justify="left" if left else "right", no_wrap=col == "entry")
    for e in entries:
        t = e.peak_tflops
        table.add_row(
            e.name, e.display_name, e.family, f"{t['fp32']:g}", f"{t['fp16']:g}",
            f"{t['int8']:g}", f"{e.memory_bandwidth_gbs:g}", f"{e.memory_gb:g}",
        )  # fmt: skip
    print_table(table)


def add_catalog_device(
    db: HardwareDB,
    name: str,
    *,
    catalog: str,
    precision: str = "fp32",
    batch: int = 1,
    runtime: str = "unknown",
    replace: bool = False,
) -> dict[str, Any]:
    """Register ``name`` as a catalog-backed device (no measurements); returns its record.

    Registering the same device again with the same settings changes nothing. An existing
    device is never rewritten when it has measurements (an imported or measured device keeps
    its record); a catalog device without measurements is re-registered only with
    ``replace``.

    Raises:
        CLIUsageError: For an unknown precision, runtime or catalog entry, or a batch below 1.
        NasError: If ``name`` exists with other settings (see above).
    """
    from hwdb import DEVICE_BATCH_MAX, DeviceSpec

    check_device_name(name, "NAME", db)
    if batch < 1:
        raise CLIUsageError("--batch must be greater than or equal to 1")
    check_at_most("--batch", batch, DEVICE_BATCH_MAX)
    runtime = runtime.strip().lower()
    _check_runtime(runtime)
    entry = _catalog_entry(catalog)
    try:  # the entry prices the device at its precision (the API's check too)
        entry.peak_flops(precision)
    except ValueError as exc:
        raise CLIUsageError(str(exc).replace("`precision`", "--precision").rstrip(".")) from exc
    existing = _existing_record(db, name, entry.name, precision, batch, runtime, replace)
    if existing is not None:
        return existing
    cite = "; ".join(f"{c.document} <{c.url}>" for c in entry.citations)
    dev = db.upsert_device(
        DeviceSpec(
            name=name,
            family=entry.family,
            hardware=entry.display_name,
            runtime=runtime,
            precision=precision,
            batch_size=batch,
            provenance="catalog",
            source=f"device catalog: {cite}",
            attributes={"catalog": entry.name},
        )
    )
    return _record(dev, entry.name)


def _check_runtime(runtime: str) -> None:
    """``--runtime`` of a catalog device must be a runtime the roofline knows: any other name
    would be priced as a fused graph, so a typo would silently change its predictions."""
    from predictors.zeroshot import KNOWN_RUNTIMES, is_known_runtime

    if not is_known_runtime(runtime):
        raise CLIUsageError(
            f"--runtime must be one of {', '.join(KNOWN_RUNTIMES)}, got {runtime!r}"
        )


def _catalog_entry(catalog: str) -> CatalogEntry:
    """The datasheet catalog entry ``--catalog`` names (a usage error listing the candidates
    when it names none)."""
    from hwdb import NotFoundError
    from hwdb.catalog import get_entry

    try:
        return get_entry(catalog)
    except (NotFoundError, ValueError) as exc:
        raise CLIUsageError(f"--catalog: {exc}") from exc


def _record(dev: Any, catalog: str | None) -> dict[str, Any]:
    return {"name": dev.name, "catalog": catalog, "precision": dev.precision,
            "batch_size": dev.batch_size, "family": dev.family,
            "runtime": dev.runtime}  # fmt: skip


def _existing_record(
    db: HardwareDB, name: str, catalog: str, precision: str, batch: int, runtime: str,
    replace: bool,
) -> dict[str, Any] | None:  # fmt: skip
    """The record of ``name`` when it is already registered with these settings; None when it
    does not exist or may be replaced; raises when it exists otherwise."""
    from hwdb import NotFoundError

    try:
        dev = db.get_device(name)
    except NotFoundError:
        return None
    rec = _record(dev, (dev.attributes or {}).get("catalog"))
    if rec["catalog"] == catalog and (dev.precision, dev.batch_size, dev.runtime) == (
        precision, batch, runtime
    ):  # fmt: skip
        return rec
    n = db.count_measurements(device=name)
    if n:
        raise NasError(
            f"device {name!r} already exists with {n:,} measurements ({dev.provenance}); "
            "its record is kept: choose another name"
        )
    if not replace:
        was = f"catalog entry {rec['catalog']!r}" if rec["catalog"] else dev.provenance
        raise NasError(
            f"device {name!r} is already registered ({was}, {dev.precision}, batch "
            f"{dev.batch_size}, runtime {dev.runtime}); pass --replace to re-register it"
        )
    return None


def _needs_registering(db: HardwareDB, name: str, catalog: str) -> bool:
    """Whether ``name`` must be registered from ``catalog`` (it does not exist); an existing
    device must already name that entry (a rerun resumes; its runtime and threads were set
    by its first measurement). Writes nothing."""
    from hwdb import NotFoundError

    entry = _catalog_entry(catalog).name  # an unknown entry: refused before anything else
    try:
        dev = db.get_device(name)
    except NotFoundError:
        return True
    if (dev.attributes or {}).get("catalog") != entry:
        raise NasError(
            f"device {name!r} already exists ({dev.provenance}) without catalog entry "
            f"{entry!r}; onboard it without --catalog or choose another name"
        )
    return False


def _measure_fn(
    db: HardwareDB, space: str, device: str, config: MeasureConfig
) -> Callable[[Sequence[str]], Sequence[float]]:
    """``archs -> ms`` measuring on this machine with :mod:`nas.measure` (stored in ``db``)."""
    from nas.measure import measure_architectures
    from predictors import latency_metric

    def measure(archs: Sequence[str]) -> Sequence[float]:
        measure_architectures(db, space=space, device=device, archs=archs, config=config)
        col = db.latency_table(space, devices=[device], metric=latency_metric(space))[device]
        missing = [a for a in archs if a not in col.index or col.isna().get(a, True)]
        if missing:
            raise NasError(
                f"{len(missing)} of the archs to measure were not measured on {device!r} "
                f"(e.g. {missing[0][:48]}: too large for this machine's free memory?)"
            )
        return [float(col.loc[a]) for a in archs]

    return measure


def onboard_config(
    db: HardwareDB, name: str, space: SearchSpace[Any], *, threads: int | None = None,
    runtime: str | None = None, precision: str | None = None,
) -> MeasureConfig:  # fmt: skip
    """How ``nas device onboard`` measures ``name``: the options given, else the stored
    device's settings (runtime, precision, input batch, threads, and the input shapes of its
    rows in ``space``), so that onboarding continues a device measured with ``nas measure``;
    a new device gets ``nas measure``'s defaults. The stored ``meta_tokens`` are not copied:
    they are no input shape (see ``nas.measure``), and ``nas measure`` records the space's."""
    from dataclasses import replace as with_fields

    from hwdb import NotFoundError
    from nas.measure import MeasureConfig
    from nas.measure._config import RUNTIMES
    from nas.measure._runner import SHAPE_KEYS
    from nas.measure._runtimes import DTYPES

    dev: Device | None
    try:
        dev = db.get_device(name)
    except NotFoundError:
        dev = None
    stored_runtime = getattr(dev, "runtime", None)
    stored_precision = getattr(dev, "precision", None)
    config = MeasureConfig(
        runtime=runtime or (stored_runtime if stored_runtime in RUNTIMES else "torch"),
        precision=precision or (stored_precision if stored_precision in DTYPES else "fp32"),
        batch_size=dev.batch_size if dev is not None else 1,
        threads=threads or (dev.threads if dev is not None else None),
    )
    stored = db.measured_workloads(space=space.name, device=name) if dev is not None else []
    distinct: list[dict[str, int]] = []
    for wl in stored:
        shape = {k: v for k, v in wl.items() if k in SHAPE_KEYS and isinstance(v, int)}
        if shape not in distinct:
            distinct.append(shape)
    if len(distinct) != 1:  # none (or several: `nas measure` then refuses with its message)
        return config
    shapes = distinct[0]
    workload = with_fields(config.resolve(space).workload, **shapes)
    return with_fields(config, workload=workload)


class MeasureHint(NamedTuple):
    """How to add rows to a stored device with ``nas measure`` (:func:`measure_options`)."""

    options: str
    """The options reproducing its settings and input (`` --threads 4 --resolution 64``)."""
    conflict: list[str]
    """Stored settings ``nas measure`` cannot reproduce (:func:`nas.measure.device_conflict`:
    a TensorRT or int8 device, or an import that did not record its threads)."""
    cpu: str | None
    """The CPU its rows were timed on (:func:`nas.measure.recorded_cpu`), which the machine
    that measures must have."""


def measure_options(space: str, device: str) -> MeasureHint:
    """`nas measure` options that reproduce how ``device`` was measured in ``space`` (its
    runtime, precision, batch, threads and input shapes; nothing for a device the database
    does not hold), so new rows land in the workload its latencies are read at, with what
    they cannot reproduce; nothing when the database cannot tell."""
    from nas.measure import device_conflict, recorded_cpu
    from search_spaces import get_space

    try:
        sp = get_space(space)
        with open_db(create=False) as db:
            cfg = onboard_config(db, device, sp)  # a device not stored: the defaults
            conflict = device_conflict(db, device, cfg.resolve(sp))
            cpu = recorded_cpu(db, device)
    except Exception:  # noqa: BLE001 - a hint must not fail the command it follows
        return MeasureHint("", [], None)
    opts = [
        *([f"--runtime {cfg.runtime}"] if cfg.runtime != "torch" else []),
        *([f"--precision {cfg.precision}"] if cfg.precision != "fp32" else []),
        *([f"--batch {cfg.batch_size}"] if cfg.batch_size != 1 else []),
        *([f"--threads {cfg.threads}"] if cfg.threads is not None else []),
    ]
    default = sp.default_workload()
    workload = cfg.workload or default
    flags = {
        "resolution": "--resolution",
        "prompt_len": "--prompt-len",
        "decode_len": "--decode-len",
    }
    for name, flag in flags.items():
        if getattr(workload, name) != getattr(default, name):
            opts.append(f"{flag} {getattr(workload, name)}")
    return MeasureHint("".join(f" {o}" for o in opts), conflict, cpu)


def _check_measure_options(runtime: str | None, precision: str | None, space: str) -> None:
    """``nas measure``'s usage errors for the ``--runtime`` and ``--precision`` given to
    ``nas device onboard`` (a setting left out is the device's, checked when it is read)."""
    from nas._cli.measure import _check_runtime, _choice
    from nas.measure._config import RUNTIMES
    from nas.measure._runtimes import DTYPES
    from search_spaces import get_space

    if runtime is not None:
        _choice("--runtime", runtime, RUNTIMES)
    if precision is not None:
        _choice("--precision", precision, DTYPES)
    if runtime is not None and precision is not None:
        _check_runtime(runtime, precision, get_space(space))


def _onboard(
    name: str, space: str, catalog: str | None, k: int, target: float, rounds: int, batch: int,
    candidates: int, as_json: bool, settings: dict[str, Any],
) -> None:  # fmt: skip
    from predictors import device_datasheet, get_default_predictor
    from predictors.zeroshot import onboard_device
    from search_spaces import get_space

    sp = get_space(space)
    rng_archs = {sp.to_string(sp.random(i)) for i in range(candidates)}
    with open_db() as db:
        # the cheap checks, then the predictor (a database without the space fails there),
        # and only then the device is written
        check_device_name(name, "NAME", db)
        register = catalog is not None and _needs_registering(db, name, catalog)
        model, _ = get_default_predictor(db, space=sp.name, exclude_device=name)
        if register and catalog is not None:
            add_catalog_device(db, name, catalog=catalog)
        config = onboard_config(db, name, sp, **settings)
        result = onboard_device(
            model, space=sp.name, device=name, measure_fn=_measure_fn(db, sp.name, name, config),
            candidates=sorted(rng_archs), k=k, batch=batch, target_mape=target,
            max_rounds=rounds, datasheet=device_datasheet(db, name),
            workload=config.resolve(sp).workload,  # what `_measure_fn` measures under
        )  # fmt: skip
    summary = result.to_dict()
    if as_json:
        print_json(summary)
        return
    for r in result.rounds:
        console.print(f"round {r.round}: {r.n_measured} measured, prospective MAPE "
                      f"{100 * r.prospective_mape:.1f}%")  # fmt: skip
    state = "reached" if result.converged else "not reached"
    console.print(f"{name}: target MAPE {100 * target:.3g}% {state} after "
                  f"{len(result.measured)} measurements")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the ``device`` group to ``app``."""
    group = typer.Typer(
        rich_markup_mode="markdown",
        help="Datasheet catalog, catalog-backed devices, onboarding.",
        no_args_is_help=True,
    )

    @group.command("catalog")
    def catalog_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the device catalog (peak throughput, bandwidth, memory, citations)."""
        _catalog(as_json)

    @group.command("add")
    def add_cmd(
        name: Annotated[str, typer.Argument(help="Device name to create.")],
        catalog: Annotated[str, typer.Option("--catalog", help="Catalog entry or alias.")],
        precision: Annotated[str, typer.Option("--precision")] = "fp32",
        batch: Annotated[int, typer.Option("--batch")] = 1,
        runtime: Annotated[
            str,
            typer.Option(
                "--runtime",
                help="Inference runtime (torch = eager; tensorflow = pruned graph, unfused; "
                "tensorrt, tflite, onnxruntime, ... = fused graph; unknown = the eager and "
                "pruned estimates averaged; a name the roofline does not know is refused).",
            ),
        ] = "unknown",
        replace: Annotated[
            bool,
            typer.Option(
                "--replace", help="Re-register a catalog device that has no measurements yet."
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Register a device known only by its catalog entry (zero-shot predictions)."""
        with open_db() as db:
            rec = add_catalog_device(
                db, name, catalog=catalog, precision=precision, batch=batch, runtime=runtime,
                replace=replace,
            )  # fmt: skip
        if as_json:
            print_json(rec)
        else:
            from predictors.zeroshot import RUNTIME_MODE_TEXT, runtime_mode

            priced = RUNTIME_MODE_TEXT[runtime_mode(rec["runtime"])]
            console.print(f"added {rec['name']} from catalog entry {rec['catalog']} "
                          f"({rec['precision']}, batch {rec['batch_size']}, runtime "
                          f"{rec['runtime']}: priced as {priced}); predictions "
                          "are zero-shot until you run `nas device onboard`",
                          markup=False)  # fmt: skip

    @group.command("onboard")
    def onboard_cmd(
        name: Annotated[str, typer.Argument(help="Device name (this machine).")],
        space: Annotated[str, typer.Option("--space", help="Search space.")],
        catalog: Annotated[
            str | None,
            typer.Option(
                "--catalog",
                help="Catalog entry of this board (`nas device catalog`): its datasheet is the "
                "prior until measurements take over.",
            ),
        ] = None,
        k: Annotated[
            int, typer.Option("--k", help="Random archs measured with the reference set.")
        ] = 10,
        target_mape: Annotated[
            float,
            typer.Option(
                "--target-mape",
                help="Stop when the predicted error of new archs is below it (a fraction: "
                "0.05 = 5%).",
            ),
        ] = 0.10,
        max_rounds: Annotated[
            int, typer.Option("--max-rounds", help="Rounds of uncertainty-picked archs at most.")
        ] = 5,
        batch: Annotated[
            int, typer.Option("--batch", help="Archs measured per round (not an input batch).")
        ] = 5,
        candidates: Annotated[
            int,
            typer.Option("--candidates", help="Random archs the rounds pick from by uncertainty."),
        ] = 500,
        threads: Annotated[
            int | None,
            typer.Option(
                "--threads", help="CPU threads (default: the device's, as `nas measure` set it)."
            ),
        ] = None,
        runtime: Annotated[
            str | None,
            typer.Option("--runtime", help="torch or onnxruntime (default: the device's)."),
        ] = None,
        precision: Annotated[
            str | None,
            typer.Option("--precision", help="fp32, bf16 or fp16 (default: the device's)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Measure the reference set + K archs here, then measure by uncertainty to a target.

        A device measured before (`nas measure`) is measured with its stored runtime,
        precision, input batch, threads and input shapes unless the options say otherwise.
        """
        from hwdb import DEVICE_THREADS_MAX
        from nas._cli.measure import sigterm_as_interrupt

        check_device_name(name, "NAME")  # before the predictor is trained or anything stored
        for flag, value, low in (("--k", k, 0), ("--max-rounds", max_rounds, 0),
                                 ("--batch", batch, 1), ("--candidates", candidates, 1),
                                 ("--threads", threads, 1)):  # fmt: skip
            if value is not None and value < low:
                raise CLIUsageError(f"{flag} must be greater than or equal to {low}, got {value}")
        check_at_most("--threads", threads, DEVICE_THREADS_MAX)
        if not 0 < target_mape < 1:
            raise CLIUsageError(f"--target-mape is a fraction between 0 and 1 (e.g. 0.05 for "
                                f"5%), got {target_mape:g}")  # fmt: skip
        _check_measure_options(runtime, precision, space)  # before any predictor loads
        settings = {"threads": threads, "runtime": runtime, "precision": precision}
        with sigterm_as_interrupt():
            _onboard(name, space, catalog, k, target_mape, max_rounds, batch, candidates,
                     as_json, settings)  # fmt: skip

    app.add_typer(group, name="device")
