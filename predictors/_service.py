"""The predictor service over :mod:`hwdb`: a stored meta-trained model per space, adapted to a
device's measurements on request.

The meta-trained model of ``(space, predictor, source devices)`` is an hwdb artifact of kind
:data:`ARTIFACT_KIND`; the first request that needs it meta-trains it on every device of the
database except the target (training pools only, see :mod:`predictors._data`) and stores it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from predictors._base import (
    FORMAT_VERSION,
    LatencyPredictor,
    arch_list,
    get_predictor,
    load_predictor,
)
from predictors._data import device_workload, latency_metric, reference_archs
from predictors._errors import (
    NoSourceDevicesError,
    NotEnoughDataError,
    NotFittedError,
    NotTrainedError,
    PredictorError,
)
from predictors._progress import WaitLine, check_stop

if TYPE_CHECKING:
    from hwdb import HardwareDB
    from predictors.zeroshot import DeviceModel, RooflineLatencyModel
    from search_spaces import Workload

__all__ = [
    "ARTIFACT_KIND",
    "DEFAULT_PREDICTOR",
    "MIN_ADAPT_MEASUREMENTS",
    "AdaptedLatencyModel",
    "LatencyPrediction",
    "catalog_only",
    "datasheet_model",
    "device_datasheet",
    "get_adapted_predictor",
    "get_default_predictor",
    "latency_model",
    "predict_latency",
]

DEFAULT_PREDICTOR = "help+"
#: ``source`` of predictions adapted to measurements with the device's datasheet as a prior.
DATASHEET_PRIOR_SOURCE = "adapted (datasheet prior)"
ARTIFACT_KIND = "latency_predictor"
#: Distinct measured archs a device needs before a predictor is adapted to it. With fewer, a
#: catalog-backed device stays zero-shot, its datasheet roofline scaled to them.
MIN_ADAPT_MEASUREMENTS = 3
#: One meta-training at a time per process: threads that need one wait, then find the
#: artifact another thread stored instead of training it again (and memory stays bounded).
_TRAINING = threading.Lock()
#: Most threads waiting for :data:`_TRAINING` at once; one more gets :class:`TrainingBusy`
#: (a server's worker threads must not all end up waiting for meta-trainings).
MAX_TRAINING_WAITERS = 4
_TRAINING_LINE = WaitLine(MAX_TRAINING_WAITERS)


@dataclass(frozen=True)
class LatencyPrediction:
    """Predicted latencies of a batch of architectures on one device."""

    archs: list[str]
    mean_ms: np.ndarray
    std_ms: np.ndarray
    predictor: str
    version: str
    n_measurements: int
    source: str
    workload: Workload | None = None
    """The input the latencies are for (the device's measured one; None: the space's
    default)."""

    def __eq__(self, other: object) -> bool:
        """Field by field; the latency arrays element by element (NaN equals NaN)."""
        if not isinstance(other, LatencyPrediction):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not np.array_equal(a, b, equal_nan=True):
                    return False
            elif a != b:
                return False
        return True


class AdaptedLatencyModel:
    """A predictor adapted to one device; cheap to call repeatedly.

    Its predictions are for the workload the device was measured under (``workload``; None:
    the space's default).
    """

    def __init__(
        self,
        *,
        space: str,
        device: str,
        model: LatencyPredictor,
        version: str,
        n_measurements: int,
        source: str = "adapted",
    ) -> None:
        self.space = space
        self.device = device
        self.model = model
        self.version = version
        self.n_measurements = n_measurements
        self.source = source

    @property
    def workload(self) -> Workload | None:
        """The workload the predictions are for (the adapted model's; None: the default)."""
        return self.model.workload_

    def predict(self, archs: Sequence[str]) -> LatencyPrediction:
        """Predict canonical arch strings (or the space's reference names, such as
        ``mnasnet-a1``) in one batch."""
        names = resolve_reference_names(self.space, arch_list(archs))
        try:
            mean, std = self.model.predict(names)
        except (ValueError, PredictorError) as exc:
            explain_refused_archs(self.space, names, exc)
            raise
        return LatencyPrediction(
            names, mean, std, self.model.name, self.version, self.n_measurements, self.source,
            self.workload,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(space={self.space!r}, device={self.device!r}, "
            f"predictor={self.model.name!r}, n_measurements={self.n_measurements}, "
            f"source={self.source!r})"
        )


def resolve_reference_names(space: str, archs: list[str]) -> list[str]:
    """``archs`` with the space's reference names (``mnasnet-a1``) replaced by their
    canonical strings; a space that is not registered (HELP's ``ofa``) has none."""
    from search_spaces import UnknownSpaceError, get_space

    try:
        sp = get_space(space)
    except UnknownSpaceError:
        return archs
    refs = _reference_strings(sp)
    return [refs.get(a.strip().lower(), a) for a in archs] if refs else archs


def explain_refused_archs(space: str, archs: Sequence[str], exc: Exception) -> None:
    """After a prediction of ``archs`` failed with ``exc``: raise the error of
    ``SearchSpace.resolve`` for the first of ``archs`` the space refuses, whose message
    suggests a close reference name (``mnasnet-a1`` for ``mnasnet-a2``), chained to ``exc``.

    Returns (the caller re-raises ``exc``) when ``exc`` is no parse error, when the space is
    not registered, or when the space accepts every arch. Called only on failure, so
    predictions of canonical strings pay nothing.

    Raises:
        search_spaces.InvalidArchError: naming the first refused arch.
    """
    from search_spaces import InvalidArchError, UnknownSpaceError, get_space

    if isinstance(exc, NotFittedError) or not isinstance(exc, InvalidArchError | PredictorError):
        return
    try:
        sp = get_space(space)
    except UnknownSpaceError:
        return
    for arch in archs:
        try:
            sp.resolve(arch)
        except InvalidArchError as refused:
            raise refused from exc


_REFERENCE_STRINGS: dict[str, dict[str, str]] = {}


def _reference_strings(sp: Any) -> dict[str, str]:
    """Reference name -> canonical string of a space (computed once per space)."""
    if sp.name not in _REFERENCE_STRINGS:
        refs = {k.lower(): sp.to_string(v) for k, v in sp.reference_archs().items()}
        _REFERENCE_STRINGS[sp.name] = refs
    return _REFERENCE_STRINGS[sp.name]


def usable_sources(table: pd.DataFrame, space: str, exclude: str | None) -> list[str]:
    """Devices usable as meta-training sources (reference archs and >= 20 pool measurements)."""
    from predictors._data import device_splits

    splits = device_splits(table, space)
    return [d for d, split in splits.items() if d != exclude and not isinstance(split, Exception)]


def _version(name: str, sources: Sequence[str], params: dict[str, Any] | None = None) -> str:
    """Artifact version of ``name`` meta-trained on ``sources`` with non-default ``params``."""
    key = ",".join(sorted(sources))
    if params:  # e.g. fewer HELP episodes: another model, never the stored default
        key += "|" + ",".join(f"{k}={params[k]!r}" for k in sorted(params))
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    revision = get_predictor(name).revision
    tag = f"{name}-r{revision}" if revision > 1 else name  # revision 1: the original stamps
    return f"{tag}@{FORMAT_VERSION}:{digest}"


def get_default_predictor(
    db: HardwareDB,
    *,
    space: str,
    predictor: str | None = None,
    exclude_device: str | None = None,
    params: dict[str, Any] | None = None,
    progress: bool = False,
    table: pd.DataFrame | None = None,
    train: bool = True,
) -> tuple[LatencyPredictor, str]:
    """Load (or meta-train and store) the meta-trained predictor of ``space``.

    Returns:
        (predictor, artifact version).

    Raises:
        NoSourceDevicesError: when no source device has enough measurements.
        NotTrainedError: with ``train=False``, when no stored artifact fits.
    """
    name = predictor or DEFAULT_PREDICTOR
    table = db.latency_table(space, metric=latency_metric(space)) if table is None else table
    sources = usable_sources(table, space, exclude_device)
    if not sources:
        raise NoSourceDevicesError(
            f"no source device with enough measurements in {space!r} to meta-train on; "
            "import some with `nas hwdb import help DIR`"
        )
    model, version, _ = stored_or_trained(
        db, space=space, predictor=name, sources=sources, params=params, progress=progress,
        table=table, train=train,
    )  # fmt: skip
    return model, version


def stored_or_trained(
    db: HardwareDB,
    *,
    space: str,
    predictor: str,
    sources: Sequence[str],
    valid: Sequence[str] = (),
    params: dict[str, Any] | None = None,
    progress: bool = False,
    table: pd.DataFrame | None = None,
    train: bool = True,
) -> tuple[LatencyPredictor, str, bool]:
    """The stored artifact of ``predictor`` meta-trained on ``sources`` (+ ``valid`` for
    checkpoint selection) with ``params``, or meta-train and store it (one meta-training at
    a time per process; ``train=False``: never).

    Returns:
        (predictor, artifact version, whether it was meta-trained by this call).

    Raises:
        NotTrainedError: with ``train=False``, when the artifact is not stored.
    """
    from predictors._evaluate import meta_train_for

    version = _version(predictor, [*sources, *valid], params)
    stored = _stored(db, space, version, predictor)
    if stored is not None:
        return stored, version, False
    if not train:
        raise NotTrainedError(
            f"predictor {predictor!r} has not been meta-trained for these devices of {space!r} "
            "yet, and this request may not start a meta-training"
        )
    with _training_turn():
        stored = _stored(db, space, version, predictor)  # another thread may have trained it
        if stored is not None:
            return stored, version, False
        table = db.latency_table(space, metric=latency_metric(space)) if table is None else table
        model = meta_train_for(
            predictor, table, space, sources, valid, params=params, progress=progress
        )
        store_predictor(db, model, space=space, version=version, sources=[*sources, *valid])
    return model, version, True


@contextmanager
def _training_turn() -> Iterator[None]:
    """Hold :data:`_TRAINING`, waiting in :data:`_TRAINING_LINE` when another thread holds it
    (:class:`~predictors._progress.WaitLine`: bounded, and stopped by ``stop_when``)."""
    _TRAINING_LINE.acquire(_TRAINING, "a meta-training in this process")
    try:
        check_stop()
        yield
    finally:
        _TRAINING.release()


def _stored(db: HardwareDB, space: str, version: str, predictor: str) -> LatencyPredictor | None:
    """The stored predictor artifact ``version`` of ``space``, or None.

    ``version`` (from :func:`_version`) names the installed revision of ``predictor``, so an
    artifact stored before payloads recorded their revision is vouched for by its version.
    """
    from hwdb import NotFoundError

    try:
        art = db.load_artifact(kind=ARTIFACT_KIND, space=space, version=version)
    except NotFoundError:
        return None
    return load_predictor(art.payload, revision=get_predictor(predictor).revision)


def store_predictor(
    db: HardwareDB,
    model: LatencyPredictor,
    *,
    space: str,
    version: str,
    sources: Sequence[str],
) -> bool:
    """Store a meta-trained ``model`` as artifact ``version``; False when another process
    stored that version first (workers starting together on one database both train it:
    the same data and seed give the same model, so the first one stored is kept)."""
    from hwdb import DuplicateError

    try:
        db.save_artifact(
            kind=ARTIFACT_KIND,
            space=space,
            version=version,
            payload=model.to_bytes(),
            summary={"predictor": model.name, "sources": list(sources), "format": FORMAT_VERSION},
            metrics={},
        )
    except DuplicateError:
        return False
    return True


def device_datasheet(
    db: HardwareDB, device: str, *, catalog: str | None = None
) -> DeviceModel | None:
    """The datasheet roofline of ``device`` for few-shot adaptation, or None.

    A device registered with ``nas device add NAME --catalog ENTRY`` names its catalog entry;
    ``catalog`` overrides it. Devices without one (every imported benchmark device) get None:
    guessing an entry from a hardware name could pair a device with the wrong chip.

    Raises:
        hwdb.NotFoundError: when ``catalog`` is given and names no catalog entry.
    """
    from hwdb import NotFoundError
    from predictors.zeroshot import device_model, resolve_catalog_device

    try:
        dev = db.get_device(device)
    except NotFoundError:
        dev = None
    if not catalog and (dev is None or not dev.attributes.get("catalog")):
        return None
    entry, precision, _ = resolve_catalog_device(
        catalog or device, db, precision=dev.precision if dev is not None else None
    )
    return device_model(entry, precision=precision, runtime=dev.runtime if dev else "unknown")


def get_adapted_predictor(
    db: HardwareDB,
    *,
    space: str,
    device: str,
    predictor: str | None = None,
    workload: Workload | None = None,
    progress: bool = False,
    train: bool = True,
) -> AdaptedLatencyModel:
    """The default (or named) predictor of ``space`` adapted to ``device``'s measurements
    (meta-training it first when no stored one fits, unless ``train=False``).

    Every measured arch of the device adapts the model; the 10 reference archs also form the
    hardware embedding, and a catalog-backed device's datasheet roofline is a prior
    (:func:`device_datasheet`). Predictions are for the workload the device's measurements
    were taken under (``df.attrs["workload"]`` of :meth:`hwdb.HardwareDB.latency_table`), and
    the device's own features (MACs, operator counts) are computed under it. ``workload``, when
    given, must be that workload: a latency at other input shapes needs measurements at them.

    Raises:
        NotEnoughDataError: naming the command that measures the device.
        NotTrainedError: with ``train=False``, when the predictor is not stored yet.
        PredictorError: when ``workload`` differs from the measured one.
    """
    metric = latency_metric(space)
    # a count first: the whole latency table takes seconds to read on a large database
    # (a space without any data is left to the table's own error, which says so)
    n = db.count_measurements(space=space, device=device, metric=metric, distinct_archs=True)
    if n < MIN_ADAPT_MEASUREMENTS and space in db.list_spaces():
        _check_enough(n, space, device)
    table = db.latency_table(space, metric=metric)
    col = table[device].dropna() if device in table.columns else pd.Series(dtype=float)
    _check_enough(len(col), space, device)
    model, version = get_default_predictor(
        db, space=space, predictor=predictor, exclude_device=device, progress=progress,
        table=table, train=train,
    )  # fmt: skip
    emb = None
    try:
        refs = reference_archs(table, space)
        if all(r in col.index for r in refs):
            emb = col.loc[refs].to_numpy(float)
    except NotEnoughDataError:
        pass
    datasheet = device_datasheet(db, device)
    measured = device_workload(table, space, device)
    if workload is not None and workload != _resolved(space, measured):
        raise PredictorError(
            f"device {device!r} was measured in {space!r} under {_resolved(space, measured)}, "
            f"not {workload}; {_measure_fix(space, device)}"
        )
    adapted = model.adapt(
        list(col.index), col.to_numpy(float), hw_embedding_ms=emb, datasheet=datasheet,
        workload=measured,
    )  # fmt: skip
    return AdaptedLatencyModel(
        space=space, device=device, model=adapted, version=version, n_measurements=len(col),
        source=DATASHEET_PRIOR_SOURCE if adapted.datasheet_used_ else "adapted",
    )  # fmt: skip


def _measure_fix(space: str, device: str) -> str:
    return f"measure it with `nas measure --space {space} --device-name {device} --reference-set`"


def _check_enough(n: int, space: str, device: str) -> None:
    """NotEnoughDataError naming the fix unless ``device`` has enough measured archs."""
    if n == 0:
        raise NotEnoughDataError(
            f"device {device!r} has no measurements in {space!r}; {_measure_fix(space, device)} "
            "(or register it with `nas device add NAME --catalog ENTRY` for zero-shot "
            "predictions)"
        )
    if n < MIN_ADAPT_MEASUREMENTS:
        raise NotEnoughDataError(
            f"device {device!r} has {n} measurements in {space!r}, a predictor adapts to at "
            f"least {MIN_ADAPT_MEASUREMENTS}; {_measure_fix(space, device)}"
        )


def _resolved(space: str, workload: Workload | None) -> Workload:
    from search_spaces import get_space

    return workload or get_space(space).default_workload()


def catalog_only(db: HardwareDB, *, space: str, device: str) -> bool:
    """Whether ``device`` was registered with a catalog entry (``nas device add NAME --catalog
    ENTRY``) and has fewer than :data:`MIN_ADAPT_MEASUREMENTS` measured archs in ``space``: a
    device predicted zero-shot there (:func:`latency_model`)."""
    from hwdb import NotFoundError

    try:
        dev = db.get_device(device)
    except NotFoundError:
        return False
    if not dev.attributes.get("catalog"):
        return False
    n = db.count_measurements(
        space=space, device=device, metric=latency_metric(space), distinct_archs=True
    )
    return n < MIN_ADAPT_MEASUREMENTS


def _catalog_name(db: HardwareDB, name: str) -> bool:
    """Whether ``name`` is no device of ``db`` but names a datasheet catalog entry."""
    from hwdb import NotFoundError
    from hwdb.catalog import get_entry

    try:
        db.get_device(name)
    except NotFoundError:
        try:
            get_entry(name)
        except (NotFoundError, ValueError):
            return False
        return True
    return False


def latency_model(
    db: HardwareDB,
    *,
    space: str,
    device: str,
    predictor: str | None = None,
    train: bool = True,
) -> AdaptedLatencyModel | RooflineLatencyModel:
    """The latency model that prediction requests and searches use for ``device``.

    A device with measurements in ``space`` gets :func:`get_adapted_predictor`. A device
    registered with ``nas device add NAME --catalog ENTRY`` and not measured in ``space`` yet
    gets its datasheet roofline (``predictors.zeroshot.zero_shot_model``), whose predictions
    say ``source == "zero-shot (datasheet)"``, as ``nas search`` does for it. So does a name
    that is not a device in ``db`` but a catalog entry or alias (``jetson``, as
    ``nas search --device jetson`` resolves it). A catalog device with one or two measured
    archs (fewer than :data:`MIN_ADAPT_MEASUREMENTS`) stays zero-shot, its roofline scaled to
    them and priced at the workload they were measured under.

    ``train=False`` never meta-trains (:func:`get_adapted_predictor`).

    Raises:
        NotEnoughDataError: for a device with neither enough measurements nor a catalog entry.
        NotTrainedError: with ``train=False``, when the predictor is not stored yet.
    """
    if _catalog_name(db, device) or catalog_only(db, space=space, device=device):
        return datasheet_model(db, space=space, device=device)
    return get_adapted_predictor(db, space=space, device=device, predictor=predictor, train=train)


def datasheet_model(db: HardwareDB, *, space: str, device: str) -> RooflineLatencyModel:
    """The datasheet roofline (``predictors.zeroshot``) of a catalog entry or alias, or of a
    device registered with ``nas device add NAME --catalog ENTRY``.

    A registered device with one or two measured archs in ``space`` (fewer than
    :data:`MIN_ADAPT_MEASUREMENTS`) gets the roofline priced at the workload they were
    measured under and scaled to them (``RooflineLatencyModel.scaled_to``): its latencies are
    in the device's own milliseconds while the ranking stays the datasheet's.

    Raises:
        search_spaces.UnknownSpaceError: when ``space`` is not a registered space.
    """
    from predictors.zeroshot import RooflineLatencyModel, zero_shot_model

    model = zero_shot_model(db, space=space, device_or_entry=device)  # checks ``space``
    assert isinstance(model, RooflineLatencyModel)  # meta=False: the roofline itself
    metric = latency_metric(space)
    if _catalog_name(db, device) or not (
        0
        < db.count_measurements(space=space, device=device, metric=metric, distinct_archs=True)
        < MIN_ADAPT_MEASUREMENTS
    ):
        return model
    table = db.latency_table(space, devices=[device], metric=metric)
    col = table[device].dropna()
    model.workload = device_workload(table, space, device)
    return model.scaled_to(list(col.index), col.to_numpy(float))


def predict_latency(
    db: HardwareDB,
    *,
    space: str,
    device: str,
    archs: Sequence[str],
    predictor: str | None = None,
) -> LatencyPrediction:
    """Convenience: :func:`latency_model`, then predict ``archs``."""
    return latency_model(db, space=space, device=device, predictor=predictor).predict(archs)
