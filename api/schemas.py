"""Pydantic v2 request/response schemas (the template's XBase/XCreate/XPublic/XsPublic families).

Field limits mirror the hwdb columns (so PostgreSQL never sees an oversized value), numbers
must be finite, latencies positive; NUL characters are rejected in free text. Request bodies
are strict: a JSON string or boolean is not read as a number (`"budget_ms": true` is a 422).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from api.errors import MAX_ERRORS
from hwdb import DEVICE_BATCH_MAX
from hwdb.catalog import CatalogEntry
from nas.search import LOCAL_SEARCH_DEFAULT

__all__ = [
    "AdaptCreate",
    "AdaptPublic",
    "CatalogPublic",
    "DeletedPublic",
    "DeviceBase",
    "DeviceCreate",
    "DevicePublic",
    "DeviceUpdate",
    "DevicesPublic",
    "ErrorDetail",
    "ErrorPublic",
    "HealthPublic",
    "MeasurementBase",
    "MeasurementCreate",
    "MeasurementPublic",
    "MeasurementsCreate",
    "MeasurementsPublic",
    "ParetoPointPublic",
    "PredictCreate",
    "PredictionPublic",
    "PredictionsPublic",
    "SearchCreate",
    "SearchProgress",
    "SearchPublic",
    "SearchSummaryPublic",
    "SearchesPublic",
    "SpacePublic",
    "SpaceSummaryPublic",
    "SpacesPublic",
    "UploadPublic",
]

INT32 = 2**31 - 1
_NO_NUL = r"^[^\x00]*$"
_NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"  # what hwdb refuses in device names, runtimes, precisions

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+:-]*$"),
]
SpaceName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
Metric = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
ArchText = Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=_NO_NUL)]
PositiveMs = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=INT32)]


def _text(max_length: int) -> Any:
    return Annotated[str, StringConstraints(max_length=max_length, pattern=_NO_NUL)]


#: Deepest nesting of objects/arrays accepted in a free-form JSON field.
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 65_536


def _check_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{what} must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} must be valid Unicode (no lone UTF-16 surrogates such as \\ud800)"
        ) from exc


def _check_json_tree(value: dict[str, Any]) -> None:
    """Walk ``value`` without recursion: bounded depth, UTF-8-encodable strings, finite numbers.

    Raises:
        ValueError: naming the first problem found.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"must be nested at most {MAX_JSON_DEPTH} levels deep")
            if isinstance(node, dict):
                for key, item in node.items():
                    if not isinstance(key, str):
                        raise ValueError("object keys must be strings")
                    _check_text(key, "keys")
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _check_text(node, "strings")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("must be JSON without NaN or infinity")
        elif node is not None and not isinstance(node, bool | int | float):
            raise ValueError(f"must be plain JSON, got a {type(node).__name__}")


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON objects: at most 64 KiB, 32 levels deep, no NUL, surrogates or NaN."""
    _check_json_tree(value)
    if len(json.dumps(value, allow_nan=False)) > MAX_JSON_BYTES:
        raise ValueError("must be at most 64 KiB of JSON")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_small_json)]

#: Most items a request's list (``archs``, ``measurements``) may hold, whatever the server's
#: configured caps (``NAS_API_MAX_PREDICT_ARCHS``, ``NAS_API_MAX_BATCH``, checked by the
#: routes). The length is checked before any item is validated, so a long list of bad items
#: is one error, not one per item.
MAX_LIST_ITEMS = 100_000


def _too_many_errors(left_out: int, value: Any) -> InitErrorDetails:
    """The error that counts ``left_out`` errors not listed (:mod:`api.errors` adds them up)."""
    return InitErrorDetails(
        type=PydanticCustomError(
            "too_many_errors", "{left_out} more errors not listed", {"left_out": left_out}
        ),
        loc=(),
        input=value,
    )


def _first_errors(
    value: list[Any], handler: ValidatorFunctionWrapHandler, failed: ValidationError
) -> list[ErrorDetails]:
    """The first :data:`~api.errors.MAX_ERRORS` errors of ``value``'s items, found by
    validating ever longer prefixes (``failed``: the errors of the whole list), so that only
    a few errors are turned into Python objects."""
    k = 4 * MAX_ERRORS
    while k < len(value):
        try:
            handler(value[:k])
        except ValidationError as exc:
            if exc.error_count() >= MAX_ERRORS:
                return exc.errors(include_url=False)[:MAX_ERRORS]
        k *= 4
    return failed.errors(include_url=False)[:MAX_ERRORS]


def _bounded_list(what: str, setting: str) -> WrapValidator:
    """Validation of a request's list that stays cheap however the list is made.

    A list longer than :data:`MAX_LIST_ITEMS` is one ``batch_too_large`` error, raised before
    any item is validated (:mod:`api.errors` makes it a 413). A list whose items have more
    than :data:`~api.errors.MAX_ERRORS` errors reports the first ones and a
    ``too_many_errors`` error counting the rest (``ctx.left_out``), not one error per item.

    Args:
        what: What the items are, for the message (``archs``).
        setting: The :class:`api.config.Settings` field of the configured cap (which
            :mod:`api.errors` names in the message of its 413 when it is lower).

    Returns:
        The validator.
    """

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(value, list):
            return handler(value)
        if len(value) > MAX_LIST_ITEMS:
            raise PydanticCustomError(
                "batch_too_large",
                "at most {limit} {what} per request, got {got}",
                {"limit": MAX_LIST_ITEMS, "what": what, "got": len(value), "setting": setting},
            )
        try:
            return handler(value)
        except ValidationError as exc:
            total = exc.error_count()
            if total <= MAX_ERRORS:
                raise
            first = _first_errors(value, handler, exc)
        details = [
            InitErrorDetails(
                type=PydanticCustomError(str(e["type"]), e["msg"]), loc=e["loc"], input=e["input"]
            )
            for e in first
        ]
        details.append(_too_many_errors(total - len(first), len(value)))
        raise ValidationError.from_exception_data(what, details)

    return WrapValidator(validate)


# ----------------------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    """One problem: where (``loc``), what (``msg``) and its kind (``type``)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorPublic(BaseModel):
    """Body of every 4xx/5xx response."""

    detail: list[ErrorDetail]


class _RequestBody(BaseModel):
    """A request body (``extra="forbid"``) that refuses many unknown fields cheaply: past
    :data:`~api.errors.MAX_ERRORS` of them, the first ones and one ``too_many_errors`` error
    counting the rest, instead of one error per field."""

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        fields = cls.model_fields
        if not isinstance(data, dict) or len(data) <= len(fields) + MAX_ERRORS:
            return data
        unknown = [key for key in data if key not in fields]
        if len(unknown) <= MAX_ERRORS:
            return data
        details = [
            InitErrorDetails(type="extra_forbidden", loc=(key,), input=data[key])
            for key in unknown[:MAX_ERRORS]
        ]
        details.append(_too_many_errors(len(unknown) - MAX_ERRORS, len(data)))
        raise ValidationError.from_exception_data(cls.__name__, details)


# ----------------------------------------------------------------------------- devices
class DeviceBase(BaseModel):
    """Fields of a device (see :class:`hwdb.DeviceSpec`)."""

    family: Literal[
        "jetson", "gpu", "cpu", "phone", "npu", "fpga", "asic", "tpu", "dsp", "other"
    ] = "cpu"
    hardware: _text(2000) = ""  # type: ignore[valid-type]
    runtime: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_NO_CONTROL)] = (
        "torch"
    )
    precision: Annotated[
        str, StringConstraints(min_length=1, max_length=16, pattern=_NO_CONTROL)
    ] = "fp32"
    batch_size: Annotated[int, Field(ge=1, le=DEVICE_BATCH_MAX)] = 1
    threads: Annotated[int, Field(ge=1, le=INT32)] | None = None
    provenance: Literal["measured", "imported", "simulated", "catalog"] = "measured"
    source: _text(2000) = ""  # type: ignore[valid-type]
    attributes: JsonObject = Field(default_factory=dict)


def _known_catalog_entry(value: dict[str, Any]) -> dict[str, Any]:
    """``attributes.catalog`` (what ``nas device add --catalog`` sets, and what zero-shot
    prediction prices) must name a datasheet catalog entry; it is stored by its name. Checked
    on requests only, so a stored device with an entry that has since left the catalog can
    still be read."""
    if "catalog" not in value:
        return value
    from hwdb import NotFoundError
    from hwdb.catalog import get_entry

    entry = value["catalog"]
    try:
        name = get_entry(entry).name if isinstance(entry, str) else None
    except (NotFoundError, ValueError):
        name = None
    if name is None:
        raise ValueError(
            f"attributes.catalog {entry!r} is not a datasheet catalog entry "
            "(`GET /v1/catalog` lists them)"
        )
    return {**value, "catalog": name}


#: Device attributes of a request: a small JSON object whose ``catalog`` names an entry.
RequestAttributes = Annotated[JsonObject, AfterValidator(_known_catalog_entry)]


class DeviceCreate(DeviceBase, _RequestBody):
    """Body of ``POST /v1/devices``: insert, or update the device of that name (fields left
    out keep their stored values)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    attributes: RequestAttributes = Field(default_factory=dict)


class DeviceUpdate(DeviceBase, _RequestBody):
    """Body of ``PATCH /v1/devices/{name}``: the fields to change; those left out keep their
    stored values (the defaults shown apply only to ``POST`` of a new device)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    attributes: RequestAttributes = Field(default_factory=dict)


class DevicePublic(DeviceBase):
    """A stored device."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    # read back as stored: a value an older release let in must not fail every listing
    batch_size: int = 1
    threads: int | None = None
    id: int
    created_at: datetime
    registered_by: str | None = Field(
        default=None,
        description="The API key that registered the device through the service; only it "
        "may change the device's fields here (any key may fill in a setting the device "
        "leaves open: an unknown runtime, no thread count). Null for a device registered "
        "on the database (`nas device add`, an import naming no API key this database has), "
        "and for readers without an API key.",
    )


class DevicesPublic(BaseModel):
    """A list of devices."""

    data: list[DevicePublic]
    count: int


# ----------------------------------------------------------------------------- measurements
class MeasurementBase(BaseModel):
    """One summarised measurement (milliseconds; see :class:`hwdb.MeasurementIn`)."""

    space: SpaceName
    arch: ArchText
    metric: Metric = "latency_ms"
    median: PositiveMs
    mean: PositiveMs | None = None
    std: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    min: PositiveMs | None = None
    p90: PositiveMs | None = None
    n_runs: Annotated[int, Field(ge=1, le=INT32)] = 1
    warmup: Count = 0
    protocol: _text(200) = ""  # type: ignore[valid-type]
    environment: JsonObject = Field(default_factory=dict)
    source: _text(2000) = ""  # type: ignore[valid-type]
    workload: JsonObject = Field(default_factory=dict)
    benchmark_index: Count | None = None


class MeasurementCreate(MeasurementBase, _RequestBody):
    """One measurement of an upload. ``metric`` defaults to the space's latency metric
    (``e2e_ms`` for ``nemotron_flash``, else ``latency_ms``), the one its predictor reads."""

    model_config = ConfigDict(extra="forbid", strict=True)

    metric: Metric | None = None  # type: ignore[assignment]


class MeasurementsCreate(_RequestBody):
    """Body of ``POST /v1/devices/{name}/measurements``.

    ``client_key`` (or the ``Idempotency-Key`` header) makes retries safe: the same key with
    the same body returns the first response and writes nothing more.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    #: The cap is ``Settings.max_batch`` (``NAS_API_MAX_BATCH``), checked by the route (413);
    #: a list longer than ``MAX_LIST_ITEMS`` is refused (413) before its rows are validated.
    measurements: Annotated[
        list[MeasurementCreate],
        Field(
            min_length=1,
            description="At most `NAS_API_MAX_BATCH` (default 10000, never more than 100000) "
            "rows; more: 413 `batch_too_large`.",
        ),
        _bounded_list("measurements", "max_batch"),
    ]
    client_key: (
        Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
        | None
    ) = None
    replace: bool = False


class MeasurementPublic(MeasurementBase):
    """A stored measurement."""

    model_config = ConfigDict(from_attributes=True)

    arch: str
    space: str
    metric: str
    protocol: str
    source: str
    id: int
    device: str
    created_at: datetime
    uploaded_by: str | None = Field(
        default=None,
        description="Name of the API key that uploaded the row; null when it was written "
        "locally or imported, and for readers without a key.",
    )


class MeasurementsPublic(BaseModel):
    """A page of measurements; ``count`` is the total matching the filters."""

    data: list[MeasurementPublic]
    count: int
    limit: int
    offset: int


class DeletedPublic(BaseModel):
    """Outcome of ``DELETE /v1/devices/{name}/measurements``: rows deleted (with
    ``dry_run``: that would be)."""

    device: str
    deleted: int
    dry_run: bool


class UploadPublic(BaseModel):
    """Outcome of an upload: rows received, newly stored, and already present."""

    device: str
    received: int
    inserted: int = Field(description="Rows written (with `replace`: also rows overwritten).")
    existing: int = Field(
        description="Rows not written because a row of the same key is stored: without "
        "`replace` any such row; with it, rows another API key (or a local import) stored, "
        "which only `nas hwdb delete` on the database or that key can change."
    )
    client_key: str | None


# ----------------------------------------------------------------------------- predictions
class PredictCreate(_RequestBody):
    """Body of ``POST /v1/predict``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    space: SpaceName
    device: Name
    #: The cap is ``Settings.max_predict_archs`` (``NAS_API_MAX_PREDICT_ARCHS``), checked by
    #: the route (413); a list longer than ``MAX_LIST_ITEMS`` is refused (413) before its
    #: items are validated.
    archs: Annotated[
        list[ArchText],
        Field(
            min_length=1,
            description="At most `NAS_API_MAX_PREDICT_ARCHS` (default 10000, never more than "
            "100000) architectures; more: 413 `batch_too_large`.",
        ),
        _bounded_list("archs", "max_predict_archs"),
    ]
    predictor: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class PredictionPublic(BaseModel):
    """Predicted latency of one architecture (canonical string) with its uncertainty."""

    arch: str
    latency_ms: float
    std_ms: float


class PredictionsPublic(BaseModel):
    """Predictions, in request order, and what produced them."""

    space: str
    device: str
    predictor: str
    version: str
    n_measurements: int
    source: str
    #: The input shapes the latencies are for (the workload the device was measured under).
    workload: dict[str, int]
    data: list[PredictionPublic]
    count: int


class AdaptCreate(_RequestBody):
    """Body of ``POST /v1/devices/{name}/adapt``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    space: SpaceName
    predictor: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class AdaptPublic(BaseModel):
    """The adapted predictor now serving ``device``."""

    space: str
    device: str
    predictor: str
    version: str
    n_measurements: int
    source: str
    elapsed_ms: float


# ----------------------------------------------------------------------------- searches
_ONE_BUDGET: TypeAdapter[float] = TypeAdapter(PositiveMs)
_BUDGETS: TypeAdapter[dict[str, float]] = TypeAdapter(dict[Name, PositiveMs])


def _budget(value: Any) -> float | dict[str, float] | None:
    """Validate one branch of the budget union, picked by the input's JSON type, so that error
    locations name the field (and device) instead of pydantic's union-member labels."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _BUDGETS.validate_python(value, strict=True)
    return _ONE_BUDGET.validate_python(value, strict=True)


#: One latency budget (ms) for every device, or one per device name.
Budget = Annotated[
    PositiveMs | dict[Name, PositiveMs] | None,
    PlainValidator(_budget, json_schema_input_type=PositiveMs | dict[Name, PositiveMs] | None),
]


class SearchCreate(_RequestBody):
    """Body of ``POST /v1/searches`` (see :func:`nas.search.run_search`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    space: SpaceName
    devices: Annotated[list[Name], Field(min_length=1, max_length=8)]
    #: ``auto`` (as ``nas search``): ``table`` when the database holds accuracies of the space
    #: on ``dataset``, else SynFlow at a reduced resolution and batch.
    accuracy: Annotated[
        str,
        StringConstraints(max_length=64, pattern=r"^(auto|table|short-train|proxy(:[a-z_]+)?)$"),
    ] = "auto"
    dataset: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_NO_NUL)] = (
        "cifar10"
    )
    #: ``None``: as ``nas search`` (``nas.search.default_budget``: 1000 trials, population 50
    #: with a table; 200 and 20 otherwise). The upper limit is the server's setting, so the
    #: schema states it in words (a fixed ``maximum`` would contradict a configured one).
    trials: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Total trials (architectures evaluated); at most the server's limit, "
        "`NAS_API_MAX_SEARCH_TRIALS` (20000 by default): more is a 422 at "
        '`["body", "trials"]`. Left out: 1000 with an accuracy table, 200 otherwise (at most '
        "the limit).",
    )
    population: Annotated[int, Field(ge=2, le=1000)] | None = None
    local_search: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = LOCAL_SEARCH_DEFAULT
    budget_ms: Budget = None
    budget_z: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = 0.0
    #: Restrict decision variables to some of their choices (``search_spaces.restrict_space``),
    #: e.g. ``{"hidden": ["512", "768"]}``.
    choices: (
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_NO_NUL)],
            Annotated[list[Annotated[str, StringConstraints(max_length=100)]], Field(min_length=1)],
        ]
        | None
    ) = None
    predictor: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None

    @field_validator("devices")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a device")
        return value


class SearchProgress(BaseModel):
    """Finished trials out of the total asked for."""

    done: int
    total: int


class ParetoPointPublic(BaseModel):
    """One Pareto-optimal architecture."""

    arch: str
    accuracy: float
    latency_ms: dict[str, float]
    latency_std_ms: dict[str, float] = Field(default_factory=dict)
    measured_on: list[str] = Field(
        default_factory=list,
        description="Devices whose latency_ms is the measured median, not a prediction.",
    )
    feasible: bool = True
    trial: int | None = None
    params: int | None = None
    macs: int | None = None
    p_front: float | None = Field(
        default=None,
        description="Probability that the architecture is non-dominated among the evaluated "
        "ones, given the spread of its latency predictions (null when a device is priced "
        "zero-shot: that spread is mostly one scale shared by all architectures).",
    )
    objective: str | None = Field(
        default=None,
        description="The objective that scored `accuracy`, as in the CLI's pareto.json: "
        "`table:<dataset>` is the test accuracy the database holds; `proxy:<name>` (e.g. "
        "`proxy:synflow`, what `accuracy` `auto` runs without a table) is a zero-cost proxy "
        "score, not an accuracy (compare it within one search only); `short-train:<steps>` "
        "the score of a short training.",
    )


class SearchSummaryPublic(BaseModel):
    """A search job without its Pareto front (items of ``GET /v1/searches``)."""

    id: str
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    #: Name of the API key that submitted it (only that key can cancel it).
    owner: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: SearchProgress
    request: SearchCreate
    n_trials: int | None
    hypervolume: float | None
    error: str | None
    #: Points on the Pareto front (``None`` until the search completes).
    front_size: int | None = None
    #: What the search wants its user to know: that a device's latencies are zero-shot, from
    #: its datasheet (once its models are loaded), or, finished, that no architecture met the
    #: latency budget (so the front is empty).
    warnings: list[str] = Field(default_factory=list)


class SearchPublic(SearchSummaryPublic):
    """A search job: its state, progress and (when finished) its Pareto front."""

    front: list[ParetoPointPublic] | None
    #: Architectures off the front with ``p_front`` >= 0.1, most probable first: measure them
    #: (and the front's unmeasured ones) before trusting the front.
    contenders: list[ParetoPointPublic] | None = None


class SearchesPublic(BaseModel):
    """The most recent searches first; ``count`` is how many are remembered in all."""

    data: list[SearchSummaryPublic]
    count: int
    limit: int


# ----------------------------------------------------------------------------- spaces, health
class SpaceSummaryPublic(BaseModel):
    """A registered search space with its database counts."""

    name: str
    description: str
    n_architectures: int
    n_devices: int
    n_measurements: int


class CatalogPublic(BaseModel):
    """The datasheet catalog (:class:`hwdb.catalog.CatalogEntry` each): devices that can be
    predicted zero-shot."""

    data: list[CatalogEntry]
    count: int


class SpacesPublic(BaseModel):
    """The registered search spaces."""

    data: list[SpaceSummaryPublic]
    count: int


class SpacePublic(SpaceSummaryPublic):
    """One space: its parameter grid, reference and hardware-embedding architectures."""

    parameters: dict[str, list[int | float | str | bool | None]]
    reference_archs: dict[str, str]
    hardware_embedding_archs: list[str]
    default_workload: dict[str, Any]
    encoding_length: int


class HealthPublic(BaseModel):
    """Liveness and database reachability."""

    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unavailable"]
