"""Latency models for the search: the production adapted predictor, or a measured-data kNN.

``predictors.get_adapted_predictor`` (HELP, meta-learned) is the production model. When it
cannot be imported, :class:`MeasuredLatencyModel` predicts from the device's own measurements in
the DB: an exact lookup for measured architectures and an inverse-distance-weighted k-nearest-
neighbour estimate otherwise, with the neighbours' weighted spread as the uncertainty. The
distance is the Hamming distance between the canonical strings' token sequences (cheap for
every space, unlike ``SearchSpace.encode`` which profiles a model).

Devices nobody has measured (zero-shot matches of :mod:`nas.search._devices`) get
``predictors.zeroshot.zero_shot_model``: the datasheet roofline of their catalog entry
(Williams et al., CACM 2009), labelled ``"zero-shot (datasheet)"``.

Measured beats predicted: :class:`MeasuredFirstModel` (:func:`measured_first`) gives an
architecture measured on the device its measured median (uncertainty 0) and predicts the rest,
on every device (a zero-shot catalog device's one or two measured archs included).
A predictor is a smoothed fit: on the LatBench Jetson Nano with all 15,284 archs measured, the
adapted predictor (Spearman 0.992, 4 % mean error) scored a search front at 0.963 of the true
hypervolume where the measurements themselves give 0.987.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.search._errors import SearchError

if TYPE_CHECKING:
    from hwdb import HardwareDB
    from nas.search._types import LatencyModel
    from search_spaces import SearchSpace

__all__ = [
    "MeasuredFirstModel",
    "MeasuredLatencyModel",
    "MeasuredPrediction",
    "latency_model_name",
    "load_latency_models",
    "measured_first",
]

_SPLIT = re.compile(r"[|+~:_,\-\s]+")


@dataclass(frozen=True)
class MeasuredPrediction:
    """Prediction of :class:`MeasuredLatencyModel` (fields of ``predictors.LatencyPrediction``)."""

    archs: list[str]
    mean_ms: np.ndarray
    std_ms: np.ndarray
    predictor: str
    version: str
    n_measurements: int
    source: str


class MeasuredLatencyModel:
    """Latency of one device from its measured architectures (lookup + kNN).

    Args:
        space: The search space (for canonical strings and encodings).
        device: Device name (for messages).
        latencies: Measured median latency (ms) by canonical architecture string.
        k: Neighbours for unmeasured architectures.
    """

    def __init__(
        self, space: SearchSpace[Any], device: str, latencies: dict[str, float], *, k: int = 5
    ) -> None:
        if k < 1:
            raise ValueError("`k` must be greater than or equal to 1.")
        clean = {a: float(v) for a, v in latencies.items() if np.isfinite(v) and v > 0}
        if not clean:
            raise SearchError(
                f"device {device!r} has no measured latencies in space {space.name!r}"
            )
        self.space, self.device, self.k = space, device, min(k, len(clean))
        self._lookup = clean
        self._archs = list(clean)
        self._y = np.log(np.array([clean[a] for a in self._archs]))
        self._vocab: dict[str, int] = {}
        tokens = [self._tokens(a) for a in self._archs]
        self._width = max(len(t) for t in tokens)
        self._x = np.stack([self._codes(t) for t in tokens])

    @classmethod
    def from_db(
        cls, db: HardwareDB, *, space: str | SearchSpace[Any], device: str, k: int = 5
    ) -> MeasuredLatencyModel:
        """Build from the device's column of ``db.latency_table`` (the space's metric;
        ``space``: a space object or a registered name)."""
        if isinstance(space, str):
            from search_spaces import get_space

            space = get_space(space)
        table = db.latency_table(space.name, devices=[device], metric=space.latency_metric)
        col = table[device].dropna() if device in table.columns else table.iloc[:0, 0]
        return cls(space, device, {str(a): float(v) for a, v in col.items()}, k=k)

    @staticmethod
    def _tokens(arch: str) -> list[str]:
        return [t for t in _SPLIT.split(arch) if t]

    def _codes(self, tokens: list[str]) -> np.ndarray:
        codes = np.full(self._width, -1, dtype=np.int64)
        for i, tok in enumerate(tokens[: self._width]):
            codes[i] = self._vocab.setdefault(tok, len(self._vocab))
        return codes

    def _distance(self, arch: str) -> np.ndarray:
        tokens = self._tokens(arch)
        extra = max(len(tokens) - self._width, 0)
        dist: np.ndarray = (self._x != self._codes(tokens)).sum(axis=1).astype(float)
        return dist + extra

    def predict(self, archs: Sequence[str]) -> MeasuredPrediction:
        """Lookup measured archs, kNN (log-latency, inverse distance) for the rest."""
        mean = np.empty(len(archs))
        std = np.zeros(len(archs))
        for i, arch in enumerate(archs):
            if arch in self._lookup:
                mean[i] = self._lookup[arch]
                continue
            d = self._distance(arch)
            idx = np.argsort(d, kind="stable")[: self.k]
            w = 1.0 / (d[idx] + 1e-6)
            w /= w.sum()
            mu = float(w @ self._y[idx])
            sd = float(np.sqrt(w @ (self._y[idx] - mu) ** 2))
            mean[i] = np.exp(mu)
            std[i] = mean[i] * sd
        return MeasuredPrediction(
            list(archs), mean, std, "measured-knn", "1", len(self._lookup), "measured"
        )


class MeasuredFirstModel:
    """The device's measured median for each measured architecture, ``model`` for the rest.

    Args:
        model: The latency model of the device (e.g. the adapted predictor).
        measured: Measured median latency (ms) by canonical architecture string.
    """

    def __init__(self, model: LatencyModel, measured: Mapping[str, float]) -> None:
        self.model = model
        self.measured = {a: float(v) for a, v in measured.items() if np.isfinite(v) and v > 0}
        self.source = getattr(model, "source", "predicted")

    def predict(self, archs: Sequence[str]) -> Any:
        """``model``'s prediction with measured archs replaced by their medians (std 0)."""
        pred = self.model.predict(archs)
        hits = [i for i, a in enumerate(archs) if a in self.measured]
        if not hits:
            return pred
        mean = np.array(pred.mean_ms, dtype=float).reshape(-1)  # copies
        std = np.array(getattr(pred, "std_ms", np.zeros_like(mean)), dtype=float).reshape(-1)
        mean[hits] = [self.measured[archs[i]] for i in hits]
        std[hits] = 0.0
        return MeasuredPrediction(
            list(archs), mean, std, str(getattr(pred, "predictor", "")),
            str(getattr(pred, "version", "")), int(getattr(pred, "n_measurements", 0)),
            f"measured where measured, else {getattr(pred, 'source', 'predicted')}",
        )  # fmt: skip


def measured_first(
    db: HardwareDB, *, space: SearchSpace[Any], device: str, model: LatencyModel
) -> LatencyModel:
    """``model`` behind the device's measurements in ``space`` (:class:`MeasuredFirstModel`);
    ``model`` itself when the device has none (a zero-shot catalog device, a catalog entry
    that is no device of ``db``, or a space ``db`` holds no row of)."""
    from hwdb import NotFoundError

    try:
        table = db.latency_table(space.name, devices=[device], metric=space.latency_metric)
    except NotFoundError:  # no row of the space, or no such device: nothing measured
        return model
    if device not in table.columns:
        return model
    col = table[device].dropna()
    if col.empty:
        return model
    return MeasuredFirstModel(model, {str(a): float(v) for a, v in col.items()})


def load_latency_models(
    db: HardwareDB,
    *,
    space: SearchSpace[Any],
    devices: Sequence[str],
    predictor: str | None = None,
    zero_shot: Mapping[str, str] | None = None,
    get_model: Callable[..., LatencyModel] | None = None,
) -> tuple[dict[str, LatencyModel], str]:
    """The latency model of every device, and a note saying which kind was used.

    What ``nas search`` and the API's searches both search with. Uses
    ``predictors.get_adapted_predictor`` (adapted to each device's measurements) when the
    predictor package provides it, else :class:`MeasuredLatencyModel`. Devices in
    ``zero_shot`` (device name -> catalog entry) get their datasheet roofline instead
    (``predictors.datasheet_model``: scaled to their measurements if they have one or two).
    Every model stands behind the device's measurements (:func:`measured_first`): an
    architecture measured on the device gets its measured median, a zero-shot device's one or
    two measured architectures included.

    Args:
        db: The hardware database.
        space: The search space.
        devices: Device names, in objective order.
        predictor: Registered predictor name (default: the service default).
        zero_shot: Catalog entry of each device to predict zero-shot from its datasheet.
        get_model: Builds a device's model instead of the predictors package's functions,
            called as ``get_model(db, space=NAME, device=DEVICE, predictor=PREDICTOR)`` for
            every device, zero-shot ones included, and expected to answer as
            ``predictors.latency_model`` does (the API passes its model cache's getter,
            ``api._predictors.PredictorCache.get``).

    Raises:
        ValueError: If ``zero_shot`` names a device not in ``devices``.
    """
    zs = dict(zero_shot or {})
    extra = sorted(set(zs) - set(devices))
    if extra:
        raise ValueError(f"`zero_shot` names devices not in `devices`: {', '.join(extra)}.")
    measured = [d for d in devices if d not in zs]
    models: dict[str, LatencyModel] = {}
    notes: list[str] = []
    if measured:
        adapt = get_model or _adapted_predictor()
        if adapt is None:
            for d in measured:
                models[d] = MeasuredLatencyModel.from_db(db, space=space, device=d)
            notes.append("measured-data kNN (predictors.get_adapted_predictor unavailable)")
        else:
            for d in measured:
                adapted = adapt(db, space=space.name, device=d, predictor=predictor)
                models[d] = measured_first(db, space=space, device=d, model=adapted)
            used = sorted({str(latency_model_name(models[d])) for d in measured})
            notes.append(
                f"adapted predictor {', '.join(used)} (predictors.get_adapted_predictor), "
                "measured medians for measured archs"
            )
    if zs:
        from predictors import datasheet_model
        from predictors.zeroshot import RUNTIME_MODE_TEXT

        modes: dict[str, str] = {}
        for d in zs:
            # A device added with `--catalog` resolves through its DB record (keeping its
            # precision; scaled to its measurements if it has one or two); any other name is
            # the catalog entry's own.
            if get_model is None:
                roofline: LatencyModel = datasheet_model(db, space=space.name, device=d)
            else:
                roofline = get_model(db, space=space.name, device=d, predictor=predictor)
            modes[d] = _roofline_mode(roofline)
            models[d] = measured_first(db, space=space, device=d, model=roofline)
        listed = "; ".join(
            f"{d} <- catalog {e}, priced as {RUNTIME_MODE_TEXT[modes[d]]}"
            + (" (runtime unknown)" if modes[d] == "unknown" else "")
            for d, e in zs.items()
        )
        notes.append(f"zero-shot datasheet roofline ({listed})")
        if any(isinstance(models[d], MeasuredFirstModel) for d in zs):
            notes.append("measured medians for the archs measured on a zero-shot device")
        if "unknown" in modes.values():
            notes.append(
                "name the runtime with `nas device add NAME --catalog ENTRY --runtime R` "
                "(`--replace` for a device added before)"
            )
    return {d: models[d] for d in devices}, "latency: " + "; ".join(notes)


def _adapted_predictor() -> Callable[..., LatencyModel] | None:
    """``predictors.get_adapted_predictor``, or ``None`` when it cannot be imported."""
    try:
        from predictors import get_adapted_predictor  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return get_adapted_predictor  # type: ignore[no-any-return,unused-ignore]


def latency_model_name(model: object) -> str | None:
    """What predicts a device's latencies: the adapted predictor's name (``help+``,
    ``flops``, ...; also behind :class:`MeasuredFirstModel`), ``measured-knn``,
    ``datasheet-roofline``, or ``None`` for a model of another kind."""
    inner = model.model if isinstance(model, MeasuredFirstModel) else model
    if isinstance(inner, MeasuredLatencyModel):
        return "measured-knn"
    if type(inner).__name__ == "RooflineLatencyModel":
        return "datasheet-roofline"
    name = getattr(getattr(inner, "model", None), "name", None)
    return name if isinstance(name, str) and name else None


def _roofline_mode(model: object) -> str:
    """The runtime mode (``predictors.zeroshot.RUNTIME_MODES``) a datasheet model prices."""
    return str(getattr(getattr(model, "model", None), "runtime", "unknown"))
