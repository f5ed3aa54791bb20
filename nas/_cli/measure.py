"""`nas measure`: time architectures on this machine into the hardware database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas._cli._common import console, err_console, print_json, print_table
from nas._errors import CLIUsageError

if TYPE_CHECKING:
    from nas.measure import MeasureConfig, MeasureReport, RetestResult
    from search_spaces import SearchSpace

__all__ = ["register"]

_PRECISIONS = ("fp32", "bf16", "fp16")
_RUNTIMES = ("torch", "onnxruntime")
_DEVICE_TYPES = ("auto", "cpu", "cuda")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise CLIUsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A rich progress bar with ETA on stderr, fed by the library's progress callback."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{label}: {what}")

        yield update


def _print_report(report: MeasureReport) -> None:
    from rich.table import Table

    from nas.search import wrap_arch

    table = Table(title=f"{report.space} on {report.device} ({report.protocol})")
    table.add_column("arch", overflow="fold", max_width=60)
    table.add_column("metric")
    for col in ("median ms", "p90 ms", "std ms", "runs"):
        table.add_column(col, justify="right")
    for arch, per_metric in report.measured.items():
        for metric, s in per_metric.items():
            table.add_row(
                wrap_arch(arch), metric, f"{s['median']:.3f}", f"{s['p90']:.3f}", f"{s['std']:.3f}",
                str(s["n_runs"]),
            )  # fmt: skip
    if report.measured:
        print_table(table)
    console.print(
        f"measured {len(report.measured)}, skipped {len(report.skipped)} already stored, "
        f"{report.rows_written} rows written",
        markup=False,
    )
    drift = _drift_line(report)
    if drift:
        console.print(drift, markup=False)


#: Median drift factor outside this range: a resumed run ran unlike its stored series.
_LEVEL_OK = (0.8, 1.25)


def _drift_line(report: MeasureReport) -> str | None:
    """One line on how the drift anchor saw the machine's speed change between groups."""
    from statistics import median

    primary = [
        per.get("e2e_ms") or per.get("latency_ms") or next(iter(per.values()))
        for per in report.measured.values()
    ]
    factors = sorted(float(stats["drift_factor"]) for stats in primary)
    if all(f == 1.0 for f in factors):  # no anchor, one group, or no drift at all
        return None
    level = report.anchor_level or "first group"
    med = median(factors)
    line = (
        f"drift anchor: groups ran at {factors[0]:.2f}-{factors[-1]:.2f}x the time of the "
        f"{level} (median {med:.2f}); the times above are scaled to it"
    )
    if level == "stored anchor row" and not _LEVEL_OK[0] <= med <= _LEVEL_OK[1]:
        line += (
            f". This run ran unlike the stored series ({med:.2f}x its time): rankings hold "
            "within the series, but check the machine's state (clocks, load, thermals)"
        )
    return line


def _print_retest(result: RetestResult) -> None:
    console.print(
        f"test-retest on {result.n} archs ({result.metric}): Spearman {result.spearman:.4f}, "
        f"MAPE {result.mape:.2f}%",
        markup=False,
    )


def _config(opts: dict[str, Any], space: SearchSpace[Any]) -> MeasureConfig:
    from nas.measure import MeasureConfig, TimingProtocol

    config = MeasureConfig(
        runtime=_choice("--runtime", opts["runtime"], _RUNTIMES),
        precision=_choice("--precision", opts["precision"], _PRECISIONS),
        batch_size=opts["batch"],
        threads=opts["threads"],
        device_type=_choice("--device-type", opts["device_type"], _DEVICE_TYPES),
        protocol=TimingProtocol(
            rounds=opts["rounds"],
            repeats=opts["repeats"],
            warmup=opts["warmup"],
            anchor=opts["anchor"],
        ),
        chunk_size=opts["chunk_size"] or 10,
        prime=opts["prime"],
        prime_seconds=opts["prime_seconds"],
        seed=opts["seed"],
        onnx_exporter=_choice("--onnx-exporter", opts["onnx_exporter"], ("dynamo", "torchscript")),
    )
    overrides = {k: opts[k] for k in ("resolution", "prompt_len", "decode_len") if opts[k]}
    if not overrides:
        return config
    unread = [k for k in overrides if k not in space.workload_fields]
    if unread:
        flag = "--" + unread[0].replace("_", "-")
        raise CLIUsageError(
            f"{flag} does not apply to {space.name} (its workload reads "
            f"{', '.join(space.workload_fields)}; --batch sets batch_size)"
        )
    default = config.resolve(space).workload  # the space's measurement workload
    return replace(config, workload=replace(default, **overrides))


def measure(
    space: Annotated[str, typer.Option("--space", help="Search space, e.g. mnasnet.")],
    device_name: Annotated[
        str | None, typer.Option("--device-name", help="Device name to store results under.")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Random architectures.", min=1)] = None,
    archs: Annotated[
        Path | None, typer.Option("--archs", help="File: one architecture per line.")
    ] = None,
    reference_set: Annotated[
        bool, typer.Option("--reference-set", help="Hardware-embedding + reference archs.")
    ] = False,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    precision: Annotated[str, typer.Option("--precision", help="fp32, bf16 or fp16.")] = "fp32",
    batch: Annotated[int, typer.Option("--batch", min=1)] = 1,
    runtime: Annotated[str, typer.Option("--runtime", help="torch or onnxruntime.")] = "torch",
    device_type: Annotated[str, typer.Option("--device-type", help="auto, cpu, cuda.")] = "auto",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the arch sample (>= 0).")] = 0,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Interleaved rounds.")] = 10,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Runs per round.")] = 3,
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = 5,
    chunk_size: Annotated[
        int | None,
        typer.Option("--chunk-size", min=1, help="Models per group (default 10; retest: all)."),
    ] = None,
    anchor: Annotated[
        bool,
        typer.Option(
            "--anchor/--no-anchor",
            help="Time a fixed arch in every group; divide out speed changes between groups.",
        ),
    ] = True,
    prime: Annotated[
        int,
        typer.Option("--prime", min=0, help="Untimed random archs run first to warm the process."),
    ] = 30,
    prime_seconds: Annotated[
        float,
        typer.Option("--prime-seconds", min=0.0, help="Run the priming archs this long first."),
    ] = 20.0,
    resolution: Annotated[int | None, typer.Option("--resolution", min=1)] = None,
    prompt_len: Annotated[int | None, typer.Option("--prompt-len", min=1)] = None,
    decode_len: Annotated[int | None, typer.Option("--decode-len", min=1)] = None,
    onnx_exporter: Annotated[str, typer.Option("--onnx-exporter")] = "dynamo",
    force: Annotated[bool, typer.Option("--force", help="Re-measure stored archs.")] = False,
    retest: Annotated[
        bool, typer.Option("--retest", help="Measure twice, print test-retest agreement.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: Annotated[str | None, typer.Option("--server", help="Upload to a server.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key")] = None,
) -> None:
    """Time architectures with the interleaved protocol; results are committed as they finish."""
    opts = dict(locals())
    if api_key is not None and not api_key.strip():
        raise CLIUsageError("--api-key is empty (an unset variable?)")
    if (server is None) != (api_key is None):
        raise CLIUsageError("--server and --api-key go together")
    if server is not None and retest:
        raise CLIUsageError("--retest stores nothing, so it cannot be combined with --server")
    if server is not None:
        _check_server(server)
    from hwdb import HardwareDB
    from nas import measure as lib
    from search_spaces import get_space

    sp = get_space(space)
    cfg = _config(opts, sp)
    sources = sum(x is not None and x is not False for x in (n, archs, reference_set))
    if sources != 1:
        raise CLIUsageError("give exactly one of --n, --archs and --reference-set")
    selected = lib.select_architectures(
        sp, n=n, archs_file=archs, reference_set=reference_set or False, seed=seed
    )
    if retest:
        if chunk_size is None:  # one interleaved group: nothing is committed during a retest
            cfg = replace(cfg, chunk_size=max(1, min(len(selected), 50)))
        with _progress(not as_json, "retest") as cb:
            result = lib.retest(space=sp.name, archs=selected, config=cfg, progress=cb)
        print_json(result.summary()) if as_json else _print_retest(result)
        return
    if not device_name:
        raise CLIUsageError("--device-name is required (unless --retest)")
    with HardwareDB() as db, _progress(not as_json, f"measure {sp.name}") as cb:
        report = lib.measure_architectures(
            db, space=sp.name, device=device_name, archs=selected, config=cfg, force=force,
            progress=cb,
        )  # fmt: skip
        uploaded = _upload(db, report, server, api_key) if server and api_key else None
    out = report.to_dict()
    if uploaded is not None:
        out["upload"] = uploaded
    print_json(out) if as_json else _print_report(report)
    if uploaded is not None and not as_json:
        console.print(f"uploaded to {server}: {uploaded}")


def _check_server(url: str) -> None:
    """Usage error unless ``url`` is an http(s) URL with a host (checked before measuring)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # ValueError on a malformed port
    except ValueError:
        ok = False
    if not ok:
        raise CLIUsageError(
            f"--server must be an http:// or https:// URL with a host, e.g. "
            f"http://127.0.0.1:8000, got {url!r}"
        )


def _upload(db: Any, report: Any, server: str, api_key: str) -> dict[str, Any]:
    """Post the stored rows of the selected archs (this device and protocol) to a server.

    Skipped (already stored) architectures are uploaded too, so rerunning after a failed
    upload sends what the server lacks; the server keeps rows it already has (idempotent).
    """
    from api.client import ApiClientError, upload_measurements

    selected = set(report.measured) | set(report.skipped)
    rows = [
        r
        for r in db.measurements(space=report.space, device=report.device, limit=10**9)
        if r["protocol"] == report.protocol and r["arch"] in selected
    ]
    try:
        result: dict[str, Any] = upload_measurements(
            server, api_key, db.get_device(report.device), rows
        )
    except ApiClientError as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            raise  # rejected (a revoked key, a bad row): rerunning the same command cannot help
        raise ApiClientError(
            f"{exc} (the measurements are stored locally: rerun the same command to upload them)",
            status=exc.status,
        ) from exc
    return result


def register(app: typer.Typer) -> None:
    """Add ``nas measure`` to ``app``."""
    app.command("measure")(measure)
