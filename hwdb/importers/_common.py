"""Validation and canonical architecture strings shared by the importers.

Canonical strings (the ``architecture.arch`` key):

* ``nasbench201``: the standard NAS-Bench-201 cell string
  ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (Dong & Yang, ICLR 2020).
* ``fbnet``: the 22 block names joined by ``-`` (``k3_e1-skip-k5_e6-...``; Wu et al., CVPR 2019).
* ``ofa``: ``r<R>-d<D1..D5>-k<kernels>-e<expands>`` (see :mod:`hwdb.importers.help`).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdb._errors import ImportDataError
from hwdb._types import LM_METRICS, accuracy_problem, clamped_float, latency_problem

if TYPE_CHECKING:
    from hwdb._types import DeviceSpec

__all__ = [
    "FBNET_OPS",
    "RowChecker",
    "NB201_OPS",
    "LM_METRICS",
    "bad",
    "canonical_arch",
    "check_input_file",
    "known_metrics",
    "value_error_field",
    "check_accuracy",
    "check_fbnet",
    "check_latency",
    "check_nb201",
    "check_ofa",
    "nb201_from_ops",
    "ofa_string",
]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
FBNET_OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
_FBNET_SET = frozenset(FBNET_OPS)
_OP = "(" + "|".join(NB201_OPS) + ")"
_NB201_RE = re.compile(rf"^\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|$")
_OFA_RE = re.compile(r"^r(\d{3})-d([234]{5})-k([357.]+)-e([346.]+)$")
OFA_STAGES = 5
OFA_MAX_DEPTH = 4


def bad(path: Path | str, where: str, field: str, message: str) -> ImportDataError:
    """An :class:`ImportDataError` naming the file, the row/key and the field."""
    return ImportDataError(f"{path}: {where}: field {field!r}: {message}")


def check_input_file(path: Path, kind: str) -> None:
    """Refuse a ``path`` that is missing or a directory before a reader sees it (pyarrow
    would read a directory as a dataset of every file in it).

    Raises:
        ImportDataError: ``path`` is missing, or is not a file.
    """
    if not path.exists():
        raise bad(path, "file", "path", "no such file")
    if path.is_dir():
        raise bad(path, "file", "path", f"is a directory, not a {kind} file")


def value_error_field(exc: Exception, default: str) -> str:
    """The argument a ``ValueError`` (or ``TypeError``) names in backticks (``DeviceSpec``,
    ``MeasurementIn``, ``AccuracyIn``), else ``default``."""
    text = str(exc)
    return text.split("`")[1] if text.count("`") >= 2 else default


def known_metrics(space: str) -> tuple[str, ...]:
    """The metrics ``space`` is measured in: :data:`LM_METRICS` for a language-model space
    (latency metric ``e2e_ms``), else ``("latency_ms",)`` (also for unregistered spaces)."""
    from hwdb._storage import space_latency_metric

    return LM_METRICS if space_latency_metric(space) in LM_METRICS else ("latency_ms",)


class RowChecker:
    """Consistency of a file's rows: each device described one way, one value per key.

    An exact duplicate row is kept once; a row that gives its key another value, or describes
    its device differently, is an :class:`ImportDataError` naming both rows.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._devices: dict[str, tuple[int, DeviceSpec]] = {}
        self._values: dict[Hashable, tuple[int, Any]] = {}
        self.stated: dict[str, dict[str, tuple[str, str]]] = {}

    def state(self, i: int, device: str, setting: str, field: str) -> None:
        """Row ``i`` states ``device``'s ``setting`` in ``field`` (the first row that does is
        named when it contradicts the stored device; see ``BulkImport.stated``)."""
        self.stated.setdefault(device, {}).setdefault(setting, (f"{self.path}: row {i + 1}", field))

    def device(self, i: int, spec: DeviceSpec) -> None:
        """Row ``i`` (0-based) describes ``spec``: as every earlier row of that device did."""
        first, known = self._devices.setdefault(spec.name, (i, spec))
        if known != spec:
            message = f"{spec.name!r} described differently on row {first + 1}"
            raise bad(self.path, f"row {i + 1}", "device", message)

    def new_row(self, i: int, spec: DeviceSpec, key: Hashable, value: Any, field: str) -> bool:
        """Check row ``i`` (0-based); False for an exact duplicate of an earlier row."""
        where = f"row {i + 1}"
        self.device(i, spec)
        prev, seen = self._values.setdefault(key, (i, value))
        if prev == i:
            return True
        if seen != value:
            what = "same device, space, arch and metric"
            raise bad(self.path, where, field, f"conflicts with row {prev + 1} ({what})")
        return False

    @property
    def devices(self) -> list[DeviceSpec]:
        """The devices of the rows, in order of first appearance."""
        return [spec for _, spec in self._devices.values()]


def _number(value: object, path: Path | str, where: str, field: str, what: str) -> float:
    """``value`` (a number, or its text) as a float (an int past a float's range: the largest
    float of its sign), else an ImportDataError saying ``what`` must be a number."""
    if not isinstance(value, bool):
        try:
            return clamped_float(value)
        except (TypeError, ValueError):
            pass
    raise bad(path, where, field, f"{what} must be a number, got {value!r}")


def check_latency(
    value: object, path: Path | str, where: str, field: str, *, to_ms: float = 1.0
) -> float:
    """``value`` as a float that, times ``to_ms`` (1000 for seconds), is a latency in
    milliseconds :func:`~hwdb._types.latency_problem` accepts (the rule of
    :class:`~hwdb.MeasurementIn`), else an ImportDataError."""
    number = _number(value, path, where, field, "latency")
    ms = number * to_ms
    if math.isfinite(number) and not math.isfinite(ms):  # finite seconds past a float in ms
        ms = math.copysign(sys.float_info.max, ms)
    problem = latency_problem(ms)
    if problem is not None:
        unit = " s" if to_ms == 1000.0 else ""
        raise bad(path, where, field, f"latency must be {problem}, got {value!r}{unit}")
    return number


def check_accuracy(value: object, path: Path | str, where: str, field: str) -> float:
    """``value`` as a float that :func:`~hwdb._types.accuracy_problem` accepts (the rule of
    :class:`~hwdb.AccuracyIn`), else an ImportDataError."""
    number = _number(value, path, where, field, "accuracy")
    problem = accuracy_problem(number)
    if problem is not None:
        raise bad(path, where, field, f"accuracy must be {problem}, got {value!r}")
    return number


def check_nb201(arch: str) -> bool:
    """Whether ``arch`` is a canonical NAS-Bench-201 cell string."""
    return bool(_NB201_RE.match(arch))


def nb201_from_ops(ops: Sequence[int]) -> str:
    """NB201 string from 6 op codes in edge order (0->1),(0->2),(1->2),(0->3),(1->3),(2->3)."""
    n = [NB201_OPS[i] for i in ops]
    return f"|{n[0]}~0|+|{n[1]}~0|{n[2]}~1|+|{n[3]}~0|{n[4]}~1|{n[5]}~2|"


def check_fbnet(arch: str) -> bool:
    """Whether ``arch`` is 22 FBNet block names joined by ``-``."""
    blocks = arch.split("-")
    return len(blocks) == 22 and all(b in _FBNET_SET for b in blocks)


def ofa_string(ks: Sequence[int], e: Sequence[int], d: Sequence[int], r: int) -> str:
    """Canonical OFA string; only the first ``d[i]`` layers of each stage are kept."""
    if len(d) != OFA_STAGES or len(ks) != OFA_STAGES * OFA_MAX_DEPTH or len(e) != len(ks):
        raise ValueError("an OFA subnet has 5 depths and 20 kernel sizes and expand ratios")
    kk, ee = [], []
    for stage, depth in enumerate(d):
        start = stage * OFA_MAX_DEPTH
        kk.append("".join(str(int(k)) for k in ks[start : start + depth]))
        ee.append("".join(str(int(x)) for x in e[start : start + depth]))
    text = f"r{int(r)}-d{''.join(str(int(x)) for x in d)}-k{'.'.join(kk)}-e{'.'.join(ee)}"
    if not check_ofa(text):
        raise ValueError(f"not a valid OFA subnet: {text}")
    return text


def check_ofa(arch: str) -> bool:
    """Whether ``arch`` is a canonical OFA string (resolution 128..224 step 4)."""
    match = _OFA_RE.match(arch)
    if not match:
        return False
    res, depths, ks, es = match.groups()
    if not (128 <= int(res) <= 224 and int(res) % 4 == 0):
        return False
    ks_groups, e_groups = ks.split("."), es.split(".")
    if len(ks_groups) != OFA_STAGES or len(e_groups) != OFA_STAGES:
        return False
    return all(
        len(k) == int(dd) and len(x) == int(dd)
        for k, x, dd in zip(ks_groups, e_groups, depths, strict=True)
    )


_CANONICAL: dict[tuple[str, str], str] = {}
_LOCAL = {"nasbench201": check_nb201, "fbnet": check_fbnet, "ofa": check_ofa}


class ArchFieldError(ValueError):
    """A bad ``space`` or ``arch`` value; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def canonical_text(space: str, arch: str) -> str:
    """``arch`` canonicalised through the registered search space ``space`` (reference names
    such as ``mnasnet-a1`` included), else checked by a local parser (HELP's ``ofa``).

    Raises:
        ArchFieldError: an unknown space (``field == "space"``) or a malformed architecture
            string (``field == "arch"``).
    """
    from search_spaces import SearchSpaceError, get_space, list_spaces

    text = arch.strip()
    cached = _CANONICAL.get((space, text))
    if cached is not None:
        return cached
    if space in list_spaces():  # not cached: a space registered later counts too
        try:
            sp = get_space(space)
            result = sp.to_string(sp.resolve(text))  # a reference name or a string
        except (SearchSpaceError, ValueError) as exc:
            raise ArchFieldError("arch", f"malformed {space} architecture: {exc}") from None
        if len(_CANONICAL) < 1_000_000:
            _CANONICAL[(space, text)] = result
        return result
    check = _LOCAL.get(space)
    if check is None:
        known = ", ".join(sorted(set(list_spaces()) | set(_LOCAL)))
        raise ArchFieldError("space", f"unknown search space {space!r} (known: {known})")
    if not check(text):
        raise ArchFieldError("arch", f"malformed {space} architecture string {text!r}")
    return text


def canonical_arch(space: str, arch: str, path: Path | str, where: str) -> str:
    """:func:`canonical_text`, its errors naming the file and the row.

    Raises:
        ImportDataError: unknown space or malformed architecture string.
    """
    try:
        return canonical_text(space, arch)
    except ArchFieldError as exc:
        raise bad(path, where, exc.field, str(exc)) from None
