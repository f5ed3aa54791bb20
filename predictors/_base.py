"""The latency-predictor contract, the predictor registry and versioned persistence.

The contract follows the scikit-learn estimator API (``__init__`` stores hyper-parameters only,
learned state lives in trailing-underscore attributes) with one meta-learning twist:
:meth:`LatencyPredictor.fit` meta-trains on *source* devices, and
:meth:`LatencyPredictor.adapt` returns a *new* predictor adapted to one target device from a
handful of measurements, leaving the meta-trained model untouched so that a service can share it.
"""

from __future__ import annotations

import copy
import io
import numbers
import pickle
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from predictors._errors import NotEnoughDataError, NotFittedError, PredictorError

if TYPE_CHECKING:
    from predictors.zeroshot import DeviceModel
    from search_spaces import Workload

__all__ = [
    "FORMAT_VERSION",
    "DeviceTask",
    "LatencyPredictor",
    "arch_list",
    "check_bool",
    "check_int",
    "check_number",
    "check_seed",
    "get_predictor",
    "list_predictors",
    "load_predictor",
    "register_predictor",
    "str_list",
]

#: Reference archs per space, whose latencies are HELP's hardware embedding.
N_REFERENCE = 10
#: Version stamp written into every saved predictor; a mismatch on load warns.
FORMAT_VERSION = "predictors-1"
#: Payload key of the predictor class's :attr:`LatencyPredictor.revision` at save time.
_REVISION_KEY = "revision"


@dataclass(frozen=True)
class DeviceTask:
    """Measurements of one device in one space, the unit of meta-training.

    Attributes:
        space: Search-space name.
        device: Device name.
        archs: Canonical architecture strings (the meta-training pool of this device).
        latency_ms: Latency of each arch in milliseconds (finite, > 0).
        reference_ms: Latencies of the space's hardware-embedding reference archs, in the
            space's fixed order (the HELP hardware embedding before scaling).
        workload: The input the latencies were measured under (None: the space's default).
    """

    space: str
    device: str
    archs: tuple[str, ...]
    latency_ms: np.ndarray
    reference_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    workload: Workload | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "archs", tuple(arch_list(self.archs)))
        lat = np.asarray(self.latency_ms, dtype=np.float64)
        if lat.ndim != 1 or lat.shape[0] != len(self.archs):
            raise ValueError("`latency_ms` must be a 1-D array with one value per arch.")
        if not np.all(np.isfinite(lat)) or np.any(lat <= 0):
            raise ValueError("`latency_ms` must be finite and greater than 0.")
        object.__setattr__(self, "latency_ms", lat)
        object.__setattr__(self, "reference_ms", np.asarray(self.reference_ms, dtype=np.float64))
        check_workload(self.workload)


def check_tasks(tasks: Sequence[DeviceTask]) -> str:
    """Validate meta-training tasks and return their common space name."""
    if not isinstance(tasks, Sequence) or len(tasks) < 1:
        raise ValueError("`tasks` must hold at least one device task.")
    spaces = {t.space for t in tasks}
    if len(spaces) != 1:
        raise ValueError(f"`tasks` must all belong to one space, got {sorted(spaces)}.")
    return spaces.pop()


def check_workload(workload: object) -> None:
    """``ValueError`` naming ``workload`` unless it is a ``Workload`` or None."""
    from search_spaces import Workload

    if workload is not None and not isinstance(workload, Workload):
        raise ValueError(
            f"`workload` must be a search_spaces.Workload or None, got {type(workload).__name__}."
        )


def str_list(
    values: Sequence[str], name: str, what: str = "architecture strings", item: str = "arch"
) -> list[str]:
    """``values`` as a list of strings.

    Args:
        values: The sequence to check.
        name: The argument's name, for the message.
        what: What the sequence holds, for the message.
        item: One element, for the message's ``[item]`` hint.

    Raises:
        ValueError: naming ``name`` when ``values`` is one string (iterating it would give
            one-character names).
    """
    if isinstance(values, str | bytes):
        raise ValueError(
            f"`{name}` must be a sequence of {what}, not one string (wrap it in a list: [{item}])."
        )
    return [str(v) for v in values]


def arch_list(archs: Sequence[str], name: str = "archs") -> list[str]:
    """``archs`` as a list of strings.

    Raises:
        ValueError: naming ``name`` when ``archs`` is one string (iterating it would give
            one-character "architectures").
    """
    return str_list(archs, name)


def check_int(name: str, value: object, minimum: int) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is an integer (not a bool) of at least
    ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer greater than or equal to {minimum}, got {value!r}."
        )


def check_number(name: str, value: object, minimum: float, *, strict: bool = False) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is a finite real number (not a bool) of
    at least ``minimum`` (``strict``: greater than ``minimum``)."""
    number = float(value) if isinstance(value, numbers.Real) else float("nan")
    ok = not isinstance(value, bool) and bool(np.isfinite(number))
    if not ok or (number <= minimum if strict else number < minimum):
        bound = "greater than" if strict else "greater than or equal to"
        raise ValueError(f"`{name}` must be a finite number {bound} {minimum}, got {value!r}.")


def check_bool(name: str, value: object) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is True or False (a Python or NumPy
    bool)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")


def check_seed(value: object) -> None:
    """``ValueError`` naming ``seed`` unless ``value`` is None or an integer >= 0."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0
    ):
        raise ValueError(
            f"`seed` must be None or an integer greater than or equal to 0, got {value!r}."
        )


def check_support(
    archs: Sequence[str], latencies_ms: Sequence[float] | np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Validate an adaptation set; returns (archs, latencies as float64)."""
    arch_list_ = arch_list(archs, "support_archs")
    lat = np.asarray(latencies_ms, dtype=np.float64).reshape(-1)
    if len(arch_list_) != lat.shape[0]:
        raise ValueError("`support_latencies_ms` must have one value per support arch.")
    if len(arch_list_) == 0:
        raise ValueError("`support_archs` must not be empty.")
    if not np.all(np.isfinite(lat)) or np.any(lat <= 0):
        raise ValueError("`support_latencies_ms` must be finite and greater than 0.")
    return arch_list_, lat


class LatencyPredictor(ABC):
    """Base class of every latency predictor (meta-learned or not).

    Subclasses implement :meth:`_fit`, :meth:`_adapt` and :meth:`_predict`. ``__init__`` only
    stores hyper-parameters under the same names (scikit-learn convention); :meth:`fit` checks
    them (:meth:`_check_params`) before any other work.
    """

    #: Registry name, set by :func:`register_predictor`.
    name: str = ""
    #: Fewest measurements :meth:`adapt` accepts (a ridge needs two points to fit at all).
    min_support: int = 1
    #: Bumped when meta-training learns something new, so stored artifacts of an older
    #: revision are retrained on first need instead of being reused. Saved with the predictor
    #: (:meth:`to_bytes`); :func:`load_predictor` refuses a payload of another revision.
    revision: int = 1
    #: The datasheet roofline given to :meth:`adapt` (None: none, or not adapted).
    datasheet_: DeviceModel | None = None
    #: Whether the last :meth:`adapt` used ``datasheet_`` as a prior: whether its predictions
    #: depend on it (predictors that have no use for it, cannot price it under the device's
    #: workload, or found other models fitting the measurements better leave it False).
    datasheet_used_: bool = False
    #: The workload most source devices were measured under (set by :meth:`fit`; None: the
    #: space's default). Meta-learned architecture features are computed under it.
    fit_workload_: Workload | None = None
    #: The target device's workload given to :meth:`adapt` (None: the space's default); its
    #: own features (MACs, operator counts) are computed under it.
    workload_: Workload | None = None

    # ------------------------------------------------------------------ contract
    def fit(self, tasks: Sequence[DeviceTask], *, progress: bool = False) -> LatencyPredictor:
        """Meta-train on source devices.

        Args:
            tasks: One :class:`DeviceTask` per source device, all in one space.
            progress: Show a rich progress bar.

        Returns:
            ``self``.

        Raises:
            ValueError: naming the first invalid hyper-parameter (checked before any other
                work), or when ``tasks`` is empty or spans several spaces.
        """
        self._check_params()
        self.space_ = check_tasks(tasks)
        self.fit_workload_ = Counter(t.workload for t in tasks).most_common(1)[0][0]
        self._fit(list(tasks), progress=progress)
        self.is_adapted_ = False
        return self

    def adapt(
        self,
        support_archs: Sequence[str],
        support_latencies_ms: Sequence[float] | np.ndarray,
        *,
        hw_embedding_ms: Sequence[float] | np.ndarray | None = None,
        datasheet: DeviceModel | None = None,
        workload: Workload | None = None,
    ) -> LatencyPredictor:
        """Return a new predictor adapted to one device; ``self`` is left untouched.

        Args:
            support_archs: Canonical arch strings measured on the device.
            support_latencies_ms: Their latencies in milliseconds.
            hw_embedding_ms: Latencies of the space's reference archs on the device (HELP's
                hardware embedding); required by hardware-aware predictors.
            datasheet: The device's datasheet roofline (its catalog entry, see
                :func:`predictors.zeroshot.device_model`), for predictors that use physics as
                a prior (help+); others ignore it.
            workload: The input the device was measured under (None: the space's default).
                Predictions are for that workload.

        Raises:
            NotFittedError: before :meth:`fit`.
            NotEnoughDataError: when ``support_archs`` holds fewer than :attr:`min_support`
                measurements.
        """
        self._check_fitted()
        check_workload(workload)
        archs, lat = check_support(support_archs, support_latencies_ms)
        emb = None
        if hw_embedding_ms is not None:
            emb = np.asarray(hw_embedding_ms, dtype=np.float64).reshape(-1)
            if emb.shape[0] != N_REFERENCE:
                raise ValueError(
                    f"`hw_embedding_ms` must hold the latencies of the space's {N_REFERENCE} "
                    f"reference archs, got {emb.shape[0]} values."
                )
            if not np.all(np.isfinite(emb)) or np.any(emb <= 0):
                raise ValueError("`hw_embedding_ms` must be finite and greater than 0.")
        if len(archs) < self.min_support:
            raise NotEnoughDataError(
                f"{self.name} needs at least {self.min_support} measurements of the device to "
                f"adapt, `support_archs` holds {len(archs)}"
            )
        adapted = copy.copy(self)
        adapted.datasheet_ = datasheet
        adapted.datasheet_used_ = False
        adapted.workload_ = workload
        adapted._adapt(archs, lat, emb)
        adapted.is_adapted_ = True
        return adapted

    def predict(self, archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Predict latency (mean and standard deviation, milliseconds) of ``archs``.

        Raises:
            NotFittedError: before :meth:`fit` / :meth:`adapt`.
        """
        self._check_fitted()
        if not getattr(self, "is_adapted_", False):
            raise NotFittedError(f"{type(self).__name__} must be adapted to a device first.")
        archs_ = arch_list(archs)
        if not archs_:
            return np.zeros(0), np.zeros(0)
        mean, std = self._predict(archs_)
        floor = 1e-6
        return np.maximum(np.asarray(mean, np.float64), floor), np.asarray(std, np.float64)

    # ------------------------------------------------------------------ hooks
    def _check_params(self) -> None:
        """Check the hyper-parameters; ``ValueError`` naming the first invalid one.

        Called first thing by :meth:`fit`, so a bad value fails before meta-training starts
        (e.g. before help+ traces archs for its roofline prior). Predictors without
        hyper-parameters keep this no-op.
        """
        return

    @abstractmethod
    def _fit(self, tasks: list[DeviceTask], *, progress: bool) -> None: ...

    @abstractmethod
    def _adapt(self, archs: list[str], latency_ms: np.ndarray, emb: np.ndarray | None) -> None: ...

    @abstractmethod
    def _predict(self, archs: list[str]) -> tuple[np.ndarray, np.ndarray]: ...

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "space_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call `fit` first."
            )

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters (public attributes not ending in ``_``)."""
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self.get_params().items()))
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ persistence
    def to_bytes(self) -> bytes:
        """Serialize (hyper-parameters and learned state) with a version stamp and the
        predictor's :attr:`revision`."""
        self._check_fitted()
        buf = io.BytesIO()
        state = {k: v for k, v in self.__dict__.items() if not k.endswith("_cache")}
        payload = {
            "format": FORMAT_VERSION,
            "predictor": self.name,
            _REVISION_KEY: type(self).revision,
            "state": state,
        }
        pickle.dump(payload, buf)
        return buf.getvalue()


def load_predictor(payload: bytes, *, revision: int | None = None) -> LatencyPredictor:
    """Inverse of :meth:`LatencyPredictor.to_bytes` (trusted payloads only: it unpickles).

    Warns when the stored format version differs from :data:`FORMAT_VERSION`. Refuses a
    predictor saved by another :attr:`~LatencyPredictor.revision` of its class than the one
    installed: what it learned is not what this code would learn, so it must be meta-trained
    again. A payload saved before predictors recorded their revision loads only when its class
    is still at revision 1 (nothing it learns has changed since), unless the caller knows the
    revision it was saved by and passes it as ``revision`` (the service does: its artifact
    versions carry the revision).

    Args:
        payload: Bytes from :meth:`LatencyPredictor.to_bytes`.
        revision: The revision the payload is known to have been saved by, for payloads that
            do not record one (ignored for those that do).

    Raises:
        PredictorError: when the payload is not a saved predictor, names an unknown predictor,
            or was saved by another revision of the predictor (the message says to retrain).
    """
    try:
        data = pickle.loads(payload)  # noqa: S301 - artifacts come from our own database
        name, state, fmt = data["predictor"], data["state"], data["format"]
        saved = data.get(_REVISION_KEY)
    except Exception as exc:  # noqa: BLE001
        raise PredictorError(f"not a saved predictor payload: {exc}") from exc
    if fmt != FORMAT_VERSION:
        warnings.warn(
            f"predictor saved with format {fmt!r}, loading with {FORMAT_VERSION!r}",
            UserWarning,
            stacklevel=2,
        )
    cls = _REGISTRY.get(name)
    if cls is None:
        raise PredictorError(f"unknown predictor {name!r} in payload")
    retrain = "meta-train it again (fit) and save the new one in its place"
    if saved is None and revision is None:  # saved before predictors recorded their revision
        if cls.revision != 1:  # a class still at revision 1 has learned the same all along
            raise PredictorError(
                f"predictor {name!r} was saved without its revision (before predictors "
                f"recorded it), so it may predate revision {cls.revision}: {retrain}"
            )
    else:
        saved = revision if saved is None else saved
        if isinstance(saved, bool) or not isinstance(saved, numbers.Integral):
            raise PredictorError(f"not a saved predictor payload: revision {saved!r}")
        if saved != cls.revision:
            raise PredictorError(
                f"predictor {name!r} was saved by revision {saved}, but this is revision "
                f"{cls.revision}, which learns something else: {retrain}"
            )
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


_REGISTRY: dict[str, type[LatencyPredictor]] = {}
P = TypeVar("P", bound=type[LatencyPredictor])


def register_predictor(name: str) -> Callable[[P], P]:
    """Class decorator registering a predictor under ``name``."""
    if not name or name != name.lower():
        raise ValueError(f"`name` must be a non-empty lower-case string, got {name!r}.")

    def decorator(cls: P) -> P:
        if name in _REGISTRY:
            raise ValueError(f"predictor {name!r} is already registered.")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def get_predictor(name: str, **params: Any) -> LatencyPredictor:
    """A fresh, unfitted predictor registered under ``name``.

    Raises:
        PredictorError: naming the unknown predictor and the registered ones.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise PredictorError(
            f"unknown predictor {name!r} (known: {', '.join(sorted(_REGISTRY)) or 'none'})"
        )
    return _REGISTRY[key](**params)


def list_predictors() -> list[str]:
    """Registered predictor names, sorted."""
    return sorted(_REGISTRY)
