"""Tests of the datasheet device catalog."""

from __future__ import annotations

import math

import pytest

from hwdb import NotFoundError
from hwdb.catalog import CatalogEntry, get_entry, load_catalog

REQUIRED = (
    "jetson-nano", "jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-orin-nano",
    "jetson-orin-nx", "jetson-agx-orin", "raspberry-pi-4", "raspberry-pi-5",
    "snapdragon-855-kryo-485", "h100-sxm", "a100-sxm-80gb",
)  # fmt: skip


def test_catalog_has_required_devices_with_citations_and_positive_numbers() -> None:
    entries = load_catalog()
    names = {e.name for e in entries}
    assert set(REQUIRED) <= names
    assert len(names) == len(entries)
    for e in entries:
        assert e.citations, e.name
        for c in e.citations:
            assert c.url.startswith("https://") and c.document
        assert set(e.peak_tflops) == {"fp32", "fp16", "int8"}
        values = [*e.peak_tflops.values(), e.memory_bandwidth_gbs, e.memory_gb, e.host_cpu_ghz]
        assert all(math.isfinite(v) and v > 0 for v in values), e.name
        assert e.compute_lanes > 0
        assert e.family in ("jetson", "gpu", "cpu", "phone", "npu")


def test_entry_round_trips_and_is_frozen() -> None:
    e = get_entry("jetson-nano")
    assert CatalogEntry.from_dict(e.to_dict()) == e
    with pytest.raises(AttributeError):
        e.name = "x"  # type: ignore[misc]
    assert e.peak_flops("fp32") == pytest.approx(0.236e12)
    assert e.peak_flops("bf16") == e.peak_flops("fp16")
    with pytest.raises(ValueError, match="precision"):
        e.peak_flops("fp8")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("jetson", "jetson-orin-nano"),
        ("Jetson Nano", "jetson-nano"),
        ("raspi4", "raspberry-pi-4"),
        ("pixel3", "snapdragon-845-kryo-385"),
        ("H100", "h100-sxm"),
        ("xavier-nx", "jetson-xavier-nx"),
    ],
)
def test_get_entry_is_fuzzy(query: str, expected: str) -> None:
    assert get_entry(query).name == expected


def test_get_entry_errors() -> None:
    with pytest.raises(NotFoundError, match="unknown catalog device"):
        get_entry("no-such-board")
    with pytest.raises(NotFoundError, match="ambiguous"):
        get_entry("snapdragon")
    with pytest.raises(ValueError, match="`name`"):
        get_entry(" ")
