"""How far the datasheet roofline's milliseconds are from measured ones, and the factor that
corrects them (prints JSON).

The roofline ranks architectures from a datasheet alone (``benchmarks/runtime_modes.py``), but
a zero-shot search also compares its latencies with a budget in milliseconds, and reports
them. Its device-class constants (achieved share of peak, per-operator dispatch cost) come
from library benchmarks and vendor numbers; real runtimes at batch 1 are slower. For every
measured device with a catalog entry (the pairs of ``runtime_modes.py``), this script prices
the device's architectures with the roofline exactly as the product does (the device's own
runtime and workload), and compares them with the measurements:

* ``pairs``: per pair, the median ratio measured / roofline and the spread (standard
  deviation) of the log ratio across its architectures;
* ``fit``: one factor for every device, the geometric mean of the pairs' geometric-mean ratios
  (each pair weighs the same; it minimises the mean squared log error), and the log standard
  deviation of the corrected estimates around the measurements (``log_sigma``);
* ``leave_one_entry_out``: the same, fitted without every pair of one catalog entry and
  scored on them (several HELP devices share an entry, so pairs of one entry are held out
  together): the typical error of the corrected milliseconds on a device the fit never saw
  (``rms_log_bias``), and the share of its measurements inside the interval
  ``estimate * exp(+-1.645 * log_sigma)`` (the nominal 90 % interval, ``coverage_90``), with
  the factor and sigma fitted on the other entries;
* ``scaled_to``: a catalog device with one or two measured archs stays zero-shot, its roofline
  scaled to them (``RooflineLatencyModel.scaled_to``). Per pair and ``n`` in (1, 2), many
  seeded draws of ``n`` archs set the scale, and the other archs' log errors give the spread
  left after scaling (pairs weigh the same, ``log_sigma``), its ratio to the pairs' own log
  spread (``sqrt(1 + 1/n)`` if the archs' errors were independent), and the share of the
  other archs inside the nominal 90 % interval of the sigma the product reports for such a
  device (``coverage_90``, with ``product_log_sigma``);
* ``product``: the same two numbers for the constants the product uses
  (``predictors.zeroshot.DATASHEET_SCALE`` and ``DATASHEET_LOG_SIGMA``), on all pairs, and
  for the uncorrected roofline (factor 1) under the same sigma.

Usage (import the data first; ``hwdb init`` adds the bundled measurements)::

    nas --db sqlite:///bench.sqlite hwdb import help ../shared/data/help/data
    nas --db sqlite:///bench.sqlite hwdb import latbench ../shared/data/latbench/*.pickle
    nas --db sqlite:///bench.sqlite hwdb init
    python benchmarks/roofline_calibration.py --db sqlite:///bench.sqlite
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from runtime_modes import measured_pairs

from hwdb import HardwareDB
from hwdb.catalog import get_entry
from predictors import device_split, device_workload
from predictors.zeroshot import (
    DATASHEET_LOG_SIGMA,
    DATASHEET_SCALE,
    device_model,
    persistent_traces,
    roofline_latency_ms,
)

Z90 = 1.6448536269514722  # two-sided 90 % interval of a normal distribution


def log_ratios(db: HardwareDB, table: Any, space: str, device: str, entry: str) -> np.ndarray:
    """log(measured / roofline) of ``device``'s archs (NB201: its trimmed query pool)."""
    if space == "nasbench201":
        archs = list(device_split(table, space, device).query)
    else:
        archs = list(table[device].dropna().index)
    dev = db.get_device(device)
    dm = device_model(get_entry(entry), precision=dev.precision, runtime=dev.runtime)
    est = roofline_latency_ms(space, archs, dm, workload=device_workload(table, space, device))
    return np.log(table[device].loc[archs].to_numpy(float) / est)


def fit(logs: list[np.ndarray]) -> tuple[float, float]:
    """(log factor, log sigma): pairs weigh the same."""
    log_factor = float(np.mean([r.mean() for r in logs]))
    sigma = float(np.sqrt(np.mean([np.mean((r - log_factor) ** 2) for r in logs])))
    return log_factor, sigma


def coverage(logs: list[np.ndarray], log_factor: float, sigma: float) -> float:
    """Mean over pairs of the share of measurements inside the nominal 90 % interval."""
    return float(np.mean([np.mean(np.abs(r - log_factor) <= Z90 * sigma) for r in logs]))


def leave_one_entry_out(logs: dict[str, np.ndarray], entries: dict[str, str]) -> dict[str, Any]:
    """Fit on the other catalog entries' pairs, score the held-out entry's pairs."""
    bias, cover, held_out = [], [], []
    for key, r in logs.items():
        others = [v for k, v in logs.items() if entries[k] != entries[key]]
        log_factor, sigma = fit(others)
        bias.append(float(np.median(r) - log_factor))
        cover.append(float(np.mean(np.abs(r - log_factor) <= Z90 * sigma)))
        held_out.append(r - log_factor)
    # the sigma that describes held-out devices: their rms log error, pairs weighing the same
    sigma_held_out = float(np.sqrt(np.mean([np.mean(e**2) for e in held_out])))
    nested = [_nested_coverage(logs, entries, key) for key in logs]
    return {
        "rms_log_bias": round(float(np.sqrt(np.mean(np.square(bias)))), 3),
        "typical_factor_off": round(float(np.exp(np.sqrt(np.mean(np.square(bias))))), 2),
        "coverage_90": round(float(np.mean(cover)), 3),
        "held_out_log_sigma": round(sigma_held_out, 3),
        "coverage_90_at_held_out_sigma": round(
            float(np.mean([np.mean(np.abs(e) <= Z90 * sigma_held_out) for e in held_out])), 3
        ),
        # the same with factor and held-out sigma both fitted without the scored entry
        "coverage_90_nested": round(float(np.mean(nested)), 3),
        "median_log_bias": {k: round(b, 3) for k, b in zip(logs, bias, strict=True)},
    }


def _nested_coverage(logs: dict[str, np.ndarray], entries: dict[str, str], key: str) -> float:
    """Share of ``key``'s measurements inside the 90 % interval whose factor and held-out
    sigma were both fitted without ``key``'s catalog entry (leave one entry out inside)."""
    rest = {k: r for k, r in logs.items() if entries[k] != entries[key]}
    errors = []
    for k, r in rest.items():
        log_factor, _ = fit([v for j, v in rest.items() if entries[j] != entries[k]])
        errors.append(r - log_factor)
    sigma = float(np.sqrt(np.mean([np.mean(e**2) for e in errors])))
    log_factor, _ = fit(list(rest.values()))
    return float(np.mean(np.abs(logs[key] - log_factor) <= Z90 * sigma))


def scaled_to(logs: dict[str, np.ndarray], draws: int = 200, seed: int = 0) -> dict[str, Any]:
    """The spread of scaled-to-``n``-measurements rooflines (see the module docstring)."""
    from predictors.zeroshot import scaled_log_sigma

    rng = np.random.default_rng(seed)
    spread = float(np.sqrt(np.mean([np.var(r) for r in logs.values()])))
    out: dict[str, Any] = {"pairs_log_spread": round(spread, 3)}
    for n in (1, 2):
        errors = []
        for r in logs.values():
            e = []
            for _ in range(draws):
                pick = rng.choice(len(r), n, replace=False)
                e.append(np.delete(r, pick) - r[pick].mean())
            errors.append(np.concatenate(e))
        sigma = float(np.sqrt(np.mean([np.mean(e**2) for e in errors])))
        ours = scaled_log_sigma(n)
        out[f"n{n}"] = {
            "log_sigma": round(sigma, 3),
            "ratio_to_spread": round(sigma / spread, 3),
            "product_log_sigma": round(ours, 3),
            "coverage_90": round(
                float(np.mean([np.mean(np.abs(e) <= Z90 * ours) for e in errors])), 3
            ),
            "coverage_90_per_pair_min": round(
                float(min(np.mean(np.abs(e) <= Z90 * ours) for e in errors)), 3
            ),
        }
    return out


def main() -> None:
    """Run the benchmark and print JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="database with HELP, LatBench, bundled rows")
    args = p.parse_args()
    logs: dict[str, np.ndarray] = {}
    entries: dict[str, str] = {}
    skipped = []
    with HardwareDB(args.db, create=False) as db, persistent_traces():
        for table, space, device, entry in measured_pairs(db):
            if entry is None:
                skipped.append(f"{space}/{device}")
                continue
            logs[f"{space}/{device}"] = log_ratios(db, table, space, device, entry)
            entries[f"{space}/{device}"] = entry
    if not logs:
        p.error("no measured device of runtime_modes.PAIRS is in the database")
    log_factor, sigma = fit(list(logs.values()))
    product = np.log(DATASHEET_SCALE)
    out = {
        "pairs": {
            k: {
                "n": len(r),
                "median_ratio": round(float(np.exp(np.median(r))), 3),
                "log_spread": round(float(np.std(r)), 3),
            }
            for k, r in logs.items()
        },
        "skipped": skipped,
        "fit": {"factor": round(float(np.exp(log_factor)), 3), "log_sigma": round(sigma, 3)},
        "leave_one_entry_out": leave_one_entry_out(logs, entries),
        "scaled_to": scaled_to(logs),
        "product": {
            "scale": DATASHEET_SCALE,
            "log_sigma": DATASHEET_LOG_SIGMA,
            "coverage_90": round(coverage(list(logs.values()), product, DATASHEET_LOG_SIGMA), 3),
            "rms_log_error": round(
                float(np.sqrt(np.mean([np.mean((r - product) ** 2) for r in logs.values()]))), 3
            ),
            "uncorrected_coverage_90": round(
                coverage(list(logs.values()), 0.0, DATASHEET_LOG_SIGMA), 3
            ),
            "uncorrected_rms_log_error": round(
                float(np.sqrt(np.mean([np.mean(r**2) for r in logs.values()]))), 3
            ),
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)
