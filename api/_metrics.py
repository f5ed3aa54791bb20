"""Hand-written Prometheus counters and histograms (text exposition format 0.0.4)."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _num(value: float) -> str:
    """A sample value: integers exactly (``1240013``, not ``1.24001e+06``), other floats
    with full precision, and Prometheus' spelling of the special values."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(float(value))


class Metrics:
    """A tiny thread-safe registry: counters, histograms and callback gauges."""

    def __init__(self, buckets: Sequence[float] = _BUCKETS) -> None:
        self._lock = threading.Lock()
        self._buckets = tuple(buckets)
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._hist: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self._gauges: dict[str, Callable[[], float]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        """Declare a metric's type (counter/histogram/gauge) and help text."""
        self._help[name] = (kind, text)

    def inc(self, name: str, labels: Labels = (), value: float = 1.0) -> None:
        """Add ``value`` to a counter."""
        with self._lock:
            series = self._counters[name]
            series[labels] = series.get(labels, 0.0) + value

    def observe(self, name: str, value: float, labels: Labels = ()) -> None:
        """Record one observation in a histogram (cumulative buckets, sum, count)."""
        with self._lock:
            series = self._hist[name]
            row = series.get(labels)
            if row is None:
                row = series[labels] = [0.0] * (len(self._buckets) + 2)
            for i, bound in enumerate(self._buckets):
                if value <= bound:
                    row[i] += 1
            row[-2] += value
            row[-1] += 1

    def gauge(self, name: str, fn: Callable[[], float]) -> None:
        """Register a gauge whose value is read at scrape time."""
        self._gauges[name] = fn

    def render(self) -> str:
        """All metrics in the Prometheus text format."""
        lines: list[str] = []
        with self._lock:
            counters = {k: dict(v) for k, v in self._counters.items()}
            hists = {k: {lab: list(r) for lab, r in v.items()} for k, v in self._hist.items()}
        for name, (kind, text) in sorted(self._help.items()):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            if kind == "counter":
                for labels, value in sorted(counters.get(name, {}).items()):
                    lines.append(f"{name}{_fmt(labels)} {_num(value)}")
            elif kind == "histogram":
                for labels, row in sorted(hists.get(name, {}).items()):
                    for bound, n in zip(self._buckets, row, strict=False):
                        lines.append(f"{name}_bucket{_fmt(labels, ('le', f'{bound:g}'))} {_num(n)}")
                    lines.append(f"{name}_bucket{_fmt(labels, ('le', '+Inf'))} {_num(row[-1])}")
                    lines.append(f"{name}_sum{_fmt(labels)} {_num(row[-2])}")
                    lines.append(f"{name}_count{_fmt(labels)} {_num(row[-1])}")
            elif kind == "gauge" and name in self._gauges:
                lines.append(f"{name} {_num(float(self._gauges[name]()))}")
        return "\n".join(lines) + "\n"
