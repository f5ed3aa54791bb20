"""Matching ``--device`` queries (``jetson``, ``titan_rtx_256``) to devices in the hwdb.

Rule (documented in ``nas search --help``): an exact device name wins; otherwise the query is
matched case-insensitively as a substring of device names, then as a device family. Only
devices with latency data in the search space qualify. Among several matches the one with the
most measurements in the space is chosen, ties broken by name; the choice and the alternatives
are reported. With no match, the zero-shot hook (:data:`ZERO_SHOT_RESOLVERS`, filled by the
zero-shot catalog once it exists) is asked; if it declines, a :class:`DeviceResolutionError`
names the fix. The built-in last resort is the datasheet catalog
(:func:`catalog_match`): a query that ``hwdb.catalog.get_entry`` knows (``jetson`` ->
``jetson-orin-nano``), or a device registered with ``nas device add NAME --catalog ENTRY``,
is searched zero-shot with the datasheet roofline (Williams et al., CACM 2009).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from nas.search._errors import DeviceResolutionError

if TYPE_CHECKING:
    from hwdb import HardwareDB

__all__ = [
    "ZERO_SHOT_RESOLVERS",
    "DeviceMatch",
    "catalog_match",
    "resolve_device",
    "resolve_devices",
]


@dataclass(frozen=True)
class DeviceMatch:
    """The device chosen for a query.

    Attributes:
        query: What the user typed.
        device: Chosen device name.
        rule: How it matched: ``"name"``, ``"substring"``, ``"family"`` or ``"zero-shot"``.
        n_measurements: Its latency measurements in the space.
        alternatives: Other matching devices (name, measurements), best first.
        catalog: Catalog entry of a zero-shot match (``None`` for measured devices).
        space: Search space of a zero-shot match (for the calibration hint).
    """

    query: str
    device: str
    rule: str
    n_measurements: int
    alternatives: list[tuple[str, int]] = field(default_factory=list)
    catalog: str | None = None
    space: str | None = None

    def describe(self) -> str:
        """One line for the terminal."""
        if self.catalog is not None:
            space = self.space or "SPACE"
            n = self.n_measurements
            have, how = (
                (f"{n} measured arch{'s' if n > 1 else ''} in {space!r} (too few to adapt to)",
                 f"scaled to {'them' if n > 1 else 'it'}")
                if n else (f"no measurements in {space!r}",
                           "expect about 1.5x error in its milliseconds")
            )  # fmt: skip
            return (
                f"device {self.query!r} -> {self.device}: {have}, "
                f"ZERO-SHOT from catalog entry {self.catalog!r} (datasheet roofline, "
                f"{how}); calibrate with `nas device onboard NAME --space {space} "
                f"--catalog {self.catalog}` or `nas measure --device-name NAME --space {space}`"
            )
        text = (
            f"device {self.query!r} -> {self.device} "
            f"({self.rule} match, {self.n_measurements} measurements)"
        )
        if self.alternatives:
            others = ", ".join(f"{n} ({c})" for n, c in self.alternatives[:5])
            text += f"; also matched: {others}; pass the full name to choose another"
        return text


ZeroShotResolver = Callable[["HardwareDB", str, str], "DeviceMatch | None"]
ZERO_SHOT_RESOLVERS: list[ZeroShotResolver] = []
"""Hooks ``f(db, query, space) -> DeviceMatch | None`` tried when nothing in the DB matches."""


def catalog_match(db: HardwareDB, query: str, space: str) -> DeviceMatch | None:
    """Zero-shot match from the datasheet catalog, or ``None`` when the catalog has no entry.

    A device registered with ``nas device add NAME --catalog ENTRY`` keeps its name; otherwise
    the device is named after the catalog entry (``jetson`` -> ``jetson-orin-nano``).
    """
    from hwdb import NotFoundError
    from predictors.zeroshot import resolve_catalog_device

    try:
        entry, _precision, label = resolve_catalog_device(query, db)
    except NotFoundError:
        return None
    return DeviceMatch(query, label, "zero-shot", 0, catalog=entry.name, space=space)


def _few_shot(db: HardwareDB, query: str, device: str, space: str, n: int) -> DeviceMatch | None:
    """The zero-shot match (for ``query``) of a catalog-backed ``device`` with ``n`` measured
    archs, too few for a predictor to adapt to (``predictors.MIN_ADAPT_MEASUREMENTS``); else
    ``None``."""
    from predictors import catalog_only

    if not catalog_only(db, space=space, device=device):
        return None
    match = catalog_match(db, device, space)
    return None if match is None else replace(match, query=query, n_measurements=n)


def _counts(db: HardwareDB, space: str) -> dict[str, int]:
    """Architectures with a latency in ``space``, per device (one count query each: building
    the space's latency table took 14 s for 30 NAS-Bench-201 devices, the counts 0.7 s)."""
    from predictors import latency_metric

    metric = latency_metric(space)
    return {
        d.name: db.count_measurements(
            space=space, device=d.name, metric=metric, distinct_archs=True
        )
        for d in db.list_devices(space=space)
    }


def resolve_device(db: HardwareDB, query: str, *, space: str) -> DeviceMatch:
    """Resolve one ``--device`` query (see the module docstring for the rule).

    Raises:
        ValueError: If ``query`` is empty, or ``space`` is neither a registered space nor
            one with data in the database (e.g. HELP's ``ofa``).
        DeviceResolutionError: If no device with data in ``space`` matches and neither a
            zero-shot hook nor the datasheet catalog knows the query.
    """
    q = query.strip() if isinstance(query, str) else ""
    if not q:
        raise ValueError("`device` must be a non-empty device name or pattern.")
    _check_space(db, space)
    counts = {d: c for d, c in _counts(db, space).items() if c > 0}
    if q in counts:
        return _few_shot(db, q, q, space, counts[q]) or DeviceMatch(q, q, "name", counts[q])
    low = q.lower()
    all_devices = db.list_devices()
    by_name = [d.name for d in all_devices if low in d.name.lower()]
    by_family = [d.name for d in all_devices if d.family.lower() == low]
    for rule, names in (("substring", by_name), ("family", by_family)):
        hits = sorted(((n, counts[n]) for n in names if n in counts), key=lambda x: (-x[1], x[0]))
        if hits:
            few = _few_shot(db, q, hits[0][0], space, hits[0][1])
            return few or DeviceMatch(q, hits[0][0], rule, hits[0][1], hits[1:])
    for resolver in ZERO_SHOT_RESOLVERS:
        match = resolver(db, q, space)
        if match is not None:
            return match
    match = catalog_match(db, q, space)
    if match is not None:
        return match
    known = sorted(set(by_name) | set(by_family))
    where = f"; {', '.join(known)} exist but have no data in {space!r}" if known else ""
    raise DeviceResolutionError(
        f"no device matching {q!r} has latency data in space {space!r}{where}; measure one with "
        f"`nas measure --device-name NAME --space {space}` or import data with "
        "`nas hwdb import ...`; "
        "the datasheet catalog has no entry for it either (`nas device catalog` lists them)"
    )


def _check_space(db: HardwareDB, space: str) -> None:
    """``ValueError`` naming ``space`` unless it is registered or has data in ``db``."""
    from search_spaces import list_spaces

    known = set(list_spaces())
    if space in known or space in db.list_spaces():
        return
    raise ValueError(
        f"`space` must be a search space, got {space!r} (known: {', '.join(sorted(known))})."
    )


def resolve_devices(db: HardwareDB, queries: list[str], *, space: str) -> list[DeviceMatch]:
    """Resolve several queries (see :func:`resolve_device`).

    Raises:
        ValueError: If ``queries`` is one string, two queries resolve to one device, or as
            :func:`resolve_device`.
        DeviceResolutionError: As :func:`resolve_device`, for the first query it cannot
            resolve.
    """
    if isinstance(queries, str):
        raise ValueError(
            f"`queries` must be a list of device queries, not one string: [{queries!r}]."
        )
    matches = [resolve_device(db, q, space=space) for q in queries]
    names = [m.device for m in matches]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"`device` queries resolve to the same device twice: {', '.join(dup)}.")
    return matches
