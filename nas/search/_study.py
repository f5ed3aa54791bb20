"""The settings a search study is created with, and how a worker joins a shared study.

A study stores the settings that decide what its trials mean (space, devices, accuracy
objective, latency budget and its ``z``, the restricted choices, the latency model of each
device); resuming it with other settings would mix incomparable trials, so it is refused with
a :class:`~nas.search.StudyMismatchError` that names each setting both as its ``nas search``
flag and as its :func:`~nas.search.run_search` argument, with the stored and the given value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

__all__ = ["JOIN_ATTR", "UNCHOSEN_LATENCY", "join_number", "mismatches", "mismatch_message"]

#: Per stored setting: the ``nas search`` flag and the ``run_search`` argument that set it.
SETTING_NAMES: dict[str, tuple[str, str]] = {
    "nas_space": ("--space", "space"),
    "nas_devices": ("--device", "devices"),
    "nas_accuracy": ("--accuracy", "accuracy"),
    "nas_budget_ms": ("--latency-budget", "budget_ms"),
    "nas_budget_quantile_z": ("--budget-z", "budget_quantile_z"),
    "nas_choices": ("--choices", "space choices"),
    "nas_latency": ("--predictor", "latency_models"),
    "nas_population": ("--population", "population"),
    "nas_units": ("what latencies mean (this release)", "latency_models"),
}
#: Why a study of an earlier release cannot be resumed when ``nas_units`` differs.
UNITS_CHANGED = (
    "earlier releases priced devices known only by their datasheet about 2.8x faster "
    "(predictors.zeroshot.DATASHEET_SCALE) and bounded --budget-z as mean + z*std, so its "
    "trials do not compare with new ones; start a new study (another --study name or --out "
    "folder)"
)
#: User attribute of the marker trial a worker adds when it joins a shared (RDB) study.
JOIN_ATTR = "worker_join"


#: Latency models a device gets without anyone choosing a predictor: the datasheet roofline of
#: a catalog device not yet measured in the space. Once the device is measured its adapted
#: predictor takes over (as re-adaptation on more measurements changes an adapted model's
#: values), so a study run zero-shot resumes with it.
UNCHOSEN_LATENCY = ("datasheet-roofline",)


def _same_latency(stored: Any, given: Mapping[str, str | None]) -> bool:
    """Latency models agree where both sides name a chosen one (``None``: a model of unknown
    kind; see :data:`UNCHOSEN_LATENCY`)."""
    if not isinstance(stored, Mapping):
        return True  # a study created before the latency model was stored
    open_ = (None, *UNCHOSEN_LATENCY)
    return all(
        stored.get(d) in open_ or given.get(d) in open_ or stored.get(d) == given.get(d)
        for d in given
    )


def _same_units(stored: Any, given: Any) -> bool:
    """Each unit the search uses now (``given``: e.g. the datasheet scale of a zero-shot
    device, the budget bound) is the one the study was created with; a unit not used now
    is not compared (a zero-shot device measured since then)."""
    if not given:
        return True
    stored = stored if isinstance(stored, Mapping) else {}
    return all(stored.get(k) == v for k, v in given.items())


def mismatches(stored: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """The keys of ``given`` whose stored value differs (``nas_latency``: see above; a
    ``nas_latency`` or ``nas_population`` missing from an old study is no mismatch;
    ``nas_units``: see :func:`_same_units`)."""
    out = []
    for key, value in given.items():
        if key == "nas_latency":
            if key in stored and not _same_latency(stored[key], value):
                out.append(key)
        elif key == "nas_population":  # studies before it was stored take any
            if key in stored and stored[key] != value:
                out.append(key)
        elif key == "nas_units":
            if not _same_units(stored.get(key), value):
                out.append(key)
        elif stored.get(key) != value:
            out.append(key)
    return out


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return (
            "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}" if value else "none"
        )
    if isinstance(value, list | tuple):
        return ",".join(_show(v) for v in value)
    return "none" if value is None else str(value)


def mismatch_message(
    name: str, where: str | None, keys: list[str], stored: Mapping[str, Any],
    given: Mapping[str, Any],
) -> str:  # fmt: skip
    """One line naming each differing setting (flag and argument), stored and given values."""
    parts = []
    for key in keys:
        flag, arg = SETTING_NAMES.get(key, (key, key))
        parts.append(f"{flag} ({arg}) was {_show(stored.get(key))}, now {_show(given.get(key))}")
    what = "; ".join(parts) or "its objectives differ"
    fix = (
        UNITS_CHANGED
        if "nas_units" in keys and stored.get("nas_units") is None
        else "rerun with the study's settings, or start another study: another --study name "
        "(study_name) and, if you gave -o (out_dir), another output folder"
    )
    return f"study {name!r} in {where} was created with other settings: {what}; {fix}"


def join_number(study: optuna.Study, worker: str) -> int:
    """Add this worker's marker trial to a shared study and return its number.

    Trial numbers are handed out by the storage one at a time, so cooperating workers get
    different numbers (and differently seeded samplers), while one worker that replays the
    same commands on a fresh study gets the same numbers (0 on a new study). The marker is a
    ``PRUNED`` trial tagged ``worker_join``: it counts towards no budget and no population.
    """
    tag = f"{worker}:{uuid.uuid4().hex}"
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs={JOIN_ATTR: tag}))
    for t in reversed(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))):
        if t.user_attrs.get(JOIN_ATTR) == tag:
            return t.number
    raise AssertionError("the marker trial was not stored")  # pragma: no cover
