"""Pareto front extraction and the search's output files (JSON, CSV, PNG, history)."""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

    from nas.search._types import SearchResult

__all__ = ["check_output_dir", "front_table", "pareto_mask", "to_measure", "write_outputs"]


def pareto_mask(objectives: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``objectives`` (all minimised).

    Duplicated rows are all kept (callers de-duplicate by architecture). Rows are visited in
    lexicographic order, so a row can only be dominated by rows visited before it, and by
    transitivity by one of the non-dominated ones among them: each row is compared with the
    front found so far, O(n log n + n·|front|) instead of all pairs (15,284 NAS-Bench-201
    points in milliseconds rather than seconds).

    Args:
        objectives: Array of shape ``(n, d)``.

    Raises:
        ValueError: if ``objectives`` is not 2-d.
    """
    f = np.asarray(objectives, dtype=float)
    if f.ndim != 2:
        raise ValueError("`objectives` must be a 2-d array.")
    mask = np.zeros(len(f), dtype=bool)
    front = np.empty((0, f.shape[1]))
    for i in np.lexsort(f.T[::-1]) if f.shape[1] else range(len(f)):
        row = f[i]
        if not (np.all(front <= row, axis=1) & np.any(front < row, axis=1)).any():
            mask[i] = True
            front = np.vstack([front, row])
    return mask


def _csv_fields(devices: Sequence[str]) -> list[str]:
    """Columns of ``pareto.csv`` (the same for an empty front)."""
    per_device = [f"{k}[{d}]" for d in devices for k in ("latency_ms", "latency_std_ms")]
    return [
        "arch", "accuracy", "objective", *per_device, "measured_on", "params", "macs", "feasible",
        "trial", "p_front",
    ]  # fmt: skip


def _flatten(entry: dict[str, Any], devices: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "arch": entry["arch"], "accuracy": entry["accuracy"], "objective": entry.get("objective"),
    }  # fmt: skip
    for dev in devices:
        row[f"latency_ms[{dev}]"] = entry["latency_ms"][dev]
        row[f"latency_std_ms[{dev}]"] = entry["latency_std_ms"][dev]
    row["measured_on"] = ";".join(entry.get("measured_on", ()))
    row.update(
        {k: entry.get(k) for k in ("params", "macs", "feasible", "trial", "p_front")},
    )
    return row


def _latency_label(result: SearchResult, dev: str) -> str:
    """``measured``, ``predicted`` or ``measured or predicted`` latency on ``dev``: what the
    plotted points of that device are."""
    measured = [dev in t.get("measured_on", ()) for t in result.trials]
    kind = (
        "measured" if measured and all(measured)
        else "measured or predicted" if any(measured) else "predicted"
    )  # fmt: skip
    return f"{kind} latency on {dev} (ms)"


def _plot(result: SearchResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = _figure(result)
    fig.savefig(path)
    plt.close(fig)


def _figure(result: SearchResult) -> Figure:
    """One panel per device: accuracy against that device's latency, every trial in grey,
    the front in red (a step line only with one device: with more, the front is not
    monotone in any one latency), the contenders as open orange circles, the device's budget
    as a dashed line."""
    import matplotlib

    from nas.search._confidence import CONTENDER_P

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.devices)
    fig, axes = plt.subplots(1, n, figsize=(6.4 if n == 1 else 4.6 * n, 4.8), dpi=110,
                             squeeze=False, sharey=True)  # fmt: skip
    for dev, ax in zip(result.devices, axes[0], strict=True):
        pts = np.array([[t["latency_ms"][dev], t["accuracy"]] for t in result.trials])
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=8, c="0.7", label=f"all trials ({len(pts)})")
        front = sorted(result.front, key=lambda e: e["latency_ms"][dev])
        if front:
            fx = [e["latency_ms"][dev] for e in front]
            fy = [e["accuracy"] for e in front]
            if n == 1:
                ax.step(fx, fy, where="post", c="C3", lw=1)
            ax.scatter(fx, fy, s=24, c="C3", label=f"Pareto front ({len(front)})", zorder=3)
        if result.contenders:
            cx = [e["latency_ms"][dev] for e in result.contenders]
            cy = [e["accuracy"] for e in result.contenders]
            label = f"contenders, p_front >= {CONTENDER_P:g} ({len(cx)})"
            ax.scatter(cx, cy, s=30, facecolors="none", edgecolors="C1", label=label, zorder=2)
        budget = result.budget_ms.get(dev)
        if budget is not None:
            z = result.budget_quantile_z
            what = f" (upper quantile, +{z:g} std)" if z else ""
            ax.axvline(budget, ls="--", c="k", lw=0.8, label=f"budget {budget:g} ms{what}")
        label = _latency_label(result, dev)
        if n > 1 and len(label) > 40:  # side-by-side panels: a long name would overlap
            label = label.replace(" on ", "\non ", 1)
        ax.set_xlabel(label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=8)
    axes[0][0].set_ylabel(f"accuracy ({result.accuracy})")
    fig.suptitle(f"{result.space}: {result.study_name}")
    fig.tight_layout()
    return fig


_OUTPUTS = {
    "json": "pareto.json",
    "csv": "pareto.csv",
    "png": "pareto.png",
    "history": "history.json",
    "contenders": "contenders.json",
    "to_measure": "to_measure.txt",
}


def check_output_dir(
    out_dir: str | os.PathLike[str], *, study: str | None = None
) -> dict[str, Path]:
    """The output paths of a search writing to ``out_dir``, checked before it runs: the
    folder must be (or be creatable as) a folder, and no output path may be a folder. With
    ``study``, the folder must not hold another study's results (``history.json`` names the
    study): the search would overwrite them.

    Raises:
        SearchError: naming the first path in the way.
        StudyMismatchError: naming both studies, if the folder holds another study's results.
    """
    from nas.search._errors import SearchError, StudyMismatchError

    out = Path(out_dir)
    for parent in (out, *out.parents):
        if parent.exists():
            if not parent.is_dir():
                raise SearchError(f"output folder {out} cannot be created: {parent} is a file")
            break
    paths = {kind: out / name for kind, name in _OUTPUTS.items()}
    for path in paths.values():
        if path.exists() and not path.is_file():
            raise SearchError(f"output {path} exists and is not a file")
    held = _study_of(paths["history"])
    if study is not None and held is not None and held != study:
        raise StudyMismatchError(
            f"output folder {out} holds the results of study {held!r}, and this search is "
            f"study {study!r} (another --study name, or other devices, space, accuracy "
            "objective or --choices); writing here would replace them: give another output "
            "folder (-o)"
        )
    if study is not None and held is None and paths["history"].exists():
        raise SearchError(
            f"output folder {out} holds a history.json that nas search did not write; writing "
            "here would replace it: give another output folder (-o)"
        )
    if study is not None:
        _check_writable(out)
    return paths


def _check_writable(out: Path) -> None:
    """Write a file in ``out``, or in the nearest folder above it that exists (where the
    search will create it), so that a folder the search cannot write to is found before the
    search, not after it (an RDB study writes nothing there until then); creates nothing."""
    from nas.search._errors import SearchError

    base = next((p for p in (out.absolute(), *out.absolute().parents) if p.exists()), None)
    if base is None:  # e.g. a relative path in a working folder deleted since
        raise SearchError(f"cannot write to output folder {out}: no folder above it exists")
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".nas-write-check."):
            pass
    except OSError as exc:
        raise SearchError(
            f"cannot write to output folder {out} ({base}: {exc.strerror or exc}); give "
            "another output folder (-o)"
        ) from None


def _study_of(history: Path) -> str | None:
    """The study a ``history.json`` names (None: no such file, or not one of ours)."""
    try:
        study = json.loads(history.read_text()).get("study")
    except (OSError, ValueError, AttributeError):
        return None
    return study if isinstance(study, str) else None


def write_outputs(result: SearchResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``pareto.json``, ``pareto.csv``, ``pareto.png``, ``history.json``,
    ``contenders.json`` (:attr:`SearchResult.contenders`) and ``to_measure.txt``
    (:func:`to_measure`, one per line, as ``nas measure --archs`` reads them).

    All six are rendered to temporary files first and then moved into place, so a failure
    while rendering (e.g. a full disk) leaves the previous outputs, not a mix.

    Args:
        result: A finished search.
        out_dir: Folder (created if missing).

    Returns:
        The written paths by kind.

    Raises:
        SearchError: when an output path is a folder (see :func:`check_output_dir`).
    """
    paths = check_output_dir(out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    # hidden temporaries that keep their suffix (matplotlib picks the format by it)
    temps = {k: p.with_name(f".{p.stem}.{os.getpid()}.tmp{p.suffix}") for k, p in paths.items()}
    _remove_stale_temporaries(paths)
    try:
        _render(result, temps)
        for kind, tmp in temps.items():
            os.replace(tmp, paths[kind])
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return paths


def _remove_stale_temporaries(paths: dict[str, Path]) -> None:
    """Remove the temporaries of :func:`write_outputs` left by a process killed while writing
    (``.pareto.<pid>.tmp.json``, ...), unless that process still runs on this machine."""
    for path in paths.values():
        for tmp in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
            pid = tmp.name[len(path.stem) + 2 : -len(f".tmp{path.suffix}")]
            if pid.isdigit() and not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (this one included; another user's
    counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but is another user's
        return True
    return True


def _render(result: SearchResult, paths: dict[str, Path]) -> None:
    paths["json"].write_text(json.dumps(result.front, indent=2) + "\n")
    rows = [_flatten(e, result.devices) for e in result.front]
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_csv_fields(result.devices))
        writer.writeheader()
        writer.writerows(rows)
    history = {
        "study": result.study_name,
        "hypervolume_convention": result.hypervolume_convention,
        "generations": result.history,
    }
    paths["history"].write_text(json.dumps(history, indent=2) + "\n")
    paths["contenders"].write_text(json.dumps(result.contenders, indent=2) + "\n")
    paths["to_measure"].write_text("".join(f"{a}\n" for a in to_measure(result)))
    _plot(result, paths["png"])


def to_measure(result: SearchResult) -> list[str]:
    """The front's architectures and then the contenders, each once, leaving out those
    measured on every device of the search: what to measure before trusting the front."""
    rows = [*result.front, *result.contenders]
    pending = [e["arch"] for e in rows if set(result.devices) - set(e.get("measured_on", ()))]
    return list(dict.fromkeys(pending))


def wrap_arch(arch: str, width: int = 40) -> str:
    """``arch`` on lines of at most ``width`` characters, broken only after its separators
    (``-``, ``+``), so that joining the lines gives the string back (a part longer than
    ``width`` stays whole)."""
    lines: list[str] = []
    for part in re.split(r"(?<=[-+])", arch):
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines)


def front_table(result: SearchResult) -> Table:
    """A rich table of the Pareto front, sorted by latency on the first device; architecture
    strings are wrapped after their separators (:func:`wrap_arch`)."""
    from rich.table import Table

    table = Table(
        title=f"Pareto front: {result.space}, {len(result.front)} "
        + ("architecture" if len(result.front) == 1 else "architectures"),
        caption="arch lines join without spaces; pareto.csv and --json give each on one line",
    )
    archs = [wrap_arch(e["arch"]) for e in result.front]
    table.add_column("#", justify="right")
    table.add_column("arch", overflow="fold")
    table.add_column(f"accuracy ({result.accuracy})", justify="right")
    for dev in result.devices:
        table.add_column(f"{dev} ms (±std)", justify="right")
    table.add_column("params", justify="right")
    table.add_column("MMACs", justify="right")
    sure = any(e.get("p_front") is not None for e in result.front)
    if sure:
        table.add_column("P(front)", justify="right")
    for i, (e, arch) in enumerate(zip(result.front, archs, strict=True), 1):
        lat = [
            f"{e['latency_ms'][d]:.3f} measured"
            if d in e.get("measured_on", ())
            else f"{e['latency_ms'][d]:.3f} ±{e['latency_std_ms'][d]:.3f}"
            for d in result.devices
        ]
        params = "" if e.get("params") is None else f"{e['params']:,}"
        macs = "" if e.get("macs") is None else f"{e['macs'] / 1e6:.1f}"
        extra = [f"{e['p_front']:.2f}" if e.get("p_front") is not None else ""] if sure else []
        table.add_row(str(i), arch, f"{e['accuracy']:.4g}", *lat, params, macs, *extra)
    return table
