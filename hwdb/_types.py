"""Plain value types of the public :mod:`hwdb` API (no SQLAlchemy here)."""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "DEVICE_BATCH_MAX",
    "DEVICE_NAME_MAX",
    "DEVICE_THREADS_MAX",
    "FAMILIES",
    "LM_METRICS",
    "MAX_ACCURACY",
    "MAX_LATENCY_MS",
    "MIN_ACCURACY",
    "MIN_LATENCY_MS",
    "PRECISIONS",
    "PROVENANCES",
    "AccuracyIn",
    "Artifact",
    "Device",
    "DeviceSpec",
    "MeasurementIn",
    "accuracy_problem",
    "check_new_device",
    "default_database_url",
    "latency_problem",
    "new_name_problem",
]

FAMILIES = ("jetson", "gpu", "cpu", "phone", "npu", "fpga", "asic", "tpu", "dsp", "other")
PROVENANCES = ("measured", "imported", "simulated", "catalog")
#: Precisions the project measures and prices (``nas device add``, the zero-shot roofline: every
#: one has a figure in each catalog entry, :meth:`hwdb.catalog.CatalogEntry.peak_flops`); the one
#: list of them (``hwdb.catalog.PRECISIONS`` is this one). Hand-written CSV imports are checked
#: against them (the API stores any label).
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")
#: Metrics of a language-model space's measurements (``nas measure`` stores all three; the
#: space's latency metric is ``e2e_ms``); vision spaces store ``latency_ms``.
LM_METRICS = ("prefill_ms", "decode_ms_per_token", "e2e_ms")
#: Longest device name (the ``device.name`` column); runtime and precision columns below.
DEVICE_NAME_MAX = 200
#: The largest value of an INTEGER column (32-bit on PostgreSQL).
INT32_MAX = 2**31 - 1
#: The largest batch a device's latencies may refer to: the largest input batch a workload
#: takes (``search_spaces.Workload``), so every stored device can be predicted.
DEVICE_BATCH_MAX = 65_536
#: The largest thread count a device may state (what its column holds).
DEVICE_THREADS_MAX = INT32_MAX
_TEXT_MAX = {"name": DEVICE_NAME_MAX, "runtime": 64, "precision": 16}


def default_database_url() -> str:
    """The database URL used when none is given.

    Returns:
        ``NAS_DATABASE_URL`` when set, else ``sqlite:///<user data dir>/hwdb.sqlite`` where the
        user data dir is ``platformdirs.user_data_dir("nas")``.
    """
    env = os.environ.get("NAS_DATABASE_URL", "").strip()
    if env:
        return env
    import platformdirs

    return f"sqlite:///{Path(platformdirs.user_data_dir('nas')) / 'hwdb.sqlite'}"


#: Device fields that say what a device's latencies are of: an import or upload whose device
#: contradicts the stored device of that name in one of them is refused (the rest, such as
#: ``hardware`` or ``source``, only describe it).
DEVICE_SETTINGS = ("runtime", "precision", "batch_size", "threads")
#: Values that state nothing, so never contradict: an unknown runtime, no thread count.
_UNSTATED: dict[str, tuple[object, ...]] = {"runtime": ("unknown", ""), "threads": (None,)}


def is_unstated(setting: str, value: object) -> bool:
    """Whether ``value`` of ``setting`` (one of :data:`DEVICE_SETTINGS`) states nothing: an
    unknown runtime, no thread count."""
    return value in _UNSTATED.get(setting, ())


def settings_conflict(setting: str, given: object, stored: object) -> bool:
    """Whether ``given`` contradicts a stored device's ``stored`` value of ``setting`` (one of
    :data:`DEVICE_SETTINGS`); a value that states nothing contradicts nothing."""
    return not (given == stored or is_unstated(setting, given) or is_unstated(setting, stored))


#: Longest ``MeasurementIn.uploaded_by`` (the column's width).
UPLOADED_BY_MAX = 200


def _check_text(name: str, value: object, *, max_len: int | None = None) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{name}` must be a non-empty string, got {value!r}.")
    if max_len is not None and len(value) > max_len:
        raise ValueError(f"`{name}` must be at most {max_len} characters, got {len(value)}.")


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be a string, got {value!r}.")


def _real(name: str, value: object) -> float:
    """``value`` as a float: any real number but a bool (numpy's too, e.g. ``np.float32``)."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a number, got {value!r}.")
    try:
        return float(value)
    except OverflowError:  # an int past a float's range
        raise ValueError(f"`{name}` must be a number a float can hold, got a larger one.") from None


def clamped_float(value: Any) -> float:
    """``float(value)``, an int past a float's range as the largest float of its sign (so a
    range check reports it as too large, not as no number). ``TypeError``/``ValueError`` as
    ``float`` raises them."""
    try:
        return float(value)
    except OverflowError:  # an int past a float's range
        return sys.float_info.max if value > 0 else -sys.float_info.max


def _integer(
    name: str, value: object, low: int, *, high: int = INT32_MAX, optional: bool = False
) -> int | None:
    """``value`` as an int in ``[low, high]``: any integer but a bool (numpy's too). The
    default ``high`` is what an INTEGER column holds on PostgreSQL (SQLite's 64-bit one
    overflows later, with a traceback)."""
    if type(value) is int and low <= value <= high:
        return value
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        bound = f"None or an integer >= {low}" if optional else f"an integer >= {low}"
        raise ValueError(f"`{name}` must be {bound}, got {value!r}.")
    if int(value) > high:
        raise ValueError(f"`{name}` must be at most {high:,}, got {value!r}.")
    return int(value)


_STRICT_JSON = json.JSONEncoder(allow_nan=False)
_SORTED_JSON = json.JSONEncoder(allow_nan=False, sort_keys=True)


def json_ready(name: str, value: object) -> dict[str, Any]:
    """The dict ``value`` as JSON holds it: strings, bools, None, finite numbers, lists and
    dicts of them; numpy scalars become Python numbers (in a copy).

    Raises:
        ValueError: naming ``name`` and the key of the first value JSON cannot hold (NaN,
            infinity, an arbitrary object), or if ``value`` is not a dict.
    """
    if not isinstance(value, dict):
        raise ValueError(f"`{name}` must be a dict, got {type(value).__name__}.")
    if not value:
        return value
    try:
        _STRICT_JSON.encode(value)  # the common case, in C
    except (TypeError, ValueError):
        try:
            return _json_value(name, value)  # type: ignore[no-any-return]
        except RecursionError:  # a dict that holds itself
            raise ValueError(f"`{name}` must not contain itself.") from None
    return value


def _json_value(where: str, value: object) -> Any:
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # type: ignore[attr-defined]  # np.bool_ is no bool, np.int64 no int
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ValueError(f"`{where}` must be a finite number, got {value!r}.")
        return float(value)
    if isinstance(value, dict):
        return {k: _json_value(f"{where}[{k!r}]", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(f"{where}[{i}]", v) for i, v in enumerate(value)]
    raise ValueError(
        f"`{where}` must hold only JSON values (strings, numbers, lists, dicts), "
        f"got {type(value).__name__} {value!r}."
    )


#: Largest latency a measurement may hold (ms, about 28 hours): beyond it a number is a unit or
#: typing error, and squared in a least-squares fit it would overflow predictors' arithmetic.
MAX_LATENCY_MS = 1e8
#: Smallest positive latency statistic accepted (1 ns): no runtime answers faster, and values
#: near the float minimum (5e-324) broke predictors that divide or take logs of them.
MIN_LATENCY_MS = 1e-6


#: Range of an accuracy value (:class:`AccuracyIn`, ``AccuracySeries``): a percentage, as
#: NATS-Bench's ``test_accuracy`` is stored and the README's Pareto fronts read it (a fraction
#: 0-1 falls inside it too); beyond it a number is a unit or typing error.
MIN_ACCURACY = 0.0
MAX_ACCURACY = 100.0


def latency_problem(value: float, *, spread: bool = False) -> str | None:
    """Why ``value`` (milliseconds) cannot be stored as a latency statistic, in the words that
    follow "must be"; None when it can.

    The one latency rule of every write path (:class:`MeasurementIn`, the file importers and
    ``HardwareDB.bulk_import``'s series): finite, at least :data:`MIN_LATENCY_MS` and at most
    :data:`MAX_LATENCY_MS`; a spread (``spread``: a standard deviation) may also be 0 or below
    :data:`MIN_LATENCY_MS`.
    """
    if spread:
        if not math.isfinite(value) or value < 0:
            return "finite and >= 0"
    elif not math.isfinite(value) or value <= 0:
        return "finite and > 0"
    if value > MAX_LATENCY_MS:
        return f"at most {MAX_LATENCY_MS:g} ms"
    if not spread and value < MIN_LATENCY_MS:
        return f"at least {MIN_LATENCY_MS:g} ms (1 ns)"
    return None


def accuracy_problem(value: float) -> str | None:
    """Why ``value`` cannot be stored as an accuracy, in the words that follow "must be"; None
    when it can.

    The one accuracy rule of every write path (:class:`AccuracyIn`, the NATS-Bench and parquet
    importers, ``HardwareDB.bulk_import``'s series): finite, from :data:`MIN_ACCURACY` to
    :data:`MAX_ACCURACY` (percent).
    """
    if not math.isfinite(value):
        return "a finite number"
    if not MIN_ACCURACY <= value <= MAX_ACCURACY:
        return f"in [{MIN_ACCURACY:g}, {MAX_ACCURACY:g}] (percent)"
    return None


def _check_positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float that :func:`latency_problem` accepts (``allow_zero``: as a spread).

    Raises:
        ValueError: naming ``name``.
    """
    value = _real(name, value)
    problem = latency_problem(value, spread=allow_zero)
    if problem is not None:
        raise ValueError(f"`{name}` must be {problem}, got {value!r}.")
    return value


@functools.lru_cache(maxsize=256)
def _known_workload(items: str) -> None:
    """Raise ValueError for a workload (JSON text) ``search_spaces.Workload`` refuses."""
    from search_spaces import Workload

    try:
        Workload.from_dict(json.loads(items))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`workload` is not a workload: {exc}") from None


def _check_workload(workload: object) -> dict[str, Any]:
    """``workload`` if it is a dict ``search_spaces.Workload`` takes (checked once per
    distinct value; ``{}``, the space's default workload, needs no check)."""
    if type(workload) is dict and not workload:
        return workload
    try:
        text = _SORTED_JSON.encode(workload)
    except (TypeError, ValueError):
        workload = json_ready("workload", workload)  # raises, or converts numpy numbers
        text = _SORTED_JSON.encode(workload)
    if not isinstance(workload, dict):
        raise ValueError(f"`workload` must be a dict, got {type(workload).__name__}.")
    _known_workload(text)
    return workload


def _check_order(median: float, mean: float | None, low: float | None, p90: float | None) -> None:
    """Statistics of one set of timed runs: ``min <= median <= p90`` and ``min <= mean``
    (to a relative 1e-9, for floating-point sums of equal samples)."""
    tol = 1e-9 * median
    if low is not None and low > median + tol:
        raise ValueError(f"`min` ({low!r}) must not exceed `median` ({median!r}).")
    if p90 is not None and p90 < median - tol:
        raise ValueError(f"`p90` ({p90!r}) must not be below `median` ({median!r}).")
    if low is not None and mean is not None and mean < low - tol:
        raise ValueError(f"`mean` ({mean!r}) must not be below `min` ({low!r}).")


@dataclass(frozen=True)
class DeviceSpec:
    """A device as described by its owner (the unique key is ``name``).

    Args:
        name: Unique device name, e.g. ``"titan_rtx_256"``.
        family: One of :data:`FAMILIES`.
        hardware: Free-text hardware description.
        runtime: Inference runtime (torch / onnxruntime / tflite / tensorrt / ... / unknown).
        precision: Numeric precision, one of :data:`PRECISIONS` (fp32 / tf32 / fp16 / bf16 /
            int8) for a device a catalog entry prices (``attributes["catalog"]``).
        batch_size: Batch size the device's latencies refer to.
        threads: Number of CPU threads, if known.
        provenance: ``"measured"``, ``"imported"``, ``"simulated"`` or ``"catalog"``.
        source: Where the numbers come from.
        attributes: Free-form JSON-serialisable attributes.
    """

    name: str
    family: str = "cpu"
    hardware: str = ""
    runtime: str = "torch"
    precision: str = "fp32"
    batch_size: int = 1
    threads: int | None = None
    provenance: str = "measured"
    source: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_text("name", self.name)
        if not isinstance(self, Device):  # a stored device is read back as it was written
            check_new_device(self)
        if self.family not in FAMILIES:
            raise ValueError(f"`family` must be one of {', '.join(FAMILIES)}, got {self.family!r}.")
        if self.provenance not in PROVENANCES:
            raise ValueError(
                f"`provenance` must be one of {', '.join(PROVENANCES)}, got {self.provenance!r}."
            )
        if isinstance(self, Device):  # read back as written: one odd row must not hide the rest
            return
        for name in ("hardware", "source"):
            _check_str(name, getattr(self, name))
        _set(self, "batch_size", _integer("batch_size", self.batch_size, 1, high=DEVICE_BATCH_MAX))
        _set(self, "threads", _integer("threads", self.threads, 1, high=DEVICE_THREADS_MAX,
                                       optional=True))  # fmt: skip
        _set(self, "attributes", json_ready("attributes", self.attributes))


def _set(obj: object, name: str, value: object) -> None:
    """Set a field of a frozen dataclass in its ``__post_init__`` (a normalised value)."""
    object.__setattr__(obj, name, value)


def new_name_problem(name: str) -> str | None:
    """Why a device not stored yet may not be called ``name``, or None: the REST service
    names a device in one URL path segment, so a ``/`` would make it unreachable there.
    Devices stored before this rule keep their names (they can still be written to)."""
    if "/" in name:
        return f"`name` must not contain '/' (the REST service could not address it), got {name!r}."
    return None


def check_new_device(spec: DeviceSpec) -> None:
    """The rules a device must meet to be created or updated, whatever writes it (the
    library, an importer, the CLI, the API): ``name`` without surrounding whitespace (a new
    device's also without ``/``: :func:`new_name_problem`), and ``name``, ``runtime`` and
    ``precision`` within their column sizes and free of control characters (a tab or
    ``\\x01`` would make a name that cannot be typed back).

    Raises:
        ValueError: naming the argument.
    """
    if spec.name != spec.name.strip():  # "  pi4 " would be a second device beside "pi4"
        raise ValueError(f"`name` must not start or end with whitespace, got {spec.name!r}.")
    for name, limit in _TEXT_MAX.items():
        value = getattr(spec, name)
        if not isinstance(value, str):
            raise ValueError(f"`{name}` must be a string, got {type(value).__name__}.")
        if len(value) > limit:
            raise ValueError(
                f"`{name}` must be at most {limit} characters, got {len(value)} "
                f"({value[:20]!r}...)."
            )
        bad = next((c for c in value if ord(c) < 32 or 127 <= ord(c) < 160), None)
        if bad is not None:
            raise ValueError(f"`{name}` must not contain control characters ({bad!r}): {value!r}.")


@dataclass(frozen=True, kw_only=True)
class Device(DeviceSpec):
    """A device stored in the database.

    Attributes:
        registered_by: Name of the API key that registered it through the service (None:
            registered locally, e.g. ``nas device add``, or imported); through the service,
            only that key may change it (see `PATCH /v1/devices/{name}`).
    """

    id: int
    created_at: datetime
    registered_by: str | None = None


@dataclass(frozen=True)
class MeasurementIn:
    """One measurement to store; idempotent on (device, space, arch, metric, protocol).

    Args:
        device: Name of an existing device.
        space: Search-space name.
        arch: Canonical architecture string of ``space``.
        metric: ``latency_ms``, ``prefill_ms``, ``decode_ms_per_token``, ``e2e_ms``, ...
        median: Median in milliseconds, from 1 ns to :data:`MAX_LATENCY_MS`
            (:func:`latency_problem`; ``mean``, ``min`` and ``p90`` too).
        mean: Mean in milliseconds.
        std: Standard deviation in milliseconds (from 0 to :data:`MAX_LATENCY_MS`).
        min: Minimum in milliseconds (not above ``median`` or ``mean``).
        p90: 90th percentile in milliseconds (not below ``median``).
        n_runs: Number of timed runs (>= 1).
        warmup: Number of warm-up runs (>= 0).
        protocol: Measurement protocol tag (part of the idempotency key).
        environment: CPU model, threads, library versions, GPU, ...
        source: Where the number comes from.
        workload: ``Workload.to_dict()`` or ``{}``.
        benchmark_index: The architecture's index in its benchmark, if any.
        created_at: When the row was first stored (timezone-aware; default: when it is
            stored now). Exports carry it, so a moved database keeps which of a device's
            rows under two protocols is the newer (the one latency tables show).
        uploaded_by: Name of the API key whose REST upload stored the row (the service sets
            it from the request; a client cannot). ``None`` for rows written locally
            (``nas measure``) or imported without it. ``nas hwdb delete --uploaded-by`` and
            ``DELETE /v1/devices/{name}/measurements`` select rows by it.
    """

    device: str
    space: str
    arch: str
    metric: str = "latency_ms"
    median: float = math.nan
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p90: float | None = None
    n_runs: int = 1
    warmup: int = 0
    protocol: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    workload: dict[str, Any] = field(default_factory=dict)
    benchmark_index: int | None = None
    created_at: datetime | None = field(default=None, compare=False)
    uploaded_by: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("device", "space", "arch", "metric"):
            _check_text(name, getattr(self, name))
        _set(self, "median", _check_positive_float("median", self.median))
        for name in ("protocol", "source"):
            _check_str(name, getattr(self, name))
        _set(self, "environment", json_ready("environment", self.environment))
        _set(self, "workload", _check_workload(self.workload))
        if self.created_at is not None and (
            not isinstance(self.created_at, datetime) or self.created_at.tzinfo is None
        ):
            raise ValueError(
                f"`created_at` must be a timezone-aware datetime, got {self.created_at!r}."
            )
        if self.uploaded_by is not None:
            _check_text("uploaded_by", self.uploaded_by, max_len=UPLOADED_BY_MAX)
        for name in ("mean", "min", "p90"):
            if getattr(self, name) is not None:
                _set(self, name, _check_positive_float(name, getattr(self, name)))
        if self.std is not None:
            _set(self, "std", _check_positive_float("std", self.std, allow_zero=True))
        _check_order(self.median, self.mean, self.min, self.p90)
        _set(self, "n_runs", _integer("n_runs", self.n_runs, 1))
        _set(self, "warmup", _integer("warmup", self.warmup, 0))
        _set(self, "benchmark_index", _integer("benchmark_index", self.benchmark_index, 0,
                                               optional=True))  # fmt: skip


@dataclass(frozen=True)
class AccuracyIn:
    """One accuracy record; unique on (space, arch, dataset, metric).

    Args:
        space: Search-space name.
        arch: Canonical architecture string.
        dataset: Dataset or task, e.g. ``"cifar10"``.
        metric: e.g. ``"test_accuracy"``; whatever its name, a percentage that is better
            higher (``nas search --accuracy table`` maximises it): a loss or a perplexity is
            no accuracy.
        value: The accuracy in percent, from 0 to 100 (:func:`accuracy_problem`).
        source: Where the number comes from.
    """

    space: str
    arch: str
    dataset: str
    metric: str
    value: float
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("space", "arch", "dataset", "metric"):
            _check_text(name, getattr(self, name))
        value = _real("value", self.value)
        problem = accuracy_problem(value)
        if problem is not None:
            raise ValueError(f"`value` must be {problem}, got {value!r}.")
        _set(self, "value", value)
        _check_str("source", self.source)


@dataclass(frozen=True)
class Artifact:
    """A stored predictor artifact (weights plus training summary and metrics)."""

    id: int
    kind: str
    space: str
    version: str
    payload: bytes
    summary: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
