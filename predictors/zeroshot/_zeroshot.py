"""Zero-shot latency prediction for a device known only by its catalog entry.

HELP (Lee et al., NeurIPS 2021, arXiv 2106.08630) identifies a device by the measured
latencies of 10 reference architectures (its *hardware embedding*). A device nobody has
measured has no such latencies, so this module *estimates* them with the datasheet roofline
(:mod:`predictors.zeroshot._roofline`) and feeds the estimates to the meta-learned predictor in
place of measurements. Nothing measured on the target device is used. The roofline alone is
the baseline (:class:`RooflineLatencyModel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from predictors._base import LatencyPredictor
from predictors._base import arch_list as arch_list_of
from predictors._errors import NotEnoughDataError, PredictorError
from predictors._service import (
    AdaptedLatencyModel,
    LatencyPrediction,
    explain_refused_archs,
    resolve_reference_names,
)
from predictors.zeroshot._classes import device_model
from predictors.zeroshot._roofline import DeviceModel, roofline_latency_ms
from predictors.zeroshot._tracecache import persistent_traces

if TYPE_CHECKING:
    from hwdb import HardwareDB
    from hwdb.catalog import CatalogEntry
    from search_spaces import Workload

__all__ = [
    "DATASHEET_LOG_SIGMA",
    "DATASHEET_SCALE",
    "DATASHEET_SHAPE_LOG_SIGMA",
    "ROOFLINE_SOURCE",
    "ZERO_SHOT_SOURCE",
    "RooflineLatencyModel",
    "ZeroShotLatencyModel",
    "resolve_catalog_device",
    "scaled_log_sigma",
    "zero_shot_model",
]

ZERO_SHOT_SOURCE = "zero-shot (datasheet)"
#: ``predictor`` field of roofline-only predictions (their ``source`` is zero-shot too).
ROOFLINE_SOURCE = "roofline"
#: Measured / roofline latency, one factor for every device. The class constants of
#: :mod:`predictors.zeroshot._classes` describe what libraries reach in benchmarks; real
#: runtimes at batch 1 are slower: over 19 measured device-space pairs with a catalog entry the
#: raw roofline was 1.1-5.0x fast (median 2.8x). The factor is their geometric mean
#: (``benchmarks/roofline_calibration.py``: 2.79); it changes no ranking.
DATASHEET_SCALE = 2.8
#: Log-space standard deviation of datasheet-only estimates: the error of the corrected
#: roofline on devices whose catalog entry the factor was not fitted on (leave one entry out:
#: 0.46; the interval ``exp(+-1.645 * 0.46)`` held 87 % of the measurements of an entry left
#: out of fitting both the factor and the spread).
DATASHEET_LOG_SIGMA = 0.46
#: Log-space spread of a device's measured latencies around its roofline once the device's
#: factor is divided out: the spread within each of the 19 pairs of
#: ``benchmarks/roofline_calibration.py``, root mean square over them (0.17), rounded up.
DATASHEET_SHAPE_LOG_SIGMA = 0.18


def scaled_log_sigma(n_measurements: int) -> float:
    """Log-space standard deviation of datasheet estimates scaled to ``n_measurements``
    measured archs of the device (:meth:`RooflineLatencyModel.scaled_to`; 0: the datasheet
    alone, :data:`DATASHEET_LOG_SIGMA`).

    Scaling removes the device's factor, the bulk of the datasheet's error; what is left is
    the archs' own spread around the roofline (:data:`DATASHEET_SHAPE_LOG_SIGMA`) and the
    error of a scale taken from ``n`` of them: ``sqrt(1 + 1/n)`` times that spread, as for
    independent errors (measured on 19 device-space pairs: 1.42 and 1.22 times it for one and
    two archs, ``benchmarks/roofline_calibration.py``), never more than the datasheet's.

    Raises:
        ValueError: If ``n_measurements`` is negative.
    """
    if n_measurements < 0:
        raise ValueError(f"`n_measurements` must be >= 0, got {n_measurements!r}.")
    if n_measurements == 0:
        return DATASHEET_LOG_SIGMA
    sigma = DATASHEET_SHAPE_LOG_SIGMA * float(np.sqrt(1.0 + 1.0 / n_measurements))
    return min(sigma, DATASHEET_LOG_SIGMA)


def datasheet_std(mean_ms: np.ndarray, n_measurements: int = 0) -> np.ndarray:
    """The standard deviation reported with datasheet estimates ``mean_ms`` (scaled to
    ``n_measurements`` measured archs): the log-normal one of :func:`scaled_log_sigma`
    (``mean * sqrt(exp(sigma**2) - 1)``)."""
    rel = float(np.sqrt(np.expm1(scaled_log_sigma(n_measurements) ** 2)))
    return np.asarray(mean_ms, dtype=float) * rel


def resolve_catalog_device(
    device_or_entry: str | CatalogEntry,
    db: HardwareDB | None = None,
    *,
    precision: str | None = None,
) -> tuple[CatalogEntry, str, str]:
    """``(entry, precision, label)`` of a catalog entry, entry name or catalog-backed device.

    A device registered with ``nas device add NAME --catalog ENTRY`` carries its entry in
    ``attributes["catalog"]`` and its precision in the device record.

    Raises:
        hwdb.NotFoundError: when neither a device nor a catalog entry matches.
    """
    from hwdb import NotFoundError
    from hwdb.catalog import CatalogEntry, get_entry

    if isinstance(device_or_entry, CatalogEntry):
        return device_or_entry, precision or "fp32", device_or_entry.name
    if not isinstance(device_or_entry, str) or not device_or_entry.strip():
        raise ValueError("`device_or_entry` must be a catalog entry or a non-empty name.")
    if db is not None:
        try:
            dev = db.get_device(device_or_entry)
        except NotFoundError:
            dev = None
        if dev is not None and dev.attributes.get("catalog"):
            entry = get_entry(str(dev.attributes["catalog"]))
            return entry, precision or dev.precision, dev.name
    entry = get_entry(device_or_entry)
    return entry, precision or "fp32", entry.name


def _runtime_of(db: HardwareDB, name: str) -> str:
    """The runtime recorded for device ``name`` (``unknown`` for a bare catalog entry)."""
    from hwdb import NotFoundError

    try:
        return str(db.get_device(name).runtime)
    except NotFoundError:
        return "unknown"


def _workload_of(db: HardwareDB, name: str, space: str) -> Workload | None:
    """The input a registered device ``name`` runs: its batch size over the space's default
    workload (None: that default, also for a bare catalog entry)."""
    from hwdb import NotFoundError
    from search_spaces import get_space

    try:
        batch = int(db.get_device(name).batch_size or 1)
    except NotFoundError:
        return None
    if batch == 1:
        return None
    return get_space(space).workload_with({"batch_size": batch})


class RooflineLatencyModel:
    """The datasheet roofline as a latency model (the zero-shot baseline).

    Args:
        space: Search-space name.
        device: Device (or catalog entry) name.
        model: The device's roofline parameters.
        workload: Input shapes to price (None: the space's default).
        scale: Factor on every latency (default :data:`DATASHEET_SCALE`, the measured
            correction; :meth:`scaled_to` fits it to a few measurements of the device).
        n_measurements: Measurements behind ``scale`` (0: the datasheet alone).
    """

    def __init__(
        self,
        *,
        space: str,
        device: str,
        model: DeviceModel,
        workload: Workload | None = None,
        scale: float = DATASHEET_SCALE,
        n_measurements: int = 0,
    ) -> None:
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"`scale` must be a positive finite number, got {scale!r}.")
        self.space = space
        self.device = device
        self.model = model
        self.workload = workload
        self.scale = float(scale)
        self.n_measurements = int(n_measurements)
        self.source = ZERO_SHOT_SOURCE

    def predict(self, archs: Sequence[str]) -> LatencyPrediction:
        """Roofline latency of canonical arch strings (or the space's reference names)."""
        arch_list = resolve_reference_names(self.space, arch_list_of(archs))
        try:
            mean = self.scale * roofline_latency_ms(
                self.space, arch_list, self.model, workload=self.workload
            )
        except (ValueError, PredictorError) as exc:
            explain_refused_archs(self.space, arch_list, exc)
            raise
        std = datasheet_std(mean, self.n_measurements)
        return LatencyPrediction(
            arch_list, mean, std, ROOFLINE_SOURCE, self.model.name, self.n_measurements,
            self.source, self.workload,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(space={self.space!r}, device={self.device!r}, "
            f"datasheet={self.model.name!r}, scale={self.scale:.4g}, "
            f"n_measurements={self.n_measurements})"
        )

    def scaled_to(self, archs: Sequence[str], latency_ms: Sequence[float]) -> RooflineLatencyModel:
        """This roofline times the geometric mean of ``latency_ms`` over its own estimates
        of ``archs``: a device with too few measurements to adapt a predictor to still gets
        latencies in its own milliseconds (the ranking stays the datasheet's).

        Raises:
            ValueError: naming ``latency_ms`` when it is empty, of another length than
                ``archs``, or not all positive and finite.
        """
        y = np.asarray(latency_ms, dtype=float).reshape(-1)
        if len(y) == 0 or len(y) != len(archs) or not np.all(np.isfinite(y) & (y > 0)):
            raise ValueError(
                "`latency_ms` must hold one positive finite latency per arch of `archs`."
            )
        est = self.scale * roofline_latency_ms(
            self.space, [str(a) for a in archs], self.model, workload=self.workload
        )
        factor = float(np.exp(np.mean(np.log(y) - np.log(est))))
        return RooflineLatencyModel(
            space=self.space, device=self.device, model=self.model, workload=self.workload,
            scale=self.scale * factor, n_measurements=len(y),
        )  # fmt: skip


class ZeroShotLatencyModel(AdaptedLatencyModel):
    """A meta-learned predictor adapted to roofline estimates of the reference archs.

    Backed by no measurement of the device; its uncertainty is never below the datasheet's.
    """

    def __init__(self, *, space: str, device: str, model: LatencyPredictor, version: str) -> None:
        super().__init__(
            space=space, device=device, model=model, version=version, n_measurements=0,
            source=ZERO_SHOT_SOURCE,
        )  # fmt: skip

    def predict(self, archs: Sequence[str]) -> LatencyPrediction:
        """Predict canonical arch strings in one batch (std widened to the datasheet's)."""
        pred = super().predict(archs)
        return replace(pred, std_ms=np.maximum(pred.std_ms, datasheet_std(pred.mean_ms)))


def reference_strings(space: str) -> list[str]:
    """Canonical strings of the space's 10 hardware-embedding archs."""
    from search_spaces import get_space

    sp = get_space(space)
    return [sp.to_string(a) for a in sp.hardware_embedding_archs()]


def adapt_zero_shot(
    model: LatencyPredictor, space: str, dm: DeviceModel, workload: Workload | None = None
) -> tuple[LatencyPredictor, np.ndarray]:
    """Adapt a meta-trained predictor to roofline estimates of the reference archs under
    ``workload`` (None: the space's default), corrected by :data:`DATASHEET_SCALE`."""
    refs = reference_strings(space)
    with persistent_traces():  # the same 10 archs in every process
        ref_ms = DATASHEET_SCALE * roofline_latency_ms(space, refs, dm, workload=workload)
    return model.adapt(refs, ref_ms, hw_embedding_ms=ref_ms, workload=workload), ref_ms


def zero_shot_model(
    db: HardwareDB,
    *,
    space: str,
    device_or_entry: str | CatalogEntry,
    predictor: str | None = None,
    precision: str | None = None,
    meta: bool = False,
) -> ZeroShotLatencyModel | RooflineLatencyModel:
    """A latency model of a device known only by its datasheet.

    By default the datasheet roofline itself (``predictor == "roofline"``): on NAS-Bench-201 it
    ranks the real Jetson Nano, Raspberry Pi 4 and Pixel 3 better than the meta-learned
    predictor adapted to roofline estimates (``benchmarks/zero_shot.py``). With ``meta=True``
    the space's meta-trained predictor (meta-trained on every *other* device in ``db``) is
    adapted to roofline estimates of the 10 reference archs; it falls back to the roofline when
    the database holds no source devices. Predictions carry ``source == "zero-shot
    (datasheet)"``. A device registered with a batch size (``nas device add NAME --catalog
    ENTRY --batch 8``) is priced at that batch.

    Args:
        db: The hardware database (source devices for meta-training).
        space: Search-space name.
        device_or_entry: Catalog entry, entry name/alias (``"jetson"``), or a device added
            with ``nas device add NAME --catalog ENTRY``.
        predictor: Registered predictor name (default: the service default).
        precision: Override the precision (default: the device's, else fp32).
        meta: Use the meta-learned predictor when possible.

    Raises:
        search_spaces.UnknownSpaceError: when ``space`` is not a registered space (the
            roofline traces the space's models).
    """
    from hwdb import NotFoundError
    from predictors._service import get_default_predictor
    from search_spaces import get_space

    get_space(space)
    entry, prec, label = resolve_catalog_device(device_or_entry, db, precision=precision)
    dm = device_model(entry, precision=prec, runtime=_runtime_of(db, label))
    workload = _workload_of(db, label, space)
    if meta:
        try:
            model, version = get_default_predictor(
                db, space=space, predictor=predictor, exclude_device=label
            )
            adapted, _ = adapt_zero_shot(model, space, dm, workload)
            return ZeroShotLatencyModel(space=space, device=label, model=adapted, version=version)
        except (NotEnoughDataError, NotFoundError):  # fresh install: no source devices
            pass
    return RooflineLatencyModel(space=space, device=label, model=dm, workload=workload)
