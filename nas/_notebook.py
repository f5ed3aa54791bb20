"""Data and plotting helpers behind the notebooks in ``notebooks/`` (tested, unlike cells).

The notebooks only call these functions and the packages' public APIs, so every computation a
figure shows is reachable by ``tests/nas/test_notebook_helpers.py``.

* Settings: :func:`shared_data_dir` (``NAS_SHARED_DATA``) and :func:`fast_mode`
  (``NAS_NOTEBOOK_FAST=1`` for CI-sized runs).
* Data: :func:`build_database` imports a chosen part of the public data with the
  :mod:`hwdb.importers` loaders.
* Analysis: :func:`rank_correlation`, :func:`few_shot_curves` (the HELP protocol of Lee et al.,
  NeurIPS 2021, arXiv 2106.08630, extended to 0 extra shots), :func:`adapted_predictions`,
  :func:`calibration_table`, :func:`true_front`, :func:`knee_point` (Das, "On characterizing
  the 'knee' of the Pareto curve", Struct. Optim. 1999: the front point farthest from the
  line joining the extremes), :func:`best_under_budget`.
* Plots: ``plot_*`` draw on a given matplotlib ``Axes`` and return it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from hwdb import HardwareDB
    from predictors import LatencyPredictor

__all__ = [
    "adapted_predictions",
    "best_under_budget",
    "build_database",
    "calibration_table",
    "fast_mode",
    "few_shot_curves",
    "knee_point",
    "plot_calibration",
    "plot_front",
    "plot_predicted_vs_measured",
    "plain_log_ticks",
    "plot_rank_correlation",
    "rank_correlation",
    "shared_data_dir",
    "true_front",
    "work_dir",
]

_REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The public data folder: ``NAS_SHARED_DATA``, else ``../shared/data`` beside the repo."""
    raw = os.environ.get("NAS_SHARED_DATA", "").strip()
    return Path(raw or _REPO_ROOT.parent / "shared" / "data").resolve()


def work_dir(prefix: str = "nas-notebook-") -> Path:
    """A new temporary folder for a notebook's database and files, removed when the kernel
    (the Python process) exits. Each notebook's database is 50-130 MB; folders made with a
    bare ``tempfile.mkdtemp`` were never removed, and a day of test runs left gigabytes."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def fast_mode() -> bool:
    """True when ``NAS_NOTEBOOK_FAST`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("NAS_NOTEBOOK_FAST", "").strip().lower() in ("1", "true", "yes")


def build_database(
    path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    help_spaces: Sequence[str] = ("nasbench201",),
    help_devices: Iterable[str] | None = None,
    latbench: Sequence[str] | bool = True,
    nats: bool = True,
) -> HardwareDB:
    """Create a SQLite hwdb at ``path`` and import part of the public data into it.

    Args:
        path: SQLite file to create (its folder must exist).
        data_dir: The shared data folder (default :func:`shared_data_dir`).
        help_spaces: HELP spaces to import (``()`` for none).
        help_devices: Keep only these HELP devices (``None``: all).
        latbench: ``True`` for every LatBench pickle, or the device stems to import.
        nats: Import the NATS-Bench accuracy table.

    Returns:
        The open database.

    Raises:
        ValueError: If ``help_devices`` selects no HELP device.
        hwdb.ImportDataError: If a data file is missing or malformed.
    """
    from hwdb import HardwareDB
    from hwdb.importers import load_help, load_latbench, load_nats_accuracy

    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if not root.is_dir():
        raise FileNotFoundError(
            f"no public data folder at {root}: set NAS_SHARED_DATA (or pass `data_dir`) to the "
            "folder holding help/, latbench/ and nb201-accuracy/ (README: where to get them)"
        )
    stems = {f.stem for f in (root / "latbench").glob("*.pickle")}
    unknown = sorted(set(latbench) - stems) if not isinstance(latbench, bool) else []
    if unknown:
        raise ValueError(
            f"`latbench` names no LatBench pickle in {root / 'latbench'}: {', '.join(unknown)}"
        )
    db = HardwareDB(f"sqlite:///{Path(path)}")
    if help_spaces:
        data = load_help(root / "help" / "data", spaces=tuple(help_spaces))
        if help_devices is not None:
            keep = set(help_devices)
            data.measurements = [m for m in data.measurements if m.device in keep]
            data.devices = [d for d in data.devices if d.name in keep]
            if not data.measurements:
                raise ValueError("`help_devices` selects no HELP device of `help_spaces`.")
        db.bulk_import(data)
    if latbench:
        files = sorted((root / "latbench").glob("*.pickle"))
        if not isinstance(latbench, bool):
            files = [f for f in files if f.stem in set(latbench)]
        db.bulk_import(load_latbench(files))
    if nats:
        db.bulk_import(load_nats_accuracy(root / "nb201-accuracy" / "nats_bench.csv"))
    return db


def rank_correlation(
    table: pd.DataFrame, *, method: str = "spearman", min_common: int = 10
) -> pd.DataFrame:
    """Pairwise rank correlation of the devices (columns) of a latency table.

    Each pair uses the architectures both devices measured; pairs with fewer than
    ``min_common`` shared architectures are NaN. Rows and columns are ordered so that devices
    that rank architectures alike sit next to each other (average-linkage clustering on
    ``1 - rho``).

    Args:
        table: Latency table (index arch, one column per device), as
            :meth:`hwdb.HardwareDB.latency_table` returns it.
        method: ``"spearman"`` or ``"kendall"``.
        min_common: Least shared architectures for a correlation.

    Raises:
        ValueError: On an unknown ``method``, ``min_common < 2`` or fewer than 2 devices.
    """
    if method not in ("spearman", "kendall"):
        raise ValueError(f"`method` must be 'spearman' or 'kendall', got {method!r}.")
    if min_common < 2:
        raise ValueError("`min_common` must be greater than or equal to 2.")
    if table.shape[1] < 2:
        raise ValueError("`table` must have at least 2 device columns.")
    corr = table.astype(float).corr(method=method, min_periods=min_common)
    filled = corr.fillna(0.0).to_numpy()
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    dist = np.clip(1.0 - filled, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    order = leaves_list(linkage(squareform((dist + dist.T) / 2.0), method="average"))
    names = [corr.columns[i] for i in order]
    return corr.loc[names, names]


def _support(split: Any, shots: int, seed: int) -> list[str]:
    from predictors import sample_support

    extra = sample_support(split, shots, seed) if shots > 0 else []
    return [*extra, *split.reference]


def adapted_predictions(
    model: LatencyPredictor,
    table: pd.DataFrame,
    space: str,
    device: str,
    *,
    shots: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Adapt ``model`` to ``device`` (HELP protocol) and predict its query pool.

    The support set is ``shots`` random training-pool archs plus the 10 reference archs (the
    hardware embedding); ``shots=0`` adapts on the reference archs alone.

    Returns:
        Columns ``arch``, ``measured_ms``, ``mean_ms``, ``std_ms``.

    Raises:
        ValueError: If ``shots < 0``.
        predictors.NotEnoughDataError: If the device lacks the needed measurements.
    """
    from predictors import device_split, device_workload

    if shots < 0:
        raise ValueError("`shots` must be greater than or equal to 0.")
    split = device_split(table, space, device)
    col = table[device]
    support = _support(split, shots, seed)
    emb = col.loc[split.reference].to_numpy(float)
    adapted = model.adapt(
        support, col.loc[support].to_numpy(float), hw_embedding_ms=emb,
        workload=device_workload(table, space, device),
    )  # fmt: skip
    mean, std = adapted.predict(split.query)
    return pd.DataFrame(
        {
            "arch": split.query,
            "measured_ms": col.loc[split.query].to_numpy(float),
            "mean_ms": np.asarray(mean, float),
            "std_ms": np.asarray(std, float),
        }
    )


def few_shot_curves(
    models: Mapping[str, LatencyPredictor],
    table: pd.DataFrame,
    space: str,
    device: str,
    *,
    shots: Sequence[int] = (0, 5, 10, 20),
    seeds: Sequence[int] = (0, 1, 2),
) -> pd.DataFrame:
    """Query-pool metrics of every model after adaptation with each number of shots.

    Returns:
        One row per (predictor, shots): ``spearman``, ``kendall``, ``mape``, ``within_10pct``
        (means over ``seeds``) and their standard deviations (``*_std``).

    Raises:
        ValueError: If ``models``, ``shots`` or ``seeds`` is empty.
    """
    from predictors import latency_metrics

    if not models or not shots or not seeds:
        raise ValueError("`models`, `shots` and `seeds` must be non-empty.")
    rows = []
    for name, model in models.items():
        for k in shots:
            per_seed = []
            for seed in seeds:
                pred = adapted_predictions(model, table, space, device, shots=k, seed=seed)
                per_seed.append(latency_metrics(pred["mean_ms"], pred["measured_ms"]))
            frame = pd.DataFrame(per_seed)
            row: dict[str, Any] = {"predictor": name, "shots": int(k)}
            row.update(frame.mean().to_dict())
            row.update({f"{c}_std": float(frame[c].std(ddof=0)) for c in frame.columns})
            rows.append(row)
    return pd.DataFrame(rows)


def calibration_table(
    mean_ms: Sequence[float] | np.ndarray,
    std_ms: Sequence[float] | np.ndarray,
    measured_ms: Sequence[float] | np.ndarray,
    *,
    levels: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
) -> pd.DataFrame:
    """Observed coverage of the central Gaussian intervals ``mean +- z * std``.

    A calibrated predictor covers a share ``p`` of the measurements with its ``p`` interval.

    Returns:
        Columns ``nominal`` and ``observed``.

    Raises:
        ValueError: On mismatched lengths or a level outside (0, 1).
    """
    from scipy.stats import norm

    mean, std = np.asarray(mean_ms, float), np.asarray(std_ms, float)
    true = np.asarray(measured_ms, float)
    if not (mean.shape == std.shape == true.shape) or mean.size == 0:
        raise ValueError("`mean_ms`, `std_ms` and `measured_ms` must be non-empty, same length.")
    if any(not 0.0 < p < 1.0 for p in levels):
        raise ValueError("`levels` must lie strictly between 0 and 1.")
    err = np.abs(true - mean)
    observed = [float(np.mean(err <= norm.ppf(0.5 + p / 2.0) * std)) for p in levels]
    return pd.DataFrame({"nominal": [float(p) for p in levels], "observed": observed})


def true_front(accuracy: pd.Series, latency_ms: pd.Series) -> pd.DataFrame:
    """Exact accuracy/latency Pareto front of the architectures present in both series.

    Returns:
        Columns ``arch``, ``accuracy``, ``latency_ms``, sorted by latency.
    """
    from nas.search import pareto_mask

    both = pd.concat({"accuracy": accuracy, "latency_ms": latency_ms}, axis=1).dropna()
    if both.empty:
        raise ValueError("`accuracy` and `latency_ms` share no architecture.")
    mask = pareto_mask(np.column_stack([-both["accuracy"], both["latency_ms"]]))
    front = both[mask].rename_axis("arch").reset_index()
    return front.sort_values("latency_ms", kind="stable").reset_index(drop=True)


def _front_frame(front: Sequence[Mapping[str, Any]], device: str) -> pd.DataFrame:
    if not front:
        raise ValueError("`front` must be non-empty.")
    rows = [
        {"arch": e["arch"], "accuracy": float(e["accuracy"]), "latency_ms": e["latency_ms"][device]}
        for e in front
    ]
    return pd.DataFrame(rows).sort_values("latency_ms", kind="stable").reset_index(drop=True)


def knee_point(front: Sequence[Mapping[str, Any]], *, device: str) -> dict[str, Any]:
    """The knee of an accuracy/latency front (Das, 1999).

    Both objectives are scaled to [0, 1] over the front; the knee is the point farthest from
    the line joining the fastest and the most accurate architecture.

    Args:
        front: ``SearchResult.front`` entries (``arch``, ``accuracy``, ``latency_ms`` by device).
        device: Device whose latency is the second objective.

    Returns:
        The chosen entry (``arch``, ``accuracy``, ``latency_ms`` on ``device``).
    """
    df = _front_frame(front, device)
    if len(df) <= 2:
        return dict(df.iloc[len(df) - 1])
    lat, acc = df["latency_ms"].to_numpy(float), df["accuracy"].to_numpy(float)
    x = (lat - lat.min()) / max(np.ptp(lat), 1e-12)
    y = (acc - acc.min()) / max(np.ptp(acc), 1e-12)
    a, b = np.array([x[0], y[0]]), np.array([x[-1], y[-1]])
    d = b - a
    dist = np.abs(d[0] * (y - a[1]) - d[1] * (x - a[0])) / max(float(np.hypot(*d)), 1e-12)
    return dict(df.iloc[int(np.argmax(dist))])


def best_under_budget(
    front: Sequence[Mapping[str, Any]], *, device: str, budget_ms: float
) -> dict[str, Any]:
    """The most accurate front entry whose latency on ``device`` is within ``budget_ms``.

    Raises:
        ValueError: If ``budget_ms`` is not positive or no entry meets it.
    """
    if not budget_ms > 0:
        raise ValueError(f"`budget_ms` must be greater than 0, got {budget_ms!r}.")
    df = _front_frame(front, device)
    ok = df[df["latency_ms"] <= budget_ms]
    if ok.empty:
        raise ValueError(f"no front entry meets `budget_ms`={budget_ms} on {device!r}.")
    return dict(ok.loc[ok["accuracy"].idxmax()])


# ---------------------------------------------------------------------------- plots
def plot_rank_correlation(corr: pd.DataFrame, *, ax: Axes, title: str = "") -> Axes:
    """Heat map of a device-by-device correlation matrix (from :func:`rank_correlation`)."""
    im = ax.imshow(corr.to_numpy(float), vmin=-1.0, vmax=1.0, cmap="RdBu_r")
    ax.set_xticks(range(len(corr.columns)), list(corr.columns), rotation=90, fontsize=7)
    ax.set_yticks(range(len(corr.index)), list(corr.index), fontsize=7)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="rank correlation")
    ax.set_title(title or "Cross-device rank correlation of latency")
    return ax


def plain_log_ticks(ax: Axes) -> None:
    """Label log axes at 1, 2 and 5 per decade in plain numbers (matplotlib labels every minor
    tick of a range under a decade as ``3x10^0``, and the labels overlap)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(FormatStrFormatter("%g"))


def plot_predicted_vs_measured(pred: pd.DataFrame, *, ax: Axes, title: str = "") -> Axes:
    """Log-log scatter of predicted vs measured latency with the ``+-10%`` band."""
    true, mean = pred["measured_ms"].to_numpy(float), pred["mean_ms"].to_numpy(float)
    lo, hi = float(min(true.min(), mean.min())), float(max(true.max(), mean.max()))
    grid = np.geomspace(lo, hi, 50)
    ax.fill_between(grid, grid * 0.9, grid * 1.1, color="tab:green", alpha=0.2, label="+-10%")
    ax.plot(grid, grid, color="k", lw=0.8)
    ax.scatter(true, mean, s=5, alpha=0.5)
    ax.set(xscale="log", yscale="log", xlabel="measured (ms)", ylabel="predicted (ms)")
    plain_log_ticks(ax)
    ax.set_title(title)
    ax.legend(loc="upper left")
    return ax


def plot_calibration(tables: Mapping[str, pd.DataFrame], *, ax: Axes) -> Axes:
    """Reliability diagram: observed vs nominal interval coverage, one line per predictor."""
    ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--", label="calibrated")
    for name, tab in tables.items():
        ax.plot(tab["nominal"], tab["observed"], marker="o", label=name)
    ax.set(xlabel="nominal coverage", ylabel="observed coverage", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Uncertainty calibration")
    ax.legend()
    return ax


def plot_front(
    result: Any,
    *,
    ax: Axes,
    device: str | None = None,
    reference: pd.DataFrame | None = None,
    budget_ms: float | None = None,
    zoom: bool = True,
) -> Axes:
    """All trials, the searched front and (optionally) the true front and the budget.

    With a ``reference`` front and ``zoom``, the accuracy axis spans the two fronts (with a
    margin) rather than every trial: on NAS-Bench-201 the 10 % accuracy of untrainable cells
    would otherwise squeeze both fronts into a sliver at the top.
    """
    dev = device or result.devices[0]
    trials = pd.DataFrame(
        [(t["accuracy"], t["latency_ms"][dev]) for t in result.trials if t.get("latency_ms")],
        columns=["accuracy", "latency_ms"],
    )
    found = _front_frame(result.front, dev)
    ax.scatter(
        trials["latency_ms"], trials["accuracy"], s=6, alpha=0.3, color="0.5", label="trials"
    )
    if reference is not None:
        ax.step(
            reference["latency_ms"],
            reference["accuracy"],
            where="post",
            color="k",
            lw=1.0,
            label="true front",
        )
    ax.plot(found["latency_ms"], found["accuracy"], "o-", color="tab:red", ms=4, label="found")
    if budget_ms is not None:
        ax.axvline(budget_ms, color="tab:blue", ls="--", lw=1.0, label=f"budget {budget_ms} ms")
    if reference is not None and zoom and len(found):
        acc = np.concatenate([found["accuracy"].to_numpy(float), reference["accuracy"]])
        lo, hi = float(acc.min()), float(acc.max())
        pad = max(hi - lo, 1.0)
        ax.set_ylim(lo - 0.15 * pad, hi + 0.08 * pad)
    what = "score" if str(result.accuracy).startswith("proxy:") else "accuracy"
    ax.set(xlabel=f"latency on {dev} (ms)", ylabel=f"{what} ({result.accuracy})")
    ax.legend()
    return ax
