"""Device catalog: datasheet numbers of devices nobody has measured yet.

The catalog ships as package data (``hwdb/data/device_catalog.json``). Every entry cites the
vendor document its numbers come from; numbers derived rather than printed in a datasheet are
listed in :attr:`CatalogEntry.uncertain`. Roofline latency estimates
(:mod:`predictors.zeroshot`) are computed from these numbers alone.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hwdb._errors import NotFoundError
from hwdb._types import PRECISIONS

__all__ = ["PRECISIONS", "CatalogEntry", "Citation", "get_entry", "load_catalog"]

#: The figure a precision an entry states no figure of is priced at (see
#: :meth:`CatalogEntry.peak_flops`): TF32 at FP32's, the conservative choice (TF32 keeps FP32's
#: range and storage; its tensor-core rate applies only to the matmuls and convolutions a
#: framework lets use it, e.g. PyTorch leaves it off for matmuls by default), BF16 at FP16's
#: (the same 16-bit tensor-core rate on the GPUs that have both).
PRICED_AS = {"tf32": "fp32", "bf16": "fp16"}
#: Family names that resolve to a default entry in :func:`get_entry`.
FAMILY_DEFAULTS = {
    "jetson": "jetson-orin-nano",
    "raspberry-pi": "raspberry-pi-5",
    "phone": "snapdragon-855-kryo-485",
    "gpu": "h100-sxm",
}


@dataclass(frozen=True)
class Citation:
    """A vendor document an entry's numbers come from."""

    url: str
    document: str


@dataclass(frozen=True)
class CatalogEntry:
    """Datasheet numbers of one device.

    Attributes:
        name: Catalog key, e.g. ``"jetson-orin-nano"``.
        display_name: Human-readable product name.
        vendor: Manufacturer.
        family: hwdb device family (``jetson``, ``gpu``, ``cpu``, ``phone``, ...).
        device_class: Roofline device class (``gpu``, ``jetson``, ``cpu``, ``sbc``, ``phone``).
        peak_tflops: Dense peak throughput per precision (``fp32``, ``fp16``, ``int8``; may
            also state ``tf32`` or ``bf16``, see :meth:`peak_flops`), TFLOP/s.
        memory_bandwidth_gbs: Peak DRAM bandwidth, GB/s.
        memory_gb: Memory size, GiB.
        compute_lanes: Parallel arithmetic lanes (CUDA cores, or CPU cores x fp32 SIMD lanes).
        cpu_cores: CPU cores (host CPU for accelerators; 0 for discrete GPUs).
        host_cpu_ghz: Clock of the CPU core that dispatches operators.
        accelerator: Free-text description of the compute units.
        citations: Vendor documents.
        uncertain: Fields that are derived or uncertain, with the reason.
        aliases: Other names :func:`get_entry` accepts.
        notes: Free text.
    """

    name: str
    display_name: str
    vendor: str
    family: str
    device_class: str
    peak_tflops: dict[str, float]
    memory_bandwidth_gbs: float
    memory_gb: float
    compute_lanes: int
    cpu_cores: int
    host_cpu_ghz: float
    accelerator: str = ""
    citations: tuple[Citation, ...] = ()
    uncertain: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    notes: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def peak_flops(self, precision: str = "fp32") -> float:
        """Peak throughput at ``precision`` in FLOP/s (int8: OP/s).

        Every precision a device may have (:data:`hwdb._types.PRECISIONS`) has one: the
        entry's figure of it where ``peak_tflops`` states one, else that of the precision
        :data:`PRICED_AS` names (``tf32``: ``fp32``; ``bf16``: ``fp16``). The bundled entries
        state ``fp32``, ``fp16`` and ``int8``.

        Raises:
            ValueError: naming ``precision`` if it is not one of
                :data:`hwdb._types.PRECISIONS`, or if the entry states no figure for it.
        """
        if precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {', '.join(PRECISIONS)}, got {precision!r}."
            )
        key = precision if precision in self.peak_tflops else PRICED_AS.get(precision, precision)
        if key not in self.peak_tflops:
            raise ValueError(
                f"`precision` {precision!r} has no figure in catalog entry {self.name!r} "
                f"(it states {', '.join(sorted(self.peak_tflops))})."
            )
        return float(self.peak_tflops[key]) * 1e12

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the catalog file's format)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "vendor": self.vendor,
            "family": self.family,
            "device_class": self.device_class,
            "peak_tflops": dict(self.peak_tflops),
            "memory_bandwidth_gbs": self.memory_bandwidth_gbs,
            "memory_gb": self.memory_gb,
            "compute_lanes": self.compute_lanes,
            "cpu_cores": self.cpu_cores,
            "host_cpu_ghz": self.host_cpu_ghz,
            "accelerator": self.accelerator,
            "citations": [{"url": c.url, "document": c.document} for c in self.citations],
            "uncertain": list(self.uncertain),
            "aliases": list(self.aliases),
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CatalogEntry:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["citations"] = tuple(Citation(**c) for c in d.get("citations", []))
        d["uncertain"] = tuple(d.get("uncertain", []))
        d["aliases"] = tuple(d.get("aliases", []))
        d["peak_tflops"] = {k: float(v) for k, v in d["peak_tflops"].items()}
        return cls(**d)


@functools.lru_cache(maxsize=1)
def _load() -> tuple[CatalogEntry, ...]:
    text = resources.files("hwdb").joinpath("data/device_catalog.json").read_text("utf-8")
    return tuple(CatalogEntry.from_dict(e) for e in json.loads(text)["entries"])


def load_catalog() -> list[CatalogEntry]:
    """Every catalog entry, in file order."""
    return list(_load())


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def get_entry(name: str) -> CatalogEntry:
    """Look up an entry by name, alias or family, forgivingly.

    Resolution order: exact name; normalised name or alias (case, spaces, ``-`` and ``_``
    ignored); a family default (``"jetson"`` -> ``jetson-orin-nano``, ``"raspberry-pi"`` ->
    ``raspberry-pi-5``, ``"phone"`` -> ``snapdragon-855-kryo-485``, ``"gpu"`` -> ``h100-sxm``);
    finally a unique entry whose normalised name contains the query.

    Raises:
        ValueError: for an empty ``name``.
        NotFoundError: naming the query and the catalog entries (or the ambiguous matches).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("`name` must be a non-empty string.")
    entries = _load()
    by_name = {e.name: e for e in entries}
    if name in by_name:
        return by_name[name]
    key = _norm(name)
    for e in entries:
        if key == _norm(e.name) or key in {_norm(a) for a in e.aliases}:
            return e
    defaults = {_norm(k): v for k, v in FAMILY_DEFAULTS.items()}
    if key in defaults:
        return by_name[defaults[key]]
    hits = [e for e in entries if key and key in _norm(e.name)]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(e.name for e in (hits or list(entries)))
    what = "ambiguous" if hits else "unknown"
    raise NotFoundError(f"{what} catalog device {name!r} (candidates: {known})")
