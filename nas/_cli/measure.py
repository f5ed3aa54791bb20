"""`nas measure`: time architectures on this machine into the hardware database."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas._cli._common import (
    check_at_most,
    check_device_name,
    console,
    count_noun,
    err_console,
    interrupt_note,
    open_db,
    print_json,
    print_table,
    set_interrupt_note,
)
from nas._errors import CLIUsageError

if TYPE_CHECKING:
    import httpx

    from hwdb import HardwareDB
    from nas.measure import MeasureConfig, MeasureReport, RetestResult
    from search_spaces import SearchSpace

__all__ = ["register", "sigterm_as_interrupt"]


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise CLIUsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


_TERMINATED = 143  # exit code of a command stopped by SIGTERM (128 + 15)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C raises ``KeyboardInterrupt`` (so the
    same cleanup runs)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated`, then exit 143 with one line on stderr.

    The library cleans up on any ``BaseException`` (a device the run created and stored
    nothing under is deleted; finished groups are committed), as it does after Ctrl-C. A
    second SIGTERM during that cleanup gets the default action (``SIG_DFL``: the process
    ends at once), whatever handler was installed before; that one is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except Terminated:
        err_console.print(f"error: terminated; {interrupt_note()}", markup=False)
        set_interrupt_note(None)
        raise typer.Exit(_TERMINATED) from None
    finally:
        if signal.getsignal(signal.SIGTERM) in (handler, signal.SIG_DFL):
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A rich progress bar with ETA on stderr, fed by the library's progress callback.

    The bar appears at the first update, so that an error found before any work starts (a
    device or workload conflict) is the only line on stderr.
    """
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
    bar = Progress(*columns, console=err_console, transient=False)
    task: list[Any] = []

    def update(done: int, total: int, what: str) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(label, total=None))
        bar.update(task[0], completed=done, total=total, description=f"{label}: {what}")

    try:
        yield update
    finally:
        if task:
            bar.stop()


def _print_report(report: MeasureReport, *, sampled: bool = False) -> None:
    """The measured table and summary; ``sampled``: the archs came from ``--n``."""
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
    too_large = f", {len(report.too_large)} too large for memory" if report.too_large else ""
    console.print(
        f"measured {len(report.measured)}, skipped {len(report.skipped)} already stored"
        f"{too_large}, {report.rows_written} rows written",
        markup=False,
    )
    if sampled and report.skipped and not report.measured:
        err_console.print(
            "note: --n draws the same sample for the same --seed, and every arch of it is "
            "stored already; pass another --seed to measure others (--force re-measures these)",
            markup=False,
        )
    if report.stored_by_another_run:
        console.print(
            f"{len(report.stored_by_another_run)} archs timed here were stored first by another "
            "run measuring this device at the same time: its rows are kept, these times are not",
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


def _check_runtime(runtime: str, precision: str, space: SearchSpace[Any]) -> None:
    """Usage errors for a runtime that cannot run this precision or this space."""
    from nas.measure._config import is_language_model

    if runtime == "onnxruntime" and precision != "fp32":
        raise CLIUsageError(f"--precision {precision} needs --runtime torch (onnxruntime: fp32)")
    if runtime == "onnxruntime" and is_language_model(space):
        raise CLIUsageError(
            f"--runtime onnxruntime cannot run {space.name}'s language models; use --runtime torch"
        )


def _config(opts: dict[str, Any], space: SearchSpace[Any]) -> MeasureConfig:
    from hwdb import DEVICE_THREADS_MAX
    from nas.measure import MeasureConfig, TimingProtocol
    from nas.measure._config import DEVICE_TYPES, RUNTIMES
    from nas.measure._runtimes import DTYPES
    from search_spaces import WORKLOAD_LIMITS

    check_at_most("--threads", opts["threads"], DEVICE_THREADS_MAX)
    for key, field in (("batch", "batch_size"), ("resolution", "resolution"),
                       ("prompt_len", "prompt_len"), ("decode_len", "decode_len")):  # fmt: skip
        check_at_most("--" + key.replace("_", "-"), opts[key], WORKLOAD_LIMITS[field][1])

    runtime = _choice("--runtime", opts["runtime"], RUNTIMES)
    precision = _choice("--precision", opts["precision"], DTYPES)
    _check_runtime(runtime, precision, space)
    seconds = opts["prime_seconds"]
    if not 0 <= seconds < float("inf"):
        raise CLIUsageError(f"--prime-seconds must be a finite number >= 0, got {seconds}")
    config = MeasureConfig(
        runtime=runtime,
        precision=precision,
        batch_size=opts["batch"],
        threads=opts["threads"],
        device_type=_choice("--device-type", opts["device_type"], DEVICE_TYPES),
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
        typer.Option(
            "--chunk-size",
            min=1,
            help="Models per group (default 10; retest: all, at most 50; fewer when they "
            "would not fit in free memory together).",
        ),
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
    with sigterm_as_interrupt():
        _measure(opts)


def _measure(opts: dict[str, Any]) -> None:
    """The body of ``nas measure`` (``opts``: its options by name)."""
    server, api_key, as_json = opts["server"], opts["api_key"], opts["as_json"]
    if api_key is not None and not api_key.strip():
        raise CLIUsageError("--api-key is empty (an unset variable?)")
    if (server is None) != (api_key is None):
        raise CLIUsageError("--server and --api-key go together")
    if server is not None and opts["retest"]:
        raise CLIUsageError("--retest stores nothing, so it cannot be combined with --server")
    if server is not None:
        _check_server(server)
    from search_spaces import get_space

    sp = get_space(opts["space"])
    cfg = _config(opts, sp)
    selected = _select(opts, sp)
    if opts["retest"]:
        _retest(opts, sp, cfg, selected)
        return
    device_name = opts["device_name"]
    if not device_name:
        raise CLIUsageError("--device-name is required (unless --retest)")
    check_device_name(device_name, "--device-name")
    if server is not None and api_key is not None:
        _check_key(server, api_key)  # before measuring: a bad key fails now, not in an hour
    report, uploaded = _measure_and_upload(opts, sp, cfg, selected)
    out = report.to_dict()
    if uploaded is not None:
        out["upload"] = uploaded
    print_json(out) if as_json else _print_report(report, sampled=opts["n"] is not None)
    if uploaded is not None and not as_json:
        console.print(f"uploaded to {server}: {_upload_summary(uploaded)}")


def _upload_summary(uploaded: dict[str, Any]) -> str:
    """``2 measurements of pi4 (1 new, 1 already stored) in 1 request``."""
    new, kept = uploaded.get("inserted", 0), uploaded.get("existing", 0)
    return (
        f"{count_noun(uploaded.get('received', new + kept), 'measurement')} of "
        f"{uploaded.get('device', '?')} ({new:,} new, {kept:,} already stored) in "
        f"{count_noun(uploaded.get('requests', 1), 'request')}"
    )


def _select(opts: dict[str, Any], sp: SearchSpace[Any]) -> list[str]:
    """The architectures to measure; a bad ``--archs`` file is a usage error naming it."""
    from nas import measure as lib
    from search_spaces import SearchSpaceError

    n, archs, reference_set = opts["n"], opts["archs"], opts["reference_set"]
    if sum(x is not None and x is not False for x in (n, archs, reference_set)) != 1:
        raise CLIUsageError("give exactly one of --n, --archs and --reference-set")
    try:
        return lib.select_architectures(
            sp, n=n, archs_file=archs, reference_set=reference_set, seed=opts["seed"]
        )
    except OSError as exc:
        raise CLIUsageError(f"--archs {str(archs)!r}: {exc.strerror or exc}") from None
    except (ValueError, SearchSpaceError) as exc:
        if archs is None:
            raise
        raise CLIUsageError(str(exc).replace("`archs_file` ", "--archs ", 1)) from None


def _retest(
    opts: dict[str, Any], sp: SearchSpace[Any], cfg: MeasureConfig, selected: list[str]
) -> None:
    from nas import measure as lib

    if len(selected) < 2:
        raise CLIUsageError(
            f"--retest compares architectures: it needs at least 2, got {len(selected)}"
        )
    if opts["chunk_size"] is None:  # one interleaved group: nothing is committed in a retest
        cfg = replace(cfg, chunk_size=max(1, min(len(selected), _RETEST_GROUP)))
    set_interrupt_note("a retest stores nothing")
    with _progress(not opts["as_json"], "retest") as cb:
        result = lib.retest(space=sp.name, archs=selected, config=cfg, progress=cb)
    set_interrupt_note(None)
    print_json(result.summary()) if opts["as_json"] else _print_retest(result)


#: Models a retest times together when ``--chunk-size`` is not given.
_RETEST_GROUP = 50


def _measure_and_upload(
    opts: dict[str, Any], sp: SearchSpace[Any], cfg: MeasureConfig, selected: list[str]
) -> tuple[MeasureReport, dict[str, Any] | None]:
    from nas import measure as lib

    device, server, api_key = opts["device_name"], opts["server"], opts["api_key"]
    stored: list[str] = []  # archs whose rows this run stored, group by group
    with open_db() as db, _progress(not opts["as_json"], f"measure {sp.name}") as cb:
        try:
            report = lib.measure_architectures(
                db, space=sp.name, device=device, archs=selected, config=cfg,
                force=opts["force"], progress=cb, on_commit=stored.extend,
            )  # fmt: skip
        except KeyboardInterrupt:
            set_interrupt_note(_kept_note(device, len(stored)))
            raise
        uploaded = _upload(db, report, server, api_key) if server and api_key else None
    return report, uploaded


def _kept_note(device: str, kept: int) -> str:
    """What an interrupted measurement kept (``kept``: the archs whose rows it stored, under
    this protocol, new or replaced with ``--force``), for the line after Ctrl-C or SIGTERM."""
    if kept <= 0:
        return "no group finished, nothing was stored"
    return (
        f"the {kept} archs of the groups finished so far are stored under device {device!r}; "
        "rerun the same command to resume"
    )


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


#: Seconds the key check before measuring waits for the server.
_CHECK_TIMEOUT_S = 15.0


def _check_key(server: str, api_key: str) -> None:
    """Refuse to measure when the server cannot be reached or refuses ``api_key``.

    The check is an upload of no rows (``POST /v1/devices/{name}/measurements`` with an empty
    list): the server checks the key before it reads the body, so a refused key answers 401
    (or 403) and an accepted one 422 (an empty batch), and nothing is written either way.
    Any other answer (404: no nas API at that URL; 5xx: a server error) refuses too.
    """
    import httpx

    from nas import NasError

    url = f"{server.rstrip('/')}/v1/devices/nas-measure-key-check/measurements"
    try:
        response = httpx.post(
            url, json={"measurements": []}, headers={"X-API-Key": api_key},
            timeout=_CHECK_TIMEOUT_S,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise NasError(
            f"cannot reach {server} ({exc or type(exc).__name__}); nothing was measured: "
            "measure without --server, then rerun the same command with it to upload"
        ) from None
    status = response.status_code
    if status == 422:
        return
    if status in (401, 403):
        raise NasError(
            f"{server} refused --api-key (HTTP {status}: {_detail(response)}); nothing was measured"
        )
    if status == 404:
        raise NasError(
            f"no nas API at {server} (HTTP 404 for {url}); check --server; nothing was measured"
        )
    raise NasError(
        f"{server} could not check --api-key (HTTP {status}: {_detail(response)}); "
        "nothing was measured: measure without --server, then rerun the same command with it "
        "to upload"
    )


def _detail(response: httpx.Response) -> str:
    """The first error message of an API error response (its text when it has none)."""
    try:
        return str(response.json()["detail"][0]["msg"])
    except (ValueError, KeyError, IndexError, TypeError):
        return " ".join(response.text[:200].split()) or response.reason_phrase


def _upload(db: HardwareDB, report: MeasureReport, server: str, api_key: str) -> dict[str, Any]:
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
        kept = f"the measurements are stored locally under device {report.device!r}"
        if exc.status in (401, 403):
            hint = f"{kept}: rerun the same command with a valid --api-key to upload them"
        elif exc.status is not None and 400 <= exc.status < 500:
            hint = f"{kept}, not uploaded (the server rejected them)"
        else:
            hint = f"{kept}: rerun the same command to upload them"
        raise ApiClientError(f"{exc} ({hint})", status=exc.status) from exc
    return result


def register(app: typer.Typer) -> None:
    """Add ``nas measure`` to ``app``."""
    app.command("measure")(measure)
