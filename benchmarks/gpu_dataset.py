"""Measure the dataset's architectures on a CUDA GPU, then load the results into hwdb.

Two steps, because the GPU machine has torch but not the database stack:

    # on the GPU machine (torch + numpy only; stops cleanly after --budget-s seconds)
    python benchmarks/gpu_dataset.py measure --out $OUT --budget-s 420
    # here: store the rows under one device per configuration and export Parquet
    python benchmarks/gpu_dataset.py load OUT/gpu_rows.jsonl --db sqlite:///dataset.sqlite \
        --parquet hwdb/data/gpu.parquet

Configurations (issue 4): fp32 and fp16 (autocast), batch 1 and 32, for ``mnasnet`` and
``mobilevig`` at 224x224; ``nemotron_flash`` at fp32/fp16 batch 1 (prompt 128, decode 16).
The architectures are the same ones ``benchmarks/build_dataset.py`` measures on the CPU.
The protocol has the drift anchor (``nas.measure``): on the lent H200, whole groups ran up to
1.7x slower than their neighbours, which no within-group interleaving can see.
Rows are appended as each group finishes, so a run cut short still returns what it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

SPACES = ("mnasnet", "mobilevig", "nemotron_flash")


def _configs(space: str, device_type: str = "cuda") -> dict[str, Any]:
    from nas.measure import MeasureConfig, TimingProtocol

    protocol = TimingProtocol(rounds=3, repeats=2, warmup=2)
    base = MeasureConfig(device_type=device_type, protocol=protocol, chunk_size=25)
    if space == "nemotron_flash":
        base = replace(base, chunk_size=5, protocol=TimingProtocol(rounds=3, repeats=1, warmup=1))
        return {"fp32-b1": base, "fp16-b1": replace(base, precision="fp16")}
    return {
        "fp32-b1": base,
        "fp16-b1": replace(base, precision="fp16"),
        "fp32-b32": replace(base, batch_size=32),
        "fp16-b32": replace(base, precision="fp16", batch_size=32),
    }


def measure(
    out: Path, budget_s: float, n: int, spaces: list[str], device_type: str = "cuda"
) -> dict[str, Any]:
    """Time every configuration of every space until the budget is spent."""
    import torch
    from build_dataset import _archs

    from nas.measure import DriftAnchor, environment, measure_pass
    from search_spaces import get_space

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "gpu_rows.jsonl"
    cuda = device_type == "cuda"
    hardware = torch.cuda.get_device_name(0) if cuda else "cpu (dry run)"
    gpu = hardware.lower().replace("nvidia ", "").replace(" ", "-")
    summary: dict[str, Any] = {"gpu": gpu, "rows": 0, "complete": True}
    with rows_path.open("a", encoding="utf-8") as fh:
        for space_name in spaces:
            space = get_space(space_name)
            archs = _archs(space_name, n, True, 0)
            for tag, config in _configs(space_name, device_type).items():
                cfg = config.resolve(space)
                env = environment(threads=cfg.threads, runtime="torch", device_type=cfg.device_type)
                # one anchor per configuration: its first group is the level of all the others
                anchor = DriftAnchor.for_space(space) if config.protocol.anchor else None
                for lo in range(0, len(archs), config.chunk_size):
                    if time.perf_counter() - start > budget_s:
                        summary["complete"] = False
                        return summary
                    group = archs[lo : lo + config.chunk_size]
                    stats = measure_pass(
                        space, group, cfg, seed=0, tick=lambda _w: None, anchor=anchor
                    )
                    for arch, per_metric in zip(group, stats, strict=True):
                        for metric, s in per_metric.items():
                            row = {
                                "device": f"{gpu}-torch-{tag}", "space": space_name,
                                "arch": arch, "metric": metric, "stats": s.to_dict(),
                                "protocol": cfg.protocol, "environment": env,
                                "workload": cfg.workload.to_dict(),
                                "precision": config.precision, "batch_size": config.batch_size,
                                "hardware": hardware,
                                "warmup": config.protocol.warmup,
                            }  # fmt: skip
                            fh.write(json.dumps(row) + "\n")
                            summary["rows"] += 1
                    fh.flush()
                print(f"{space_name} {tag}: {time.perf_counter() - start:.0f}s", flush=True)
    return summary


def _environment(env: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """The row's environment, with the drift factor of rows measured with the anchor."""
    if "drift_factor" not in stats:  # measured before the anchor existed
        return env
    return {**env, "drift_factor": round(stats["drift_factor"], 4)}


def load(rows_file: Path, db_url: str, parquet: Path | None) -> dict[str, Any]:
    """Store the rows of ``measure`` in hwdb (one device per configuration)."""
    from gpu_drift import read_rows

    from hwdb import DeviceSpec, HardwareDB, MeasurementIn, export_parquet

    rows = read_rows(rows_file)
    source = "benchmarks/gpu_dataset.py"
    with HardwareDB(db_url) as db:
        for name in sorted({r["device"] for r in rows}):
            first = next(r for r in rows if r["device"] == name)
            db.upsert_device(
                DeviceSpec(
                    name=name, family="gpu", hardware=first["hardware"], runtime="torch",
                    precision=first["precision"], batch_size=first["batch_size"],
                    provenance="measured", source=source,
                    attributes={"device_type": "cuda", "precision_mode": "autocast"}
                    if first["precision"] != "fp32" else {"device_type": "cuda"},
                )
            )  # fmt: skip
        items = []
        for r in rows:
            s = r["stats"]
            items.append(
                MeasurementIn(
                    device=r["device"], space=r["space"], arch=r["arch"], metric=r["metric"],
                    median=s["median"], mean=s["mean"], std=s["std"], min=s["min"],
                    p90=s["p90"], n_runs=s["n_runs"], warmup=r["warmup"],
                    protocol=r["protocol"], source=source,
                    environment=_environment(r["environment"], s),
                    workload=r["workload"],
                )
            )  # fmt: skip
        written = db.add_measurements(items)
        exported = export_parquet(db, parquet, device=None, space=None) if parquet else {}
    return {"rows": len(rows), "written": written, "exported": exported}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--budget-s", type=float, default=420.0)
    m.add_argument("--n", type=int, default=400)
    m.add_argument("--spaces", default=",".join(SPACES))
    m.add_argument("--device-type", default="cuda", help="cpu: a quick dry run of the script.")
    ld = sub.add_parser("load")
    ld.add_argument("rows", type=Path)
    ld.add_argument("--db", required=True)
    ld.add_argument("--parquet", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.cmd == "measure":
        result = measure(args.out, args.budget_s, args.n, args.spaces.split(","), args.device_type)
    else:
        result = load(args.rows, args.db, args.parquet)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)
